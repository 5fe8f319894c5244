import { createCipheriv, createDecipheriv } from 'node:crypto';

/**
 * AES Key Wrap with Padding (RFC 5649), the KW_5649_128/192/256 key wrap algorithms of
 * RFC 9838 §4.4.2.1.2. Backed by OpenSSL's `id-aes*-wrap-pad` ciphers in node:crypto; the
 * Alternative Initial Value's constant half A6 59 59 A6 (RFC 5649 §3) is passed as the IV and
 * OpenSSL appends the 32-bit message length indicator itself.
 */

/**
 * RFC 5649 §3: the constant high-order half of the Alternative Initial Value, as octets for code
 * that runs the wrap elsewhere (e.g. @app/lkh's wrap worker thread, which cannot import this
 * module) and passes it to `createCipheriv` as the IV.
 */
export const KEY_WRAP_AIV_CONSTANT: readonly number[] = [0xa6, 0x59, 0x59, 0xa6];
const AIV_CONSTANT = Buffer.from(KEY_WRAP_AIV_CONSTANT);
/** RFC 5649 §4.1: a semiblock is 64 bits. */
const SEMIBLOCK = 8;
/** RFC 5649 §3: plaintexts are 1 .. 2^32 octets; we cap far lower, keys are short. */
export const KEY_WRAP_MAX_PLAINTEXT = 1024;

export type KeyWrapErrorCode =
  | 'BAD_KEK_SIZE' // the key-encryption key is not 16, 24 or 32 octets
  | 'BAD_LENGTH' // plaintext empty/too long, or ciphertext not a multiple of 8 octets >= 16
  | 'INTEGRITY'; // the unwrapped AIV, length indicator or padding did not verify

/** Why a wrap or unwrap was refused. Never carries key bytes. */
export class KeyWrapError extends Error {
  override readonly name = 'KeyWrapError';
  constructor(
    readonly code: KeyWrapErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

/** node:crypto (OpenSSL) name of the RFC 5649 cipher for a KEK of `kekLength` octets. */
export function keyWrapCipherName(kekLength: number): string {
  switch (kekLength) {
    case 16:
      return 'id-aes128-wrap-pad';
    case 24:
      return 'id-aes192-wrap-pad';
    case 32:
      return 'id-aes256-wrap-pad';
    default:
      throw new KeyWrapError('BAD_KEK_SIZE', `KEK of ${kekLength} octets; expected 16, 24 or 32`);
  }
}

/** Length of the wrapped form of a plaintext of `plaintextLength` octets (RFC 5649 §4.1). */
export function keyWrapLength(plaintextLength: number): number {
  return SEMIBLOCK + Math.ceil(plaintextLength / SEMIBLOCK) * SEMIBLOCK;
}

/** Wraps `plaintext` (1..1024 octets) under `kek` (16/24/32 octets). */
export function aesKeyWrapPad(kek: Uint8Array, plaintext: Uint8Array): Buffer {
  const name = keyWrapCipherName(kek.length);
  if (plaintext.length < 1 || plaintext.length > KEY_WRAP_MAX_PLAINTEXT) {
    throw new KeyWrapError('BAD_LENGTH', `plaintext of ${plaintext.length} octets`);
  }
  const c = createCipheriv(name, kek, AIV_CONSTANT);
  // OpenSSL's wrap ciphers are one-shot: update() consumes the whole plaintext and returns the
  // whole RFC 5649 output (final() would add nothing), so final() is skipped - a wrap costs one
  // native call less, which matters for rekeys of tens of thousands of wraps.
  const out = c.update(plaintext);
  if (out.length !== keyWrapLength(plaintext.length)) {
    throw new KeyWrapError('BAD_LENGTH', `wrap produced ${out.length} octets`);
  }
  return out;
}

/**
 * Unwraps and verifies; throws `KeyWrapError('INTEGRITY')` when the AIV check of RFC 5649 §4.2
 * fails (wrong KEK or altered ciphertext). Returns a fresh buffer the caller owns.
 */
export function aesKeyUnwrapPad(kek: Uint8Array, wrapped: Uint8Array): Buffer {
  const name = keyWrapCipherName(kek.length);
  if (
    wrapped.length < 2 * SEMIBLOCK ||
    wrapped.length % SEMIBLOCK !== 0 ||
    wrapped.length > keyWrapLength(KEY_WRAP_MAX_PLAINTEXT)
  ) {
    throw new KeyWrapError('BAD_LENGTH', `wrapped key of ${wrapped.length} octets`);
  }
  let out: Buffer;
  try {
    // As in aesKeyWrapPad: OpenSSL's unwrap is one-shot in update(), which also makes the RFC 5649
    // §4.2 integrity check and throws when it fails; final() would add nothing.
    out = createDecipheriv(name, kek, AIV_CONSTANT).update(wrapped);
  } catch {
    // Never echo OpenSSL's text.
    throw new KeyWrapError('INTEGRITY', 'wrapped key failed its integrity check');
  }
  if (out.length === 0) throw new KeyWrapError('INTEGRITY', 'wrapped key failed its integrity check');
  return out;
}
