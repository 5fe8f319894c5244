import { createHash, createPublicKey, sign as nodeSign, verify as nodeVerify, X509Certificate, type KeyObject } from 'node:crypto';
import forge from 'node-forge';

/**
 * The Group Owner's policy token (after RFC 4534, Group Security Policy Token v1; RFC 5374 §4.1.3.1):
 * a DER structure stating a group's policy and authorization rules, signed by the Group Owner.
 *
 *   PolicyToken ::= SEQUENCE {
 *     tbsToken            TBSPolicyToken,
 *     signatureAlgorithm  AlgorithmIdentifier,   -- ecdsa-with-SHA256 | sha256WithRSAEncryption
 *     signature           BIT STRING }           -- over the DER of tbsToken
 *
 *   TBSPolicyToken ::= SEQUENCE {
 *     tokenInfo      TokenID,                    -- RFC 4534 §3.1
 *     validity       SEQUENCE { notBefore GeneralizedTime, notAfter GeneralizedTime },
 *     ownerKeyId     OCTET STRING,               -- SHA-256 of the Group Owner's SubjectPublicKeyInfo
 *     authorization  Authorization,              -- RFC 4534 §3.2: who may be GCKS, who may join how
 *     groupPolicy    GroupPolicy,                -- RFC 4534 §3.3: rekey (KEK) summary
 *     dataPolicy     SEQUENCE OF DataPolicy }    -- RFC 4534 §3.4: data SA summary
 *
 *   TokenID ::= SEQUENCE { tokenDefVersion INTEGER (1), groupName UTF8String, edition INTEGER }
 *   Authorization ::= SEQUENCE { gcks SEQUENCE OF IdentityRule, members SEQUENCE OF MemberRule }
 *   IdentityRule ::= SEQUENCE { idType INTEGER, pattern UTF8String }   -- IKEv2 ID type (RFC 7296 §3.5)
 *   MemberRule ::= SEQUENCE { identity IdentityRule, maySpeak BOOLEAN, mayReceive BOOLEAN }
 *   GroupPolicy ::= SEQUENCE { rekeyAddress UTF8String, rekeyPort INTEGER, atd INTEGER, dtd INTEGER,
 *                              kekLifetime INTEGER, rekeyAuth INTEGER }    -- RFC 9838 GCAUTH ID
 *   DataPolicy ::= SEQUENCE { name UTF8String, source UTF8String, destination UTF8String,
 *                             ipProtocol INTEGER, port INTEGER, direction INTEGER,
 *                             addressPreservation INTEGER, encrId INTEGER, integId INTEGER,
 *                             keyLifetime INTEGER, mode INTEGER, keyBits INTEGER }
 *
 * tokenDefVersion 2 added `mode` (GsaMode: tunnel 1, transport 2) and `keyBits` (the ENCR key
 * length; 0 = the transform has none): with version 1 a GCKS could hand a member a transport SA
 * where the Group Owner stated tunnel, or AES-128 where it stated AES-256, within the token. A
 * version 1 token is refused as MALFORMED ("unknown tokenDefVersion"): no deployed members hold one.
 *
 * Differences from RFC 4534, on purpose: RFC 4534 wraps the token in CMS SignedData and describes
 * GSAKMP/GDOI mechanisms; we sign the X.509 way (tbs, algorithm, signature), verify with node:crypto,
 * and summarise the RFC 9838 policy instead. Patterns: exact (case-insensitive except ID_KEY_ID),
 * "*" (any identity of that type), "*.suffix" (FQDN/DN suffix) or "*@domain" (RFC 822).
 *
 * How it is carried (see libs/codec constants GWP_PRIV_POLICY_TOKEN): as a private-use TLV attribute
 * (16384) of the GSA payload's Group-wide policy substructure (RFC 9838 §4.4.3). The GW policy is the
 * place RFC 9838 gives to "group specific policy that does not belong to any SA policy", it travels in
 * every message that carries policy (GSA_AUTH, GSA_REGISTRATION, GSA_REKEY, GSA_INBAND_REKEY), inside
 * SK (and under the GCKS signature in GSA_REKEY), and its registry reserves 16384-32767 for private
 * use. A CERT payload of a private encoding would not be allowed in GSA_REKEY, and a Notify would
 * detach the token from the policy it describes.
 */

export interface IdentityRule {
  /** IKEv2 identification type (RFC 7296 §3.5): ID_IPV4_ADDR 1, ID_FQDN 2, ID_RFC822_ADDR 3, ID_IPV6_ADDR 5, ID_DER_ASN1_DN 9, ID_KEY_ID 11. */
  idType: number;
  pattern: string;
}

export interface MemberRule {
  identity: IdentityRule;
  maySpeak: boolean;
  mayReceive: boolean;
}

export interface GroupPolicySummary {
  rekeyAddress: string;
  rekeyPort: number;
  /** Activation / deactivation time delays, seconds (RFC 5374 §4.2.1). */
  atd: number;
  dtd: number;
  kekLifetime: number;
  /** RFC 9838 Group Controller Authentication Method transform ID. */
  rekeyAuth: number;
}

export interface DataPolicySummary {
  name: string;
  source: string;
  destination: string;
  ipProtocol: number;
  port: number;
  /** GsaDirection (RFC 5374 §4.4.2). */
  direction: number;
  /** GsaAddressPreservation (RFC 5374 §3.1). */
  addressPreservation: number;
  encrId: number;
  /** 0 = none (AEAD). */
  integId: number;
  keyLifetime: number;
  /** GsaMode (tunnel 1, transport 2; RFC 5374 §3.1). */
  mode: number;
  /** Key length of the ENCR transform in bits (RFC 7296 §3.3.5 Key Length); 0 = none stated. */
  keyBits: number;
}

export interface PolicyTokenContent {
  groupName: string;
  /** Grows with every policy change; a member refuses a token older than one it holds. */
  edition: number;
  notBefore: Date;
  notAfter: Date;
  /** SHA-256 of the Group Owner's DER SubjectPublicKeyInfo (see ownerKeyIdOf). */
  ownerKeyId: Uint8Array;
  gcks: IdentityRule[];
  members: MemberRule[];
  groupPolicy: GroupPolicySummary;
  dataPolicy: DataPolicySummary[];
}

export type PolicyTokenErrorCode =
  | 'MALFORMED' // not a DER PolicyToken of this definition (truncated, trailing bytes, wrong types)
  | 'TOO_LARGE' // above POLICY_TOKEN_MAX_LENGTH or the list caps
  | 'UNSUPPORTED_ALGORITHM' // signature algorithm unknown, or not the anchor's key type
  | 'WRONG_ANCHOR' // ownerKeyId names another key than the configured trust anchor
  | 'BAD_SIGNATURE' // the Group Owner's signature does not verify
  | 'NOT_YET_VALID'
  | 'EXPIRED';

export class PolicyTokenError extends Error {
  override readonly name = 'PolicyTokenError';
  constructor(
    readonly code: PolicyTokenErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

export type PolicyTokenResult = { ok: true; token: PolicyTokenContent } | { ok: false; error: PolicyTokenError };

/** A trust anchor: the Group Owner's public key (KeyObject or PEM) or a PEM certificate holding it. */
export type TrustAnchor = KeyObject | string;

/** Largest token we parse; RFC 9838 TLV attributes carry at most 65535 octets. */
export const POLICY_TOKEN_MAX_LENGTH = 65_535;
/** Most rules / data policies in one token. */
export const POLICY_TOKEN_MAX_ENTRIES = 1024;
/** 2: DataPolicy states mode and keyBits (see the definition above). */
const TOKEN_DEF_VERSION = 2;

const OID_ECDSA_SHA256 = '1.2.840.10045.4.3.2';
const OID_RSA_SHA256 = '1.2.840.113549.1.1.11';

const { asn1 } = forge;
type Asn1 = forge.asn1.Asn1;
const U = asn1.Class.UNIVERSAL;
const T = asn1.Type;

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

const bin = (b: Uint8Array) => Buffer.from(b).toString('binary');
const seq = (...items: Asn1[]) => asn1.create(U, T.SEQUENCE, true, items);
const utf8 = (s: string) => asn1.create(U, T.UTF8, false, forge.util.encodeUtf8(s));
const octets = (b: Uint8Array) => asn1.create(U, T.OCTETSTRING, false, bin(b));
const bool = (v: boolean) => asn1.create(U, T.BOOLEAN, false, v ? '\xff' : '\x00');
const gtime = (d: Date) => asn1.create(U, T.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(d));

function int(v: number, what: string): Asn1 {
  if (!Number.isSafeInteger(v) || v < 0) throw new PolicyTokenError('MALFORMED', `${what} ${v} is not a non-negative integer`);
  let hex = v.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  if (parseInt(hex.slice(0, 2), 16) & 0x80) hex = `00${hex}`;
  return asn1.create(U, T.INTEGER, false, forge.util.hexToBytes(hex));
}

const rule = (r: IdentityRule) => seq(int(r.idType, 'idType'), utf8(r.pattern));

function capped<T>(list: readonly T[], what: string): readonly T[] {
  if (list.length > POLICY_TOKEN_MAX_ENTRIES) throw new PolicyTokenError('TOO_LARGE', `${list.length} ${what}`);
  return list;
}

function tbsAsn1(c: PolicyTokenContent): Asn1 {
  const g = c.groupPolicy;
  return seq(
    seq(int(TOKEN_DEF_VERSION, 'version'), utf8(c.groupName), int(c.edition, 'edition')),
    seq(gtime(c.notBefore), gtime(c.notAfter)),
    octets(c.ownerKeyId),
    seq(
      seq(...capped(c.gcks, 'GCKS rules').map(rule)),
      seq(...capped(c.members, 'member rules').map((m) => seq(rule(m.identity), bool(m.maySpeak), bool(m.mayReceive)))),
    ),
    seq(utf8(g.rekeyAddress), int(g.rekeyPort, 'rekeyPort'), int(g.atd, 'atd'), int(g.dtd, 'dtd'), int(g.kekLifetime, 'kekLifetime'), int(g.rekeyAuth, 'rekeyAuth')),
    seq(
      ...capped(c.dataPolicy, 'data policies').map((d) =>
        seq(
          utf8(d.name),
          utf8(d.source),
          utf8(d.destination),
          int(d.ipProtocol, 'ipProtocol'),
          int(d.port, 'port'),
          int(d.direction, 'direction'),
          int(d.addressPreservation, 'addressPreservation'),
          int(d.encrId, 'encrId'),
          int(d.integId, 'integId'),
          int(d.keyLifetime, 'keyLifetime'),
          int(d.mode, 'mode'),
          int(d.keyBits, 'keyBits'),
        ),
      ),
    ),
  );
}

const der = (a: Asn1) => new Uint8Array(Buffer.from(asn1.toDer(a).getBytes(), 'binary'));

/** The DER of TBSPolicyToken: the octets the Group Owner signs. */
export function encodePolicyToken(content: PolicyTokenContent): Uint8Array {
  return der(tbsAsn1(content));
}

/** Exporting an SPKI is slow next to hashing it; keys are immutable, so remember the id per KeyObject. */
const keyIdCache = new WeakMap<KeyObject, Uint8Array>();

/** SHA-256 of a public key's DER SubjectPublicKeyInfo: the token's ownerKeyId. */
export function ownerKeyIdOf(key: KeyObject): Uint8Array {
  let id = keyIdCache.get(key);
  if (!id) {
    id = new Uint8Array(createHash('sha256').update(publicOf(key).export({ type: 'spki', format: 'der' })).digest());
    keyIdCache.set(key, id);
  }
  return id;
}

function publicOf(key: KeyObject): KeyObject {
  return key.type === 'private' ? createPublicKey(key) : key;
}

function algorithmFor(key: KeyObject): string {
  const t = key.asymmetricKeyType;
  if (t === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return OID_ECDSA_SHA256;
  if (t === 'rsa') return OID_RSA_SHA256;
  throw new PolicyTokenError('UNSUPPORTED_ALGORITHM', `Group Owner key type ${String(t)}`);
}

function algorithmIdentifier(oid: string): Asn1 {
  const o = asn1.create(U, T.OID, false, asn1.oidToDer(oid).getBytes());
  return oid === OID_RSA_SHA256 ? seq(o, asn1.create(U, T.NULL, false, '')) : seq(o);
}

/**
 * Signs the token with the Group Owner's private key (ECDSA P-256 or RSA, SHA-256) and returns the
 * DER PolicyToken. `content.ownerKeyId` must name this key.
 */
export function signPolicyToken(content: PolicyTokenContent, ownerPrivateKey: KeyObject): Uint8Array {
  const oid = algorithmFor(ownerPrivateKey);
  if (!Buffer.from(content.ownerKeyId).equals(Buffer.from(ownerKeyIdOf(ownerPrivateKey)))) {
    throw new PolicyTokenError('WRONG_ANCHOR', 'ownerKeyId does not name the signing key');
  }
  const tbs = encodePolicyToken(content);
  const signature = nodeSign('sha256', tbs, ownerPrivateKey);
  const bits = asn1.create(U, T.BITSTRING, false, `\x00${signature.toString('binary')}`);
  const whole = der(seq(asn1.fromDer(bin(tbs)), algorithmIdentifier(oid), bits));
  if (whole.length > POLICY_TOKEN_MAX_LENGTH) throw new PolicyTokenError('TOO_LARGE', `token of ${whole.length} octets`);
  return whole;
}

// ---------------------------------------------------------------------------------------------
// Decoding and verification
// ---------------------------------------------------------------------------------------------

function malformed(why: string): never {
  throw new PolicyTokenError('MALFORMED', why);
}

function expect(a: Asn1 | undefined, type: number, constructed: boolean, what: string): Asn1 {
  if (!a || a.tagClass !== U || a.type !== type || a.constructed !== constructed) malformed(`${what} has the wrong type`);
  return a;
}

function children(a: Asn1 | undefined, n: number | undefined, what: string): Asn1[] {
  const s = expect(a, T.SEQUENCE, true, what);
  const v = s.value as Asn1[];
  if (n !== undefined && v.length !== n) malformed(`${what} has ${v.length} elements, expected ${n}`);
  if (v.length > POLICY_TOKEN_MAX_ENTRIES) throw new PolicyTokenError('TOO_LARGE', `${what} has ${v.length} elements`);
  return v;
}

function readInt(a: Asn1 | undefined, what: string): number {
  const v = expect(a, T.INTEGER, false, what).value as string;
  if (v.length === 0 || v.length > 7 || v.charCodeAt(0) & 0x80) malformed(`${what} is not a small non-negative integer`);
  let n = 0;
  for (let i = 0; i < v.length; i++) n = n * 256 + v.charCodeAt(i);
  return n;
}

function readUtf8(a: Asn1 | undefined, what: string): string {
  const raw = expect(a, T.UTF8, false, what).value as string;
  const s = Buffer.from(raw, 'binary').toString('utf8');
  if (Buffer.from(s, 'utf8').toString('binary') !== raw) malformed(`${what} is not valid UTF-8`);
  return s;
}

function readBool(a: Asn1 | undefined, what: string): boolean {
  const v = expect(a, T.BOOLEAN, false, what).value as string;
  if (v === '\xff') return true;
  if (v === '\x00') return false;
  return malformed(`${what} is not a DER BOOLEAN`);
}

function readTime(a: Asn1 | undefined, what: string): Date {
  const v = expect(a, T.GENERALIZEDTIME, false, what).value as string;
  if (!/^\d{14}Z$/.test(v)) malformed(`${what} is not a DER GeneralizedTime`);
  const d = asn1.generalizedTimeToDate(v);
  if (Number.isNaN(d.getTime())) malformed(`${what} is not a date`);
  return d;
}

function readRule(a: Asn1 | undefined, what: string): IdentityRule {
  const [t, p] = children(a, 2, what);
  return { idType: readInt(t, `${what} idType`), pattern: readUtf8(p, `${what} pattern`) };
}

function readTbs(a: Asn1): PolicyTokenContent {
  const [info, validity, keyId, authz, group, data] = children(a, 6, 'TBSPolicyToken');
  const [ver, name, edition] = children(info, 3, 'TokenID');
  if (readInt(ver, 'tokenDefVersion') !== TOKEN_DEF_VERSION) malformed('unknown tokenDefVersion');
  const [nb, na] = children(validity, 2, 'validity');
  const [gcks, members] = children(authz, 2, 'authorization');
  const g = children(group, 6, 'groupPolicy');
  return {
    groupName: readUtf8(name, 'groupName'),
    edition: readInt(edition, 'edition'),
    notBefore: readTime(nb, 'notBefore'),
    notAfter: readTime(na, 'notAfter'),
    ownerKeyId: new Uint8Array(Buffer.from(expect(keyId, T.OCTETSTRING, false, 'ownerKeyId').value as string, 'binary')),
    gcks: children(gcks, undefined, 'gcks').map((r, i) => readRule(r, `gcks[${i}]`)),
    members: children(members, undefined, 'members').map((m, i) => {
      const [id, speak, receive] = children(m, 3, `members[${i}]`);
      return { identity: readRule(id, `members[${i}]`), maySpeak: readBool(speak, 'maySpeak'), mayReceive: readBool(receive, 'mayReceive') };
    }),
    groupPolicy: {
      rekeyAddress: readUtf8(g[0], 'rekeyAddress'),
      rekeyPort: readInt(g[1], 'rekeyPort'),
      atd: readInt(g[2], 'atd'),
      dtd: readInt(g[3], 'dtd'),
      kekLifetime: readInt(g[4], 'kekLifetime'),
      rekeyAuth: readInt(g[5], 'rekeyAuth'),
    },
    dataPolicy: children(data, undefined, 'dataPolicy').map((d, i) => {
      const f = children(d, 12, `dataPolicy[${i}]`);
      return {
        name: readUtf8(f[0], 'name'),
        source: readUtf8(f[1], 'source'),
        destination: readUtf8(f[2], 'destination'),
        ipProtocol: readInt(f[3], 'ipProtocol'),
        port: readInt(f[4], 'port'),
        direction: readInt(f[5], 'direction'),
        addressPreservation: readInt(f[6], 'addressPreservation'),
        encrId: readInt(f[7], 'encrId'),
        integId: readInt(f[8], 'integId'),
        keyLifetime: readInt(f[9], 'keyLifetime'),
        mode: readInt(f[10], 'mode'),
        keyBits: readInt(f[11], 'keyBits'),
      };
    }),
  };
}

interface ParsedToken {
  tbsDer: Uint8Array;
  content: PolicyTokenContent;
  algorithm: string;
  signature: Uint8Array;
}

function parse(bytes: Uint8Array): ParsedToken {
  if (bytes.length > POLICY_TOKEN_MAX_LENGTH) throw new PolicyTokenError('TOO_LARGE', `token of ${bytes.length} octets`);
  let root: Asn1;
  try {
    // node-forge takes an options object here (its typings only know the older boolean form).
    const fromDer = asn1.fromDer as unknown as (b: string, o: { strict: boolean; parseAllBytes: boolean; decodeBitStrings: boolean }) => Asn1;
    root = fromDer(bin(bytes), { strict: true, parseAllBytes: true, decodeBitStrings: false });
  } catch {
    return malformed('not DER');
  }
  // Only canonical DER: what we re-encode must be the input, so the signed octets are unambiguous.
  if (!Buffer.from(asn1.toDer(root).getBytes(), 'binary').equals(Buffer.from(bytes))) malformed('not canonical DER');
  const [tbs, alg, sig] = children(root, 3, 'PolicyToken');
  const algParts = children(alg, undefined, 'signatureAlgorithm');
  const oidNode = expect(algParts[0], T.OID, false, 'algorithm');
  const algorithm = asn1.derToOid(oidNode.value as string);
  const wantParams = algorithm === OID_RSA_SHA256 ? 2 : 1;
  if (algParts.length !== wantParams) malformed('signatureAlgorithm parameters');
  if (wantParams === 2) expect(algParts[1], T.NULL, false, 'algorithm parameters');
  const bits = expect(sig, T.BITSTRING, false, 'signature').value as string;
  if (bits.length < 2 || bits.charCodeAt(0) !== 0) malformed('signature BIT STRING');
  return {
    tbsDer: der(tbs!),
    content: readTbs(tbs!),
    algorithm,
    signature: new Uint8Array(Buffer.from(bits.slice(1), 'binary')),
  };
}

function anchorKey(anchor: TrustAnchor): KeyObject {
  if (typeof anchor !== 'string') return publicOf(anchor);
  if (anchor.includes('BEGIN CERTIFICATE')) return new X509Certificate(anchor).publicKey;
  return createPublicKey(anchor);
}

/**
 * Verifies a DER PolicyToken against the Group Owner trust anchor at time `now` (injected clock).
 * Never throws: every refusal is a typed PolicyTokenError in the result.
 */
export function verifyPolicyToken(bytes: Uint8Array, trustAnchor: TrustAnchor, now: Date): PolicyTokenResult {
  try {
    const p = parse(bytes);
    const key = anchorKey(trustAnchor);
    let keyAlg: string;
    try {
      keyAlg = algorithmFor(key);
    } catch (e) {
      throw e instanceof PolicyTokenError ? e : new PolicyTokenError('UNSUPPORTED_ALGORITHM', 'trust anchor key');
    }
    if (p.algorithm !== OID_ECDSA_SHA256 && p.algorithm !== OID_RSA_SHA256) {
      throw new PolicyTokenError('UNSUPPORTED_ALGORITHM', `signature algorithm ${p.algorithm}`);
    }
    if (p.algorithm !== keyAlg) throw new PolicyTokenError('UNSUPPORTED_ALGORITHM', 'signature algorithm does not fit the trust anchor');
    if (!Buffer.from(p.content.ownerKeyId).equals(Buffer.from(ownerKeyIdOf(key)))) {
      throw new PolicyTokenError('WRONG_ANCHOR', 'token names another Group Owner key');
    }
    let good = false;
    try {
      good = nodeVerify('sha256', p.tbsDer, key, p.signature);
    } catch {
      good = false;
    }
    if (!good) throw new PolicyTokenError('BAD_SIGNATURE', 'Group Owner signature does not verify');
    if (now.getTime() < p.content.notBefore.getTime()) throw new PolicyTokenError('NOT_YET_VALID', `valid from ${p.content.notBefore.toISOString()}`);
    if (now.getTime() > p.content.notAfter.getTime()) throw new PolicyTokenError('EXPIRED', `expired ${p.content.notAfter.toISOString()}`);
    return { ok: true, token: p.content };
  } catch (e) {
    if (e instanceof PolicyTokenError) return { ok: false, error: e };
    return { ok: false, error: new PolicyTokenError('MALFORMED', 'unreadable token or trust anchor') };
  }
}

// ---------------------------------------------------------------------------------------------
// Authorization checks a member (and the GCKS) needs
// ---------------------------------------------------------------------------------------------

/** An identity as seen in IKE (IDi/IDr), with its data as text: address, FQDN, e-mail, DN string, key id. */
export interface TokenIdentity {
  idType: number;
  value: string;
}

const ID_FQDN = 2;
const ID_RFC822_ADDR = 3;
const ID_DER_ASN1_DN = 9;
const ID_KEY_ID = 11;

export function identityMatches(rule: IdentityRule, id: TokenIdentity): boolean {
  if (rule.idType !== id.idType) return false;
  const exactCase = id.idType === ID_KEY_ID;
  const p = exactCase ? rule.pattern : rule.pattern.toLowerCase();
  const v = exactCase ? id.value : id.value.toLowerCase();
  if (p === '*') return v.length > 0;
  if (p.startsWith('*.') && (id.idType === ID_FQDN || id.idType === ID_DER_ASN1_DN)) {
    return v.length > p.length - 1 && v.endsWith(p.slice(1));
  }
  if (p.startsWith('*@') && id.idType === ID_RFC822_ADDR) return v.length > p.length - 1 && v.endsWith(p.slice(1));
  return p === v;
}

/** May this identity act as the group's GCKS (GCKS authorization, RFC 4534 §3.2)? */
export function isAuthorizedGcks(token: PolicyTokenContent, identity: TokenIdentity): boolean {
  return token.gcks.some((r) => identityMatches(r, identity));
}

export type MemberRole = 'speaker' | 'receiver';

/** May this identity join in this role (member access control, RFC 4534 §3.2)? */
export function mayAct(token: PolicyTokenContent, identity: TokenIdentity, role: MemberRole): boolean {
  return token.members.some((m) => identityMatches(m.identity, identity) && (role === 'speaker' ? m.maySpeak : m.mayReceive));
}
