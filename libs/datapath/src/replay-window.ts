import { REPLAY_WINDOW_MAX, REPLAY_WINDOW_MIN } from './constants.js';

/**
 * The ESP anti-replay window (RFC 4303 §3.4.3) as RFC 6479's bitmap of 32-bit blocks: the bitmap
 * has one block more than the window needs, so sliding right clears whole blocks and never shifts
 * bits. `check` does not change state (it may run before the ICV is verified); `update` moves the
 * window and must run only after the ICV has verified (RFC 4303 §3.4.3, STYLE.md).
 */
export class ReplayWindow {
  /** Highest sequence number accepted so far (0 = none yet; sequence numbers start at 1). */
  private top = 0;
  private readonly bitmap: Uint32Array;
  private readonly blockMask: number;

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < REPLAY_WINDOW_MIN || size > REPLAY_WINDOW_MAX) {
      throw new RangeError(`replay window ${size} outside ${REPLAY_WINDOW_MIN}..${REPLAY_WINDOW_MAX}`);
    }
    // Blocks for the window plus one spare, rounded up to a power of two for masking.
    let blocks = 1;
    while (blocks < (size >>> 5) + 1) blocks <<= 1;
    this.bitmap = new Uint32Array(blocks);
    this.blockMask = blocks - 1;
  }

  /** The highest sequence number accepted. */
  get highest(): number {
    return this.top;
  }

  /** Whether `seq` (a 32-bit sequence number) would be accepted now. Does not move the window. */
  check(seq: number): boolean {
    if (seq === 0) return false; // never sent (RFC 4303 §3.3.3: the first packet is 1)
    if (seq > this.top) return true;
    if (this.top - seq >= this.size) return false; // left of the window
    const bit = 1 << (seq & 31);
    return (this.bitmap[(seq >>> 5) & this.blockMask]! & bit) === 0;
  }

  /** Records `seq`; returns false (and changes nothing) if it is a replay. */
  update(seq: number): boolean {
    if (!this.check(seq)) return false;
    if (seq > this.top) {
      const from = this.top >>> 5;
      const to = seq >>> 5;
      // Clear the blocks the window slides into (at most the whole bitmap).
      const n = Math.min(to - from, this.bitmap.length);
      for (let i = 1; i <= n; i++) this.bitmap[(from + i) & this.blockMask] = 0;
      this.top = seq;
    }
    const i = (seq >>> 5) & this.blockMask;
    this.bitmap[i] = this.bitmap[i]! | (1 << (seq & 31));
    return true;
  }
}
