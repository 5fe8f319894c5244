/**
 * The UDP bind under the real datapath, on loopback without root: two members (a speaker and a
 * receiver, each a Datapath with its own UdpBind) exchange ESP in UDP over 127.0.0.1 multicast;
 * what the receiver delivers is byte for byte what the speaker's application sent.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Datapath, MemoryPlaintextPort, type GspdEntry, type SaConfig } from '@app/datapath';
import { udp4Packet } from '../../../../test/support/netns-packets.js';
import { freeUdpPort, waitFor } from '../../../../test/support/udp-loopback.js';
import { UdpBind } from './udp-bind.js';

const GROUP = '239.77.1.1';
const clock = { now: () => 1_000_000 };
const policy: GspdEntry[] = [
  { id: 'g', action: 'protect', selector: { destination: `${GROUP}/32`, protocol: 17, destinationPort: 6000 }, groupId: 'grp' },
];

function sa(port: number, direction: 'sender-only' | 'receiver-only'): SaConfig {
  return {
    spi: 0x31337,
    policyId: 'g',
    destination: GROUP,
    source: '127.0.0.1',
    direction,
    mode: 'tunnel',
    addressPreservation: 'both',
    udpEncapsulation: { sourcePort: port, destinationPort: port },
    transform: { kind: 'aes-gcm-16', keyBits: 256 },
    encryptionKey: Buffer.alloc(36, 7),
    replayWindow: 128,
    senderId: 3,
    senderIdBits: 8,
  };
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
});

describe('UdpBind with the datapath over loopback multicast (no root)', () => {
  it('carries 50 protected packets from a speaker to a receiver, delivered byte for byte', async () => {
    const port = await freeUdpPort();
    const options = { family: 4, localAddress: '127.0.0.1', port, localPort: 0, multicastInterface: '127.0.0.1' } as const;
    const speakerBind = await UdpBind.open(options);
    const receiverBind = await UdpBind.open({ ...options, groups: [{ group: GROUP, interface: '127.0.0.1', source: '127.0.0.1' }] });
    closers.push(() => speakerBind.close(), () => receiverBind.close());
    const app = new MemoryPlaintextPort();
    const delivered = new MemoryPlaintextPort();
    const speaker = new Datapath({ clock, bind: speakerBind, port: app });
    const receiver = new Datapath({ clock, bind: receiverBind, port: delivered });
    for (const [dp, dir] of [[speaker, 'sender-only'], [receiver, 'receiver-only']] as const) {
      dp.installPolicy(policy);
      dp.installSa(sa(port, dir));
    }
    const sent = Array.from({ length: 50 }, (_, i) =>
      udp4Packet({ src: '127.0.0.1', dst: GROUP, srcPort: 40000, dstPort: 6000, payload: Buffer.from(`payload ${i}`), ttl: 1 }),
    );
    for (const p of sent) app.emit(p);

    await waitFor('delivery', () => delivered.deliveredCount >= sent.length).catch(() => undefined); // the figures below say what is missing

    expect(speaker.stats()).toMatchObject({ sent: 50 });
    expect(speakerBind.stats).toMatchObject({ sentPackets: 50, sendErrors: 0 });
    expect(receiverBind.stats).toMatchObject({ esp: 50 });
    expect(receiver.stats().delivered).toBe(50);
    expect(delivered.delivered.map((p) => Buffer.from(p).toString('hex'))).toEqual(sent.map((p) => p.toString('hex')));
    const drops = Object.values(receiver.stats().drops).reduce((a, b) => a + b, 0);
    expect(drops).toBe(0);
  });
});
