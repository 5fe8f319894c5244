/**
 * Socket mode end to end on loopback, without root: applications on member A send plaintext to A's
 * local group port; the datapaths carry it as ESP in UDP over 127.0.0.1 multicast; applications on
 * member B get the payload from B's local group port.
 */
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Datapath, type GspdEntry, type SaConfig } from '@app/datapath';
import { internetChecksum, udp4Packet, udp6Packet } from '../../../../test/support/netns-packets.js';
import { freeUdpPort, waitFor } from '../../../../test/support/udp-loopback.js';
import { UdpBind } from './udp-bind.js';
import { UdpPlaintextPort } from './udp-plaintext-port.js';

const GROUP = '239.77.2.1';
const APP_PORT = 7000;
const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

/** A plain application socket on 127.0.0.1 that records what it receives. */
async function app(): Promise<{ socket: dgram.Socket; port: number; got: string[] }> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  const got: string[] = [];
  socket.on('message', (m) => got.push(m.toString()));
  closers.push(() => new Promise<void>((r) => socket.close(() => r())));
  return { socket, port: (socket.address() as AddressInfo).port, got };
}

async function member(espPort: number, direction: 'sender-only' | 'receiver-only', deliverTo: { address: string; port: number }[] = []) {
  const bind = await UdpBind.open({
    family: 4,
    localAddress: '127.0.0.1',
    localPort: 0,
    port: espPort,
    multicastInterface: '127.0.0.1',
    groups: direction === 'receiver-only' ? [{ group: GROUP, interface: '127.0.0.1', source: '127.0.0.1' }] : [],
  });
  const port = await UdpPlaintextPort.open({
    sourceAddress: '127.0.0.1',
    groups: [{ group: GROUP, groupPort: APP_PORT, listen: { address: '127.0.0.1', port: 0 }, deliverTo }],
  });
  closers.push(() => bind.close(), () => port.close());
  const datapath = new Datapath({ clock: { now: () => 5_000 }, bind, port });
  const policy: GspdEntry[] = [
    { id: 'g', action: 'protect', selector: { destination: `${GROUP}/32`, protocol: 17, destinationPort: APP_PORT }, groupId: 'grp' },
  ];
  const sa: SaConfig = {
    spi: 0x4100,
    policyId: 'g',
    destination: GROUP,
    source: '127.0.0.1',
    direction,
    mode: 'tunnel',
    addressPreservation: 'both',
    udpEncapsulation: { sourcePort: espPort, destinationPort: espPort },
    transform: { kind: 'aes-gcm-16', keyBits: 128 },
    encryptionKey: Buffer.alloc(20, 9),
    replayWindow: 64,
  };
  datapath.installPolicy(policy);
  datapath.installSa(sa);
  return { bind, port, datapath, listen: port.listenEndpoint(GROUP, APP_PORT)! };
}

describe('UdpPlaintextPort (socket mode) over loopback with the datapath', () => {
  it('carries an application’s datagrams to the other member’s subscribed and configured applications', async () => {
    const espPort = await freeUdpPort();
    const configured = await app();
    const a = await member(espPort, 'sender-only');
    const b = await member(espPort, 'receiver-only', [{ address: '127.0.0.1', port: configured.port }]);
    const sender = await app();
    const listener = await app();
    const neighbour = await app();
    // A listen-only application subscribes at B with an empty datagram; one at A does the same.
    listener.socket.send(Buffer.alloc(0), b.listen.port, '127.0.0.1');
    neighbour.socket.send(Buffer.alloc(0), a.listen.port, '127.0.0.1');
    await waitFor('both subscriptions', () => b.port.stats.subscribeOnly === 1 && a.port.stats.subscribeOnly === 1);

    for (let i = 0; i < 20; i++) sender.socket.send(`hello ${i}`, a.listen.port, '127.0.0.1');
    await waitFor('delivery to all three apps', () => listener.got.length === 20 && configured.got.length === 20 && neighbour.got.length === 20);

    const expected = Array.from({ length: 20 }, (_, i) => `hello ${i}`);
    expect(listener.got).toEqual(expected);
    expect(configured.got).toEqual(expected);
    // The neighbour on A got them by local loopback, as a multicast member on the same host would.
    expect(neighbour.got).toEqual(expected);
    expect(sender.got).toEqual([]); // never its own datagrams
    expect(a.port.stats).toMatchObject({ fromApps: 21, built: 20, subscribeOnly: 1 });
    expect(a.datapath.stats().sent).toBe(20);
    expect(b.datapath.stats().delivered).toBe(20);
    expect(b.port.stats).toMatchObject({ delivered: 20, deliverMalformed: 0, deliverNoGroup: 0 });
  });

  it('counts what it cannot deliver and forgets silent subscribers', async () => {
    let now = 0;
    const sut = await UdpPlaintextPort.open({
      sourceAddress: '127.0.0.1',
      groups: [{ group: GROUP, groupPort: APP_PORT, listen: { address: '127.0.0.1', port: 0 } }],
      subscriberTtlMs: 1000,
      now: () => now,
    });
    closers.push(() => sut.close());
    const listen = sut.listenEndpoint(GROUP, APP_PORT)!;
    const listener = await app();
    listener.socket.send(Buffer.alloc(0), listen.port, '127.0.0.1');
    await waitFor('the subscription', () => sut.stats.subscribeOnly === 1);

    sut.deliver(Buffer.from('not an ip packet'));
    sut.deliver(new Uint8Array(0));
    sut.deliver(udp4Packet({ src: '127.0.0.9', dst: '239.77.2.2', srcPort: 1, dstPort: APP_PORT, payload: Buffer.from('other group') }));
    sut.deliver(udp4Packet({ src: '127.0.0.9', dst: GROUP, srcPort: 1, dstPort: APP_PORT + 1, payload: Buffer.from('other port') }));
    expect(sut.stats).toMatchObject({ delivered: 4, deliverMalformed: 2, deliverNoGroup: 2, toApps: 0 });

    sut.deliver(udp4Packet({ src: '127.0.0.9', dst: GROUP, srcPort: 1, dstPort: APP_PORT, payload: Buffer.from('first') }));
    await waitFor('the first delivery', () => listener.got.length === 1);
    now = 5000; // the listener has been silent for longer than the subscription lasts
    sut.deliver(udp4Packet({ src: '127.0.0.9', dst: GROUP, srcPort: 1, dstPort: APP_PORT, payload: Buffer.from('second') }));
    expect(sut.stats.toApps).toBe(1);
    expect(listener.got).toEqual(['first']);
  });

  it('builds a checksummed IP/UDP packet as the application would have sent it', async () => {
    const sut = await UdpPlaintextPort.open({
      sourceAddress: '127.0.0.1',
      groups: [{ group: GROUP, groupPort: APP_PORT, listen: { address: '127.0.0.1', port: 0 } }],
      ttl: 3,
    });
    closers.push(() => sut.close());
    const built: Uint8Array[] = [];
    sut.onPacket((p) => built.push(p));
    const sender = await app();
    sender.socket.send('payload', sut.listenEndpoint(GROUP, APP_PORT)!.port, '127.0.0.1');
    await waitFor('the built packet', () => built.length === 1);
    // Byte for byte what an independent builder makes for the same datagram (ID 1, TTL 3, no DF),
    // apart from the UDP checksum, which the independent builder leaves at zero ("none").
    const p = Buffer.from(built[0]!);
    const expected = udp4Packet({ src: '127.0.0.1', dst: GROUP, srcPort: sender.port, dstPort: APP_PORT, payload: Buffer.from('payload'), ttl: 3 });
    expected.writeUInt16BE(1, 4);
    expected.writeUInt16BE(0, 6);
    expected.writeUInt16BE(0, 10);
    expected.writeUInt16BE(internetChecksum(expected.subarray(0, 20)), 10);
    expect(p.subarray(0, 26).toString('hex')).toBe(expected.subarray(0, 26).toString('hex'));
    expect(p.subarray(28).toString()).toBe('payload');
    // The UDP checksum verifies over the pseudo-header (RFC 768): the sum with it included is 0.
    const pseudo = Buffer.concat([p.subarray(12, 20), Buffer.from([0, 17, 0, p.length - 20]), p.subarray(20)]);
    expect(internetChecksum(pseudo)).toBe(0);
  });

  it('does the same over IPv6 (groups and applications on ::1)', async () => {
    const sut = await UdpPlaintextPort.open({
      sourceAddress: '2001:db8::7',
      groups: [{ group: 'ff3e::7', groupPort: APP_PORT, listen: { address: '::1', port: 0 } }],
    });
    closers.push(() => sut.close());
    const built: Uint8Array[] = [];
    sut.onPacket((p) => built.push(p));
    const socket = dgram.createSocket('udp6');
    await new Promise<void>((r) => socket.bind(0, '::1', r));
    const got: string[] = [];
    socket.on('message', (m) => got.push(m.toString()));
    closers.push(() => new Promise<void>((r) => socket.close(() => r())));
    const myPort = (socket.address() as AddressInfo).port;
    socket.send('six', sut.listenEndpoint('ff3e::7', APP_PORT)!.port, '::1');
    await waitFor('the built packet', () => built.length === 1);
    const expected = udp6Packet({ src: '2001:db8::7', dst: 'ff3e::7', srcPort: myPort, dstPort: APP_PORT, payload: Buffer.from('six'), hopLimit: 1 });
    expect(Buffer.from(built[0]!).toString('hex')).toBe(expected.toString('hex'));
    // And back: a delivered IPv6 packet reaches the application that spoke (it is subscribed).
    sut.deliver(udp6Packet({ src: '2001:db8::9', dst: 'ff3e::7', srcPort: 1, dstPort: APP_PORT, payload: Buffer.from('back') }));
    await waitFor('the delivery back', () => got.length === 1);
    expect(got).toEqual(['back']);
  });

  it('refuses bad configuration', async () => {
    const listen = { address: '127.0.0.1', port: 0 };
    await expect(UdpPlaintextPort.open({ sourceAddress: '127.0.0.1', groups: [{ group: '10.0.0.1', groupPort: 1, listen }] })).rejects.toThrow(RangeError);
    await expect(UdpPlaintextPort.open({ sourceAddress: '::1', groups: [{ group: GROUP, groupPort: 1, listen }] })).rejects.toThrow(RangeError);
    await expect(UdpPlaintextPort.open({ sourceAddress: '127.0.0.1', groups: [{ group: GROUP, groupPort: 0, listen }] })).rejects.toThrow(RangeError);
    await expect(
      UdpPlaintextPort.open({ sourceAddress: '127.0.0.1', groups: [{ group: GROUP, groupPort: 1, listen }, { group: GROUP, groupPort: 1, listen }] }),
    ).rejects.toThrow(/twice/);
  });
});
