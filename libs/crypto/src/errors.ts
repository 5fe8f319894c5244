/** Why a cryptographic operation refused its input. Never carries key bytes. */
export type CryptoErrorCode =
  | 'BAD_KEY' // a public value or key is malformed or not on the curve
  | 'UNSUPPORTED' // an algorithm we do not implement
  | 'INTEGRITY' // an ICV or AEAD tag does not verify
  | 'BAD_PADDING' // decrypted padding is inconsistent
  | 'BAD_SIGNATURE' // a signature or AUTH value does not verify
  | 'BAD_CERTIFICATE' // a certificate does not parse or does not chain to a trust anchor
  | 'BAD_IDENTITY'; // an identity does not match its certificate

export class CryptoError extends Error {
  override readonly name = 'CryptoError';
  constructor(
    readonly code: CryptoErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

export function isCryptoError(e: unknown): e is CryptoError {
  return e instanceof CryptoError;
}

/** Injected randomness: n fresh random octets. */
export type RandomBytes = (n: number) => Uint8Array;
