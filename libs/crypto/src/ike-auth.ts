/**
 * IKEv2 authentication (RFC 7296 §2.15): the signed octets, AUTH by pre-shared key, and by
 * signature — RFC 7427 Digital Signature (method 14) with ECDSA P-256 / RSA PKCS#1 v1.5 and
 * SHA-2, and RFC 4754 ECDSA-SHA256-P256 (method 9, raw r | s) accepted from peers.
 */
import { sign, timingSafeEqual, type KeyObject } from 'node:crypto';
import { AuthMethod, HashAlgorithm } from '@app/codec';
import { CryptoError } from './errors.js';
import { concat, prf, type PrfAlgorithm } from './ike-prf.js';
import { runSignatureCheck, type SignaturePlan } from './signature-check.js';
import { keyTypeOf, type KeyType } from './spki.js';

const KEY_PAD = new TextEncoder().encode('Key Pad for IKEv2');

/**
 * <SignedOctets> (§2.15): the sender's first message as sent, the peer's nonce, and
 * prf(SK_px, RestOfIDPayload) where RestOfIDPayload is the ID payload body (type, reserved, data).
 */
export function signedOctets(
  alg: PrfAlgorithm,
  realMessage: Uint8Array,
  peerNonce: Uint8Array,
  skp: Uint8Array,
  idBody: Uint8Array,
): Uint8Array {
  return concat(realMessage, peerNonce, prf(alg, skp, idBody));
}

/** AUTH data for the Shared Key Message Integrity Code (method 2): prf(prf(PSK, "Key Pad for IKEv2"), octets). */
export function pskAuth(alg: PrfAlgorithm, psk: Uint8Array, octets: Uint8Array): Uint8Array {
  return prf(alg, prf(alg, psk, KEY_PAD), octets);
}

export function verifyPskAuth(alg: PrfAlgorithm, psk: Uint8Array, octets: Uint8Array, authData: Uint8Array): boolean {
  const expect = pskAuth(alg, psk, octets);
  return expect.length === authData.length && timingSafeEqual(expect, authData);
}

type Hash = 'sha256' | 'sha384' | 'sha512';
interface SigScheme {
  key: 'ec' | 'rsa';
  hash: Hash;
  /** DER AlgorithmIdentifier (RFC 7427 Appendix A). */
  algId: Uint8Array;
}

const hex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
/** AlgorithmIdentifiers as listed in RFC 7427 Appendix A (ecdsa-with-SHA*, sha*WithRSAEncryption). */
const SCHEMES: SigScheme[] = [
  { key: 'ec', hash: 'sha256', algId: hex('300a06082a8648ce3d040302') },
  { key: 'ec', hash: 'sha384', algId: hex('300a06082a8648ce3d040303') },
  { key: 'ec', hash: 'sha512', algId: hex('300a06082a8648ce3d040304') },
  { key: 'rsa', hash: 'sha256', algId: hex('300d06092a864886f70d01010b0500') },
  { key: 'rsa', hash: 'sha384', algId: hex('300d06092a864886f70d01010c0500') },
  { key: 'rsa', hash: 'sha512', algId: hex('300d06092a864886f70d01010d0500') },
];

const HASH_IDS: Record<Hash, number> = {
  sha256: HashAlgorithm.SHA2_256,
  sha384: HashAlgorithm.SHA2_384,
  sha512: HashAlgorithm.SHA2_512,
};

/** The hash algorithms we announce in SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4). */
export const SUPPORTED_SIGNATURE_HASHES: readonly number[] = [
  HashAlgorithm.SHA2_256,
  HashAlgorithm.SHA2_384,
  HashAlgorithm.SHA2_512,
];

/** A signature AUTH payload body: method 14, SHA-256 (present in every peer's list we accept). */
export function signatureAuth(
  privateKey: KeyObject,
  octets: Uint8Array,
  peerHashes: readonly number[] = [HashAlgorithm.SHA2_256],
): { method: number; data: Uint8Array } {
  const kt = privateKey.asymmetricKeyType;
  if (kt !== 'ec' && kt !== 'rsa') throw new CryptoError('UNSUPPORTED', `signing key type ${kt}`);
  const scheme = SCHEMES.find((s) => s.key === kt && peerHashes.includes(HASH_IDS[s.hash]));
  if (!scheme) throw new CryptoError('UNSUPPORTED', 'no common signature hash algorithm');
  const sig = new Uint8Array(sign(scheme.hash, octets, { key: privateKey, dsaEncoding: 'der' }));
  return { method: AuthMethod.DIGITAL_SIGNATURE, data: concat(Uint8Array.of(scheme.algId.length), scheme.algId, sig) };
}

/**
 * A signature AUTH for a peer that did not send SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4 allows
 * method 14 only then): RFC 4754 method 9 (raw r | s, SHA-256) for P-256 keys, RFC 7296 method 1
 * (PKCS#1 v1.5 with SHA-1) for RSA keys.
 */
export function classicSignatureAuth(privateKey: KeyObject, octets: Uint8Array): { method: number; data: Uint8Array } {
  if (privateKey.asymmetricKeyType === 'ec' && privateKey.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
    return { method: AuthMethod.ECDSA_SHA256_P256, data: new Uint8Array(sign('sha256', octets, { key: privateKey, dsaEncoding: 'ieee-p1363' })) };
  }
  if (privateKey.asymmetricKeyType === 'rsa') {
    return { method: AuthMethod.RSA_SIG, data: new Uint8Array(sign('sha1', octets, privateKey)) };
  }
  throw new CryptoError('UNSUPPORTED', 'no classic AUTH method for this key');
}

/**
 * Verifies a signature AUTH (method 14, or 9 / 1 from older peers) over `octets` with the peer's
 * public key. Returns false on a bad signature; throws CryptoError UNSUPPORTED for methods or
 * algorithms we do not take and BAD_SIGNATURE for malformed AUTH data.
 */
export function verifySignatureAuth(publicKey: KeyObject, method: number, data: Uint8Array, octets: Uint8Array): boolean {
  const plan = signatureAuthPlan(keyTypeOf(publicKey), method, data, octets);
  return plan !== false && runSignatureCheck(plan, publicKey);
}

/**
 * `verifySignatureAuth` as a plan, for a key known by its type (run it with `runSignatureCheck`
 * or a `SignatureVerifier`): false when the key cannot have made this AUTH; throws as
 * `verifySignatureAuth` does.
 */
export function signatureAuthPlan(key: KeyType, method: number, data: Uint8Array, octets: Uint8Array): SignaturePlan | false {
  const kt = key.type;
  if (method === AuthMethod.DIGITAL_SIGNATURE) {
    if (data.length < 1) throw new CryptoError('BAD_SIGNATURE', 'empty AUTH data');
    const n = data[0]!;
    if (data.length < 1 + n) throw new CryptoError('BAD_SIGNATURE', 'AlgorithmIdentifier beyond AUTH data');
    const algId = data.subarray(1, 1 + n);
    const scheme = SCHEMES.find((s) => Buffer.compare(Buffer.from(s.algId), Buffer.from(algId)) === 0);
    if (!scheme) throw new CryptoError('UNSUPPORTED', 'signature AlgorithmIdentifier');
    if (scheme.key !== kt) return false;
    return { algorithm: scheme.hash, data: octets, signature: data.subarray(1 + n), dsaEncoding: 'der' };
  }
  if (method === AuthMethod.ECDSA_SHA256_P256) {
    if (kt !== 'ec' || key.curve !== 'prime256v1' || data.length !== 64) return false;
    return { algorithm: 'sha256', data: octets, signature: data, dsaEncoding: 'ieee-p1363' };
  }
  if (method === AuthMethod.RSA_SIG) {
    // RFC 7296 §3.8 method 1 is PKCS#1 v1.5 with SHA-1 (RFC 7427 §1); accepted only for interop.
    if (kt !== 'rsa') return false;
    return { algorithm: 'sha1', data: octets, signature: data };
  }
  throw new CryptoError('UNSUPPORTED', `AUTH method ${method}`);
}
