/**
 * X.509 certificates for IKEv2 authentication (RFC 7296 §3.6, RFC 5280): parsing, chain
 * validation to configured trust anchors, identity matching against subjectAltName / subject,
 * CERTREQ authority hashes, and issuing ECDSA P-256 / RSA certificates for CAs and members.
 * node:crypto's X509Certificate does the signature checks; the validity time is injected.
 */
import { X509Certificate, createHash, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { IdType } from '@app/codec';
import {
  bitString,
  boolTrue,
  derBytes,
  derChildren,
  derRead,
  explicit,
  integer,
  octetString,
  oid,
  seq,
  set,
  time,
  tlv,
  utf8,
} from './der.js';
import { CryptoError } from './errors.js';

export interface Certificate {
  der: Uint8Array;
  x509: X509Certificate;
  /** DER of the subject Name, for ID_DER_ASN1_DN. */
  subjectDer: Uint8Array;
  publicKey: KeyObject;
}

/** Most certificates on one chain (leaf included). */
export const MAX_CHAIN_LENGTH = 8;

/** Parsed certificates by DER digest, so a peer's repeated certificate is parsed once. */
const parsed = new Map<string, Certificate>();
/** Most cached parsed certificates (least recently used dropped first). */
export const CERTIFICATE_CACHE_SIZE = 1024;

/**
 * Parses a DER certificate (throws CryptoError BAD_CERTIFICATE). Results are cached by the DER's
 * SHA-256, and the same `Certificate` object is returned for the same bytes, so signature checks
 * between two certificates are done once (see `validateChain`).
 */
export function parseCertificate(der: Uint8Array): Certificate {
  const key = createHash('sha256').update(der).digest('base64');
  const hit = parsed.get(key);
  if (hit) {
    parsed.delete(key);
    parsed.set(key, hit);
    return hit;
  }
  const cert = parseUncached(der);
  parsed.set(key, cert);
  if (parsed.size > CERTIFICATE_CACHE_SIZE) parsed.delete(parsed.keys().next().value!);
  return cert;
}

function parseUncached(der: Uint8Array): Certificate {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(der);
  } catch {
    throw new CryptoError('BAD_CERTIFICATE', 'certificate does not parse');
  }
  const cert = derRead(der, 0);
  const [tbs] = derChildren(der, cert);
  if (!tbs) throw new CryptoError('BAD_CERTIFICATE', 'no TBSCertificate');
  const fields = derChildren(der, tbs);
  const skip = fields[0]?.tag === 0xa0 ? 1 : 0; // explicit version
  const subject = fields[skip + 4];
  if (!subject || subject.tag !== 0x30) throw new CryptoError('BAD_CERTIFICATE', 'no subject');
  return { der: new Uint8Array(der), x509, subjectDer: new Uint8Array(derBytes(der, subject)), publicKey: x509.publicKey };
}

const validity = new WeakMap<Certificate, [number, number]>();

function validAt(c: Certificate, now: Date): boolean {
  let v = validity.get(c);
  if (!v) {
    v = [Date.parse(c.x509.validFrom), Date.parse(c.x509.validTo)];
    validity.set(c, v);
  }
  return v[0] <= now.getTime() && now.getTime() <= v[1];
}

/**
 * Checks that `leaf` chains through `intermediates` (any order, as received in CERT payloads) to
 * one of `anchors`, every certificate valid at `now`, every issuer a CA. Returns the path.
 */
export function validateChain(
  leaf: Certificate,
  intermediates: readonly Certificate[],
  anchors: readonly Certificate[],
  now: Date,
): Certificate[] {
  if (!validAt(leaf, now)) throw new CryptoError('BAD_CERTIFICATE', 'end-entity certificate outside its validity');
  const path = [leaf];
  let cur = leaf;
  for (let depth = 0; depth < MAX_CHAIN_LENGTH; depth++) {
    const anchor = anchors.find((a) => issuedBy(cur, a));
    if (anchor) {
      if (!validAt(anchor, now)) throw new CryptoError('BAD_CERTIFICATE', 'trust anchor outside its validity');
      path.push(anchor);
      return path;
    }
    const next = intermediates.find((c) => c !== cur && !path.includes(c) && issuedBy(cur, c));
    if (!next) break;
    if (!validAt(next, now)) throw new CryptoError('BAD_CERTIFICATE', 'intermediate certificate outside its validity');
    path.push(next);
    cur = next;
  }
  throw new CryptoError('BAD_CERTIFICATE', 'no chain to a trust anchor');
}

/** Signature checks already made: child -> issuer -> verdict. */
const issuedCache = new WeakMap<Certificate, WeakMap<Certificate, boolean>>();

function issuedBy(child: Certificate, issuer: Certificate): boolean {
  if (!issuer.x509.ca) return false;
  let byIssuer = issuedCache.get(child);
  const known = byIssuer?.get(issuer);
  if (known !== undefined) return known;
  let ok: boolean;
  try {
    ok = child.x509.checkIssued(issuer.x509) && child.x509.verify(issuer.publicKey);
  } catch {
    ok = false;
  }
  if (!byIssuer) issuedCache.set(child, (byIssuer = new WeakMap()));
  byIssuer.set(issuer, ok);
  return ok;
}

/** Whether an IKE identity (§3.5) is the certificate's: SAN dNSName / rfc822Name / iPAddress, or subject DN. */
export function identityMatchesCertificate(id: { idType: number; data: Uint8Array }, cert: Certificate): boolean {
  const text = () => new TextDecoder().decode(id.data);
  switch (id.idType) {
    case IdType.ID_FQDN:
      return cert.x509.checkHost(text(), { subject: 'never', wildcards: false }) !== undefined;
    case IdType.ID_RFC822_ADDR:
      return cert.x509.checkEmail(text(), { subject: 'never' }) !== undefined;
    case IdType.ID_IPV4_ADDR:
      return id.data.length === 4 && cert.x509.checkIP(Array.from(id.data).join('.')) !== undefined;
    case IdType.ID_DER_ASN1_DN:
      return Buffer.compare(Buffer.from(id.data), Buffer.from(cert.subjectDer)) === 0;
    default:
      return false;
  }
}

/** DER SubjectPublicKeyInfo of a P-256 key up to the point's coordinates (RFC 5480 §2: id-ecPublicKey, prime256v1, uncompressed). */
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d03010703420004', 'hex');

/**
 * A DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) as a KeyObject; throws CryptoError BAD_KEY.
 * P-256 keys are imported as JWK coordinates (OpenSSL checks the point on the curve and its order):
 * ~70 µs against ~120 µs through OpenSSL 3's generic DER decoder. Other keys take the DER path.
 */
export function publicKeyFromSpki(spki: Uint8Array): KeyObject {
  try {
    if (spki.length === P256_SPKI_PREFIX.length + 64 && P256_SPKI_PREFIX.equals(spki.subarray(0, P256_SPKI_PREFIX.length))) {
      const b = Buffer.from(spki.buffer, spki.byteOffset + P256_SPKI_PREFIX.length, 64);
      return createPublicKey({
        key: { kty: 'EC', crv: 'P-256', x: b.subarray(0, 32).toString('base64url'), y: b.subarray(32).toString('base64url') },
        format: 'jwk',
      });
    }
    return createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch {
    throw new CryptoError('BAD_KEY', 'SubjectPublicKeyInfo does not import');
  }
}

const certReqHashes = new WeakMap<Certificate, Uint8Array>();

/** SHA-1 of the CA's SubjectPublicKeyInfo: one CERTREQ entry (§3.7). Cached per certificate. */
export function certReqHash(ca: Certificate): Uint8Array {
  let h = certReqHashes.get(ca);
  if (!h) {
    h = new Uint8Array(createHash('sha1').update(ca.publicKey.export({ type: 'spki', format: 'der' })).digest());
    certReqHashes.set(ca, h);
  }
  return h;
}

// ---- issuing --------------------------------------------------------------------------------

export interface IssueOptions {
  subject: { cn: string; o?: string };
  publicKey: KeyObject;
  /** The issuer's key, and its certificate unless self-signed. */
  issuerKey: KeyObject;
  issuer?: Certificate;
  serial: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  ca: boolean;
  dns?: string[];
  emails?: string[];
  /** IPv4 addresses as 4 octets. */
  ips?: Uint8Array[];
}

const ecdsaWithSha256 = () => seq(oid('1.2.840.10045.4.3.2'));
const sha256WithRsa = () => seq(oid('1.2.840.113549.1.1.11'), tlv(0x05));

export function encodeName(n: { cn: string; o?: string }): Uint8Array {
  const rdns = [];
  if (n.o) rdns.push(set(seq(oid('2.5.4.10'), utf8(n.o))));
  rdns.push(set(seq(oid('2.5.4.3'), utf8(n.cn))));
  return seq(...rdns);
}

function ext(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical ? seq(oid(id), boolTrue(), octetString(value)) : seq(oid(id), octetString(value));
}

function keyId(spki: Uint8Array): Uint8Array {
  const n = derRead(spki, 0);
  const [, bits] = derChildren(spki, n);
  return new Uint8Array(createHash('sha1').update(spki.subarray(bits!.contentStart + 1, bits!.end)).digest());
}

/** A DER X.509 v3 certificate signed with ECDSA-SHA256 or RSA-SHA256 by the issuer's key. */
export function issueCertificate(o: IssueOptions): Uint8Array {
  const kind = o.issuerKey.asymmetricKeyType;
  if (kind !== 'ec' && kind !== 'rsa') throw new CryptoError('UNSUPPORTED', `issuer key type ${kind}`);
  const sigAlg = kind === 'ec' ? ecdsaWithSha256() : sha256WithRsa();
  const spki = new Uint8Array(o.publicKey.export({ type: 'spki', format: 'der' }));
  const issuerName = o.issuer ? o.issuer.subjectDer : encodeName(o.subject);
  const issuerSpki = o.issuer
    ? new Uint8Array(o.issuer.publicKey.export({ type: 'spki', format: 'der' }))
    : spki;
  const exts = [
    ext('2.5.29.19', true, o.ca ? seq(boolTrue()) : seq()),
    // keyUsage: CA keyCertSign|cRLSign (bits 5,6), member digitalSignature (bit 0).
    ext('2.5.29.15', true, o.ca ? tlv(0x03, Uint8Array.of(1, 0x06)) : tlv(0x03, Uint8Array.of(7, 0x80))),
    ext('2.5.29.14', false, octetString(keyId(spki))),
    ext('2.5.29.35', false, seq(tlv(0x80, keyId(issuerSpki)))),
  ];
  const names = [
    ...(o.dns ?? []).map((d) => tlv(0x82, new TextEncoder().encode(d))),
    ...(o.emails ?? []).map((e) => tlv(0x81, new TextEncoder().encode(e))),
    ...(o.ips ?? []).map((ip) => tlv(0x87, ip)),
  ];
  if (names.length > 0) exts.push(ext('2.5.29.17', false, seq(...names)));
  const tbs = seq(
    explicit(0, integer(Uint8Array.of(2))),
    integer(o.serial),
    sigAlg,
    issuerName,
    seq(time(o.notBefore), time(o.notAfter)),
    encodeName(o.subject),
    spki,
    explicit(3, seq(...exts)),
  );
  const sig = sign('sha256', tbs, o.issuerKey);
  return seq(tbs, sigAlg, bitString(new Uint8Array(sig)));
}
