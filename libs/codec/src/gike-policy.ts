import {
  GcAuthId,
  GIKE_DEFAULT_KEY_ID,
  TRANSFORM_ATTR_KEY_LENGTH,
  GikeProtocol,
  TransformType,
  GM_SENDER_ID_LENGTH,
  GroupKeyBagAttr,
  GsaAddressPreservation,
  GsaAttr,
  GsaDirection,
  GsaMode,
  GsaPrivateAttr,
  GWP_PRIV_POLICY_TOKEN,
  GwpAttr,
  MemberKeyBagAttr,
  TRANSFORM_ATTR_SIGNATURE_ALGORITHM_ID,
} from './constants.js';
import { CodecError } from './errors.js';
import type { GikeAttribute } from './gike-attribute.js';
import { writeU32 } from './ike-body.js';
import { gikeSpiLength, type GsaGwPolicy, type GsaSaPolicy } from './gike-gsa.js';
import type { GroupKeyBag, MemberKeyBag } from './gike-kd.js';
import { wrappedKey, type WrappedKey } from './wrapped-key.js';
import type { Transform } from './ike-sa.js';

/*
 * Typed views of the attributes and transforms inside GSA policies and key bags (RFC 9838 §4.4.2.1–
 * §4.5.3). `parse*` functions check formats, sizes and multiplicity and throw CodecError BAD_VALUE
 * (with offset -1: the structure was already framed) on a violation; attribute types they do not
 * know are ignored (registries grow). `*Attributes` builders produce attribute lists for encoding.
 */

const NO_OFFSET = -1;

function bad(msg: string): never {
  throw new CodecError('BAD_VALUE', msg, NO_OFFSET);
}

function tv(a: GikeAttribute, name: string): number {
  if (typeof a.value !== 'number') bad(`${name} must be a TV attribute`);
  return a.value;
}

function tlv(a: GikeAttribute, name: string): Uint8Array {
  if (typeof a.value === 'number') bad(`${name} must be a TLV attribute`);
  return a.value;
}

function u32(a: GikeAttribute, name: string): number {
  const v = tlv(a, name);
  if (v.length !== 4) bad(`${name} must be 4 octets, got ${v.length}`);
  return ((v[0]! << 24) >>> 0) + ((v[1]! << 16) | (v[2]! << 8) | v[3]!);
}

function once<T>(seen: Set<number>, type: number, name: string, v: T): T {
  if (seen.has(type)) bad(`${name} appears more than once`);
  seen.add(type);
  return v;
}

function u32Bytes(v: number, name: string): Uint8Array {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) bad(`${name} ${v} outside 32 bits`);
  const b = new Uint8Array(4);
  writeU32(b, 0, v);
  return b;
}

function u16(v: number, name: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) bad(`${name} ${v} outside 16 bits`);
  return v;
}

// ---------------------------------------------------------------------------------------------
// GSA policy transforms (RFC 9838 §4.4.2.1)
// ---------------------------------------------------------------------------------------------

/**
 * AEAD encryption transform IDs (IANA "Encryption Algorithm Transform IDs": CCM 14-16, GCM 18-20,
 * NULL_AUTH_AES_GMAC 21, Camellia CCM 25-27, ChaCha20-Poly1305 28, IIV variants 29-31).
 */
const AEAD_ENCR_IDS: ReadonlySet<number> = new Set([14, 15, 16, 18, 19, 20, 21, 25, 26, 27, 28, 29, 30, 31]);
/** Counter-based modes that need Sender-IDs (RFC 9838 §2.5): CTR 13 plus the AEADs above but 21/IIV. */
const COUNTER_MODE_ENCR_IDS: ReadonlySet<number> = new Set([13, 14, 15, 16, 18, 19, 20, 21, 24, 25, 26, 27, 28]);
/** Encryption transforms with implicit IV, forbidden in any G-IKEv2 SA (RFC 9838 §2.7). */
const IIV_ENCR_IDS: ReadonlySet<number> = new Set([29, 30, 31]);
const INTEG_NONE = 0;

export interface GsaTransformSet {
  encr?: { id: number; keyLength?: number };
  integ?: number;
  sn?: number;
  kwa?: number;
  gcauth?: { id: number; signatureAlgorithm?: Uint8Array };
}

export function isAeadEncr(id: number): boolean {
  return AEAD_ENCR_IDS.has(id);
}

export function isCounterModeEncr(id: number): boolean {
  return COUNTER_MODE_ENCR_IDS.has(id);
}

/**
 * Reads and checks a GSA policy's transforms against RFC 9838 §4.4.2.1: exactly one of each
 * mandatory type, at most one of each optional type, nothing else, INTEG per the AEAD rule. Pass
 * `registration: false` for GSA_REKEY / GSA_INBAND_REKEY, where GCAUTH MUST NOT appear.
 */
export function parseGsaTransforms(p: GsaSaPolicy, opts: { registration: boolean } = { registration: true }): GsaTransformSet {
  const out: GsaTransformSet = {};
  const seen = new Set<number>();
  for (const t of p.transforms) {
    if (seen.has(t.type)) bad(`transform type ${t.type} appears more than once`);
    seen.add(t.type);
    switch (t.type) {
      case TransformType.ENCR: {
        if (IIV_ENCR_IDS.has(t.id)) bad(`encryption transform ${t.id} uses an implicit IV`);
        let keyLength: number | undefined;
        for (const a of t.attributes) {
          if (a.type === TRANSFORM_ATTR_KEY_LENGTH) keyLength = tv(a, 'Key Length');
          else bad(`unexpected attribute ${a.type} in ENCR transform`);
        }
        out.encr = keyLength === undefined ? { id: t.id } : { id: t.id, keyLength };
        break;
      }
      case TransformType.INTEG:
        out.integ = t.id;
        break;
      case TransformType.SN:
        out.sn = t.id;
        break;
      case TransformType.KWA:
        out.kwa = t.id;
        break;
      case TransformType.GCAUTH: {
        let signatureAlgorithm: Uint8Array | undefined;
        for (const a of t.attributes) {
          if (a.type === TRANSFORM_ATTR_SIGNATURE_ALGORITHM_ID) signatureAlgorithm = tlv(a, 'Signature Algorithm Identifier');
          else bad(`unexpected attribute ${a.type} in GCAUTH transform`);
        }
        if (t.id === GcAuthId.DIGITAL_SIGNATURE && signatureAlgorithm === undefined) {
          bad('Digital Signature GCAUTH without a Signature Algorithm Identifier');
        }
        if (t.id !== GcAuthId.DIGITAL_SIGNATURE && signatureAlgorithm !== undefined) {
          bad('Signature Algorithm Identifier on a non-signature GCAUTH');
        }
        out.gcauth = signatureAlgorithm === undefined ? { id: t.id } : { id: t.id, signatureAlgorithm };
        break;
      }
      default:
        bad(`transform type ${t.type} not allowed in a GSA policy`);
    }
  }
  const has = (type: number) => seen.has(type);
  if (p.protocol === GikeProtocol.GIKE_UPDATE) {
    if (!has(TransformType.ENCR) || !has(TransformType.KWA)) bad('Rekey SA policy needs ENCR and KWA');
    if (has(TransformType.SN)) bad('SN transform in a Rekey SA policy');
    if (has(TransformType.GCAUTH) && !opts.registration) bad('GCAUTH outside registration');
    if (!has(TransformType.GCAUTH) && opts.registration) bad('Rekey SA policy at registration needs GCAUTH');
    const aead = isAeadEncr(out.encr!.id);
    if (aead && out.integ !== undefined && out.integ !== INTEG_NONE) bad('INTEG with an AEAD cipher');
    if (!aead && (out.integ === undefined || out.integ === INTEG_NONE)) bad('non-AEAD cipher without INTEG');
  } else if (p.protocol === GikeProtocol.ESP) {
    if (!has(TransformType.ENCR) || !has(TransformType.SN)) bad('ESP policy needs ENCR and SN');
    if (has(TransformType.KWA) || has(TransformType.GCAUTH)) bad('KWA/GCAUTH in an ESP policy');
  } else if (p.protocol === GikeProtocol.AH) {
    if (!has(TransformType.INTEG) || !has(TransformType.SN)) bad('AH policy needs INTEG and SN');
    if (has(TransformType.ENCR) || has(TransformType.KWA) || has(TransformType.GCAUTH)) {
      bad('ENCR/KWA/GCAUTH in an AH policy');
    }
  }
  return out;
}

/** Builds a transform list in the order ENCR, INTEG, SN, KWA, GCAUTH. */
export function gsaTransforms(set: GsaTransformSet): Transform[] {
  const out: Transform[] = [];
  if (set.encr) {
    out.push({
      type: TransformType.ENCR,
      id: set.encr.id,
      attributes:
        set.encr.keyLength === undefined
          ? []
          : [{ type: TRANSFORM_ATTR_KEY_LENGTH, value: u16(set.encr.keyLength, 'Key Length') }],
    });
  }
  if (set.integ !== undefined) out.push({ type: TransformType.INTEG, id: set.integ, attributes: [] });
  if (set.sn !== undefined) out.push({ type: TransformType.SN, id: set.sn, attributes: [] });
  if (set.kwa !== undefined) out.push({ type: TransformType.KWA, id: set.kwa, attributes: [] });
  if (set.gcauth) {
    out.push({
      type: TransformType.GCAUTH,
      id: set.gcauth.id,
      attributes:
        set.gcauth.signatureAlgorithm === undefined
          ? []
          : [{ type: TRANSFORM_ATTR_SIGNATURE_ALGORITHM_ID, value: set.gcauth.signatureAlgorithm }],
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// GSA attributes (RFC 9838 §4.4.2.2) and the private RFC 5374 ones
// ---------------------------------------------------------------------------------------------

export interface GsaSaAttributes {
  /** GSA_KEY_LIFETIME, seconds. */
  keyLifetime?: number;
  /** GSA_INITIAL_MESSAGE_ID (Rekey SA only). */
  initialMessageId?: number;
  /** GSA_NEXT_SPI values, SPI Size octets each. */
  nextSpis: Uint8Array[];
  /** Private: RFC 5374 SA direction (GsaDirection). */
  direction?: number;
  /** Private: RFC 5374 §3.1 address preservation (GsaAddressPreservation). */
  addressPreservation?: number;
  /** Private: ESP-in-UDP port (RFC 3948); absent or 0 = no UDP encapsulation. */
  udpEncapsulationPort?: number;
  /** Private: IPsec mode (GsaMode); absent = tunnel. Transport carries no address preservation but NONE. */
  mode?: number;
}

const DIRECTIONS: ReadonlySet<number> = new Set(Object.values(GsaDirection));
const PRESERVATIONS: ReadonlySet<number> = new Set(Object.values(GsaAddressPreservation));
const MODES: ReadonlySet<number> = new Set(Object.values(GsaMode));

export function parseGsaAttributes(p: GsaSaPolicy): GsaSaAttributes {
  const out: GsaSaAttributes = { nextSpis: [] };
  const seen = new Set<number>();
  const spiLen = gikeSpiLength(p.protocol);
  const ipsec = p.protocol === GikeProtocol.AH || p.protocol === GikeProtocol.ESP;
  for (const a of p.attributes) {
    switch (a.type) {
      case GsaAttr.GSA_KEY_LIFETIME:
        out.keyLifetime = once(seen, a.type, 'GSA_KEY_LIFETIME', u32(a, 'GSA_KEY_LIFETIME'));
        break;
      case GsaAttr.GSA_INITIAL_MESSAGE_ID:
        if (p.protocol !== GikeProtocol.GIKE_UPDATE) bad('GSA_INITIAL_MESSAGE_ID outside the Rekey SA policy');
        out.initialMessageId = once(seen, a.type, 'GSA_INITIAL_MESSAGE_ID', u32(a, 'GSA_INITIAL_MESSAGE_ID'));
        break;
      case GsaAttr.GSA_NEXT_SPI: {
        const v = tlv(a, 'GSA_NEXT_SPI');
        if (v.length !== spiLen) bad(`GSA_NEXT_SPI of ${v.length} octets, SPI size is ${String(spiLen)}`);
        out.nextSpis.push(v);
        break;
      }
      case GsaPrivateAttr.DIRECTION: {
        if (!ipsec) bad('direction attribute outside a Data-Security SA policy');
        const v = once(seen, a.type, 'direction', tv(a, 'direction'));
        if (!DIRECTIONS.has(v)) bad(`direction ${v}`);
        out.direction = v;
        break;
      }
      case GsaPrivateAttr.ADDRESS_PRESERVATION: {
        if (!ipsec) bad('address preservation outside a Data-Security SA policy');
        const v = once(seen, a.type, 'address preservation', tv(a, 'address preservation'));
        if (!PRESERVATIONS.has(v)) bad(`address preservation ${v}`);
        out.addressPreservation = v;
        break;
      }
      case GsaPrivateAttr.UDP_ENCAPSULATION_PORT:
        if (p.protocol !== GikeProtocol.ESP) bad('UDP encapsulation outside an ESP policy');
        out.udpEncapsulationPort = once(seen, a.type, 'UDP encapsulation', tv(a, 'UDP encapsulation'));
        break;
      case GsaPrivateAttr.MODE: {
        if (!ipsec) bad('mode attribute outside a Data-Security SA policy');
        const v = once(seen, a.type, 'mode', tv(a, 'mode'));
        if (!MODES.has(v)) bad(`mode ${v}`);
        out.mode = v;
        break;
      }
      default:
        break; // unknown attributes are ignored
    }
  }
  // RFC 5374 §3.1: address preservation is a tunnel-mode feature.
  if (out.mode === GsaMode.TRANSPORT && out.addressPreservation !== undefined && out.addressPreservation !== GsaAddressPreservation.NONE) {
    bad(`address preservation ${out.addressPreservation} with transport mode`);
  }
  return out;
}

export function gsaAttributes(v: GsaSaAttributes): GikeAttribute[] {
  const out: GikeAttribute[] = [];
  if (v.keyLifetime !== undefined) {
    out.push({ type: GsaAttr.GSA_KEY_LIFETIME, value: u32Bytes(v.keyLifetime, 'key lifetime') });
  }
  if (v.initialMessageId !== undefined) {
    out.push({ type: GsaAttr.GSA_INITIAL_MESSAGE_ID, value: u32Bytes(v.initialMessageId, 'initial message id') });
  }
  for (const spi of v.nextSpis) out.push({ type: GsaAttr.GSA_NEXT_SPI, value: spi });
  if (v.direction !== undefined) out.push({ type: GsaPrivateAttr.DIRECTION, value: u16(v.direction, 'direction') });
  if (v.addressPreservation !== undefined) {
    out.push({ type: GsaPrivateAttr.ADDRESS_PRESERVATION, value: u16(v.addressPreservation, 'address preservation') });
  }
  if (v.udpEncapsulationPort !== undefined) {
    out.push({ type: GsaPrivateAttr.UDP_ENCAPSULATION_PORT, value: u16(v.udpEncapsulationPort, 'UDP port') });
  }
  if (v.mode !== undefined) out.push({ type: GsaPrivateAttr.MODE, value: u16(v.mode, 'mode') });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Group-wide policy attributes (RFC 9838 §4.4.3.1) and the private policy token
// ---------------------------------------------------------------------------------------------

export interface GwAttributes {
  /** GWP_ATD, seconds. */
  atd?: number;
  /** GWP_DTD, seconds. */
  dtd?: number;
  /** GWP_SENDER_ID_BITS. */
  senderIdBits?: number;
  /** Private: the Group Owner's DER policy token (RFC 4534); see libs/crypto/src/policy-token.ts. */
  policyToken?: Uint8Array;
}

/** Largest sensible Sender-ID field: the whole 64-bit IV of a counter mode (RFC 6054 §3). */
const MAX_SENDER_ID_BITS = 64;

export function parseGwAttributes(p: GsaGwPolicy): GwAttributes {
  const out: GwAttributes = {};
  const seen = new Set<number>();
  for (const a of p.attributes) {
    switch (a.type) {
      case GwpAttr.GWP_ATD:
        out.atd = once(seen, a.type, 'GWP_ATD', tv(a, 'GWP_ATD'));
        break;
      case GwpAttr.GWP_DTD:
        out.dtd = once(seen, a.type, 'GWP_DTD', tv(a, 'GWP_DTD'));
        break;
      case GwpAttr.GWP_SENDER_ID_BITS: {
        const v = once(seen, a.type, 'GWP_SENDER_ID_BITS', tv(a, 'GWP_SENDER_ID_BITS'));
        if (v === 0 || v > MAX_SENDER_ID_BITS) bad(`GWP_SENDER_ID_BITS ${v}`);
        out.senderIdBits = v;
        break;
      }
      case GWP_PRIV_POLICY_TOKEN:
        out.policyToken = once(seen, a.type, 'policy token', tlv(a, 'policy token'));
        break;
      default:
        break;
    }
  }
  return out;
}

export function gwAttributes(v: GwAttributes): GikeAttribute[] {
  const out: GikeAttribute[] = [];
  if (v.atd !== undefined) out.push({ type: GwpAttr.GWP_ATD, value: u16(v.atd, 'ATD') });
  if (v.dtd !== undefined) out.push({ type: GwpAttr.GWP_DTD, value: u16(v.dtd, 'DTD') });
  if (v.senderIdBits !== undefined) {
    out.push({ type: GwpAttr.GWP_SENDER_ID_BITS, value: u16(v.senderIdBits, 'sender ID bits') });
  }
  if (v.policyToken !== undefined) out.push({ type: GWP_PRIV_POLICY_TOKEN, value: v.policyToken });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Key bags (RFC 9838 §4.5.2, §4.5.3); SA_KEY / WRAP_KEY values are Wrapped Keys (§4.5.4)
// ---------------------------------------------------------------------------------------------

function wrapped(v: Uint8Array): WrappedKey {
  return wrappedKey.decode(v, 0, v.length);
}

function wrappedBytes(w: WrappedKey): Uint8Array {
  return wrappedKey.encode(w);
}

/**
 * The SA_KEY values (Wrapped Keys, still wrapped) of a group key bag. Their Key ID MUST be zero
 * (§4.5.2.1); AH/ESP bags carry exactly one, Rekey SA bags one or more (several only in GSA_REKEY).
 */
export function parseGroupKeyBag(b: GroupKeyBag, opts: { rekey: boolean } = { rekey: false }): { saKeys: WrappedKey[] } {
  const saKeys: WrappedKey[] = [];
  for (const a of b.attributes) {
    if (a.type !== GroupKeyBagAttr.SA_KEY) continue;
    const w = wrapped(tlv(a, 'SA_KEY'));
    if (w.keyId !== GIKE_DEFAULT_KEY_ID) bad('SA_KEY with a non-zero Key ID');
    saKeys.push(w);
  }
  if (saKeys.length === 0) bad('group key bag without SA_KEY');
  const many = b.protocol === GikeProtocol.GIKE_UPDATE && opts.rekey;
  if (saKeys.length > 1 && !many) bad('more than one SA_KEY in this key bag');
  return { saKeys };
}

export function groupKeyBag(protocol: number, spi: Uint8Array, saKeys: readonly WrappedKey[]): GroupKeyBag {
  return {
    kind: 'group',
    protocol,
    spi,
    attributes: saKeys.map((w) => ({ type: GroupKeyBagAttr.SA_KEY, value: wrappedBytes(w) })),
  };
}

export interface MemberKeyBagContents {
  /** WRAP_KEY values (Wrapped Keys with a non-zero Key ID), in order. */
  wrapKeys: WrappedKey[];
  /** AUTH_KEY: DER SubjectPublicKeyInfo of the GCKS rekey signing key. */
  authKey?: Uint8Array;
  /** GM_SENDER_ID values. */
  senderIds: number[];
}

export function parseMemberKeyBag(b: MemberKeyBag): MemberKeyBagContents {
  const out: MemberKeyBagContents = { wrapKeys: [], senderIds: [] };
  const seen = new Set<number>();
  for (const a of b.attributes) {
    switch (a.type) {
      case MemberKeyBagAttr.WRAP_KEY: {
        const w = wrapped(tlv(a, 'WRAP_KEY'));
        if (w.keyId === GIKE_DEFAULT_KEY_ID) bad('WRAP_KEY with Key ID zero');
        out.wrapKeys.push(w);
        break;
      }
      case MemberKeyBagAttr.AUTH_KEY: {
        const v = once(seen, a.type, 'AUTH_KEY', tlv(a, 'AUTH_KEY'));
        if (v.length === 0) bad('empty AUTH_KEY');
        out.authKey = v;
        break;
      }
      case MemberKeyBagAttr.GM_SENDER_ID: {
        const v = tlv(a, 'GM_SENDER_ID');
        if (v.length === 0 || v.length > GM_SENDER_ID_LENGTH) bad(`GM_SENDER_ID of ${v.length} octets`);
        let id = 0;
        for (const byte of v) id = id * 256 + byte;
        out.senderIds.push(id);
        break;
      }
      default:
        break;
    }
  }
  return out;
}

export function memberKeyBag(v: MemberKeyBagContents): MemberKeyBag {
  const attributes: GikeAttribute[] = v.wrapKeys.map((w) => ({ type: MemberKeyBagAttr.WRAP_KEY, value: wrappedBytes(w) }));
  if (v.authKey !== undefined) attributes.push({ type: MemberKeyBagAttr.AUTH_KEY, value: v.authKey });
  for (const id of v.senderIds) {
    attributes.push({ type: MemberKeyBagAttr.GM_SENDER_ID, value: u32Bytes(id, 'sender ID') });
  }
  return { kind: 'member', attributes };
}
