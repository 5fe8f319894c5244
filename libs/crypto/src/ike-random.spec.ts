import { describe, expect, it } from 'vitest';
import { randomPool } from './ike-random.js';

/** A deterministic source: octet i of the stream is i mod 251; counts its calls. */
function counting() {
  let next = 0;
  const calls: number[] = [];
  const source = (n: number) => {
    calls.push(n);
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = next++ % 251;
    return b;
  };
  return { source, calls };
}

describe('randomPool', () => {
  it('hands out the source stream in order, in blocks, across block boundaries', () => {
    const { source, calls } = counting();
    const sut = randomPool(source, 16);
    const got = [sut(8), sut(32 - 24), sut(5), sut(11), sut(16), sut(0)];
    const stream = Buffer.concat(got.slice(0, 4)); // 32 octets = two blocks
    expect([...stream]).toEqual(Array.from({ length: 32 }, (_, i) => i));
    // 16 > blockSize? no: exactly one block, drawn from a fresh block.
    expect([...got[4]!]).toEqual(Array.from({ length: 16 }, (_, i) => 32 + i));
    expect(got[5]!.length).toBe(0);
    expect(calls).toEqual([16, 16, 16]);
  });

  it('serves requests larger than a block from the source directly', () => {
    const { source, calls } = counting();
    const sut = randomPool(source, 16);
    expect(sut(40).length).toBe(40);
    expect(calls).toEqual([40]);
  });

  it('returns copies: changing one output does not change the next', () => {
    const { source } = counting();
    const sut = randomPool(source, 16);
    const a = sut(4);
    a.fill(0xee);
    expect([...sut(4)]).toEqual([4, 5, 6, 7]);
  });

  it('keeps the source\'s block without copying it, and zeroes there what it handed out', () => {
    const blocks: Uint8Array[] = [];
    const sut = randomPool((n) => {
      const b = new Uint8Array(n).fill(0xab);
      blocks.push(b);
      return b;
    }, 16);
    expect([...sut(5)]).toEqual([0xab, 0xab, 0xab, 0xab, 0xab]);
    expect([...blocks[0]!.subarray(0, 6)]).toEqual([0, 0, 0, 0, 0, 0xab]);
  });

  it('refuses negative or fractional lengths and bad block sizes', () => {
    const { source } = counting();
    expect(() => randomPool(source, 0)).toThrow(RangeError);
    const sut = randomPool(source, 16);
    expect(() => sut(-1)).toThrow(RangeError);
    expect(() => sut(1.5)).toThrow(RangeError);
  });
});
