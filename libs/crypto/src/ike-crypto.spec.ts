import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  AuthMethod,
  EncrId,
  IdType,
  IkeExchange,
  IkePayload,
  IntegId,
  KeGroup,
  PrfId,
  ikeMessage,
  payload,
  type IkeHeaderFields,
} from '@app/codec';
import {
  CryptoError,
  certReqHash,
  createKeyExchange,
  deriveIkeSaKeys,
  identityMatchesCertificate,
  issueCertificate,
  parseCertificate,
  prf,
  prfAlgorithm,
  prfPlus,
  protectIkeMessage,
  pskAuth,
  signatureAuth,
  skKeyLengths,
  skeyseed,
  unprotectIkeMessage,
  validateChain,
  verifyPskAuth,
  verifySignatureAuth,
  pendingIssuerChecks,
  runSignatureCheck,
} from '@app/crypto';
import { makePki } from '../../../test/support/ike-fixtures.js';

const hex = (h: string) => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const rnd = (n: number) => new Uint8Array(randomBytes(n));
const sha256 = prfAlgorithm(PrfId.PRF_HMAC_SHA2_256);

describe('prf and prf+ (RFC 7296 §2.13)', () => {
  it('PRF_HMAC_SHA2_256 is HMAC-SHA-256 (RFC 4231 test case 2)', () => {
    const sut = prf(sha256, new TextEncoder().encode('Jefe'), new TextEncoder().encode('what do ya want for nothing?'));
    expect(toHex(sut)).toBe('5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  });

  it('PRF_HMAC_SHA2_384/512 are HMAC-SHA-384/512 (RFC 4231 test case 2)', () => {
    const k = new TextEncoder().encode('Jefe');
    const d = new TextEncoder().encode('what do ya want for nothing?');
    expect(toHex(prf(prfAlgorithm(PrfId.PRF_HMAC_SHA2_384), k, d))).toBe(
      'af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649',
    );
    expect(toHex(prf(prfAlgorithm(PrfId.PRF_HMAC_SHA2_512), k, d))).toBe(
      '164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737',
    );
    expect(() => prfAlgorithm(99)).toThrow(CryptoError);
  });

  it('prf+ is T1 | T2 | ... with Tn = prf(K, Tn-1 | S | n), checked against a direct HMAC chain', () => {
    const k = hex('0b'.repeat(20));
    const s = hex('0102030405');
    const t1 = createHmac('sha256', k).update(Buffer.concat([s, Buffer.of(1)])).digest();
    const t2 = createHmac('sha256', k).update(Buffer.concat([t1, s, Buffer.of(2)])).digest();
    const sut = prfPlus(sha256, k, s, 40);
    expect(toHex(sut)).toBe(toHex(Buffer.concat([t1, t2]).subarray(0, 40)));
    expect(() => prfPlus(sha256, k, s, 256 * 32)).toThrow(CryptoError);
  });

  it('derives SK_* with the lengths of the suite, in order', () => {
    const lens = skKeyLengths({ encrId: EncrId.ENCR_AES_GCM_16, keyBits: 256, integId: IntegId.NONE });
    expect(lens).toEqual({ encKeyLength: 36, integKeyLength: 0 });
    const seed = skeyseed(sha256, hex('11'.repeat(32)), hex('22'.repeat(32)), hex('33'.repeat(32)));
    const p = { ni: hex('11'.repeat(32)), nr: hex('22'.repeat(32)), spiI: hex('01'.repeat(8)), spiR: hex('02'.repeat(8)), ...lens };
    const sut = deriveIkeSaKeys(sha256, seed, p);
    const all = prfPlus(sha256, seed, Buffer.concat([p.ni, p.nr, p.spiI, p.spiR]), 32 * 3 + 36 * 2);
    expect(toHex(sut.skd)).toBe(toHex(all.subarray(0, 32)));
    expect(sut.skai.length).toBe(0);
    expect(toHex(sut.sker)).toBe(toHex(all.subarray(68, 104)));
    expect(toHex(sut.skpr)).toBe(toHex(all.subarray(136, 168)));
  });
});

describe('key exchange', () => {
  it('Curve25519 matches RFC 7748 §6.1', () => {
    const a = createKeyExchange(KeGroup.CURVE25519, rnd, hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'));
    const b = createKeyExchange(KeGroup.CURVE25519, rnd, hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb'));
    expect(toHex(a.publicValue)).toBe('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
    expect(toHex(b.publicValue)).toBe('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    expect(toHex(a.computeSecret(b.publicValue))).toBe('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');
    expect(() => a.computeSecret(new Uint8Array(32))).toThrow(CryptoError); // all-zero result
    expect(() => a.computeSecret(new Uint8Array(31))).toThrow(CryptoError);
  });

  it('ECP-256 matches RFC 5903 §8.1', () => {
    const i = createKeyExchange(KeGroup.ECP_256, rnd, hex('C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433'));
    expect(toHex(i.publicValue).toUpperCase()).toBe(
      'DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180' +
        '5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3',
    );
    const gr = hex(
      'D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63' +
        '56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB',
    );
    expect(toHex(i.computeSecret(gr)).toUpperCase()).toBe('D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE');
    const offCurve = gr.slice();
    offCurve[63] ^= 1;
    expect(() => i.computeSecret(offCurve)).toThrow(CryptoError);
  });
});

describe('SK payload', () => {
  const header: IkeHeaderFields = {
    spiI: hex('0102030405060708'),
    spiR: hex('1112131415161718'),
    majorVersion: 2,
    minorVersion: 0,
    exchangeType: IkeExchange.IKE_AUTH,
    flags: 0x08,
    messageId: 1,
  };
  const inner = [
    payload(IkePayload.IDi, { idType: IdType.ID_FQDN, data: new TextEncoder().encode('a.example') }),
    payload(IkePayload.AUTH, { method: AuthMethod.PSK, data: hex('aa'.repeat(32)) }),
  ];
  for (const suite of [
    { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 256, integId: IntegId.NONE },
    { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 128, integId: IntegId.NONE },
    { encrId: EncrId.ENCR_AES_CBC, keyBits: 256, integId: IntegId.AUTH_HMAC_SHA2_256_128 },
  ]) {
    it(`round-trips and detects tampering with encr ${suite.encrId}/${suite.keyBits}`, () => {
      const l = skKeyLengths(suite);
      const keys = { enc: rnd(l.encKeyLength), integ: rnd(l.integKeyLength) };
      const wire = protectIkeMessage(header, inner, suite, keys, rnd);
      const msg = ikeMessage.decode(wire);
      expect(msg.payloads.map((p) => p.type)).toEqual([IkePayload.SK]);
      const sut = unprotectIkeMessage(wire, msg, suite, keys);
      expect(sut.map((p) => p.type)).toEqual([IkePayload.IDi, IkePayload.AUTH]);
      expect((sut[0]!.body as { data: Uint8Array }).data).toEqual(new TextEncoder().encode('a.example'));
      for (const at of [5, 20, wire.length - 20, wire.length - 1]) {
        const bad = wire.slice();
        bad[at] ^= 0x40;
        let threw = false;
        try {
          unprotectIkeMessage(bad, ikeMessage.decode(bad), suite, keys);
        } catch {
          threw = true;
        }
        expect(threw).toBe(true);
      }
    });
  }
});

describe('AUTH', () => {
  it('PSK AUTH is prf(prf(secret, "Key Pad for IKEv2"), octets)', () => {
    const octets = rnd(100);
    const psk = new TextEncoder().encode('secret');
    const pad = createHmac('sha256', psk).update('Key Pad for IKEv2').digest();
    const expected = createHmac('sha256', pad).update(octets).digest();
    expect(toHex(pskAuth(sha256, psk, octets))).toBe(toHex(expected));
    expect(verifyPskAuth(sha256, psk, octets, expected)).toBe(true);
    expect(verifyPskAuth(sha256, new TextEncoder().encode('other'), octets, expected)).toBe(false);
  });

  for (const kind of ['ec', 'rsa'] as const) {
    it(`RFC 7427 signature AUTH with ${kind} verifies and fails on other octets`, () => {
      const kp = kind === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
      const octets = rnd(64);
      const a = signatureAuth(kp.privateKey, octets);
      expect(a.method).toBe(AuthMethod.DIGITAL_SIGNATURE);
      expect(verifySignatureAuth(kp.publicKey, a.method, a.data, octets)).toBe(true);
      expect(verifySignatureAuth(kp.publicKey, a.method, a.data, rnd(64))).toBe(false);
      expect(() => verifySignatureAuth(kp.publicKey, a.method, Uint8Array.of(5, 1), octets)).toThrow(CryptoError);
    });
  }

  it('accepts RFC 4754 method 9 (raw r|s) for ECDSA P-256', async () => {
    const { sign } = await import('node:crypto');
    const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const octets = rnd(64);
    const sig = new Uint8Array(sign('sha256', octets, { key: kp.privateKey, dsaEncoding: 'ieee-p1363' }));
    expect(verifySignatureAuth(kp.publicKey, AuthMethod.ECDSA_SHA256_P256, sig, octets)).toBe(true);
    sig[10] ^= 1;
    expect(verifySignatureAuth(kp.publicKey, AuthMethod.ECDSA_SHA256_P256, sig, octets)).toBe(false);
  });
});

describe('X.509', () => {
  const now = new Date('2026-06-01T00:00:00Z');
  const day = 86_400_000;

  it('issues a chain CA -> intermediate -> member that validates to the anchor only', () => {
    const root = makePki(now, 'root');
    const other = makePki(now, 'other');
    const ikp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const inter = parseCertificate(
      issueCertificate({
        subject: { cn: 'intermediate' },
        publicKey: ikp.publicKey,
        issuerKey: root.caKey,
        issuer: root.ca,
        serial: rnd(8),
        notBefore: new Date(now.getTime() - day),
        notAfter: new Date(now.getTime() + day),
        ca: true,
      }),
    );
    const mkp = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const leaf = parseCertificate(
      issueCertificate({
        subject: { cn: 'member1.example' },
        publicKey: mkp.publicKey,
        issuerKey: ikp.privateKey,
        issuer: inter,
        serial: rnd(8),
        notBefore: new Date(now.getTime() - day),
        notAfter: new Date(now.getTime() + day),
        ca: false,
        dns: ['member1.example'],
        emails: ['m1@example.org'],
        ips: [Uint8Array.of(192, 0, 2, 7)],
      }),
    );
    expect(validateChain(leaf, [inter], [root.ca], now).length).toBe(3);
    expect(() => validateChain(leaf, [inter], [other.ca], now)).toThrow(/no chain/);
    expect(() => validateChain(leaf, [], [root.ca], now)).toThrow(/no chain/);
    expect(() => validateChain(leaf, [inter], [root.ca], new Date(now.getTime() + 2 * day))).toThrow(/validity/);
    // The leaf is not a CA: nothing it signs can chain through it.
    expect(() => validateChain(inter, [leaf], [other.ca], now)).toThrow(CryptoError);

    const enc = new TextEncoder();
    expect(identityMatchesCertificate({ idType: IdType.ID_FQDN, data: enc.encode('member1.example') }, leaf)).toBe(true);
    expect(identityMatchesCertificate({ idType: IdType.ID_FQDN, data: enc.encode('member2.example') }, leaf)).toBe(false);
    expect(identityMatchesCertificate({ idType: IdType.ID_RFC822_ADDR, data: enc.encode('m1@example.org') }, leaf)).toBe(true);
    expect(identityMatchesCertificate({ idType: IdType.ID_IPV4_ADDR, data: Uint8Array.of(192, 0, 2, 7) }, leaf)).toBe(true);
    expect(identityMatchesCertificate({ idType: IdType.ID_IPV4_ADDR, data: Uint8Array.of(192, 0, 2, 8) }, leaf)).toBe(false);
    expect(identityMatchesCertificate({ idType: IdType.ID_KEY_ID, data: enc.encode('member1.example') }, leaf)).toBe(false);
    expect(identityMatchesCertificate({ idType: IdType.ID_DER_ASN1_DN, data: leaf.subjectDer }, leaf)).toBe(true);
    expect(identityMatchesCertificate({ idType: IdType.ID_DER_ASN1_DN, data: inter.subjectDer }, leaf)).toBe(false);
    expect(certReqHash(root.ca).length).toBe(20);
    expect(leaf.x509.subject).toContain('CN=member1.example');
    expect(() => parseCertificate(rnd(50))).toThrow(CryptoError);
    // Parsing is cached by content: same object back, and verdicts stay per issuer.
    expect(parseCertificate(leaf.der.slice())).toBe(leaf);
    expect(validateChain(parseCertificate(leaf.der.slice()), [inter], [root.ca], now).length).toBe(3);
    expect(() => validateChain(leaf, [inter], [other.ca], now)).toThrow(/no chain/);
    const forged = leaf.der.slice();
    forged[forged.length - 5] ^= 1; // signature bits: a different certificate that must not verify
    expect(() => validateChain(parseCertificate(forged), [inter], [root.ca], now)).toThrow(/no chain/);
  });

  it('plans a chain\'s signatures for another runner (pendingIssuerChecks); validateChain then uses the recorded verdicts', () => {
    const pki = makePki(now);
    const other = makePki(now, 'other');
    const leaf = parseCertificate(pki.member('member1.example').der);
    // The other CA has another Name: nothing to check against it.
    const pending = pendingIssuerChecks(leaf, [], [other.ca, pki.ca]);
    expect(pending).toHaveLength(1);
    expect(Buffer.from(pending[0]!.check.spki)).toEqual(Buffer.from(pki.ca.spki));
    expect(runSignatureCheck(pending[0]!.check, pki.ca.publicKey)).toBe(true);
    // The runner's verdict is the one used, even against the signature: validateChain checks nothing itself.
    pending[0]!.record(false);
    expect(() => validateChain(leaf, [], [pki.ca], now)).toThrow(/no chain/);
    expect(pendingIssuerChecks(leaf, [], [pki.ca])).toHaveLength(0);
    const leaf2 = parseCertificate(pki.member('member2.example').der);
    const p2 = pendingIssuerChecks(leaf2, [], [pki.ca]);
    expect(p2).toHaveLength(1);
    p2[0]!.record(true);
    expect(validateChain(leaf2, [], [pki.ca], now)).toHaveLength(2);
  });
});
