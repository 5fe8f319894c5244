/**
 * Golden ESP vectors made by scapy (scapy-vectors.json, written by test/interop/esp-scapy.test.ts
 * with GROUPSEC_WRITE_VECTORS=1). They run without scapy. Good vectors must be delivered
 * byte-identical; mutated ones must end in the named drop counter, and every proper prefix of a
 * vector must be dropped cleanly.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { internetChecksum } from '@app/codec';
import { Datapath, MemoryNetworkBind, MemoryPlaintextPort, type DropReason, type GspdEntry, type SaConfig } from '@app/datapath';
import { saForScapyCase, type ScapyCase } from '../../support/esp-scapy-case.js';

interface Vector {
  name: string;
  case: Omit<ScapyCase, 'seq' | 'iv' | 'payload' | 'sport' | 'esn'>;
  inner: string;
  packet: string;
}

const file = fileURLToPath(new URL('./scapy-vectors.json', import.meta.url));
const { vectors } = JSON.parse(readFileSync(file, 'utf8')) as { vectors: Vector[] };

function receiver(v: Vector, opts: { sa?: Partial<SaConfig>; policy?: GspdEntry[]; now?: () => number } = {}) {
  const port = new MemoryPlaintextPort();
  const sut = new Datapath({ clock: { now: opts.now ?? (() => 0) }, bind: new MemoryNetworkBind(), port });
  sut.installPolicy(opts.policy ?? [{ id: 'p', action: 'protect', groupId: 'g', selector: { destination: v.case.innerDst } }]);
  sut.installSa(saForScapyCase(v.case, opts.sa));
  const feed = (data: Uint8Array) =>
    sut.receive({ framing: 'raw-ip', data, srcAddress: v.case.outerSrc, dstAddress: v.case.outerDst, srcPort: 0, dstPort: 0 });
  const onlyDrop = (): DropReason[] =>
    (Object.entries(sut.stats().drops) as Array<[DropReason, number]>).filter(([, n]) => n > 0).map(([r]) => r);
  return { sut, port, feed, onlyDrop };
}

const bytes = (v: Vector) => Uint8Array.from(Buffer.from(v.packet, 'hex'));

/** Offset of the ESP header in the vector's outer packet. */
function espOffset(v: Vector): number {
  return (v.case.family === 4 ? 20 : 40) + (v.case.udp ? 8 : 0);
}

describe('golden ESP vectors from scapy', () => {
  it('holds the full matrix', () => {
    expect(vectors.length).toBe(36);
  });

  for (const v of vectors) {
    describe(v.name, () => {
      it('is delivered byte-identical', () => {
        const r = receiver(v);
        expect(r.feed(bytes(v))).toBe('delivered');
        expect(Buffer.from(r.port.delivered[0]!).toString('hex')).toBe(v.inner);
        expect(r.sut.stats().sas[0]!.packetsIn).toBe(1);
      });

      it('drops a flipped ICV byte or ciphertext byte as icv, and then still accepts the original', () => {
        const r = receiver(v);
        const a = bytes(v);
        a[a.length - 1]! ^= 0x01;
        expect(r.feed(a)).toBe('dropped');
        const b = bytes(v);
        b[espOffset(v) + 8 + (v.case.transform === 'gcm' ? 8 : 16)]! ^= 0x80;
        expect(r.feed(b)).toBe('dropped');
        expect(r.onlyDrop()).toEqual(['icv']);
        expect(r.sut.stats().drops.icv).toBe(2);
        expect(r.feed(bytes(v))).toBe('delivered');
      });

      it('drops a replay', () => {
        const r = receiver(v);
        expect(r.feed(bytes(v))).toBe('delivered');
        expect(r.feed(bytes(v))).toBe('dropped');
        expect(r.onlyDrop()).toEqual(['replay']);
      });

      it('drops an unknown SPI as noSa', () => {
        const r = receiver(v);
        const a = bytes(v);
        a[espOffset(v) + 3]! ^= 0x55;
        expect(r.feed(a)).toBe('dropped');
        expect(r.onlyDrop()).toEqual(['noSa']);
      });

      it('drops every proper prefix cleanly', () => {
        const r = receiver(v);
        const a = bytes(v);
        for (let n = 0; n < a.length; n++) expect(r.feed(a.subarray(0, n))).toBe('dropped');
        expect(r.sut.stats().drops.malformed).toBe(a.length);
        expect(r.sut.internalErrors).toBe(0);
      });

      it('drops it as expired after the hard lifetime', () => {
        let t = 0;
        const r = receiver(v, { sa: { lifetime: { hard: { seconds: 1 } } }, now: () => t });
        t = 1000;
        expect(r.feed(bytes(v))).toBe('dropped');
        expect(r.onlyDrop()).toEqual(['expired']);
      });

      it('drops it as policyMismatch when the inner packet is not what the SA\'s GSPD-I entry allows', () => {
        const r = receiver(v, {
          policy: [
            { id: 'other', action: 'protect', groupId: 'g2', selector: { destination: v.case.innerDst, destinationPort: v.case.dport } },
            { id: 'p', action: 'protect', groupId: 'g', selector: { destination: v.case.innerDst } },
          ],
        });
        expect(r.feed(bytes(v))).toBe('dropped');
        expect(r.onlyDrop()).toEqual(['policyMismatch']);
      });

      if (v.case.mode === 'tunnel' && v.case.preservation === 'none') {
        it('is delivered although the outer source differs from the inner one (nothing preserved)', () => {
          const r = receiver(v);
          expect(r.feed(bytes(v))).toBe('delivered');
          expect(v.case.outerSrc).not.toBe(v.case.innerSrc);
        });
      }

      if (v.case.mode === 'tunnel' && v.case.preservation === 'both' && v.case.family === 4) {
        it('drops and audits an outer source that differs from the inner one (preservation)', () => {
          const r = receiver(v);
          const audits: string[] = [];
          r.sut.onAudit((e) => audits.push(e.kind));
          const a = bytes(v);
          a[15]! ^= 0x01; // outer source, last octet
          a[10] = 0;
          a[11] = 0;
          const sum = internetChecksum(a, 0, 20);
          a[10] = sum >> 8;
          a[11] = sum & 0xff;
          expect(r.feed(a)).toBe('dropped');
          expect(r.onlyDrop()).toEqual(['preservationMismatch']);
          expect(audits).toEqual(['preservation-mismatch']);
        });

        it('drops a bad outer header checksum as malformed', () => {
          const r = receiver(v);
          const a = bytes(v);
          a[8]! ^= 0x01; // TTL without fixing the checksum
          expect(r.feed(a)).toBe('dropped');
          expect(r.onlyDrop()).toEqual(['malformed']);
        });
      }
    });
  }
});
