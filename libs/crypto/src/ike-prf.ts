/**
 * IKEv2 pseudorandom functions and key derivation (RFC 7296 §2.13, §2.14; HMAC-SHA-2 PRFs
 * RFC 4868 §2.1.2).
 */
import { createHmac } from 'node:crypto';
import { PrfId } from '@app/codec';
import { CryptoError } from './errors.js';

export interface PrfAlgorithm {
  id: number;
  hash: 'sha256' | 'sha384' | 'sha512';
  /** Output length in octets; also the preferred key length (§2.14). */
  length: number;
}

const PRFS: Record<number, PrfAlgorithm> = {
  [PrfId.PRF_HMAC_SHA2_256]: { id: PrfId.PRF_HMAC_SHA2_256, hash: 'sha256', length: 32 },
  [PrfId.PRF_HMAC_SHA2_384]: { id: PrfId.PRF_HMAC_SHA2_384, hash: 'sha384', length: 48 },
  [PrfId.PRF_HMAC_SHA2_512]: { id: PrfId.PRF_HMAC_SHA2_512, hash: 'sha512', length: 64 },
};

export function prfAlgorithm(id: number): PrfAlgorithm {
  const p = PRFS[id];
  if (!p) throw new CryptoError('UNSUPPORTED', `PRF transform ${id}`);
  return p;
}

/** prf(K, S) (§2.13). */
export function prf(alg: PrfAlgorithm, key: Uint8Array, ...data: Uint8Array[]): Uint8Array {
  const h = createHmac(alg.hash, key);
  for (const d of data) h.update(d);
  return new Uint8Array(h.digest());
}

/** prf+(K, S) = T1 | T2 | ..., truncated to `length` (§2.13); at most 255 iterations. */
export function prfPlus(alg: PrfAlgorithm, key: Uint8Array, seed: Uint8Array, length: number): Uint8Array {
  if (length > 255 * alg.length) throw new CryptoError('UNSUPPORTED', `prf+ cannot produce ${length} octets`);
  const out = new Uint8Array(length);
  let t: Uint8Array = new Uint8Array(0);
  let o = 0;
  for (let i = 1; o < length; i++) {
    t = prf(alg, key, t, seed, Uint8Array.of(i));
    out.set(t.subarray(0, Math.min(t.length, length - o)), o);
    o += t.length;
  }
  return out;
}

/** The IKE SA keys of §2.14. SK_ai/SK_ar are empty for AEAD ciphers. */
export interface IkeSaKeys {
  skd: Uint8Array;
  skai: Uint8Array;
  skar: Uint8Array;
  skei: Uint8Array;
  sker: Uint8Array;
  skpi: Uint8Array;
  skpr: Uint8Array;
}

/** SKEYSEED = prf(Ni | Nr, g^ir) (§2.14). */
export function skeyseed(alg: PrfAlgorithm, ni: Uint8Array, nr: Uint8Array, sharedSecret: Uint8Array): Uint8Array {
  return prf(alg, concat(ni, nr), sharedSecret);
}

/**
 * {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)
 * (§2.14). `encKeyLength` includes any AEAD salt (RFC 5282 §7.1); `integKeyLength` is 0 for AEAD.
 */
export function deriveIkeSaKeys(
  alg: PrfAlgorithm,
  seed: Uint8Array,
  p: { ni: Uint8Array; nr: Uint8Array; spiI: Uint8Array; spiR: Uint8Array; encKeyLength: number; integKeyLength: number },
): IkeSaKeys {
  const n = alg.length;
  const a = p.integKeyLength;
  const e = p.encKeyLength;
  const km = prfPlus(alg, seed, concat(p.ni, p.nr, p.spiI, p.spiR), 3 * n + 2 * a + 2 * e);
  let o = 0;
  const take = (len: number) => km.slice(o, (o += len));
  return { skd: take(n), skai: take(a), skar: take(a), skei: take(e), sker: take(e), skpi: take(n), skpr: take(n) };
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
