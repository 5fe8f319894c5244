import { CodecError } from './errors.js';

/**
 * A bounds-checked reader over a frame [offset, end) of a buffer. Every read checks the bytes
 * remaining first; sub-frames cannot read past their parent's end. Views returned by `bytes`
 * alias the input buffer: copy key material out before the buffer is reused.
 */
export class Cursor {
  offset: number;
  readonly end: number;

  constructor(
    readonly buf: Uint8Array,
    offset = 0,
    end = buf.length,
  ) {
    if (offset < 0 || end > buf.length || offset > end) {
      throw new CodecError('BAD_LENGTH', `frame [${offset}, ${end}) outside buffer of ${buf.length}`, offset);
    }
    this.offset = offset;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  need(n: number, what: string): void {
    if (n < 0 || this.end - this.offset < n) {
      throw new CodecError('TRUNCATED', `${what} needs ${n} bytes, ${this.end - this.offset} remain`, this.offset);
    }
  }

  u8(what = 'u8'): number {
    this.need(1, what);
    return this.buf[this.offset++]!;
  }

  u16(what = 'u16'): number {
    this.need(2, what);
    const b = this.buf;
    const o = this.offset;
    this.offset = o + 2;
    return (b[o]! << 8) | b[o + 1]!;
  }

  u32(what = 'u32'): number {
    this.need(4, what);
    const b = this.buf;
    const o = this.offset;
    this.offset = o + 4;
    return ((b[o]! << 24) >>> 0) + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);
  }

  u64(what = 'u64'): bigint {
    const hi = this.u32(what);
    const lo = this.u32(what);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** A view (no copy) of the next n bytes. */
  bytes(n: number, what = 'bytes'): Uint8Array {
    this.need(n, what);
    const v = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }

  skip(n: number, what = 'skip'): void {
    this.need(n, what);
    this.offset += n;
  }

  /** A child cursor over the next n bytes; the parent moves past them. */
  frame(n: number, what = 'frame'): Cursor {
    this.need(n, what);
    const c = new Cursor(this.buf, this.offset, this.offset + n);
    this.offset += n;
    return c;
  }

  /** Throws TRAILING_BYTES unless the frame was consumed exactly. */
  done(what = 'structure'): void {
    if (this.offset !== this.end) {
      throw new CodecError('TRAILING_BYTES', `${what} left ${this.end - this.offset} bytes unread`, this.offset);
    }
  }
}
