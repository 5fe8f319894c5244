import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CodecError } from './errors.js';
import { roundTrip } from './testing/round-trip.js';
import { wrappedKey, type WrappedKey } from './wrapped-key.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// Packed by hand from the figure of RFC 9838 §4.5.4: Key ID 15, KWK ID 6 (the "6{15}" of the
// RFC's LKH exclusion example, Appendix A) carrying the RFC 5649 §6 20-octet ciphertext.
const GOLDEN = hex('0000000f 00000006 138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a');

const code = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(CodecError);
    return (e as CodecError).code;
  }
  return 'none';
};

describe('Wrapped Key (RFC 9838 §4.5.4)', () => {
  it('decodes the hand-packed golden vector', () => {
    const sut = wrappedKey.decode(GOLDEN);
    expect(sut.keyId).toBe(15);
    expect(sut.kwkId).toBe(6);
    expect(Buffer.from(sut.encryptedKey).toString('hex')).toBe(GOLDEN.subarray(8).toString('hex'));
    expect(Buffer.from(wrappedKey.encode(sut)).equals(GOLDEN)).toBe(true);
  });

  it('round-trips, including at an offset inside a larger buffer', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.nat(16),
        (keyId, kwkId, encryptedKey, pad) => {
          const v: WrappedKey = { keyId, kwkId, encryptedKey };
          roundTrip(wrappedKey, v, { offset: pad });
        },
      ),
    );
  });

  it('fails cleanly on every proper prefix of the golden vector', () => {
    for (let n = 0; n < GOLDEN.length; n++) {
      const prefix = GOLDEN.subarray(0, n);
      if (n > 8) {
        // A shorter frame is still a valid (shorter) Wrapped Key; the key unwrapper rejects it.
        expect(wrappedKey.decode(prefix).encryptedKey.length).toBe(n - 8);
      } else {
        expect(code(() => wrappedKey.decode(prefix))).toBe('TRUNCATED');
      }
    }
  });

  it('refuses bad values, oversize keys and frames outside the buffer', () => {
    expect(code(() => wrappedKey.encode({ keyId: -1, kwkId: 0, encryptedKey: new Uint8Array(16) }))).toBe('BAD_VALUE');
    expect(code(() => wrappedKey.encode({ keyId: 2 ** 32, kwkId: 0, encryptedKey: new Uint8Array(16) }))).toBe('BAD_VALUE');
    expect(code(() => wrappedKey.encode({ keyId: 1, kwkId: 0, encryptedKey: new Uint8Array(0) }))).toBe('BAD_LENGTH');
    expect(code(() => wrappedKey.decode(new Uint8Array(8 + 2000)))).toBe('LIMIT_EXCEEDED');
    expect(code(() => wrappedKey.decode(GOLDEN, 0, GOLDEN.length + 1))).toBe('BAD_LENGTH');
    expect(code(() => wrappedKey.encode({ keyId: 1, kwkId: 0, encryptedKey: new Uint8Array(16) }, new Uint8Array(10)))).toBe('BAD_LENGTH');
  });

  it('accepts only a decode or a CodecError for arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        try {
          const v = wrappedKey.decode(bytes);
          expect(wrappedKey.encodingLength(v)).toBe(bytes.length);
        } catch (e) {
          expect(e).toBeInstanceOf(CodecError);
        }
      }),
    );
  });
});
