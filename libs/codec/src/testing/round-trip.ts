/**
 * The checks every codec spec shares (STYLE.md "Round-trip helper for every codec"). Test-only:
 * `**\/testing/**` is excluded from the build.
 */
import { expect } from 'vitest';
import { CodecError } from '../errors.js';

/** The codec shape of STYLE.md; `end` is optional because only framed bodies take it. */
export interface RoundTripCodec<T> {
  encodingLength(v: T): number;
  encode(v: T, buf?: Uint8Array, offset?: number): Uint8Array;
  decode(buf: Uint8Array, offset?: number, end?: number): T;
}

export interface RoundTripOptions {
  /**
   * Zero bytes the decoder needs after the encoding (an IP header whose length field counts a
   * payload the header codec does not write). Default 0.
   */
  tail?: number;
  /**
   * Whether decode(encode(v)) must deep-equal v. Default true; false where decoding fills in
   * fields that v leaves out, in which case byte-identical re-encoding is the check.
   */
  equal?: boolean;
  /** Where in the larger buffer to encode (and decode) a second time. Default 7. */
  offset?: number;
}

const GUARD = 0xee;
const GUARD_TAIL = 7;

/**
 * Encodes `v` and checks: encodingLength equals the bytes written; decode(encode(v)) equals v
 * (unless `equal: false`); re-encoding the decoded value is byte-identical; encoding at an offset
 * inside a larger buffer writes the same bytes and touches nothing around them; decoding at that
 * offset gives the same value again. Returns the encoding and the decoded value.
 */
export function roundTrip<T>(codec: RoundTripCodec<T>, v: T, options: RoundTripOptions = {}): { bytes: Uint8Array; decoded: T } {
  const tail = options.tail ?? 0;
  const equal = options.equal ?? true;
  const offset = options.offset ?? 7;
  const n = codec.encodingLength(v);
  const bytes = codec.encode(v);
  expect(bytes.length).toBe(n);

  const padded = new Uint8Array(n + tail);
  padded.set(bytes);
  const decoded = codec.decode(padded, 0, n + tail);
  if (equal) expect(decoded).toEqual(v);
  expect(Buffer.from(codec.encode(decoded))).toEqual(Buffer.from(bytes));

  // Guard bytes before the offset and after the tail; the tail itself stays zero.
  const big = new Uint8Array(offset + n + tail + GUARD_TAIL);
  big.fill(GUARD, 0, offset);
  big.fill(GUARD, offset + n + tail);
  const before = Uint8Array.from(big);
  codec.encode(v, big, offset);
  expect(Buffer.from(big.subarray(offset, offset + n))).toEqual(Buffer.from(bytes));
  expect(Buffer.from(big.subarray(0, offset))).toEqual(Buffer.from(before.subarray(0, offset)));
  expect(Buffer.from(big.subarray(offset + n))).toEqual(Buffer.from(before.subarray(offset + n)));
  const atOffset = codec.decode(big, offset, offset + n + tail);
  if (equal) expect(atOffset).toEqual(v);
  expect(Buffer.from(codec.encode(atOffset))).toEqual(Buffer.from(bytes));
  return { bytes, decoded };
}

/** The `CodecError` code `f` throws, or 'OK' when it returns; any other exception is rethrown. */
export function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof CodecError) return e.code;
    throw e;
  }
  return 'OK';
}
