import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { inferEsn, ReplayWindow } from '@app/datapath';

/** The naive model: a set of accepted numbers and the highest one (RFC 4303 §3.4.3 in words). */
class NaiveWindow {
  private seen = new Set<number>();
  private top = 0;
  constructor(private readonly size: number) {}
  accept(seq: number): boolean {
    if (seq === 0) return false;
    if (seq <= this.top && (this.top - seq >= this.size || this.seen.has(seq))) return false;
    this.seen.add(seq);
    this.top = Math.max(this.top, seq);
    return true;
  }
}

describe('ReplayWindow (RFC 6479 bitmap)', () => {
  it('accepts new numbers, refuses duplicates and those left of the window', () => {
    const sut = new ReplayWindow(64);
    expect(sut.update(1)).toBe(true);
    expect(sut.update(1)).toBe(false);
    expect(sut.update(100)).toBe(true);
    expect(sut.check(37)).toBe(true); // 100 - 37 = 63 < 64: inside, unseen
    expect(sut.check(36)).toBe(false); // left of the window
    expect(sut.update(37)).toBe(true);
    expect(sut.update(37)).toBe(false);
    expect(sut.check(0)).toBe(false);
    expect(sut.highest).toBe(100);
  });

  it('check never changes state', () => {
    const sut = new ReplayWindow(64);
    expect(sut.check(5)).toBe(true);
    expect(sut.check(5)).toBe(true);
    expect(sut.highest).toBe(0);
  });

  it('refuses sizes outside 64..4096', () => {
    expect(() => new ReplayWindow(32)).toThrow(RangeError);
    expect(() => new ReplayWindow(4097)).toThrow(RangeError);
  });

  it('agrees with the naive model over random sequences (sizes 64..4096, jumps over whole bitmaps)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(64, 100, 1024, 4096),
        fc.array(fc.oneof(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 20_000 }), fc.constant(0xffffffff)), {
          maxLength: 400,
        }),
        (size, seqs) => {
          const sut = new ReplayWindow(size);
          const model = new NaiveWindow(size);
          for (const s of seqs) expect(sut.update(s), `seq ${s}`).toBe(model.accept(s));
        },
      ),
      { numRuns: 300, seed: 6479 },
    );
  });

  it('handles 64-bit (ESN) numbers across the 2^32 boundary', () => {
    const sut = new ReplayWindow(64);
    const base = 2 ** 32;
    expect(sut.update(base - 2)).toBe(true);
    expect(sut.update(base)).toBe(true);
    expect(sut.update(base - 1)).toBe(true);
    expect(sut.update(base - 1)).toBe(false);
    expect(sut.update(base + 100)).toBe(true);
    expect(sut.check(base + 36)).toBe(false);
    expect(sut.check(base + 37)).toBe(true);
  });
});

describe('inferEsn (RFC 4303 Appendix A2.2)', () => {
  const T = 2 ** 32;
  it('case A: window inside one subspace', () => {
    expect(inferEsn(T + 1000, 64, 990)).toBe(T + 990); // in the window
    expect(inferEsn(T + 1000, 64, 2000)).toBe(T + 2000); // right of it
    expect(inferEsn(T + 1000, 64, 900)).toBe(2 * T + 900); // left of the window: next subspace
    expect(inferEsn(T - 1, 64, 0)).toBe(T); // the wrap
  });
  it('case B: window spanning two subspaces', () => {
    expect(inferEsn(T + 10, 64, T - 5)).toBe(T - 5); // previous subspace, inside the window
    expect(inferEsn(T + 10, 64, 20)).toBe(T + 20);
    expect(inferEsn(10, 64, T - 5)).toBe(-1); // before the first subspace
    expect(inferEsn(0, 64, 1)).toBe(1);
  });
});
