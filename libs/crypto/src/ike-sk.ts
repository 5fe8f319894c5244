/**
 * The Encrypted and Authenticated (SK) payload (RFC 7296 §3.14) with
 * - AES-GCM with 16-octet ICV (RFC 5282 §3, §5.1, §7.1): key = AES key | 4-octet salt,
 *   8-octet explicit IV, nonce = salt | IV, AAD = IKE header .. end of the SK payload header;
 * - AES-CBC (RFC 3602) with HMAC-SHA-256-128 (RFC 4868): 16-octet IV, ICV over the whole
 *   message up to the ICV.
 * Plaintext = inner payloads | padding | pad length (§3.14).
 */
import { createCipheriv, createDecipheriv, createHmac, timingSafeEqual } from 'node:crypto';
import {
  EncrId,
  IntegId,
  ikePayloadRegistry,
  layoutSkMessage,
  type IkeHeaderFields,
  type IkeMessage,
  type IkePayloadEntry,
  type IkePayloadRegistry,
  type SkPayload,
  IKE_HEADER_LENGTH,
  IKE_PAYLOAD_HEADER_LENGTH,
  IkePayload,
  CodecError,
} from '@app/codec';
import { CryptoError, type RandomBytes } from './errors.js';

/** The negotiated SK protection: cipher, key length, integrity (NONE for AEAD). */
export interface SkSuite {
  encrId: number;
  /** AES key length in bits (128, 192, 256). */
  keyBits: number;
  integId: number;
}

export interface SkKeyLengths {
  encKeyLength: number;
  integKeyLength: number;
}

const GCM_SALT = 4;
const GCM_IV = 8;
const GCM_ICV = 16;
const CBC_IV = 16;
const HMAC256_KEY = 32;
const HMAC256_ICV = 16;

export function isAead(s: SkSuite): boolean {
  return s.encrId === EncrId.ENCR_AES_GCM_16;
}

/** Key lengths §2.14 must produce for this suite. */
export function skKeyLengths(s: SkSuite): SkKeyLengths {
  if (![128, 192, 256].includes(s.keyBits)) throw new CryptoError('UNSUPPORTED', `AES key of ${s.keyBits} bits`);
  if (s.encrId === EncrId.ENCR_AES_GCM_16) {
    if (s.integId !== IntegId.NONE) throw new CryptoError('UNSUPPORTED', 'AEAD with an integrity transform');
    return { encKeyLength: s.keyBits / 8 + GCM_SALT, integKeyLength: 0 };
  }
  if (s.encrId === EncrId.ENCR_AES_CBC) {
    if (s.integId !== IntegId.AUTH_HMAC_SHA2_256_128) throw new CryptoError('UNSUPPORTED', `integrity ${s.integId}`);
    return { encKeyLength: s.keyBits / 8, integKeyLength: HMAC256_KEY };
  }
  throw new CryptoError('UNSUPPORTED', `encryption transform ${s.encrId}`);
}

/** The keys protecting one direction. */
export interface SkDirectionKeys {
  enc: Uint8Array;
  integ: Uint8Array;
}

function ivLength(s: SkSuite): number {
  return isAead(s) ? GCM_IV : CBC_IV;
}
function icvLength(s: SkSuite): number {
  return isAead(s) ? GCM_ICV : HMAC256_ICV;
}
function gcmAlgo(bits: number): 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm' {
  return `aes-${bits}-gcm` as 'aes-128-gcm';
}
function cbcAlgo(bits: number): string {
  return `aes-${bits}-cbc`;
}

/**
 * Encodes `inner` into an SK payload and returns the protected message bytes.
 * `outer` are unencrypted payloads placed before SK (normally none).
 */
export function protectIkeMessage(
  header: IkeHeaderFields,
  inner: readonly IkePayloadEntry[],
  suite: SkSuite,
  keys: SkDirectionKeys,
  random: RandomBytes,
  outer: readonly IkePayloadEntry[] = [],
  registry: IkePayloadRegistry = ikePayloadRegistry,
): Uint8Array {
  const innerLen = registry.chainLength(inner);
  const ivLen = ivLength(suite);
  const icvLen = icvLength(suite);
  const block = isAead(suite) ? 1 : 16;
  const padLen = (block - ((innerLen + 1) % block)) % block;
  const ptLen = innerLen + padLen + 1;
  const layout = layoutSkMessage(header, registry.firstType(inner), ivLen + ptLen + icvLen, outer, registry);
  const { buf, bodyOffset } = layout;
  const iv = random(ivLen);
  buf.set(iv, bodyOffset);
  const pt = new Uint8Array(ptLen);
  registry.encodeChain(inner, pt, 0);
  pt[ptLen - 1] = padLen;
  const ctOffset = bodyOffset + ivLen;
  if (isAead(suite)) {
    const keyLen = suite.keyBits / 8;
    const nonce = new Uint8Array(12);
    nonce.set(keys.enc.subarray(keyLen, keyLen + GCM_SALT), 0);
    nonce.set(iv, GCM_SALT);
    const c = createCipheriv(gcmAlgo(suite.keyBits), keys.enc.subarray(0, keyLen), nonce, { authTagLength: GCM_ICV });
    c.setAAD(buf.subarray(0, bodyOffset));
    const ct = c.update(pt);
    c.final();
    buf.set(ct, ctOffset);
    buf.set(c.getAuthTag(), ctOffset + ptLen);
  } else {
    const c = createCipheriv(cbcAlgo(suite.keyBits), keys.enc, iv);
    c.setAutoPadding(false);
    const ct = Buffer.concat([c.update(pt), c.final()]);
    buf.set(ct, ctOffset);
    const mac = createHmac('sha256', keys.integ).update(buf.subarray(0, ctOffset + ptLen)).digest();
    buf.set(mac.subarray(0, HMAC256_ICV), ctOffset + ptLen);
  }
  return buf;
}

/**
 * Verifies and decrypts the SK payload of a decoded message (`raw` are its exact bytes) and
 * returns the inner payloads. Throws CryptoError INTEGRITY/BAD_PADDING or CodecError.
 */
export function unprotectIkeMessage(
  raw: Uint8Array,
  msg: IkeMessage,
  suite: SkSuite,
  keys: SkDirectionKeys,
  registry: IkePayloadRegistry = ikePayloadRegistry,
): IkePayloadEntry[] {
  const last = msg.payloads[msg.payloads.length - 1];
  if (!last || last.type !== IkePayload.SK) throw new CodecError('BAD_VALUE', 'no SK payload', IKE_HEADER_LENGTH);
  const sk = last.body as SkPayload;
  const bodyOffset = raw.length - sk.data.length;
  if (bodyOffset < IKE_HEADER_LENGTH + IKE_PAYLOAD_HEADER_LENGTH) throw new CodecError('BAD_LENGTH', 'SK frame', 0);
  const ivLen = ivLength(suite);
  const icvLen = icvLength(suite);
  const ctLen = sk.data.length - ivLen - icvLen;
  if (ctLen < 1 || (!isAead(suite) && ctLen % 16 !== 0)) {
    throw new CodecError('BAD_LENGTH', `SK ciphertext of ${ctLen} octets`, bodyOffset);
  }
  const iv = sk.data.subarray(0, ivLen);
  const ct = sk.data.subarray(ivLen, ivLen + ctLen);
  const icv = sk.data.subarray(ivLen + ctLen);
  let pt: Uint8Array;
  if (isAead(suite)) {
    const keyLen = suite.keyBits / 8;
    const nonce = new Uint8Array(12);
    nonce.set(keys.enc.subarray(keyLen, keyLen + GCM_SALT), 0);
    nonce.set(iv, GCM_SALT);
    const d = createDecipheriv(gcmAlgo(suite.keyBits), keys.enc.subarray(0, keyLen), nonce, { authTagLength: GCM_ICV });
    d.setAAD(raw.subarray(0, bodyOffset));
    d.setAuthTag(icv);
    try {
      pt = new Uint8Array(Buffer.concat([d.update(ct), d.final()]));
    } catch {
      throw new CryptoError('INTEGRITY', 'SK payload AES-GCM tag');
    }
  } else {
    const mac = createHmac('sha256', keys.integ).update(raw.subarray(0, raw.length - icvLen)).digest();
    if (!timingSafeEqual(mac.subarray(0, HMAC256_ICV), icv)) throw new CryptoError('INTEGRITY', 'SK payload ICV');
    const d = createDecipheriv(cbcAlgo(suite.keyBits), keys.enc, iv);
    d.setAutoPadding(false);
    pt = new Uint8Array(Buffer.concat([d.update(ct), d.final()]));
  }
  const padLen = pt[pt.length - 1]!;
  if (padLen + 1 > pt.length) throw new CryptoError('BAD_PADDING', 'pad length beyond plaintext');
  return registry.decodeChain(sk.firstInner, pt, 0, pt.length - 1 - padLen, false);
}

