import { createCipheriv, createDecipheriv, createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import {
  AES_BLOCK_LENGTH,
  ESP_ALIGNMENT,
  ESP_HEADER_LENGTH,
  GCM_EXPLICIT_IV_LENGTH,
  GCM_ICV_LENGTH,
  GCM_NONCE_LENGTH,
  GCM_SALT_LENGTH,
  HMAC_SHA256_128_ICV_LENGTH,
  HMAC_SHA256_KEY_LENGTH,
} from '@app/codec';
import { DatapathConfigError } from './errors.js';
import { put32 } from './wire.js';
import type { EspTransform } from './types.js';

/**
 * One SA's ESP transform. Packet layout from `hdr`: SPI(4) | Seq(4) | IV | ciphertext | ICV
 * (RFC 4303 §2). The IV is never random per packet: it is `ivHigh || seq` (RFC 6054: the
 * sender ID sits in `ivHigh`'s most significant bits), so it is unique per sender and packet.
 */
export interface EspCipher {
  readonly ivLength: number;
  readonly icvLength: number;
  /** The cipher's block size for padding (RFC 4303 §2.4): 4 for GCM, 16 for CBC. */
  readonly blockLength: number;
  /**
   * Writes IV, ciphertext (over the plaintext already at out[ptStart, ptEnd)) and ICV. The ESP
   * header at out[hdr, hdr+8) must be written first (it is authenticated). The IV is
   * `ivHigh || seq` (two 32-bit words). `esnHigh` >= 0 is the ESN's high half, authenticated but
   * not sent (RFC 4303 §2.2.1, RFC 4106 §5); -1 without ESN.
   */
  seal(out: Uint8Array, hdr: number, ivHigh: number, seq: number, ptStart: number, ptEnd: number, esnHigh: number): void;
  /**
   * Verifies the ICV and decrypts buf[hdr, end). Returns the plaintext (payload, padding,
   * trailer) in a new buffer, or undefined if the ICV does not verify. The caller has checked
   * that the ciphertext length is positive and a multiple of `blockLength`.
   */
  open(buf: Uint8Array, hdr: number, end: number, esnHigh: number): Buffer | undefined;
}

const GCM_OPTIONS = { authTagLength: GCM_ICV_LENGTH } as const;

/** AES-GCM with a 16-octet ICV in ESP (RFC 4106): nonce = salt || explicit IV, AAD = SPI || Seq. */
class AesGcmCipher implements EspCipher {
  readonly ivLength = GCM_EXPLICIT_IV_LENGTH;
  readonly icvLength = GCM_ICV_LENGTH;
  readonly blockLength = ESP_ALIGNMENT;
  private readonly algorithm: 'aes-128-gcm' | 'aes-256-gcm';
  private readonly key: KeyObject;
  // Scratch reused across packets (createCipheriv copies nonce and AAD).
  private readonly nonce = Buffer.alloc(GCM_NONCE_LENGTH);
  private readonly aad = Buffer.alloc(ESP_HEADER_LENGTH);
  /** With ESN the AAD is SPI || Seq high || Seq low (RFC 4106 §5). */
  private readonly aadEsn = Buffer.alloc(ESP_HEADER_LENGTH + 4);

  constructor(keyBits: 128 | 256, keyAndSalt: Uint8Array) {
    const keyLength = keyBits / 8;
    if (keyAndSalt.length !== keyLength + GCM_SALT_LENGTH) {
      throw new DatapathConfigError('BAD_KEY', `AES-GCM-${keyBits} needs ${keyLength + GCM_SALT_LENGTH} bytes of key and salt`);
    }
    this.algorithm = keyBits === 128 ? 'aes-128-gcm' : 'aes-256-gcm';
    this.key = createSecretKey(Buffer.from(keyAndSalt.subarray(0, keyLength)));
    this.nonce.set(keyAndSalt.subarray(keyLength), 0);
  }

  private fillAad(buf: Uint8Array, hdr: number, esnHigh: number): Buffer {
    if (esnHigh < 0) {
      const aad = this.aad;
      for (let i = 0; i < ESP_HEADER_LENGTH; i++) aad[i] = buf[hdr + i]!;
      return aad;
    }
    const aad = this.aadEsn;
    for (let i = 0; i < 4; i++) aad[i] = buf[hdr + i]!;
    put32(aad, 4, esnHigh);
    for (let i = 4; i < ESP_HEADER_LENGTH; i++) aad[i + 4] = buf[hdr + i]!;
    return aad;
  }

  seal(out: Uint8Array, hdr: number, ivHigh: number, seq: number, ptStart: number, ptEnd: number, esnHigh: number): void {
    const ivAt = hdr + ESP_HEADER_LENGTH;
    put32(out, ivAt, ivHigh);
    put32(out, ivAt + 4, seq);
    const nonce = this.nonce;
    for (let i = 0; i < GCM_EXPLICIT_IV_LENGTH; i++) nonce[GCM_SALT_LENGTH + i] = out[ivAt + i]!;
    const aad = this.fillAad(out, hdr, esnHigh);
    const c = createCipheriv(this.algorithm, this.key, nonce, GCM_OPTIONS);
    c.setAAD(aad);
    out.set(c.update(out.subarray(ptStart, ptEnd)), ptStart);
    c.final();
    out.set(c.getAuthTag(), ptEnd);
  }

  open(buf: Uint8Array, hdr: number, end: number, esnHigh: number): Buffer | undefined {
    const ivAt = hdr + ESP_HEADER_LENGTH;
    const nonce = this.nonce;
    for (let i = 0; i < GCM_EXPLICIT_IV_LENGTH; i++) nonce[GCM_SALT_LENGTH + i] = buf[ivAt + i]!;
    const aad = this.fillAad(buf, hdr, esnHigh);
    const d = createDecipheriv(this.algorithm, this.key, nonce, GCM_OPTIONS);
    d.setAAD(aad);
    d.setAuthTag(buf.subarray(end - GCM_ICV_LENGTH, end));
    const pt = d.update(buf.subarray(ivAt + GCM_EXPLICIT_IV_LENGTH, end - GCM_ICV_LENGTH));
    try {
      d.final();
    } catch {
      return undefined;
    }
    return pt;
  }
}

/**
 * AES-CBC (RFC 3602) with HMAC-SHA-256-128 (RFC 4868), encrypt-then-MAC over SPI..ciphertext
 * (RFC 4303 §3.3.2). CBC needs an unpredictable IV (RFC 3602 §2.4); instead of randomBytes per
 * packet we encrypt the unique counter block `ivHigh || seq || 0^64` under the cipher key
 * (NIST SP 800-38A Appendix C's second method), which is unpredictable without the key.
 */
class AesCbcHmacCipher implements EspCipher {
  readonly ivLength = AES_BLOCK_LENGTH;
  readonly icvLength = HMAC_SHA256_128_ICV_LENGTH;
  readonly blockLength = AES_BLOCK_LENGTH;
  private readonly cbc: 'aes-128-cbc' | 'aes-256-cbc';
  private readonly ecb: 'aes-128-ecb' | 'aes-256-ecb';
  private readonly key: KeyObject;
  private readonly macKey: KeyObject;
  private readonly counter = Buffer.alloc(AES_BLOCK_LENGTH);
  private readonly high = Buffer.alloc(4);

  constructor(keyBits: 128 | 256, key: Uint8Array, integrityKey: Uint8Array | undefined) {
    if (key.length !== keyBits / 8) {
      throw new DatapathConfigError('BAD_KEY', `AES-CBC-${keyBits} needs a ${keyBits / 8}-byte key`);
    }
    if (!integrityKey || integrityKey.length !== HMAC_SHA256_KEY_LENGTH) {
      throw new DatapathConfigError('BAD_KEY', `HMAC-SHA-256-128 needs a ${HMAC_SHA256_KEY_LENGTH}-byte key`);
    }
    this.cbc = keyBits === 128 ? 'aes-128-cbc' : 'aes-256-cbc';
    this.ecb = keyBits === 128 ? 'aes-128-ecb' : 'aes-256-ecb';
    this.key = createSecretKey(Buffer.from(key));
    this.macKey = createSecretKey(Buffer.from(integrityKey));
  }

  /** HMAC over SPI..ciphertext, then the ESN high half when used (RFC 4303 §2.2.1, §3.3.2.1). */
  private mac(buf: Uint8Array, hdr: number, end: number, esnHigh: number): Buffer {
    const h = createHmac('sha256', this.macKey).update(buf.subarray(hdr, end));
    if (esnHigh >= 0) {
      put32(this.high, 0, esnHigh);
      h.update(this.high);
    }
    return h.digest();
  }

  seal(out: Uint8Array, hdr: number, ivHigh: number, seq: number, ptStart: number, ptEnd: number, esnHigh: number): void {
    put32(this.counter, 0, ivHigh);
    put32(this.counter, 4, seq);
    const e = createCipheriv(this.ecb, this.key, null);
    e.setAutoPadding(false);
    const iv = e.update(this.counter);
    out.set(iv, hdr + ESP_HEADER_LENGTH);
    const c = createCipheriv(this.cbc, this.key, iv);
    c.setAutoPadding(false);
    out.set(c.update(out.subarray(ptStart, ptEnd)), ptStart);
    c.final();
    const mac = this.mac(out, hdr, ptEnd, esnHigh);
    out.set(mac.subarray(0, HMAC_SHA256_128_ICV_LENGTH), ptEnd);
  }

  open(buf: Uint8Array, hdr: number, end: number, esnHigh: number): Buffer | undefined {
    const icvAt = end - HMAC_SHA256_128_ICV_LENGTH;
    const mac = this.mac(buf, hdr, icvAt, esnHigh);
    if (!timingSafeEqual(mac.subarray(0, HMAC_SHA256_128_ICV_LENGTH), buf.subarray(icvAt, end))) return undefined;
    const ivAt = hdr + ESP_HEADER_LENGTH;
    const d = createDecipheriv(this.cbc, this.key, buf.subarray(ivAt, ivAt + AES_BLOCK_LENGTH));
    d.setAutoPadding(false);
    const a = d.update(buf.subarray(ivAt + AES_BLOCK_LENGTH, icvAt));
    const b = d.final();
    return b.length === 0 ? a : Buffer.concat([a, b]);
  }
}

/** Builds the cipher for an SA's transform; throws DatapathConfigError on bad keys. */
export function createEspCipher(
  transform: EspTransform,
  encryptionKey: Uint8Array,
  integrityKey: Uint8Array | undefined,
): EspCipher {
  if (transform.keyBits !== 128 && transform.keyBits !== 256) {
    throw new DatapathConfigError('BAD_TRANSFORM', `key size ${String(transform.keyBits)}`);
  }
  switch (transform.kind) {
    case 'aes-gcm-16':
      if (integrityKey && integrityKey.length > 0) {
        throw new DatapathConfigError('BAD_KEY', 'AES-GCM is combined mode: no integrity key (RFC 4106 §6)');
      }
      return new AesGcmCipher(transform.keyBits, encryptionKey);
    case 'aes-cbc-hmac-sha256':
      return new AesCbcHmacCipher(transform.keyBits, encryptionKey, integrityKey);
    default:
      throw new DatapathConfigError('BAD_TRANSFORM', `transform ${String((transform as { kind: unknown }).kind)}`);
  }
}
