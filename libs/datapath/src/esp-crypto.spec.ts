import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createEspCipher } from '@app/datapath';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Lays out SPI | Seq | IV-space | plaintext(padded) | ICV-space and seals it. */
function sealed(kind: 'aes-gcm-16' | 'aes-cbc-hmac-sha256', esnHigh: number) {
  const gcm = kind === 'aes-gcm-16';
  const key = Uint8Array.from({ length: gcm ? 20 : 16 }, (_, i) => i + 1);
  const ikey = gcm ? undefined : Uint8Array.from({ length: 32 }, (_, i) => 100 + i);
  const sut = createEspCipher({ kind, keyBits: 128 }, key, ikey);
  const pt = Uint8Array.from({ length: 32 }, (_, i) => i * 3);
  const out = new Uint8Array(8 + sut.ivLength + pt.length + sut.icvLength);
  out.set([0, 0, 0x12, 0x34, 0, 0, 0, 7], 0);
  out.set(pt, 8 + sut.ivLength);
  sut.seal(out, 0, esnHigh < 0 ? 0x05000000 : 0x05000000 | esnHigh, 7, 8 + sut.ivLength, 8 + sut.ivLength + pt.length, esnHigh);
  return { sut, out, pt, key, ikey };
}

describe('ESP transforms', () => {
  it('AES-GCM (RFC 4106): nonce = salt || IV, AAD = SPI || Seq, or SPI || Seq high || Seq low with ESN', () => {
    for (const esnHigh of [-1, 3]) {
      const { sut, out, pt, key } = sealed('aes-gcm-16', esnHigh);
      const iv = out.subarray(8, 16);
      expect(hex(iv)).toBe(esnHigh < 0 ? '0500000000000007' : '0500000300000007');
      const aad = esnHigh < 0 ? out.subarray(0, 8) : Uint8Array.from([0, 0, 0x12, 0x34, 0, 0, 0, esnHigh, 0, 0, 0, 7]);
      const d = createDecipheriv('aes-128-gcm', key.subarray(0, 16), Buffer.concat([key.subarray(16), iv]), { authTagLength: 16 });
      d.setAAD(aad);
      d.setAuthTag(out.subarray(out.length - 16));
      expect(hex(Buffer.concat([d.update(out.subarray(16, 48)), d.final()]))).toBe(hex(pt));
      expect(hex(sut.open(out, 0, out.length, esnHigh)!)).toBe(hex(pt));
      expect(sut.open(out, 0, out.length, esnHigh < 0 ? 0 : esnHigh + 1)).toBeUndefined();
    }
  });

  it('AES-CBC + HMAC-SHA-256-128: counter-derived IV, ICV over SPI..ciphertext (|| Seq high with ESN, RFC 4303 §2.2.1)', () => {
    for (const esnHigh of [-1, 3]) {
      const { sut, out, pt, key, ikey } = sealed('aes-cbc-hmac-sha256', esnHigh);
      const iv = out.subarray(8, 24);
      // The IV is E_K(ivHigh || seq || 0^64) (NIST SP 800-38A App. C).
      const e = createCipheriv('aes-128-ecb', key, null);
      e.setAutoPadding(false);
      const block = Buffer.from(esnHigh < 0 ? '05000000000000070000000000000000' : '05000003000000070000000000000000', 'hex');
      expect(hex(iv)).toBe(hex(e.update(block)));
      const mac = createHmac('sha256', ikey!).update(out.subarray(0, 56));
      if (esnHigh >= 0) mac.update(Uint8Array.from([0, 0, 0, esnHigh]));
      expect(hex(out.subarray(56))).toBe(hex(mac.digest().subarray(0, 16)));
      const d = createDecipheriv('aes-128-cbc', key, iv);
      d.setAutoPadding(false);
      expect(hex(Buffer.concat([d.update(out.subarray(24, 56)), d.final()]))).toBe(hex(pt));
      expect(hex(sut.open(out, 0, out.length, esnHigh)!)).toBe(hex(pt));
      expect(sut.open(out, 0, out.length, esnHigh < 0 ? 0 : -1)).toBeUndefined();
    }
  });
});
