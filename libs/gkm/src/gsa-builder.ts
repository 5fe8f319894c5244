import type { KeyObject } from 'node:crypto';
import {
  GikeProtocol,
  GsaMode,
  IkePayload,
  NotifyType,
  groupKeyBag,
  gsaAttributes,
  gsaTransforms,
  gwAttributes,
  memberKeyBag,
  payload,
  writeU32,
  type GsaPayload,
  type GsaPolicy,
  type GwAttributes,
  type IkePayloadEntry,
  type KdPayload,
  type KeyBag,
  type TrafficSelector,
  type WrappedKey,
} from '@app/codec';
import { dataSaKeyLength, rekeySaKeyLength, SA_KEY_ID, wrapKey } from './gsa-keys.js';

/**
 * GCKS side: the GSA and KD payloads of GSA_AUTH / GSA_REGISTRATION responses (RFC 9838 §2.3.1,
 * §2.3.2), GSA_REKEY (§2.4.1) and GSA_INBAND_REKEY (§2.4.2), built from group state.
 *
 * The GSA_AUTH response is `HDR, SK{IDr, [CERT,] AUTH, GSA, KD, [N]}`: the IKE layer supplies IDr,
 * CERT and AUTH and appends `groupPayloads(...)`; a refusal is `HDR, SK{IDr, [CERT,] AUTH, N}` with
 * `registrationRefusal(...)`. GSA_REGISTRATION answers `SK{GSA, KD, [N]}` or `SK{N}`.
 */

/** A Data-Security SA (TEK) as the GCKS holds it. */
export interface DataSaParams {
  /** GikeProtocol.ESP (default) or AH. */
  protocol?: number;
  spi: number;
  source: TrafficSelector;
  destination: TrafficSelector;
  encrId: number;
  keyBits: number;
  integId?: number;
  /** Sequence Numbers transform: 0 single sender, 2 "32-bit Unspecified Numbers" for many senders. */
  sn: number;
  lifetimeSeconds?: number;
  direction?: number;
  /** RFC 5374 §3.1; tunnel mode only: not sent for a transport-mode SA. */
  addressPreservation?: number;
  udpEncapsulationPort?: number;
  /**
   * GsaMode; absent = tunnel. Only transport is sent (GsaPrivateAttr.MODE): absence already means
   * tunnel, so tunnel-mode GSAs stay as before and older members read them unchanged.
   */
  mode?: number;
  nextSpis?: number[];
  /** Encryption key | integrity key (RFC 9838 §3.4). */
  keyMaterial: Uint8Array;
}

/** The multicast Rekey SA (KEK) as the GCKS holds it. */
export interface RekeySaParams {
  spi: Uint8Array;
  source: TrafficSelector;
  destination: TrafficSelector;
  encrId: number;
  keyBits: number;
  integId?: number;
  kwaId: number;
  gcauth: { id: number; signatureAlgorithm?: Uint8Array };
  lifetimeSeconds?: number;
  initialMessageId?: number;
  nextSpis?: Uint8Array[];
  /** GSK_e | GSK_a | GSK_w (RFC 9838 §3.4). */
  keyMaterial: Uint8Array;
}

export interface MemberBagParams {
  /** The member's LKH path keys, already wrapped (leaf under GSK_w, each parent under its child). */
  wrapKeys?: WrappedKey[];
  /** The GCKS rekey signing key's public part (AUTH_KEY, SubjectPublicKeyInfo). */
  authKey?: KeyObject;
  senderIds?: number[];
}

export interface GroupPayloadsOptions {
  rekey?: RekeySaParams;
  /** Wrapped copies of the Rekey SA key (LKH: one per covering subtree); default one under gskW. */
  rekeySaKeys?: WrappedKey[];
  data: readonly DataSaParams[];
  groupWide?: GwAttributes;
  /** The default KWK of the SA that carries the message: the IKE SA's or the current Rekey SA's GSK_w. */
  gskW: Uint8Array;
  member?: MemberBagParams;
  /** GSA_AUTH / GSA_REGISTRATION (GCAUTH and member bag allowed) versus a rekey. */
  registration: boolean;
}

/** DER SubjectPublicKeyInfo per key: exporting costs far more than the rest of a registration's payloads. */
const spkiCache = new WeakMap<KeyObject, Uint8Array>();
function spkiOf(key: KeyObject): Uint8Array {
  let der = spkiCache.get(key);
  if (!der) {
    der = new Uint8Array(key.export({ type: 'spki', format: 'der' }));
    spkiCache.set(key, der);
  }
  return der;
}

function spiBytes(spi: number): Uint8Array {
  const b = new Uint8Array(4);
  writeU32(b, 0, spi >>> 0);
  return b;
}

export function buildGsa(o: Pick<GroupPayloadsOptions, 'rekey' | 'data' | 'groupWide' | 'registration'>): GsaPayload {
  const policies: GsaPolicy[] = [];
  if (o.rekey) {
    const r = o.rekey;
    policies.push({
      kind: 'sa',
      protocol: GikeProtocol.GIKE_UPDATE,
      spi: r.spi,
      source: r.source,
      destination: r.destination,
      transforms: gsaTransforms({
        encr: { id: r.encrId, keyLength: r.keyBits },
        ...(r.integId !== undefined ? { integ: r.integId } : {}),
        kwa: r.kwaId,
        // The GCAUTH transform appears only at registration (RFC 9838 §4.4.2.1).
        ...(o.registration ? { gcauth: r.gcauth } : {}),
      }),
      attributes: gsaAttributes({
        ...(r.lifetimeSeconds !== undefined ? { keyLifetime: r.lifetimeSeconds } : {}),
        ...(r.initialMessageId ? { initialMessageId: r.initialMessageId } : {}),
        nextSpis: r.nextSpis ?? [],
      }),
    });
  }
  for (const d of o.data) {
    const protocol = d.protocol ?? GikeProtocol.ESP;
    const transport = d.mode === GsaMode.TRANSPORT;
    policies.push({
      kind: 'sa',
      protocol,
      spi: spiBytes(d.spi),
      source: d.source,
      destination: d.destination,
      transforms: gsaTransforms({
        ...(protocol === GikeProtocol.ESP ? { encr: { id: d.encrId, keyLength: d.keyBits } } : {}),
        ...(d.integId !== undefined ? { integ: d.integId } : {}),
        sn: d.sn,
      }),
      attributes: gsaAttributes({
        ...(d.lifetimeSeconds !== undefined ? { keyLifetime: d.lifetimeSeconds } : {}),
        nextSpis: (d.nextSpis ?? []).map(spiBytes),
        ...(d.direction !== undefined ? { direction: d.direction } : {}),
        ...(d.addressPreservation !== undefined && !transport ? { addressPreservation: d.addressPreservation } : {}),
        ...(d.udpEncapsulationPort !== undefined ? { udpEncapsulationPort: d.udpEncapsulationPort } : {}),
        ...(transport ? { mode: GsaMode.TRANSPORT } : {}),
      }),
    });
  }
  const gw = gwAttributes(o.groupWide ?? {});
  if (gw.length > 0) policies.push({ kind: 'gw', attributes: gw });
  return { policies };
}

export function buildKd(o: GroupPayloadsOptions): KdPayload {
  const keyBags: KeyBag[] = [];
  if (o.rekey) {
    const want = rekeySaKeyLength({ encrId: o.rekey.encrId, keyBits: o.rekey.keyBits, integId: o.rekey.integId, kwaId: o.rekey.kwaId });
    if (o.rekey.keyMaterial.length !== want) throw new RangeError(`Rekey SA keying material of ${o.rekey.keyMaterial.length} octets, expected ${want}`);
    const saKeys = o.rekeySaKeys ?? [wrapKey(o.gskW, 0, SA_KEY_ID, o.rekey.keyMaterial)];
    keyBags.push(groupKeyBag(GikeProtocol.GIKE_UPDATE, o.rekey.spi, saKeys));
  }
  for (const d of o.data) {
    const want = dataSaKeyLength(d);
    if (d.keyMaterial.length !== want) throw new RangeError(`SA ${d.spi} keying material of ${d.keyMaterial.length} octets, expected ${want}`);
    keyBags.push(groupKeyBag(d.protocol ?? GikeProtocol.ESP, spiBytes(d.spi), [wrapKey(o.gskW, 0, SA_KEY_ID, d.keyMaterial)]));
  }
  if (o.member) {
    if (!o.registration && (o.member.senderIds?.length ?? 0) > 0) throw new RangeError('GM_SENDER_ID outside registration');
    const bag = memberKeyBag({
      wrapKeys: o.member.wrapKeys ?? [],
      ...(o.member.authKey ? { authKey: spkiOf(o.member.authKey) } : {}),
      senderIds: o.member.senderIds ?? [],
    });
    if (bag.attributes.length > 0) keyBags.push(bag);
  }
  return { keyBags };
}

/** The GSA and KD payloads (in this order) for a registration response or a rekey. */
export function groupPayloads(o: GroupPayloadsOptions): IkePayloadEntry[] {
  return [payload(IkePayload.GSA, buildGsa(o)), payload(IkePayload.KD, buildKd(o))];
}

/** A registration refusal notification (RFC 9838 §4.7): INVALID_GROUP_ID, AUTHORIZATION_FAILED, REGISTRATION_FAILED, NO_PROPOSAL_CHOSEN. */
export function registrationRefusal(notifyType: number): IkePayloadEntry {
  return payload(IkePayload.NOTIFY, { protocolId: 0, notifyType, spi: new Uint8Array(0), data: new Uint8Array(0) });
}

/** GROUP_SENDER notification data: the 4-octet count of requested Sender-IDs (RFC 9838 §4.7.4). */
export function groupSenderNotify(count: number): IkePayloadEntry {
  const data = new Uint8Array(4);
  writeU32(data, 0, count);
  return payload(IkePayload.NOTIFY, { protocolId: 0, notifyType: NotifyType.GROUP_SENDER, spi: new Uint8Array(0), data });
}
