import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Datapath,
  DROP_REASONS,
  MemoryNetworkBind,
  MemoryPlaintextPort,
  toInbound,
  type InboundDatagram,
  type NetworkFraming,
  type SaConfig,
} from '@app/datapath';
import { IpPacketInfo, parseIpPacket } from '@app/codec';
import { gcmSa, udpPacket } from './testing/packets.js';

const SAS: SaConfig[] = [
  gcmSa({ spi: 0x7001, policyId: 'pa' }),
  gcmSa({ spi: 0x7002, policyId: 'pb', destination: '239.1.1.3', udpEncapsulation: {}, transform: { kind: 'aes-gcm-16', keyBits: 256 } }),
  gcmSa({ spi: 0x7003, policyId: 'pc', mode: 'transport', addressPreservation: 'none', destination: '239.1.1.2' }),
  {
    ...gcmSa({ spi: 0x7004, destination: 'ff3e::1' }),
    policyId: 'p6',
    transform: { kind: 'aes-cbc-hmac-sha256', keyBits: 128 },
    encryptionKey: new Uint8Array(16).fill(1),
    integrityKey: new Uint8Array(32).fill(2),
    udpEncapsulation: {},
  },
];

const POLICY = [
  { id: 'pa', action: 'protect' as const, groupId: 'g', selector: { destination: '239.1.1.1' } },
  { id: 'pb', action: 'protect' as const, groupId: 'g', selector: { destination: '239.1.1.3' } },
  { id: 'pc', action: 'protect' as const, groupId: 'g', selector: { destination: '239.1.1.2' } },
  { id: 'p6', action: 'protect' as const, groupId: 'g6', selector: { destination: 'ff3e::/16' } },
];

function world() {
  const bind = new MemoryNetworkBind();
  const port = new MemoryPlaintextPort();
  const sut = new Datapath({ clock: { now: () => 0 }, bind, port });
  sut.installPolicy(POLICY);
  for (const sa of SAS) sut.installSa(sa);
  return { sut, bind, port };
}

/** Valid datagrams from a sender holding the same SAs, in both framings. */
function validDatagrams(): InboundDatagram[] {
  const out: InboundDatagram[] = [];
  for (const framings of [['raw-ip'], ['udp']] as NetworkFraming[][]) {
    const bind = new MemoryNetworkBind({ framings });
    const sut = new Datapath({ clock: { now: () => 0 }, bind, port: new MemoryPlaintextPort() });
    sut.installPolicy(POLICY);
    for (const sa of SAS) sut.installSa(sa);
    for (let i = 0; i < 3; i++) {
      sut.send(udpPacket({ src: '10.0.0.1', dst: '239.1.1.1', payload: 'x'.repeat(i * 40) }));
      sut.send(udpPacket({ src: '10.0.0.1', dst: '239.1.1.2', payload: 'y'.repeat(i * 40) }));
      sut.send(udpPacket({ src: '10.0.0.1', dst: '239.1.1.3', payload: 'w'.repeat(i * 40) }));
      sut.send(udpPacket({ src: '2001:db8::1', dst: 'ff3e::1', payload: 'z'.repeat(i * 40) }));
    }
    out.push(...bind.sent.map(toInbound));
  }
  return out;
}

/** Whether the datagram is for the transport-mode SA (SPI 0x7003). */
function isTransport(d: InboundDatagram): boolean {
  const b = d.data;
  for (let i = 0; i + 4 <= b.length; i++) {
    if (b[i] === 0 && b[i + 1] === 0 && b[i + 2] === 0x70 && b[i + 3] === 0x03) return true;
  }
  return false;
}

/** Everything an input can end as; each input must add exactly one. */
function outcomes(sut: Datapath): number {
  const s = sut.stats();
  return s.delivered + s.ike + s.keepalives + DROP_REASONS.reduce((n, r) => n + s.drops[r], 0);
}

const VALID = validDatagrams();

describe('receive pipeline under hostile input (fast-check)', () => {
  it('the valid corpus is delivered (so mutations start from packets that pass)', () => {
    expect(VALID.length).toBe(18);
    const perSa = new Map<number, number>();
    for (const d of VALID) {
      const { sut } = world(); // both framings reuse sequence numbers: one receiver each
      expect(sut.receive(d)).toBe('delivered');
      for (const s of sut.stats().sas) if (s.packetsIn) perSa.set(s.spi, (perSa.get(s.spi) ?? 0) + 1);
    }
    expect([...perSa].sort()).toEqual([
      [0x7001, 3],
      [0x7002, 6],
      [0x7003, 3],
      [0x7004, 6],
    ]);
  });

  it('arbitrary bytes never throw and each ends in exactly one outcome', () => {
    const { sut } = world();
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.constantFrom<NetworkFraming>('udp', 'raw-ip'),
        fc.constantFrom('10.0.0.1', '2001:db8::1', 'nonsense', ''),
        (data, framing, src) => {
          const before = outcomes(sut);
          const outcome = sut.receive({ framing, data, srcAddress: src, dstAddress: '239.1.1.1', srcPort: 4500, dstPort: 4500 });
          expect(['delivered', 'dropped', 'ike', 'keepalive']).toContain(outcome);
          expect(outcomes(sut) - before).toBe(1);
        },
      ),
      { numRuns: 3000, seed: 0x5eed },
    );
    expect(sut.internalErrors).toBe(0);
  });

  it('mutated valid packets never throw, end in one outcome, and are never delivered altered', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: VALID.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.option(fc.nat(), { nil: undefined }),
        (index, flips, cut) => {
          // A fresh receiver per case: the replay window would otherwise hide the ICV check.
          const { sut, port } = world();
          const d = VALID[index]!;
          const data = Uint8Array.from(d.data);
          for (const [at, x] of flips) data[at % data.length]! ^= x;
          const input = cut === undefined ? data : data.subarray(0, cut % (data.length + 1));
          const before = outcomes(sut);
          const outcome = sut.receive({ ...d, data: input });
          expect(outcomes(sut) - before).toBe(1);
          if (outcome === 'delivered') {
            // Only bytes outside the ICV's coverage may change and still pass (outer header
            // fields, the UDP header); what ESP protected must come out exactly as sealed.
            const original = world();
            original.sut.receive(d);
            const want = original.port.delivered[0]!;
            const got = port.delivered[0]!;
            const w = parseIpPacket(want, 0, want.length, new IpPacketInfo());
            const g = parseIpPacket(got, 0, got.length, new IpPacketInfo());
            expect(Buffer.from(got.subarray(g.upperOffset))).toEqual(Buffer.from(want.subarray(w.upperOffset)));
            if (!isTransport(d)) expect(Buffer.from(got)).toEqual(Buffer.from(want));
          }
          expect(sut.internalErrors).toBe(0);
        },
      ),
      { numRuns: 1500, seed: 0xbad5eed },
    );
  });
});
