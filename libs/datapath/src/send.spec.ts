import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Datapath, DROP_REASONS, MemoryNetworkBind, MemoryPlaintextPort } from '@app/datapath';
import { gcmSa, udpPacket } from './testing/packets.js';

describe('send pipeline under hostile application packets (fast-check)', () => {
  it('never throws; every packet is sent, bypassed, held or counted as exactly one drop', () => {
    const bind = new MemoryNetworkBind({ capture: false });
    const sut = new Datapath({ clock: { now: () => 0 }, bind, port: new MemoryPlaintextPort(), holdQueue: 4 });
    sut.installPolicy([
      { id: 'p1', action: 'protect', groupId: 'g', selector: { destination: '239.1.1.1' } },
      { id: 'p2', action: 'protect', groupId: 'g2', selector: { destination: '239.1.1.2' } },
      { id: 'b', action: 'bypass', selector: { destination: '224.0.0.0/4' } },
    ]);
    sut.installSa(gcmSa({ spi: 0x8001 }));
    const valid = udpPacket({ src: '10.0.0.1', dst: '239.1.1.1', payload: 'valid' });
    const accounted = () => {
      const s = sut.stats();
      return s.sent + s.bypassed + s.held + DROP_REASONS.reduce((n, r) => n + s.drops[r], 0);
    };
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 120 }),
          fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })).map(([at, x]) => {
            const p = Uint8Array.from(valid);
            p[at % p.length]! ^= x;
            return p;
          }),
        ),
        (packet) => {
          const before = accounted();
          const outcome = sut.send(packet);
          expect(['sent', 'bypassed', 'held', 'dropped']).toContain(outcome);
          expect(accounted() - before).toBe(1);
        },
      ),
      { numRuns: 3000, seed: 0x5e4d },
    );
    expect(sut.internalErrors).toBe(0);
    expect(sut.stats().sent).toBeGreaterThan(0);
  });
});
