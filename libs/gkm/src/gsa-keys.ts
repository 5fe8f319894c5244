import { EncrId, GIKE_DEFAULT_KEY_ID, GIKE_GSK_W_LABEL, IntegId, KwaId, type WrappedKey } from '@app/codec';
import { aesKeyUnwrapPad, aesKeyWrapPad, prfPlus, type PrfAlgorithm } from '@app/crypto';

/**
 * Key sizes and key wrapping of RFC 9838 §3 (Group Key Management):
 * - the default KWK of an IKE SA, GSK_w = prf+(SK_d, "Key Wrap for G-IKEv2") (§3.1.1);
 * - SA keying material sizes (§3.4): ESP/AH take the encryption key from the left, the integrity
 *   key from the rest (RFC 7296 §2.17); a Rekey SA's KEYMAT is GSK_e | GSK_a | GSK_w;
 * - Wrapped Keys (§4.5.4) under KW_5649_* (RFC 5649).
 */

/** Key wrap key size per KWA transform ID (RFC 9838 §4.4.2.1.2). */
export function kwaKeyLength(kwaId: number): number {
  switch (kwaId) {
    case KwaId.KW_5649_128:
      return 16;
    case KwaId.KW_5649_192:
      return 24;
    case KwaId.KW_5649_256:
      return 32;
    default:
      throw new RangeError(`key wrap algorithm ${kwaId} is not supported`);
  }
}

/** Encryption key octets for an ENCR transform: AES key, plus the 4-octet salt/nonce of GCM (RFC 4106 §8.1) and CTR (RFC 3686 §5.1). */
export function encrKeyLength(encrId: number, keyBits: number): number {
  if (keyBits !== 128 && keyBits !== 192 && keyBits !== 256) throw new RangeError(`AES key length ${keyBits}`);
  switch (encrId) {
    case EncrId.ENCR_AES_CBC:
      return keyBits / 8;
    case EncrId.ENCR_AES_CTR:
    case EncrId.ENCR_AES_GCM_8:
    case EncrId.ENCR_AES_GCM_12:
    case EncrId.ENCR_AES_GCM_16:
      return keyBits / 8 + 4;
    default:
      throw new RangeError(`encryption transform ${encrId} is not supported`);
  }
}

/** Integrity key octets (RFC 4868 §2.1.1 / RFC 2404): the HMAC key length. */
export function integKeyLength(integId: number | undefined): number {
  switch (integId ?? IntegId.NONE) {
    case IntegId.NONE:
      return 0;
    case IntegId.AUTH_HMAC_SHA1_96:
      return 20;
    case IntegId.AUTH_HMAC_SHA2_256_128:
      return 32;
    case IntegId.AUTH_HMAC_SHA2_384_192:
      return 48;
    case IntegId.AUTH_HMAC_SHA2_512_256:
      return 64;
    default:
      throw new RangeError(`integrity transform ${String(integId)} is not supported`);
  }
}

export interface SaKeyShape {
  encrId: number;
  keyBits: number;
  integId?: number;
}

/** Keying material size of a Data-Security SA (RFC 9838 §3.4). */
export function dataSaKeyLength(s: SaKeyShape): number {
  return encrKeyLength(s.encrId, s.keyBits) + integKeyLength(s.integId);
}

/** Keying material size of a Rekey SA: GSK_e | GSK_a | GSK_w (RFC 9838 §3.4). */
export function rekeySaKeyLength(s: SaKeyShape & { kwaId: number }): number {
  return dataSaKeyLength(s) + kwaKeyLength(s.kwaId);
}

/** Splits Rekey SA KEYMAT into GSK_e, GSK_a and GSK_w (RFC 9838 §3.4). */
export function splitRekeyKeys(s: SaKeyShape & { kwaId: number }, keymat: Uint8Array): { gskE: Uint8Array; gskA: Uint8Array; gskW: Uint8Array } {
  const e = encrKeyLength(s.encrId, s.keyBits);
  const a = integKeyLength(s.integId);
  const w = kwaKeyLength(s.kwaId);
  if (keymat.length !== e + a + w) throw new RangeError(`Rekey SA keying material of ${keymat.length} octets, expected ${e + a + w}`);
  return { gskE: keymat.slice(0, e), gskA: keymat.slice(e, e + a), gskW: keymat.slice(e + a) };
}

/** GSK_w of a unicast IKE SA: prf+(SK_d, "Key Wrap for G-IKEv2") (RFC 9838 §3.1.1). */
export function deriveGskW(prf: PrfAlgorithm, skD: Uint8Array, kwaId: number): Uint8Array {
  return prfPlus(prf, skD, new TextEncoder().encode(GIKE_GSK_W_LABEL), kwaKeyLength(kwaId));
}

/** Wraps `key` (Key ID `keyId`, 0 = SA keying material) under the KWK named `kwkId` (0 = GSK_w). */
export function wrapKey(kwk: Uint8Array, kwkId: number, keyId: number, key: Uint8Array): WrappedKey {
  return { keyId, kwkId, encryptedKey: new Uint8Array(aesKeyWrapPad(kwk, key)) };
}

/** Unwraps a Wrapped Key with the KWK it names; throws KeyWrapError INTEGRITY on the wrong key. */
export function unwrapKey(kwk: Uint8Array, w: WrappedKey): Uint8Array {
  return new Uint8Array(aesKeyUnwrapPad(kwk, w.encryptedKey));
}

export const SA_KEY_ID = GIKE_DEFAULT_KEY_ID;
