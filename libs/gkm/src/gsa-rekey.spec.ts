import { createDecipheriv, generateKeyPairSync, randomBytes, verify } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  GikeProtocol,
  IkePayload,
  TsType,
  getPayload,
  groupKeyBag,
  gsaAttributes,
  gsaTransforms,
  gwAttributes,
  payload,
  type GsaPayload,
  type KdPayload,
} from '@app/codec';
import { buildGsaRekey, openGsaRekey, SIG_ALG_RSA_SHA256, type GsaRekeyOptions } from '@app/gkm';

const rnd = (n: number) => new Uint8Array(randomBytes(n));
const gcks = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const rogue = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const spi = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
const gcm = { encrId: 20, keyBits: 256, integId: 0 };
const cbc = { encrId: 12, keyBits: 128, integId: 12 };
const gcmKek = { enc: rnd(36), integ: new Uint8Array(0) };
const cbcKek = { enc: rnd(16), integ: rnd(32) };

const gsa: GsaPayload = {
  policies: [
    {
      kind: 'sa',
      protocol: GikeProtocol.ESP,
      spi: Uint8Array.from([1, 2, 3, 4]),
      source: { tsType: TsType.TS_IPV4_ADDR_RANGE, ipProtocol: 0, startPort: 0, endPort: 0xffff, startAddress: Uint8Array.from([0, 0, 0, 0]), endAddress: Uint8Array.from([255, 255, 255, 255]) },
      destination: { tsType: TsType.TS_IPV4_ADDR_RANGE, ipProtocol: 17, startPort: 5000, endPort: 5000, startAddress: Uint8Array.from([239, 1, 1, 1]), endAddress: Uint8Array.from([239, 1, 1, 1]) },
      transforms: gsaTransforms({ encr: { id: 20, keyLength: 128 }, sn: 2 }),
      attributes: gsaAttributes({ keyLifetime: 3600, nextSpis: [] }),
    },
    { kind: 'gw', attributes: gwAttributes({ atd: 15, dtd: 30 }) },
  ],
};
const wrappedTek = { keyId: 0, kwkId: 0, encryptedKey: rnd(40) };
const kd: KdPayload = { keyBags: [groupKeyBag(GikeProtocol.ESP, Uint8Array.from([1, 2, 3, 4]), [wrappedTek])] };
const payloads = [payload(IkePayload.GSA, gsa), payload(IkePayload.KD, kd)];

function opts(over: Partial<GsaRekeyOptions> = {}): GsaRekeyOptions {
  return { rekeySpi: spi, messageId: 7, payloads, suite: gcm, kek: gcmKek, signingKey: gcks.privateKey, random: rnd, ...over };
}

describe('GSA_REKEY', () => {
  it.each([
    ['AES-GCM', gcm, gcmKek],
    ['AES-CBC + HMAC-SHA-256-128', cbc, cbcKek],
  ])('signed (ECDSA) and protected with the KEK (%s): a member opens it and gets GSA and KD', (_n, suite, kek) => {
    for (let i = 0; i < 8; i++) {
      const sut = buildGsaRekey(opts({ suite, kek, messageId: 7 + i }));
      const r = openGsaRekey(sut, { rekeySpi: spi, suite, kek, authKey: gcks.publicKey, minMessageId: 7 });
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      expect(r.messageId).toBe(7 + i);
      expect(r.skipped).toBe(i);
      expect(getPayload(r.payloads, IkePayload.GSA)).toEqual(gsa);
      expect(getPayload(r.payloads, IkePayload.KD)).toEqual(kd);
      expect(r.payloads.map((p: { type: number }) => p.type)).toEqual([IkePayload.GSA, IkePayload.KD]);
    }
  });

  it('signs exactly A | P of RFC 9838 §2.4.1.1 (checked by a from-the-text reconstruction)', () => {
    const sut = buildGsaRekey(opts());
    // Decrypt by hand (RFC 5282): SK header at 28, IV 8 octets, ICV 16, nonce = salt | IV, AAD = up to the IV.
    const bodyOffset = 28 + 4;
    const iv = sut.subarray(bodyOffset, bodyOffset + 8);
    const ct = sut.subarray(bodyOffset + 8, sut.length - 16);
    const d = createDecipheriv('aes-256-gcm', gcmKek.enc.subarray(0, 32), Buffer.concat([gcmKek.enc.subarray(32, 36), iv]));
    d.setAAD(sut.subarray(0, bodyOffset));
    d.setAuthTag(sut.subarray(sut.length - 16));
    const pt = Buffer.concat([d.update(ct), d.final()]);
    const inner = pt.subarray(0, pt.length - 1 - pt[pt.length - 1]!); // P: drop padding and Pad Length
    // The AUTH payload is the last inner payload: walk the chain from the SK header's Next Payload.
    let o = 0;
    let type = sut[28]!;
    while (type !== IkePayload.AUTH) {
      type = inner[o]!;
      o += inner.readUInt16BE(o + 2);
    }
    const authBody = o + 4;
    expect(inner[authBody]).toBe(14); // Digital Signature (RFC 7427)
    const algLen = inner[authBody + 4]!;
    const sigStart = authBody + 5 + algLen;
    const signature = Buffer.from(inner.subarray(sigStart));
    const p = Buffer.from(inner);
    p.fill(0, sigStart); // Authentication Data zeroed, ASN.1 Length and AlgorithmIdentifier kept
    const a = Buffer.from(sut.subarray(0, bodyOffset));
    a.writeUInt32BE(a.length + p.length, 24); // AdjustedLen
    a.writeUInt16BE(4 + p.length, 30); // AdjustedPldLen
    expect(verify('sha256', Buffer.concat([a, p]), gcks.publicKey, signature)).toBe(true);
  });

  it('works with an RSA rekey key', () => {
    const sut = buildGsaRekey(opts({ signingKey: rsa.privateKey }));
    expect(openGsaRekey(sut, { rekeySpi: spi, suite: gcm, kek: gcmKek, authKey: rsa.publicKey, minMessageId: 0 }).ok).toBe(true);
    const wrongAlg = openGsaRekey(sut, { rekeySpi: spi, suite: gcm, kek: gcmKek, authKey: gcks.publicKey, minMessageId: 0 });
    expect(!wrongAlg.ok && wrongAlg.reason).toBe('NO_AUTH');
    const declared = openGsaRekey(sut, { rekeySpi: spi, suite: gcm, kek: gcmKek, authKey: rsa.publicKey, signatureAlgorithm: SIG_ALG_RSA_SHA256, minMessageId: 0 });
    expect(declared.ok).toBe(true);
  });

  it('refuses a message signed by a key that is not the AUTH_KEY (forged by someone holding the KEK)', () => {
    const forged = buildGsaRekey(opts({ signingKey: rogue.privateKey }));
    const r = openGsaRekey(forged, { rekeySpi: spi, suite: gcm, kek: gcmKek, authKey: gcks.publicKey, minMessageId: 0 });
    expect(!r.ok && r.reason).toBe('BAD_SIGNATURE');
    const unsigned = buildGsaRekey(opts({ signingKey: undefined }));
    const u = openGsaRekey(unsigned, { rekeySpi: spi, suite: gcm, kek: gcmKek, authKey: gcks.publicKey, minMessageId: 0 });
    expect(!u.ok && u.reason).toBe('NO_AUTH');
    // Implicit authentication (no AUTH_KEY) accepts what the KEK authenticates.
    expect(openGsaRekey(unsigned, { rekeySpi: spi, suite: gcm, kek: gcmKek, minMessageId: 0 }).ok).toBe(true);
  });

  it('refuses replays, other SPIs, other KEKs and other exchanges', () => {
    const sut = buildGsaRekey(opts());
    const base = { rekeySpi: spi, suite: gcm, kek: gcmKek, authKey: gcks.publicKey };
    expect(openGsaRekey(sut, { ...base, minMessageId: 7 }).ok).toBe(true);
    const replay = openGsaRekey(sut, { ...base, minMessageId: 8 });
    expect(!replay.ok && replay.reason).toBe('REPLAY');
    const otherSpi = Uint8Array.from(spi);
    otherSpi[15] = 0;
    const w = openGsaRekey(sut, { ...base, rekeySpi: otherSpi, minMessageId: 0 });
    expect(!w.ok && w.reason).toBe('WRONG_SPI');
    const k = openGsaRekey(sut, { ...base, kek: { enc: rnd(36), integ: new Uint8Array(0) }, minMessageId: 0 });
    expect(!k.ok && k.reason).toBe('INTEGRITY');
    const other = Uint8Array.from(sut);
    other[18] = 40; // exchange type GSA_REGISTRATION
    const x = openGsaRekey(other, { ...base, minMessageId: 0 });
    expect(!x.ok && x.reason).toBe('NOT_REKEY');
  });

  it('a changed Message ID in the header (authenticated data) is refused', () => {
    const sut = buildGsaRekey(opts());
    const bumped = Uint8Array.from(sut);
    bumped[23] = bumped[23]! + 1;
    const r = openGsaRekey(bumped, { rekeySpi: spi, suite: gcm, kek: gcmKek, authKey: gcks.publicKey, minMessageId: 0 });
    expect(r.ok).toBe(false);
  });

  it('arbitrary and mutated input is refused with a reason, never thrown', () => {
    const sut = buildGsaRekey(opts());
    const base = { rekeySpi: spi, suite: gcm, kek: gcmKek, authKey: gcks.publicKey, minMessageId: 0 };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        expect(openGsaRekey(b, base).ok).toBe(false);
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.nat(sut.length - 1), fc.integer({ min: 1, max: 255 }), (pos, x) => {
        const m = Uint8Array.from(sut);
        m[pos] = m[pos]! ^ x;
        expect(openGsaRekey(m, base).ok).toBe(false);
      }),
      { numRuns: 500 },
    );
  });
});
