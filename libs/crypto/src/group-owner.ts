import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { IdType } from '@app/codec';
import { CryptoError, type RandomBytes } from './errors.js';
import { ownerKeyIdOf } from './policy-token.js';
import { issueCertificate, parseCertificate, type Certificate } from './x509.js';

/**
 * The Group Owner's key material (RFC 5374 §4.1.3.1; RFC 4534 §2): a signing key for policy tokens
 * and the group's CA, which issues the certificates GMs and the GCKS authenticate with in GSA_AUTH
 * (RFC 9838 §2.3, RFC 7296 §3.6). Created once (the GCKS does it on first start and keeps the private
 * parts outside the database's clear rows); only the public parts are exported to members.
 *
 * Pure functions: key generation draws from node:crypto, serial numbers from the injected
 * `randomBytes`, times from the injected `now`.
 */

export type KeyAlgorithm = 'ecdsa-p256' | 'rsa-2048';

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export interface GroupOwner {
  groupName: string;
  /** Signs policy tokens (signPolicyToken). */
  signing: KeyPair;
  /** The group's self-signed CA. */
  ca: { privateKey: KeyObject; certificate: Certificate };
}

/** What members and the console may download: no private parts. */
export interface GroupOwnerPublic {
  groupName: string;
  signingKeyPem: string;
  /** SHA-256 of the signing key's SPKI, hex: the ownerKeyId inside every token. */
  ownerKeyId: string;
  caCertificatePem: string;
}

/** What the GCKS stores (encrypted, outside clear rows) to load the Group Owner again. */
export interface GroupOwnerSecret extends GroupOwnerPublic {
  signingPrivateKeyPem: string;
  caPrivateKeyPem: string;
}

const DAY_MS = 86_400_000;
const SERIAL_LENGTH = 16;

export function generateKeyPair(algorithm: KeyAlgorithm): KeyPair {
  return algorithm === 'ecdsa-p256'
    ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    : generateKeyPairSync('rsa', { modulusLength: 2048 });
}

/** A positive, non-zero 16-octet serial (RFC 5280 §4.1.2.2 allows up to 20). */
function serial(randomBytes: RandomBytes): Uint8Array {
  const s = Uint8Array.from(randomBytes(SERIAL_LENGTH));
  if (s.length !== SERIAL_LENGTH) throw new CryptoError('UNSUPPORTED', 'randomBytes returned the wrong length');
  s[0] = (s[0]! & 0x7f) | 0x01;
  return s;
}

export interface CreateGroupOwnerOptions {
  groupName: string;
  organization?: string;
  algorithm?: KeyAlgorithm;
  now: Date;
  /** CA validity in days (default 3650). */
  caValidityDays?: number;
  randomBytes: RandomBytes;
}

export function createGroupOwner(o: CreateGroupOwnerOptions): GroupOwner {
  const algorithm = o.algorithm ?? 'ecdsa-p256';
  const signing = generateKeyPair(algorithm);
  const caKeys = generateKeyPair(algorithm);
  const subject = { cn: `${o.groupName} CA`, ...(o.organization ? { o: o.organization } : {}) };
  const der = issueCertificate({
    subject,
    publicKey: caKeys.publicKey,
    issuerKey: caKeys.privateKey,
    serial: serial(o.randomBytes),
    notBefore: o.now,
    notAfter: new Date(o.now.getTime() + (o.caValidityDays ?? 3650) * DAY_MS),
    ca: true,
  });
  return { groupName: o.groupName, signing, ca: { privateKey: caKeys.privateKey, certificate: parseCertificate(der) } };
}

export interface IssueEntityOptions {
  /** The IKE identity the certificate is for; FQDN, RFC 822 and IP identities become subjectAltNames. */
  identity: { idType: number; value: string };
  publicKey: KeyObject;
  now: Date;
  /** Validity in days (default 365). */
  validityDays?: number;
  randomBytes: RandomBytes;
}

function ipv4Octets(text: string): Uint8Array {
  const parts = text.split('.');
  const nums = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : NaN));
  if (parts.length !== 4 || nums.some((n) => !(n >= 0 && n <= 255))) throw new CryptoError('BAD_IDENTITY', `not an IPv4 address: ${text}`);
  return Uint8Array.from(nums);
}

/**
 * Issues a certificate from the group CA for a GM or the GCKS. The identity goes into the subject CN
 * and, for ID_FQDN / ID_RFC822_ADDR / ID_IPV4_ADDR, into subjectAltName, where IKE peers (strongSwan
 * included) look for it. Returns the DER; use certificatePem for PEM.
 */
export function issueEntityCertificate(owner: GroupOwner, o: IssueEntityOptions): Uint8Array {
  const { idType, value } = o.identity;
  if (value.length === 0) throw new CryptoError('BAD_IDENTITY', 'empty identity');
  const san =
    idType === IdType.ID_FQDN
      ? { dns: [value] }
      : idType === IdType.ID_RFC822_ADDR
        ? { emails: [value] }
        : idType === IdType.ID_IPV4_ADDR
          ? { ips: [ipv4Octets(value)] }
          : idType === IdType.ID_KEY_ID || idType === IdType.ID_DER_ASN1_DN
            ? {}
            : undefined;
  if (san === undefined) throw new CryptoError('BAD_IDENTITY', `identity type ${idType} not issued`);
  return issueCertificate({
    subject: { cn: value, o: owner.groupName },
    publicKey: o.publicKey,
    issuerKey: owner.ca.privateKey,
    issuer: owner.ca.certificate,
    serial: serial(o.randomBytes),
    notBefore: o.now,
    notAfter: new Date(o.now.getTime() + (o.validityDays ?? 365) * DAY_MS),
    ca: false,
    ...san,
  });
}

export function certificatePem(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN CERTIFICATE-----\n${b64.replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
}

export function exportGroupOwnerPublic(owner: GroupOwner): GroupOwnerPublic {
  return {
    groupName: owner.groupName,
    signingKeyPem: owner.signing.publicKey.export({ type: 'spki', format: 'pem' }) as string,
    ownerKeyId: Buffer.from(ownerKeyIdOf(owner.signing.publicKey)).toString('hex'),
    caCertificatePem: certificatePem(owner.ca.certificate.der),
  };
}

export function exportGroupOwnerSecret(owner: GroupOwner): GroupOwnerSecret {
  return {
    ...exportGroupOwnerPublic(owner),
    signingPrivateKeyPem: owner.signing.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    caPrivateKeyPem: owner.ca.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}

/** Loads what exportGroupOwnerSecret wrote; refuses keys that do not belong together. */
export function loadGroupOwner(s: GroupOwnerSecret): GroupOwner {
  const signingPrivate = createPrivateKey(s.signingPrivateKeyPem);
  const signingPublic = createPublicKey(signingPrivate);
  const caPrivate = createPrivateKey(s.caPrivateKeyPem);
  const pem = s.caCertificatePem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, '');
  const certificate = parseCertificate(new Uint8Array(Buffer.from(pem, 'base64')));
  const spki = (k: KeyObject) => k.export({ type: 'spki', format: 'der' });
  if (!spki(createPublicKey(caPrivate)).equals(spki(certificate.publicKey))) {
    throw new CryptoError('BAD_KEY', 'CA private key does not match the CA certificate');
  }
  if (!spki(signingPublic).equals(spki(createPublicKey(s.signingKeyPem)))) {
    throw new CryptoError('BAD_KEY', 'signing private key does not match the signing public key');
  }
  return { groupName: s.groupName, signing: { privateKey: signingPrivate, publicKey: signingPublic }, ca: { privateKey: caPrivate, certificate } };
}
