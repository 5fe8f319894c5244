import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  encodePolicyToken,
  identityMatches,
  isAuthorizedGcks,
  mayAct,
  ownerKeyIdOf,
  signPolicyToken,
  verifyPolicyToken,
  type PolicyTokenContent,
} from '@app/crypto';

const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const ec2 = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const NOW = new Date('2026-11-22T12:00:00Z');

function content(owner: KeyObject, over: Partial<PolicyTokenContent> = {}): PolicyTokenContent {
  return {
    groupName: 'video-239.1.1.1',
    edition: 3,
    notBefore: new Date('2026-11-01T00:00:00Z'),
    notAfter: new Date('2026-12-01T00:00:00Z'),
    ownerKeyId: ownerKeyIdOf(owner),
    gcks: [{ idType: 2, pattern: 'gcks.example.org' }],
    members: [
      { identity: { idType: 2, pattern: '*.speakers.example.org' }, maySpeak: true, mayReceive: true },
      { identity: { idType: 3, pattern: '*@example.org' }, maySpeak: false, mayReceive: true },
      { identity: { idType: 11, pattern: 'Probe-7' }, maySpeak: false, mayReceive: true },
    ],
    groupPolicy: { rekeyAddress: '239.0.0.1', rekeyPort: 848, atd: 15, dtd: 30, kekLifetime: 3600, rekeyAuth: 2 },
    dataPolicy: [
      {
        name: 'video',
        source: '*',
        destination: '239.1.1.1',
        ipProtocol: 17,
        port: 5000,
        direction: 3,
        addressPreservation: 4,
        encrId: 20,
        integId: 0,
        keyLifetime: 3600,
        mode: 1,
        keyBits: 256,
      },
    ],
    ...over,
  };
}

const tmp = mkdtempSync(join(tmpdir(), `gspt-${process.pid}-`));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('policy token', () => {
  it('signed with ECDSA P-256 verifies against the owner key, its PEM, and round-trips every field', () => {
    const c = content(ec.publicKey);
    const sut = signPolicyToken(c, ec.privateKey);
    const r = verifyPolicyToken(sut, ec.publicKey, NOW);
    expect(r).toEqual({ ok: true, token: c });
    const pem = ec.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    expect(verifyPolicyToken(sut, pem, NOW).ok).toBe(true);
  });

  it('signed with RSA verifies too', () => {
    const sut = signPolicyToken(content(rsa.publicKey), rsa.privateKey);
    expect(verifyPolicyToken(sut, rsa.publicKey, NOW).ok).toBe(true);
  });

  it('is DER that openssl parses, and openssl verifies the Group Owner signature over the TBS', () => {
    const sut = signPolicyToken(content(ec.publicKey), ec.privateKey);
    const tbs = encodePolicyToken(content(ec.publicKey));
    writeFileSync(join(tmp, 'token.der'), sut);
    writeFileSync(join(tmp, 'tbs.der'), tbs);
    writeFileSync(join(tmp, 'owner.pem'), ec.publicKey.export({ type: 'spki', format: 'pem' }));
    const parsed = execFileSync('openssl', ['asn1parse', '-inform', 'DER', '-in', join(tmp, 'token.der')], { encoding: 'utf8' });
    expect(parsed).toContain('ecdsa-with-SHA256');
    expect(parsed).toContain(':video-239.1.1.1');
    // The signature is the last BIT STRING; strip its unused-bits octet and hand it to openssl.
    const sigStart = findLastBitString(sut);
    writeFileSync(join(tmp, 'sig.der'), sut.subarray(sigStart));
    const out = execFileSync(
      'openssl',
      ['dgst', '-sha256', '-verify', join(tmp, 'owner.pem'), '-signature', join(tmp, 'sig.der'), join(tmp, 'tbs.der')],
      { encoding: 'utf8' },
    );
    expect(out.trim()).toBe('Verified OK');
  });

  it('refuses a tampered byte anywhere', () => {
    const sut = signPolicyToken(content(ec.publicKey), ec.privateKey);
    for (let i = 0; i < sut.length; i++) {
      const bad = Uint8Array.from(sut);
      bad[i] = bad[i]! ^ 0x01;
      const r = verifyPolicyToken(bad, ec.publicKey, NOW);
      expect(r.ok, `byte ${i}`).toBe(false);
    }
  });

  it('refuses a wrong anchor with WRONG_ANCHOR, and a forged ownerKeyId with BAD_SIGNATURE', () => {
    const sut = signPolicyToken(content(ec.publicKey), ec.privateKey);
    const r = verifyPolicyToken(sut, ec2.publicKey, NOW);
    expect(!r.ok && r.error.code).toBe('WRONG_ANCHOR');
    const rsaAnchor = verifyPolicyToken(sut, rsa.publicKey, NOW);
    expect(!rsaAnchor.ok && rsaAnchor.error.code).toBe('UNSUPPORTED_ALGORITHM');
    // Attacker signs with its own key but claims the real owner's key id.
    const forgedContent = content(ec.publicKey);
    const tbs = encodePolicyToken(forgedContent);
    const genuine = signPolicyToken(content(ec2.publicKey), ec2.privateKey);
    const forged = spliceTbs(genuine, tbs);
    const f = verifyPolicyToken(forged, ec.publicKey, NOW);
    expect(!f.ok && f.error.code).toBe('BAD_SIGNATURE');
  });

  it('refuses expired and not-yet-valid tokens', () => {
    const sut = signPolicyToken(content(ec.publicKey), ec.privateKey);
    const late = verifyPolicyToken(sut, ec.publicKey, new Date('2026-12-01T00:00:01Z'));
    expect(!late.ok && late.error.code).toBe('EXPIRED');
    const early = verifyPolicyToken(sut, ec.publicKey, new Date('2026-10-31T23:59:59Z'));
    expect(!early.ok && early.error.code).toBe('NOT_YET_VALID');
  });

  it('refuses every truncation and trailing bytes as MALFORMED', () => {
    const sut = signPolicyToken(content(ec.publicKey), ec.privateKey);
    for (let n = 0; n < sut.length; n++) {
      const r = verifyPolicyToken(sut.subarray(0, n), ec.publicKey, NOW);
      expect(!r.ok && r.error.code, `prefix ${n}`).toBe('MALFORMED');
    }
    const trailing = new Uint8Array(sut.length + 1);
    trailing.set(sut);
    const t = verifyPolicyToken(trailing, ec.publicKey, NOW);
    expect(!t.ok && t.error.code).toBe('MALFORMED');
  });

  it('refuses a token of definition version 1 (data policies without mode and key length) as MALFORMED', () => {
    const genuine = signPolicyToken(content(ec.publicKey), ec.privateKey);
    const tbs = Uint8Array.from(encodePolicyToken(content(ec.publicKey)));
    // TBSPolicyToken { TokenID { INTEGER tokenDefVersion, ... } }: the version's one content octet.
    const tokenId = headerLength(tbs, 0);
    const version = tokenId + headerLength(tbs, tokenId);
    expect([...tbs.subarray(version, version + 3)]).toEqual([0x02, 0x01, 0x02]);
    tbs[version + 2] = 1;
    const r = verifyPolicyToken(spliceTbs(genuine, tbs), ec.publicKey, NOW);
    expect(!r.ok && r.error.message).toBe('MALFORMED: unknown tokenDefVersion');
  });

  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (b) => {
        const r = verifyPolicyToken(b, ec.publicKey, NOW);
        expect(r.ok).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses to sign for a key the token does not name', () => {
    expect(() => signPolicyToken(content(ec2.publicKey), ec.privateKey)).toThrow(/WRONG_ANCHOR/);
  });
});

describe('authorization checks', () => {
  const token = content(ec.publicKey);
  it('isAuthorizedGcks matches the listed GCKS identity only', () => {
    expect(isAuthorizedGcks(token, { idType: 2, value: 'GCKS.example.org' })).toBe(true);
    expect(isAuthorizedGcks(token, { idType: 2, value: 'rogue.example.org' })).toBe(false);
    expect(isAuthorizedGcks(token, { idType: 11, value: 'gcks.example.org' })).toBe(false);
  });

  it('mayAct applies roles per rule and wildcard patterns', () => {
    expect(mayAct(token, { idType: 2, value: 'cam1.speakers.example.org' }, 'speaker')).toBe(true);
    expect(mayAct(token, { idType: 2, value: 'speakers.example.org' }, 'speaker')).toBe(false);
    expect(mayAct(token, { idType: 2, value: 'cam1.speakersXexample.org' }, 'speaker')).toBe(false);
    expect(mayAct(token, { idType: 3, value: 'alice@example.org' }, 'receiver')).toBe(true);
    expect(mayAct(token, { idType: 3, value: 'alice@example.org' }, 'speaker')).toBe(false);
    expect(mayAct(token, { idType: 3, value: 'alice@evil.org' }, 'receiver')).toBe(false);
    expect(mayAct(token, { idType: 11, value: 'Probe-7' }, 'receiver')).toBe(true);
    expect(mayAct(token, { idType: 11, value: 'probe-7' }, 'receiver')).toBe(false);
    expect(identityMatches({ idType: 2, pattern: '*' }, { idType: 2, value: '' })).toBe(false);
  });
});

/** Offset of the signature's DER (after the BIT STRING's unused-bits octet): the last top-level element. */
function findLastBitString(token: Uint8Array): number {
  let o = headerLength(token, 0);
  let last = -1;
  while (o < token.length) {
    const h = headerLength(token, o);
    const len = contentLength(token, o);
    if (token[o] === 0x03) last = o + h + 1;
    o += h + len;
  }
  return last;
}

function headerLength(b: Uint8Array, o: number): number {
  const l = b[o + 1]!;
  return l & 0x80 ? 2 + (l & 0x7f) : 2;
}

function contentLength(b: Uint8Array, o: number): number {
  const l = b[o + 1]!;
  if (!(l & 0x80)) return l;
  let n = 0;
  for (let i = 0; i < (l & 0x7f); i++) n = n * 256 + b[o + 2 + i]!;
  return n;
}

/** Replaces the TBS of a signed token (keeping its algorithm and signature) and fixes the outer length. */
function spliceTbs(token: Uint8Array, tbs: Uint8Array): Uint8Array {
  const o = headerLength(token, 0);
  const oldTbsLen = headerLength(token, o) + contentLength(token, o);
  const rest = token.subarray(o + oldTbsLen);
  const body = new Uint8Array(tbs.length + rest.length);
  body.set(tbs);
  body.set(rest, tbs.length);
  const len = body.length;
  const head = len < 128 ? [0x30, len] : len < 256 ? [0x30, 0x81, len] : [0x30, 0x82, len >> 8, len & 0xff];
  const out = new Uint8Array(head.length + len);
  out.set(head);
  out.set(body, head.length);
  return out;
}
