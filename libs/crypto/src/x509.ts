/**
 * X.509 certificates for IKEv2 authentication (RFC 7296 §3.6, RFC 5280): parsing, chain
 * validation to configured trust anchors, identity matching against subjectAltName / subject,
 * CERTREQ authority hashes, and issuing ECDSA P-256 / RSA certificates for CAs and members.
 *
 * Parsing is a bounded DER walk (der.ts) that takes what validation uses — the signed TBS octets,
 * the signature algorithm and value, issuer / subject Names as DER, validity, SubjectPublicKeyInfo,
 * basicConstraints, keyUsage, subjectAltName and the key identifiers — and refuses anything else
 * malformed with CryptoError BAD_CERTIFICATE. Issuer signatures are checked with node:crypto
 * `verify` over the TBS octets with the issuer's KeyObject; the validity time is injected.
 * (node:crypto's X509Certificate costs ~0.2 ms per certificate; it is made only on demand, for
 * the printable subject.)
 */
import * as nodeCrypto from 'node:crypto';
import { X509Certificate, constants, createHash, sign, type KeyObject } from 'node:crypto';
import { IdType } from '@app/codec';
import {
  bitString,
  boolTrue,
  derBytes,
  derChildren,
  derContent,
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
  type DerNode,
} from './der.js';
import { CryptoError } from './errors.js';
import { runSignatureCheck, type SignatureCheck, type SignaturePlan } from './signature-check.js';
import { publicKeyFromSpki, spkiKeyType } from './spki.js';

export interface Certificate {
  /** The whole certificate as received. */
  readonly der: Uint8Array;
  /** tbsCertificate as DER: the octets the issuer signed. */
  readonly tbs: Uint8Array;
  /** DER of the issuer and subject Names (the subject is also ID_DER_ASN1_DN's value). */
  readonly issuerDer: Uint8Array;
  readonly subjectDer: Uint8Array;
  /** DER SubjectPublicKeyInfo. */
  readonly spki: Uint8Array;
  /** Validity (RFC 5280 §4.1.2.5) in ms since the epoch. */
  readonly notBefore: number;
  readonly notAfter: number;
  /** basicConstraints cA (RFC 5280 §4.2.1.9), and its pathLenConstraint if any. */
  readonly ca: boolean;
  readonly pathLen?: number;
  /** keyUsage bits (bit 0 = digitalSignature = 0x8000 … bit 8 = decipherOnly = 0x0080), if present. */
  readonly keyUsage?: number;
  /** subjectAltName entries we match identities against (§4.2.1.6): raw IA5 octets / addresses. */
  readonly dnsNames: readonly Uint8Array[];
  readonly emails: readonly Uint8Array[];
  readonly ips: readonly Uint8Array[];
  readonly subjectKeyId?: Uint8Array;
  readonly authorityKeyId?: Uint8Array;
  /** The subject's public key (imported on first use; throws CryptoError BAD_KEY if it does not import). */
  readonly publicKey: KeyObject;
  /** node:crypto's view of the certificate, made on first use (~0.2 ms): for printing (`subject`). */
  readonly x509: X509Certificate;
}

/** Most certificates on one chain (leaf included). */
export const MAX_CHAIN_LENGTH = 8;
/** Largest certificate we parse (an IKE CERT payload cannot carry more). */
export const MAX_CERTIFICATE_LENGTH = 65_535;

/** Parsed certificates by DER digest, so a peer's repeated certificate is parsed once. */
const parsed = new Map<string, Certificate>();
/** Most cached parsed certificates (least recently used dropped first). */
export const CERTIFICATE_CACHE_SIZE = 1024;

/** SHA-256 as base64: node's one-shot `crypto.hash` (Node ≥ 20.12, ~0.5 µs) where there is one. */
const sha256Base64: (d: Uint8Array) => string =
  typeof nodeCrypto.hash === 'function'
    ? (d) => nodeCrypto.hash('sha256', d, 'base64')
    : (d) => createHash('sha256').update(d).digest('base64');

/**
 * Parses a DER certificate (throws CryptoError BAD_CERTIFICATE, never another error). Results are
 * cached by the DER's SHA-256, and the same `Certificate` object is returned for the same bytes, so
 * signature checks between two certificates are done once (see `validateChain`).
 */
export function parseCertificate(der: Uint8Array): Certificate {
  if (!(der instanceof Uint8Array)) throw new CryptoError('BAD_CERTIFICATE', 'not octets');
  const key = sha256Base64(der);
  const hit = parsed.get(key);
  if (hit) {
    parsed.delete(key);
    parsed.set(key, hit);
    return hit;
  }
  const cert = parseUncached(new Uint8Array(der));
  parsed.set(key, cert);
  if (parsed.size > CERTIFICATE_CACHE_SIZE) parsed.delete(parsed.keys().next().value!);
  return cert;
}

// ---- the DER walk -----------------------------------------------------------------------------

const bad = (why: string) => new CryptoError('BAD_CERTIFICATE', why);
const oidHex = (dotted: string) => Buffer.from(oid(dotted).subarray(2)).toString('hex');
const hexOf = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');

const OID_BASIC_CONSTRAINTS = oidHex('2.5.29.19');
const OID_KEY_USAGE = oidHex('2.5.29.15');
const OID_SAN = oidHex('2.5.29.17');
const OID_SKID = oidHex('2.5.29.14');
const OID_AKID = oidHex('2.5.29.35');
/**
 * Extensions we may meet marked critical and need not act on for IKE authentication (RFC 5280
 * §4.2: an unrecognized critical extension makes the certificate unusable): extKeyUsage,
 * certificatePolicies, CRL distribution points, policy constraints, inhibitAnyPolicy. A critical
 * nameConstraints (not enforced here) is refused.
 */
const CRITICAL_OK = new Set(
  ['2.5.29.19', '2.5.29.15', '2.5.29.17', '2.5.29.14', '2.5.29.35', '2.5.29.37', '2.5.29.32', '2.5.29.31', '2.5.29.36', '2.5.29.54'].map(oidHex),
);

type SigHash = 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';
/** A certificate signature algorithm (RFC 5758 §3.2, RFC 8017 §A.2, RFC 4055, RFC 8410). */
type SigAlg =
  | { kind: 'ecdsa'; hash: SigHash }
  | { kind: 'rsa'; hash: SigHash }
  | { kind: 'pss'; hash: SigHash; saltLength: number }
  | { kind: 'eddsa' };

const SIG_ALGS = new Map<string, SigAlg>([
  [oidHex('1.2.840.10045.4.1'), { kind: 'ecdsa', hash: 'sha1' }],
  [oidHex('1.2.840.10045.4.3.1'), { kind: 'ecdsa', hash: 'sha224' }],
  [oidHex('1.2.840.10045.4.3.2'), { kind: 'ecdsa', hash: 'sha256' }],
  [oidHex('1.2.840.10045.4.3.3'), { kind: 'ecdsa', hash: 'sha384' }],
  [oidHex('1.2.840.10045.4.3.4'), { kind: 'ecdsa', hash: 'sha512' }],
  [oidHex('1.2.840.113549.1.1.5'), { kind: 'rsa', hash: 'sha1' }],
  [oidHex('1.2.840.113549.1.1.14'), { kind: 'rsa', hash: 'sha224' }],
  [oidHex('1.2.840.113549.1.1.11'), { kind: 'rsa', hash: 'sha256' }],
  [oidHex('1.2.840.113549.1.1.12'), { kind: 'rsa', hash: 'sha384' }],
  [oidHex('1.2.840.113549.1.1.13'), { kind: 'rsa', hash: 'sha512' }],
  [oidHex('1.3.101.112'), { kind: 'eddsa' }],
  [oidHex('1.3.101.113'), { kind: 'eddsa' }],
]);
const OID_RSASSA_PSS = oidHex('1.2.840.113549.1.1.10');
const OID_MGF1 = oidHex('1.2.840.113549.1.1.8');
const HASH_OIDS = new Map<string, SigHash>([
  [oidHex('1.3.14.3.2.26'), 'sha1'],
  [oidHex('2.16.840.1.101.3.4.2.4'), 'sha224'],
  [oidHex('2.16.840.1.101.3.4.2.1'), 'sha256'],
  [oidHex('2.16.840.1.101.3.4.2.2'), 'sha384'],
  [oidHex('2.16.840.1.101.3.4.2.3'), 'sha512'],
]);

/** Reads a node and checks its tag. */
function expectTag(n: DerNode | undefined, tag: number, what: string): DerNode {
  if (!n || n.tag !== tag) throw bad(`${what}: expected tag 0x${tag.toString(16)}`);
  return n;
}

/** An OBJECT IDENTIFIER's content octets as hex (compared against `oidHex` constants). */
function oidOf(buf: Uint8Array, n: DerNode | undefined, what: string): string {
  return hexOf(derContent(buf, expectTag(n, 0x06, what)));
}

/** A small non-negative DER INTEGER (version, pathLen, saltLength). */
function smallInt(buf: Uint8Array, n: DerNode, what: string): number {
  const len = n.end - n.contentStart;
  if (n.tag !== 0x02 || len < 1 || len > 4) throw bad(`${what}: not a small INTEGER`);
  if (buf[n.contentStart]! & 0x80) throw bad(`${what}: negative`);
  let v = 0;
  for (let i = n.contentStart; i < n.end; i++) v = v * 256 + buf[i]!;
  return v;
}

/** The hash named by a DER AlgorithmIdentifier (parameters absent or NULL). */
function hashOf(buf: Uint8Array, n: DerNode): SigHash {
  const [id, params, more] = derChildren(buf, expectTag(n, 0x30, 'hash AlgorithmIdentifier'));
  const h = HASH_OIDS.get(oidOf(buf, id, 'hash OID'));
  if (!h || more || (params && (params.tag !== 0x05 || params.end !== params.contentStart))) throw bad('hash algorithm');
  return h;
}

/** RSASSA-PSS-params (RFC 4055 §3.1): hash, MGF1 with the same hash, salt length, trailer 1. */
function pssParams(buf: Uint8Array, n: DerNode | undefined): SigAlg {
  let hash: SigHash = 'sha1';
  let mgfHash: SigHash = 'sha1';
  let saltLength = 20;
  let last = -1;
  for (const f of derChildren(buf, expectTag(n, 0x30, 'RSASSA-PSS-params'))) {
    const k = f.tag - 0xa0;
    if (k < 0 || k > 3 || k <= last) throw bad('RSASSA-PSS-params: field order');
    last = k;
    const [inner, extra] = derChildren(buf, f);
    if (!inner || extra) throw bad('RSASSA-PSS-params: explicit field');
    if (k === 0) hash = hashOf(buf, inner);
    else if (k === 1) {
      const [id, params, more] = derChildren(buf, expectTag(inner, 0x30, 'maskGenAlgorithm'));
      if (more || oidOf(buf, id, 'MGF OID') !== OID_MGF1) throw bad('MGF is not MGF1');
      mgfHash = hashOf(buf, expectTag(params, 0x30, 'MGF1 hash'));
    } else if (k === 2) saltLength = smallInt(buf, inner, 'saltLength');
    else if (smallInt(buf, inner, 'trailerField') !== 1) throw bad('RSASSA-PSS trailerField');
  }
  if (mgfHash !== hash) throw bad('RSASSA-PSS with an MGF1 hash other than the message hash');
  return { kind: 'pss', hash, saltLength };
}

function sigAlgOf(buf: Uint8Array, n: DerNode): SigAlg {
  const [id, params, more] = derChildren(buf, expectTag(n, 0x30, 'signature AlgorithmIdentifier'));
  const o = oidOf(buf, id, 'signature OID');
  if (more) throw bad('signature AlgorithmIdentifier: extra fields');
  if (o === OID_RSASSA_PSS) return pssParams(buf, params);
  const alg = SIG_ALGS.get(o);
  if (!alg) throw bad(`signature algorithm ${o} not supported`);
  // RFC 5758 §3.2 / RFC 8410 §3: parameters absent; RFC 8017: NULL (absent tolerated).
  if (params && !(alg.kind === 'rsa' && params.tag === 0x05 && params.end === params.contentStart)) throw bad('signature parameters');
  return alg;
}

const digits = (buf: Uint8Array, o: number, n: number): number => {
  let v = 0;
  for (let i = o; i < o + n; i++) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) throw bad('time: not a digit');
    v = v * 10 + d;
  }
  return v;
};

/** UTCTime YYMMDDHHMMSSZ or GeneralizedTime YYYYMMDDHHMMSSZ (RFC 5280 §4.1.2.5.1–2) as ms. */
function timeOf(buf: Uint8Array, n: DerNode | undefined): number {
  if (!n) throw bad('validity: missing time');
  const len = n.end - n.contentStart;
  let o = n.contentStart;
  let year: number;
  if (n.tag === 0x17 && len === 13) {
    const yy = digits(buf, o, 2);
    year = yy < 50 ? 2000 + yy : 1900 + yy;
    o += 2;
  } else if (n.tag === 0x18 && len === 15) {
    year = digits(buf, o, 4);
    o += 4;
  } else throw bad('validity: time format');
  const month = digits(buf, o, 2);
  const day = digits(buf, o + 2, 2);
  const hour = digits(buf, o + 4, 2);
  const minute = digits(buf, o + 6, 2);
  const second = digits(buf, o + 8, 2);
  if (buf[o + 10] !== 0x5a) throw bad('validity: time not in Zulu');
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) throw bad('validity: time out of range');
  const t = Date.UTC(year, month - 1, day, hour, minute, second);
  if (new Date(t).getUTCDate() !== day) throw bad('validity: no such day');
  return t;
}

interface Extensions {
  ca: boolean;
  pathLen?: number;
  keyUsage?: number;
  dnsNames: Uint8Array[];
  emails: Uint8Array[];
  ips: Uint8Array[];
  subjectKeyId?: Uint8Array;
  authorityKeyId?: Uint8Array;
}

function extensionsOf(buf: Uint8Array, n: DerNode): Extensions {
  const out: Extensions = { ca: false, dnsNames: [], emails: [], ips: [] };
  const [list, extra] = derChildren(buf, n);
  if (!list || extra) throw bad('extensions: explicit [3]');
  const seen = new Set<string>();
  const all = derChildren(buf, expectTag(list, 0x30, 'Extensions'));
  if (all.length === 0) throw bad('extensions: empty');
  for (const e of all) {
    const f = derChildren(buf, expectTag(e, 0x30, 'Extension'));
    const o = oidOf(buf, f[0], 'extnID');
    if (seen.has(o)) throw bad('extension present twice');
    seen.add(o);
    let i = 1;
    let critical = false;
    if (f[1]?.tag === 0x01) {
      if (f[1].end - f[1].contentStart !== 1) throw bad('extension critical flag');
      critical = buf[f[1].contentStart] !== 0;
      i = 2;
    }
    const value = expectTag(f[i], 0x04, 'extnValue');
    if (f.length !== i + 1) throw bad('Extension: extra fields');
    if (critical && !CRITICAL_OK.has(o)) throw bad(`unrecognized critical extension ${o}`);
    const inner = value.contentStart < value.end ? derRead(buf, value.contentStart, value.end) : undefined;
    if (!inner || inner.end !== value.end) throw bad('extnValue: not one DER value');
    if (o === OID_BASIC_CONSTRAINTS) {
      const c = derChildren(buf, expectTag(inner, 0x30, 'basicConstraints'));
      let j = 0;
      if (c[0]?.tag === 0x01) {
        if (c[0].end - c[0].contentStart !== 1) throw bad('basicConstraints cA');
        out.ca = buf[c[0].contentStart] !== 0;
        j = 1;
      }
      if (c[j]) {
        out.pathLen = smallInt(buf, c[j]!, 'pathLenConstraint');
        j++;
      }
      if (c.length !== j) throw bad('basicConstraints: extra fields');
    } else if (o === OID_KEY_USAGE) {
      expectTag(inner, 0x03, 'keyUsage');
      const len = inner.end - inner.contentStart;
      if (len < 1 || len > 3 || buf[inner.contentStart]! > 7) throw bad('keyUsage bits');
      out.keyUsage = ((buf[inner.contentStart + 1] ?? 0) << 8) | (len > 2 ? buf[inner.contentStart + 2]! : 0);
    } else if (o === OID_SAN) {
      const names = derChildren(buf, expectTag(inner, 0x30, 'subjectAltName'));
      if (names.length === 0) throw bad('subjectAltName: empty');
      for (const g of names) {
        const v = derContent(buf, g);
        if (g.tag === 0x82) out.dnsNames.push(v);
        else if (g.tag === 0x81) out.emails.push(v);
        else if (g.tag === 0x87) {
          if (v.length !== 4 && v.length !== 16) throw bad('subjectAltName iPAddress length');
          out.ips.push(v);
        }
      }
    } else if (o === OID_SKID) {
      out.subjectKeyId = derContent(buf, expectTag(inner, 0x04, 'subjectKeyIdentifier'));
    } else if (o === OID_AKID) {
      for (const a of derChildren(buf, expectTag(inner, 0x30, 'authorityKeyIdentifier'))) {
        if (a.tag === 0x80) out.authorityKeyId = derContent(buf, a);
      }
    }
  }
  return out;
}

/** Whole-certificate structure (RFC 5280 §4.1), strictly in order. */
function parseUncached(der: Uint8Array): ParsedCertificate {
  if (der.length > MAX_CERTIFICATE_LENGTH) throw bad('certificate too long');
  const top = expectTag(derRead(der, 0), 0x30, 'Certificate');
  if (top.end !== der.length) throw bad('octets after the certificate');
  const [tbsN, algN, sigN, extra] = derChildren(der, top);
  if (extra) throw bad('Certificate: extra fields');
  const tbsNode = expectTag(tbsN, 0x30, 'tbsCertificate');
  const outerAlg = expectTag(algN, 0x30, 'signatureAlgorithm');
  const sigBits = expectTag(sigN, 0x03, 'signatureValue');
  if (sigBits.end - sigBits.contentStart < 2 || der[sigBits.contentStart] !== 0) throw bad('signatureValue: not whole octets');
  const f = derChildren(der, tbsNode);
  let i = 0;
  let version = 0;
  if (f[0]?.tag === 0xa0) {
    const [v, more] = derChildren(der, f[0]);
    if (!v || more) throw bad('version');
    version = smallInt(der, v, 'version');
    if (version > 2) throw bad('version');
    i = 1;
  }
  expectTag(f[i], 0x02, 'serialNumber');
  const serialNode = f[i]!;
  if (serialNode.end === serialNode.contentStart) throw bad('serialNumber: empty');
  const innerAlg = expectTag(f[i + 1], 0x30, 'signature');
  // X.509 §7 / RFC 5280 §4.1.1.2: the signed and the outer algorithm are the same.
  if (!bytesEqual(derBytes(der, innerAlg), derBytes(der, outerAlg))) {
    throw bad('signatureAlgorithm differs from the signed one');
  }
  const sigAlg = sigAlgOf(der, outerAlg);
  const issuer = expectTag(f[i + 2], 0x30, 'issuer');
  const validity = derChildren(der, expectTag(f[i + 3], 0x30, 'validity'));
  if (validity.length !== 2) throw bad('validity: two times');
  const notBefore = timeOf(der, validity[0]);
  const notAfter = timeOf(der, validity[1]);
  const subject = expectTag(f[i + 4], 0x30, 'subject');
  const spkiNode = expectTag(f[i + 5], 0x30, 'subjectPublicKeyInfo');
  const spkiParts = derChildren(der, spkiNode);
  expectTag(spkiParts[0], 0x30, 'subjectPublicKeyInfo algorithm');
  const keyBits = expectTag(spkiParts[1], 0x03, 'subjectPublicKey');
  if (spkiParts.length !== 2 || keyBits.end - keyBits.contentStart < 2 || der[keyBits.contentStart] !== 0) throw bad('subjectPublicKeyInfo');
  let j = i + 6;
  if (f[j]?.tag === 0x81) j++; // issuerUniqueID
  if (f[j]?.tag === 0x82) j++; // subjectUniqueID
  let exts: Extensions = { ca: false, dnsNames: [], emails: [], ips: [] };
  if (f[j]?.tag === 0xa3) {
    if (version !== 2) throw bad('extensions in a certificate before v3');
    exts = extensionsOf(der, f[j]!);
    j++;
  }
  if (j !== f.length) throw bad('tbsCertificate: unexpected field');
  return new ParsedCertificate(
    der,
    derBytes(der, tbsNode),
    derBytes(der, issuer),
    derBytes(der, subject),
    derBytes(der, spkiNode),
    notBefore,
    notAfter,
    exts,
    sigAlg,
    der.subarray(sigBits.contentStart + 1, sigBits.end),
  );
}

/** Zero-copy Buffer view, as `hexOf` uses, so equality is Buffer.equals rather than a hand loop. */
const view = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length);
const bytesEqual = (a: Uint8Array, b: Uint8Array): boolean => view(a).equals(view(b));

class ParsedCertificate implements Certificate {
  readonly ca: boolean;
  readonly pathLen?: number;
  readonly keyUsage?: number;
  readonly dnsNames: readonly Uint8Array[];
  readonly emails: readonly Uint8Array[];
  readonly ips: readonly Uint8Array[];
  readonly subjectKeyId?: Uint8Array;
  readonly authorityKeyId?: Uint8Array;
  private key?: KeyObject;
  private node?: X509Certificate;

  constructor(
    readonly der: Uint8Array,
    readonly tbs: Uint8Array,
    readonly issuerDer: Uint8Array,
    readonly subjectDer: Uint8Array,
    readonly spki: Uint8Array,
    readonly notBefore: number,
    readonly notAfter: number,
    exts: Extensions,
    readonly signatureAlgorithm: SigAlg,
    readonly signature: Uint8Array,
  ) {
    this.ca = exts.ca;
    if (exts.pathLen !== undefined) this.pathLen = exts.pathLen;
    if (exts.keyUsage !== undefined) this.keyUsage = exts.keyUsage;
    this.dnsNames = exts.dnsNames;
    this.emails = exts.emails;
    this.ips = exts.ips;
    if (exts.subjectKeyId) this.subjectKeyId = exts.subjectKeyId;
    if (exts.authorityKeyId) this.authorityKeyId = exts.authorityKeyId;
  }

  get publicKey(): KeyObject {
    return (this.key ??= publicKeyFromSpki(this.spki));
  }

  /** OpenSSL's reading, made on first use; CryptoError BAD_CERTIFICATE if OpenSSL refuses what the walk took. */
  get x509(): X509Certificate {
    if (!this.node) {
      try {
        this.node = new X509Certificate(this.der);
      } catch {
        throw new CryptoError('BAD_CERTIFICATE', 'certificate does not parse in OpenSSL');
      }
    }
    return this.node;
  }
}

// ---- validation -------------------------------------------------------------------------------

const validAt = (c: Certificate, now: Date): boolean => c.notBefore <= now.getTime() && now.getTime() <= c.notAfter;

/**
 * Checks that `leaf` chains through `intermediates` (any order, as received in CERT payloads) to
 * one of `anchors`, every certificate valid at `now`, every issuer a CA (basicConstraints cA, and
 * keyCertSign if it has keyUsage) whose pathLenConstraint admits the CAs below it. Returns the path.
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
    // CAs on the path below the next issuer (the leaf is not counted: RFC 5280 §4.2.1.9).
    const below = path.length - 1;
    const anchor = anchors.find((a) => issuedBy(cur, a) && pathLenAllows(a, below));
    if (anchor) {
      if (!validAt(anchor, now)) throw new CryptoError('BAD_CERTIFICATE', 'trust anchor outside its validity');
      path.push(anchor);
      return path;
    }
    const next = intermediates.find((c) => c !== cur && !path.includes(c) && issuedBy(cur, c) && pathLenAllows(c, below));
    if (!next) break;
    if (!validAt(next, now)) throw new CryptoError('BAD_CERTIFICATE', 'intermediate certificate outside its validity');
    path.push(next);
    cur = next;
  }
  throw new CryptoError('BAD_CERTIFICATE', 'no chain to a trust anchor');
}

const pathLenAllows = (issuer: Certificate, casBelow: number): boolean => issuer.pathLen === undefined || casBelow <= issuer.pathLen;

/** keyUsage keyCertSign (bit 5). */
const KU_KEY_CERT_SIGN = 0x0400;

/** Whether `c` may issue certificates: basicConstraints cA and, if keyUsage is present, keyCertSign. */
export function isCa(c: Certificate): boolean {
  return c.ca && (c.keyUsage === undefined || (c.keyUsage & KU_KEY_CERT_SIGN) !== 0);
}

/** Signature checks already made: child -> issuer -> verdict. */
const issuedCache = new WeakMap<Certificate, WeakMap<Certificate, boolean>>();

/** What `issuedBy` checks before any signature: a CA, by Name, and by key identifier when both have one. */
function mayHaveIssued(child: Certificate, issuer: Certificate): boolean {
  if (!isCa(issuer)) return false;
  if (!bytesEqual(child.issuerDer, issuer.subjectDer)) return false;
  return !(child.authorityKeyId && issuer.subjectKeyId && !bytesEqual(child.authorityKeyId, issuer.subjectKeyId));
}

function remember(child: Certificate, issuer: Certificate, ok: boolean): void {
  let byIssuer = issuedCache.get(child);
  if (!byIssuer) issuedCache.set(child, (byIssuer = new WeakMap()));
  byIssuer.set(issuer, ok);
}

/**
 * Whether `issuer` issued `child`: a CA whose subject Name is the child's issuer Name (DER
 * octets), whose subjectKeyIdentifier matches the child's authorityKeyIdentifier when both are
 * present, and whose key verifies the child's signature over its TBS octets. Verdicts are cached.
 */
export function issuedBy(child: Certificate, issuer: Certificate): boolean {
  if (!mayHaveIssued(child, issuer)) return false;
  const known = issuedCache.get(child)?.get(issuer);
  if (known !== undefined) return known;
  let ok = false;
  try {
    const plan = tbsPlan(child, issuer);
    ok = plan !== false && runSignatureCheck(plan, issuer.publicKey);
  } catch {
    ok = false;
  }
  remember(child, issuer, ok);
  return ok;
}

/** One certificate signature `validateChain` may need, not made yet: run `check`, then `record` the verdict. */
export interface PendingIssuerCheck {
  check: SignatureCheck;
  record(ok: boolean): void;
}

/**
 * The issuer signatures `validateChain(leaf, intermediates, anchors)` may check and has no cached
 * verdict for: every (child, issuer) pair on a possible path that passes the Name, key identifier
 * and CA checks. Run the checks anywhere (e.g. a `SignatureWorker`), record the verdicts, and
 * `validateChain` then makes no signature check of its own. A pair whose algorithm does not fit the
 * issuer's key is recorded false here.
 */
export function pendingIssuerChecks(leaf: Certificate, intermediates: readonly Certificate[], anchors: readonly Certificate[]): PendingIssuerCheck[] {
  const out: PendingIssuerCheck[] = [];
  const children = [leaf, ...intermediates];
  for (const child of children) {
    for (const issuer of [...anchors, ...intermediates]) {
      if (issuer === child || !mayHaveIssued(child, issuer) || issuedCache.get(child)?.get(issuer) !== undefined) continue;
      let plan: SignaturePlan | false;
      try {
        plan = tbsPlan(child, issuer);
      } catch {
        plan = false;
      }
      if (plan === false) remember(child, issuer, false);
      else out.push({ check: { ...plan, spki: issuer.spki }, record: (ok) => remember(child, issuer, ok) });
    }
  }
  return out;
}

/** The issuer key's signature over the child's TBS octets, by the child's signature algorithm; false when the key cannot have made it. */
function tbsPlan(child: Certificate, issuer: Certificate): SignaturePlan | false {
  if (!(child instanceof ParsedCertificate)) return false;
  const alg = child.signatureAlgorithm;
  const kt = spkiKeyType(issuer.spki, () => issuer.publicKey).type;
  const base = { data: child.tbs, signature: child.signature };
  switch (alg.kind) {
    case 'ecdsa':
      return kt === 'ec' && { ...base, algorithm: alg.hash, dsaEncoding: 'der' };
    case 'rsa':
      return kt === 'rsa' && { ...base, algorithm: alg.hash, padding: constants.RSA_PKCS1_PADDING };
    case 'pss':
      return (kt === 'rsa' || kt === 'rsa-pss') && { ...base, algorithm: alg.hash, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: alg.saltLength };
    case 'eddsa':
      return (kt === 'ed25519' || kt === 'ed448') && { ...base, algorithm: null };
  }
}

const lower = (c: number) => (c >= 0x41 && c <= 0x5a ? c + 0x20 : c);

function equalNoCase(a: Uint8Array, ao: number, b: Uint8Array, bo: number, n: number): boolean {
  for (let k = 0; k < n; k++) if (lower(a[ao + k]!) !== lower(b[bo + k]!)) return false;
  return true;
}

/** dNSName: ASCII case-insensitive, no wildcards (RFC 5280 §4.2.1.6, RFC 6125 §6.4.1). */
function dnsMatches(id: Uint8Array, san: Uint8Array): boolean {
  return id.length === san.length && id.length > 0 && equalNoCase(id, 0, san, 0, id.length);
}

/** rfc822Name: the local part exact, the domain after the last '@' case-insensitive (RFC 5280 §4.2.1.6). */
function emailMatches(id: Uint8Array, san: Uint8Array): boolean {
  if (id.length !== san.length || id.length === 0) return false;
  let at = id.length;
  while (at > 0) {
    at--;
    if (id[at] === 0x40 || san[at] === 0x40) {
      if (!equalNoCase(id, at, san, at, id.length - at)) return false;
      break;
    }
  }
  if (at === 0) at = id.length;
  for (let k = 0; k < at; k++) if (id[k] !== san[k]) return false;
  return true;
}

/** Whether an IKE identity (§3.5) is the certificate's: SAN dNSName / rfc822Name / iPAddress, or subject DN. */
export function identityMatchesCertificate(id: { idType: number; data: Uint8Array }, cert: Certificate): boolean {
  const d = id.data;
  switch (id.idType) {
    case IdType.ID_FQDN:
      return !d.includes(0) && cert.dnsNames.some((n) => dnsMatches(d, n));
    case IdType.ID_RFC822_ADDR:
      return !d.includes(0) && cert.emails.some((n) => emailMatches(d, n));
    case IdType.ID_IPV4_ADDR:
      return d.length === 4 && cert.ips.some((n) => bytesEqual(d, n));
    case IdType.ID_DER_ASN1_DN:
      return bytesEqual(d, cert.subjectDer);
    default:
      return false;
  }
}

const certReqHashes = new WeakMap<Certificate, Uint8Array>();

/** SHA-1 of the CA's SubjectPublicKeyInfo as in its certificate: one CERTREQ entry (§3.7). Cached per certificate. */
export function certReqHash(ca: Certificate): Uint8Array {
  let h = certReqHashes.get(ca);
  if (!h) {
    h = new Uint8Array(createHash('sha1').update(ca.spki).digest());
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
  const issuerSpki = o.issuer ? o.issuer.spki : spki;
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
