import { CodecError } from './errors.js';

/**
 * The codec of one IKEv2 payload BODY (everything after the 4-octet generic payload header,
 * RFC 7296 §3.2). Bodies plug into the payload chain through `IkePayloadRegistry.register`.
 *
 * - `encodingLength(v)` mirrors `encode` exactly;
 * - `encode(v, buf?, offset?)` writes at `offset` (allocating a zero-filled buffer when none is
 *   given) and returns the buffer;
 * - `decode(buf, offset?, end?)` reads exactly the frame [offset, end) and throws `CodecError`
 *   otherwise. Decoded byte fields alias `buf`.
 */
export interface PayloadBodyCodec<T> {
  encodingLength(v: T): number;
  encode(v: T, buf?: Uint8Array, offset?: number): Uint8Array;
  decode(buf: Uint8Array, offset?: number, end?: number): T;
}

/** Allocates (or checks) the output buffer for `encode`. */
export function outBuffer(len: number, buf: Uint8Array | undefined, offset: number, what: string): Uint8Array {
  const out = buf ?? new Uint8Array(offset + len);
  if (offset < 0 || offset + len > out.length) {
    throw new CodecError('BAD_LENGTH', `${what} needs ${len} bytes at ${offset}, buffer has ${out.length}`, offset);
  }
  return out;
}

export function writeU16(buf: Uint8Array, o: number, v: number): void {
  buf[o] = (v >>> 8) & 0xff;
  buf[o + 1] = v & 0xff;
}

export function writeU32(buf: Uint8Array, o: number, v: number): void {
  buf[o] = (v >>> 24) & 0xff;
  buf[o + 1] = (v >>> 16) & 0xff;
  buf[o + 2] = (v >>> 8) & 0xff;
  buf[o + 3] = v & 0xff;
}

/** Throws BAD_VALUE unless 0 <= v <= max and v is an integer (encoder input checks). */
export function checkUint(v: number, max: number, what: string, offset = 0): void {
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new CodecError('BAD_VALUE', `${what} ${v} outside 0..${max}`, offset);
  }
}

/** A body that is opaque octets (Vendor ID, SK, unknown payloads, Nonce before bounds checks). */
export const rawBody: PayloadBodyCodec<Uint8Array> = {
  encodingLength: (v) => v.length,
  encode(v, buf, offset = 0) {
    const out = outBuffer(v.length, buf, offset, 'raw payload');
    out.set(v, offset);
    return out;
  },
  decode(buf, offset = 0, end = buf.length) {
    if (offset > end || end > buf.length) throw new CodecError('BAD_LENGTH', 'raw payload frame', offset);
    return buf.subarray(offset, end);
  },
};
