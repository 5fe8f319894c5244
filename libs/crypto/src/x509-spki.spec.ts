import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CryptoError } from './errors.js';
import { publicKeyFromSpki } from './spki.js';

const spkiOf = (k: { export(o: { type: 'spki'; format: 'der' }): Buffer }) => new Uint8Array(k.export({ type: 'spki', format: 'der' }));

describe('publicKeyFromSpki', () => {
  it('imports P-256 keys (JWK path) to the same key', () => {
    for (let i = 0; i < 20; i++) {
      const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const der = spkiOf(publicKey);
      const sut = publicKeyFromSpki(der);
      expect(sut.asymmetricKeyType).toBe('ec');
      expect(sut.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
      expect(Buffer.from(spkiOf(sut))).toEqual(Buffer.from(der));
    }
  });

  it('imports other keys through DER (P-384, RSA, Ed25519)', () => {
    for (const kp of [
      generateKeyPairSync('ec', { namedCurve: 'P-384' }),
      generateKeyPairSync('rsa', { modulusLength: 1024 }),
      generateKeyPairSync('ed25519'),
    ]) {
      const der = spkiOf(kp.publicKey);
      expect(Buffer.from(spkiOf(publicKeyFromSpki(der)))).toEqual(Buffer.from(der));
    }
  });

  it('refuses a P-256 point off the curve, truncated input and garbage with BAD_KEY', () => {
    const der = spkiOf(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
    const off = der.slice();
    off[off.length - 1]! ^= 1; // y changed: not on the curve
    for (const bad of [off, der.subarray(0, der.length - 1), Uint8Array.of(0x30, 0x00), new Uint8Array(91)]) {
      let err: unknown;
      try {
        publicKeyFromSpki(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(CryptoError);
      expect((err as CryptoError).code).toBe('BAD_KEY');
    }
  });
});
