import { REPLAY_WINDOW_MAX, REPLAY_WINDOW_MIN } from './constants.js';

const TWO32 = 0x1_0000_0000;

/**
 * The ESP anti-replay window (RFC 4303 §3.4.3) as RFC 6479's bitmap of 32-bit blocks: the bitmap
 * has one block more than the window needs, so sliding right clears whole blocks and never shifts
 * bits. `check` does not change state (it may run before the ICV is verified); `update` moves the
 * window and must run only after the ICV has verified (RFC 4303 §3.4.3, STYLE.md).
 * Sequence numbers are full values: 32-bit, or 64-bit with ESN (exact as JS numbers up to 2^53).
 */
export class ReplayWindow {
  /** Highest sequence number accepted so far (0 = none yet; sequence numbers start at 1). */
  private top = 0;
  private readonly bitmap: Uint32Array;
  private readonly blocks: number;

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < REPLAY_WINDOW_MIN || size > REPLAY_WINDOW_MAX) {
      throw new RangeError(`replay window ${size} outside ${REPLAY_WINDOW_MIN}..${REPLAY_WINDOW_MAX}`);
    }
    // Blocks for the window plus one spare, rounded up to a power of two.
    let blocks = 1;
    while (blocks < (size >>> 5) + 1) blocks <<= 1;
    this.bitmap = new Uint32Array(blocks);
    this.blocks = blocks;
  }

  /** The highest sequence number accepted. */
  get highest(): number {
    return this.top;
  }

  /** Whether `seq` would be accepted now. Does not move the window. */
  check(seq: number): boolean {
    if (seq <= 0) return false; // never sent (RFC 4303 §3.3.3: the first packet is 1)
    if (seq > this.top) return true;
    if (this.top - seq >= this.size) return false; // left of the window
    const bit = 1 << seq % 32;
    return (this.bitmap[Math.floor(seq / 32) % this.blocks]! & bit) === 0;
  }

  /** Records `seq`; returns false (and changes nothing) if it is a replay. */
  update(seq: number): boolean {
    if (!this.check(seq)) return false;
    if (seq > this.top) {
      const from = Math.floor(this.top / 32);
      const to = Math.floor(seq / 32);
      // Clear the blocks the window slides into (at most the whole bitmap).
      const n = Math.min(to - from, this.blocks);
      for (let i = 1; i <= n; i++) this.bitmap[(from + i) % this.blocks] = 0;
      this.top = seq;
    }
    const i = Math.floor(seq / 32) % this.blocks;
    this.bitmap[i] = this.bitmap[i]! | (1 << seq % 32);
    return true;
  }
}

/**
 * RFC 4303 Appendix A2.2: the full 64-bit sequence number of a packet that carries only its low
 * 32 bits, given the highest authenticated number `top` and the window size `w` (the receiver
 * assumes the packet lies in the window or to its right). Returns -1 when the implied high half
 * would be negative (a packet from before the first subspace: a replay).
 */
export function inferEsn(top: number, w: number, seqLow: number): number {
  const tl = top % TWO32;
  const th = Math.floor(top / TWO32);
  let sh: number;
  if (tl >= w - 1) {
    // Case A: the window lies within one subspace.
    sh = seqLow >= tl - w + 1 ? th : th + 1;
  } else {
    // Case B: the window spans two subspaces.
    sh = seqLow >= tl - w + 1 + TWO32 ? th - 1 : th;
  }
  return sh < 0 ? -1 : sh * TWO32 + seqLow;
}
