import type { KeyObject } from 'node:crypto';
import {
  CodecError,
  GikeProtocol,
  IkePayload,
  getPayload,
  parseGroupKeyBag,
  parseGsaAttributes,
  parseGsaTransforms,
  parseGwAttributes,
  parseMemberKeyBag,
  type GroupKeyBag,
  type GsaSaAttributes,
  type GsaSaPolicy,
  type GsaTransformSet,
  type GwAttributes,
  type IkePayloadEntry,
  type WrappedKey,
} from '@app/codec';
import { publicKeyFromSpki } from '@app/crypto';
import { encrKeyLength, integKeyLength, splitRekeyKeys, unwrapKey } from './gsa-keys.js';

/**
 * GM side: turns the GSA and KD payloads of a registration response or a rekey into SAs ready to
 * install (RFC 9838 §2.3.3 "GM Registration Operations", §2.4.1.4 "GSA_REKEY GM Operations", §3.3
 * "GM Key Management Semantics"). Keys are matched to policies by protocol and SPI; every Wrapped
 * Key is opened with the KWK its KWK ID names (0 = the default KWK of the carrying SA, otherwise a
 * key from this message's WRAP_KEYs or from the member's working key path).
 */

export type GroupPayloadErrorCode =
  | 'MISSING_PAYLOAD' // no GSA or no KD
  | 'BAD_POLICY' // a GSA/KD substructure breaks RFC 9838 rules (the CodecError says which)
  | 'NO_KEY' // a policy has no key bag
  | 'CANNOT_UNWRAP' // no usable KWK: excluded from the group, or a wrong key
  | 'BAD_KEY_LENGTH' // unwrapped keying material of the wrong size
  | 'UNSUPPORTED'; // a transform we cannot install

export class GroupPayloadError extends Error {
  override readonly name = 'GroupPayloadError';
  constructor(
    readonly code: GroupPayloadErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

export interface OpenedDataSa {
  protocol: number;
  spi: number;
  policy: GsaSaPolicy;
  transforms: GsaTransformSet;
  attributes: GsaSaAttributes;
  encKey: Uint8Array;
  integKey: Uint8Array;
}

export interface OpenedRekeySa {
  spi: Uint8Array;
  policy: GsaSaPolicy;
  transforms: GsaTransformSet;
  attributes: GsaSaAttributes;
  gskE: Uint8Array;
  gskA: Uint8Array;
  gskW: Uint8Array;
}

export interface OpenedGroupPayloads {
  rekey?: OpenedRekeySa;
  data: OpenedDataSa[];
  groupWide: GwAttributes;
  /** Intermediate keys (WRAP_KEY) opened from this message, by Key ID, in message order. */
  wrapKeys: Map<number, Uint8Array>;
  authKey?: KeyObject;
  senderIds: number[];
}

export interface OpenGroupPayloadsOptions {
  /** The default KWK (Key ID 0) of the SA that carried the message. */
  gskW: Uint8Array;
  /** Keys of the member's working key path, by Key ID. */
  knownKeys?: ReadonlyMap<number, Uint8Array>;
  /** GSA_AUTH / GSA_REGISTRATION (true) or a rekey (false). */
  registration: boolean;
  /**
   * The group is kept by GSA_INBAND_REKEY over the IKE SA (RFC 9838 §5 table): no WRAP_KEY,
   * AUTH_KEY, GSA_INITIAL_MESSAGE_ID or GSA_NEXT_SPI, and only one SA_KEY per bag.
   */
  inband?: boolean;
}

const UDP = 17;
/** IPv4 multicast is 224.0.0.0/4 (RFC 5771), IPv6 multicast ff00::/8 (RFC 4291 §2.7). */
const IPV4_MULTICAST_MASK = 0xf0;
const IPV4_MULTICAST_PREFIX = 0xe0;
const IPV6_MULTICAST_PREFIX = 0xff;

/**
 * RFC 9838 §4.4.2: the Rekey SA's destination selector names one multicast address, UDP and one
 * port (where GSA_REKEY arrives); anything else would have the GM listen somewhere undefined.
 */
function checkRekeySelectors(p: GsaSaPolicy): void {
  const d = p.destination;
  const single = Buffer.from(d.startAddress).equals(Buffer.from(d.endAddress)) && d.startPort === d.endPort;
  const multicast = d.startAddress.length === 4 ? (d.startAddress[0]! & IPV4_MULTICAST_MASK) === IPV4_MULTICAST_PREFIX : d.startAddress[0] === IPV6_MULTICAST_PREFIX;
  if (!single || !multicast || d.ipProtocol !== UDP) {
    throw new GroupPayloadError('BAD_POLICY', 'Rekey SA destination must be one multicast address, UDP, one port');
  }
}

const spiNumber = (b: Uint8Array) => ((b[0]! << 24) >>> 0) + ((b[1]! << 16) | (b[2]! << 8) | b[3]!);
const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.from(a).equals(Buffer.from(b));

/**
 * AUTH_KEYs (the GCKS's rekey signing key, RFC 9838 §4.5.3.4) already imported, by their DER
 * SubjectPublicKeyInfo: a member that re-registers, or many members in one process (the
 * registration bench), meet the same key again; a KeyObject is immutable, so the same bytes may
 * share one. Importing a P-256 key costs ~75 µs (OpenSSL's point validation); a hit costs a hash
 * lookup. Bounded; the oldest entry goes first.
 */
const authKeys = new Map<string, KeyObject>();
const AUTH_KEY_CACHE_SIZE = 16;

function authKeyOf(spki: Uint8Array): KeyObject {
  const k = Buffer.from(spki.buffer, spki.byteOffset, spki.length).toString('base64');
  let key = authKeys.get(k);
  if (!key) {
    key = publicKeyFromSpki(spki);
    authKeys.set(k, key);
    if (authKeys.size > AUTH_KEY_CACHE_SIZE) authKeys.delete(authKeys.keys().next().value!);
  }
  return key;
}

function policyError(e: unknown): never {
  if (e instanceof CodecError) throw new GroupPayloadError('BAD_POLICY', e.message);
  throw e;
}

/** Opens WRAP_KEYs in dependency order (a key may be wrapped under one that comes later). */
function openWrapKeys(wrapped: readonly WrappedKey[], kwk: (id: number) => Uint8Array | undefined): Map<number, Uint8Array> {
  const opened = new Map<number, Uint8Array>();
  const pending = [...wrapped];
  while (pending.length > 0) {
    const i = pending.findIndex((w) => opened.has(w.kwkId) || kwk(w.kwkId) !== undefined);
    if (i < 0) break; // the rest are for other members' paths, or the member is excluded
    const w = pending.splice(i, 1)[0]!;
    const key = opened.get(w.kwkId) ?? kwk(w.kwkId)!;
    try {
      opened.set(w.keyId, unwrapKey(key, w));
    } catch {
      throw new GroupPayloadError('CANNOT_UNWRAP', `WRAP_KEY ${w.keyId} under KWK ${w.kwkId}`);
    }
  }
  return opened;
}

function openSaKey(saKeys: readonly WrappedKey[], kwk: (id: number) => Uint8Array | undefined, what: string): Uint8Array {
  for (const w of saKeys) {
    const key = kwk(w.kwkId);
    if (!key) continue;
    try {
      return unwrapKey(key, w);
    } catch {
      throw new GroupPayloadError('CANNOT_UNWRAP', `${what} SA_KEY under KWK ${w.kwkId}`);
    }
  }
  throw new GroupPayloadError('CANNOT_UNWRAP', `no KWK for any SA_KEY of ${what}`);
}

export function openGroupPayloads(payloads: readonly IkePayloadEntry[], o: OpenGroupPayloadsOptions): OpenedGroupPayloads {
  const gsa = getPayload(payloads, IkePayload.GSA);
  const kd = getPayload(payloads, IkePayload.KD);
  if (!gsa || !kd) throw new GroupPayloadError('MISSING_PAYLOAD', !gsa ? 'no GSA payload' : 'no KD payload');
  try {
    const members = kd.keyBags.filter((b) => b.kind === 'member');
    if (members.length > 1) throw new GroupPayloadError('BAD_POLICY', 'more than one member key bag');
    const member = members[0] ? parseMemberKeyBag(members[0]) : { wrapKeys: [], senderIds: [] as number[] };
    if (!o.registration && member.senderIds.length > 0) throw new GroupPayloadError('BAD_POLICY', 'GM_SENDER_ID in a rekey');
    if (o.inband && (member.wrapKeys.length > 0 || member.authKey)) {
      throw new GroupPayloadError('BAD_POLICY', 'WRAP_KEY/AUTH_KEY with in-band rekeying');
    }

    const known = o.knownKeys ?? new Map<number, Uint8Array>();
    const base = (id: number) => (id === 0 ? o.gskW : known.get(id));
    const wrapKeys = openWrapKeys(member.wrapKeys, base);
    const kwk = (id: number) => wrapKeys.get(id) ?? base(id);

    const groupBags = kd.keyBags.filter((b): b is GroupKeyBag => b.kind === 'group');
    const bagFor = (p: GsaSaPolicy) => groupBags.find((b) => b.protocol === p.protocol && sameBytes(b.spi, p.spi));

    const out: OpenedGroupPayloads = { data: [], groupWide: {}, wrapKeys, senderIds: member.senderIds };
    for (const p of gsa.policies) {
      if (p.kind === 'gw') {
        out.groupWide = parseGwAttributes(p);
        continue;
      }
      const transforms = parseGsaTransforms(p, { registration: o.registration });
      const attributes = parseGsaAttributes(p);
      if (o.inband && (attributes.initialMessageId !== undefined || attributes.nextSpis.length > 0)) {
        throw new GroupPayloadError('BAD_POLICY', 'GSA_INITIAL_MESSAGE_ID/GSA_NEXT_SPI with in-band rekeying');
      }
      const bag = bagFor(p);
      if (!bag) throw new GroupPayloadError('NO_KEY', `no key bag for protocol ${p.protocol}`);
      const { saKeys } = parseGroupKeyBag(bag, { rekey: !o.registration && !o.inband });
      const keymat = openSaKey(saKeys, kwk, `protocol ${p.protocol}`);
      if (p.protocol === GikeProtocol.GIKE_UPDATE) {
        checkRekeySelectors(p);
        if (!transforms.encr || transforms.encr.keyLength === undefined || transforms.kwa === undefined) {
          throw new GroupPayloadError('UNSUPPORTED', 'Rekey SA without an AES key length');
        }
        let keys;
        try {
          keys = splitRekeyKeys({ encrId: transforms.encr.id, keyBits: transforms.encr.keyLength, integId: transforms.integ, kwaId: transforms.kwa }, keymat);
        } catch (e) {
          throw new GroupPayloadError(e instanceof RangeError && /octets/.test(e.message) ? 'BAD_KEY_LENGTH' : 'UNSUPPORTED', (e as Error).message);
        }
        out.rekey = { spi: p.spi, policy: p, transforms, attributes, ...keys };
      } else {
        let e = 0;
        let a = 0;
        try {
          e = transforms.encr ? encrKeyLength(transforms.encr.id, transforms.encr.keyLength ?? 0) : 0;
          a = integKeyLength(transforms.integ);
        } catch (err) {
          throw new GroupPayloadError('UNSUPPORTED', (err as Error).message);
        }
        if (keymat.length !== e + a) throw new GroupPayloadError('BAD_KEY_LENGTH', `SA keying material of ${keymat.length} octets, expected ${e + a}`);
        out.data.push({ protocol: p.protocol, spi: spiNumber(p.spi), policy: p, transforms, attributes, encKey: keymat.slice(0, e), integKey: keymat.slice(e) });
      }
    }
    if (member.authKey) {
      try {
        out.authKey = authKeyOf(member.authKey);
      } catch {
        throw new GroupPayloadError('BAD_POLICY', 'AUTH_KEY is no SubjectPublicKeyInfo');
      }
    }
    return out;
  } catch (e) {
    if (e instanceof GroupPayloadError) throw e;
    return policyError(e);
  }
}
