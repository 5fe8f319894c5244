import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  certificatePem,
  createGroupOwner,
  exportGroupOwnerPublic,
  exportGroupOwnerSecret,
  generateKeyPair,
  issueEntityCertificate,
  loadGroupOwner,
  ownerKeyIdOf,
  signPolicyToken,
  verifyPolicyToken,
  type PolicyTokenContent,
} from '@app/crypto';
import { identityMatchesCertificate, parseCertificate, validateChain } from './x509.js';

// Wall clock (whole seconds, a minute back): strongSwan's pki checks validity against the real time.
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
const rnd = (n: number) => new Uint8Array(randomBytes(n));
const tmp = mkdtempSync(join(tmpdir(), `gowner-${process.pid}-`));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function write(name: string, data: string | Uint8Array): string {
  const p = join(tmp, name);
  writeFileSync(p, data);
  return p;
}

describe.each(['ecdsa-p256', 'rsa-2048'] as const)('Group Owner (%s)', (algorithm) => {
  const sut = createGroupOwner({ groupName: 'video', organization: 'GroupSec', algorithm, now: NOW, randomBytes: rnd });

  it('creates a self-signed CA certificate that node:crypto and openssl accept as a CA', () => {
    const x = new X509Certificate(certificatePem(sut.ca.certificate.der));
    expect(x.ca).toBe(true);
    expect(x.verify(x.publicKey)).toBe(true);
    expect(x.subject).toContain('CN=video CA');
    const ca = write(`ca-${algorithm}.pem`, certificatePem(sut.ca.certificate.der));
    const text = execFileSync('openssl', ['x509', '-in', ca, '-noout', '-text'], { encoding: 'utf8' });
    expect(text).toMatch(/CA:TRUE/);
    expect(text).toMatch(/Certificate Sign/);
    expect(execFileSync('openssl', ['verify', '-CAfile', ca, ca], { encoding: 'utf8' })).toContain('OK');
  });

  it('issues GM certificates that openssl and strongSwan pki verify against the CA, with the identity as SAN', () => {
    const member = generateKeyPair('ecdsa-p256');
    const der = issueEntityCertificate(sut, {
      identity: { idType: 2, value: 'gm1.members.example.org' },
      publicKey: member.publicKey,
      now: NOW,
      randomBytes: rnd,
    });
    const ca = write(`ca2-${algorithm}.pem`, certificatePem(sut.ca.certificate.der));
    const leaf = write(`gm1-${algorithm}.pem`, certificatePem(der));
    const ossl = spawnSync('openssl', ['verify', '-attime', String(NOW.getTime() / 1000 + 60), '-CAfile', ca, leaf], { encoding: 'utf8' });
    expect(ossl.stdout, ossl.stderr).toContain(': OK');
    const text = execFileSync('openssl', ['x509', '-in', leaf, '-noout', '-ext', 'subjectAltName'], { encoding: 'utf8' });
    expect(text).toContain('DNS:gm1.members.example.org');
    const pki = spawnSync('pki', ['--verify', '--in', leaf, '--cacert', ca], { encoding: 'utf8' });
    expect(`${pki.stdout}${pki.stderr}`).toMatch(/certificate trusted/);

    const cert = parseCertificate(der);
    expect(validateChain(cert, [], [sut.ca.certificate], NOW)).toHaveLength(2);
    expect(identityMatchesCertificate({ idType: 2, data: new TextEncoder().encode('gm1.members.example.org') }, cert)).toBe(true);
  });

  it('a certificate from another group CA does not chain to this one', () => {
    const other = createGroupOwner({ groupName: 'other', algorithm, now: NOW, randomBytes: rnd });
    const der = issueEntityCertificate(other, {
      identity: { idType: 3, value: 'eve@example.org' },
      publicKey: generateKeyPair('ecdsa-p256').publicKey,
      now: NOW,
      randomBytes: rnd,
    });
    const ca = write(`ca3-${algorithm}.pem`, certificatePem(sut.ca.certificate.der));
    const leaf = write(`eve-${algorithm}.pem`, certificatePem(der));
    const ossl = spawnSync('openssl', ['verify', '-CAfile', ca, leaf], { encoding: 'utf8' });
    expect(ossl.status).not.toBe(0);
    expect(() => validateChain(parseCertificate(der), [], [sut.ca.certificate], NOW)).toThrow(/BAD_CERTIFICATE/);
  });

  it('exports public parts only, and the exported signing key verifies a token the owner signed', () => {
    const pub = exportGroupOwnerPublic(sut);
    const all = JSON.stringify(pub);
    expect(all).not.toMatch(/PRIVATE KEY/);
    expect(pub.ownerKeyId).toBe(Buffer.from(ownerKeyIdOf(sut.signing.publicKey)).toString('hex'));
    expect(pub.ownerKeyId).toBe(createHash('sha256').update(sut.signing.publicKey.export({ type: 'spki', format: 'der' })).digest('hex'));
    const content: PolicyTokenContent = {
      groupName: 'video',
      edition: 1,
      notBefore: NOW,
      notAfter: new Date(NOW.getTime() + 86_400_000),
      ownerKeyId: ownerKeyIdOf(sut.signing.publicKey),
      gcks: [{ idType: 2, pattern: 'gcks.example.org' }],
      members: [],
      groupPolicy: { rekeyAddress: '239.0.0.1', rekeyPort: 848, atd: 15, dtd: 30, kekLifetime: 3600, rekeyAuth: 2 },
      dataPolicy: [],
    };
    const token = signPolicyToken(content, sut.signing.privateKey);
    expect(verifyPolicyToken(token, pub.signingKeyPem, NOW).ok).toBe(true);
    // The CA certificate is not the token anchor: another key.
    const viaCa = verifyPolicyToken(token, pub.caCertificatePem, NOW);
    expect(!viaCa.ok && viaCa.error.code).toBe('WRONG_ANCHOR');
  });

  it('round-trips through the secret export and refuses mismatched keys', () => {
    const secret = exportGroupOwnerSecret(sut);
    const loaded = loadGroupOwner(secret);
    expect(Buffer.from(loaded.ca.certificate.der)).toEqual(Buffer.from(sut.ca.certificate.der));
    expect(exportGroupOwnerPublic(loaded)).toEqual(exportGroupOwnerPublic(sut));
    const other = exportGroupOwnerSecret(createGroupOwner({ groupName: 'x', algorithm, now: NOW, randomBytes: rnd }));
    expect(() => loadGroupOwner({ ...secret, caPrivateKeyPem: other.caPrivateKeyPem })).toThrow(/BAD_KEY/);
    expect(() => loadGroupOwner({ ...secret, signingKeyPem: other.signingKeyPem })).toThrow(/BAD_KEY/);
  });
});

describe('issueEntityCertificate identity checks', () => {
  const owner = createGroupOwner({ groupName: 'g', now: NOW, randomBytes: rnd });
  const key = generateKeyPair('ecdsa-p256').publicKey;
  it('puts IPv4 identities into iPAddress and refuses malformed ones', () => {
    const der = issueEntityCertificate(owner, { identity: { idType: 1, value: '10.1.2.3' }, publicKey: key, now: NOW, randomBytes: rnd });
    expect(identityMatchesCertificate({ idType: 1, data: Uint8Array.from([10, 1, 2, 3]) }, parseCertificate(der))).toBe(true);
    expect(() => issueEntityCertificate(owner, { identity: { idType: 1, value: '10.1.2.300' }, publicKey: key, now: NOW, randomBytes: rnd })).toThrow(/BAD_IDENTITY/);
    expect(() => issueEntityCertificate(owner, { identity: { idType: 2, value: '' }, publicKey: key, now: NOW, randomBytes: rnd })).toThrow(/BAD_IDENTITY/);
    expect(() => issueEntityCertificate(owner, { identity: { idType: 12, value: 'x' }, publicKey: key, now: NOW, randomBytes: rnd })).toThrow(/BAD_IDENTITY/);
  });
});
