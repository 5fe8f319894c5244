/**
 * From what the GCKS sent (RFC 9838 GSA policies and keys, the Group Owner's policy token) to
 * what the datapath takes (GSPD entries, SaConfig). Pure functions; every unusable input is a
 * typed MappingError, never a partially installed group.
 *
 * Directionality (RFC 5374 §4.1.1): a receiver-only member gets receiver-only entries and SAs, so
 * its own GSPD drops what it tries to send; a speaker gets the SA's own direction (symmetric for
 * any-to-any groups, sender-only where the GCKS declared it so). A per-speaker SA (A.2, source =
 * one speaker's address) is, when the member's own addresses are known, sender-only at its speaker
 * and receiver-only at every other member: nobody sends on another speaker's SA, and a speaker's
 * own packets reflected back to it are refused instead of delivered.
 */
import { EncrId, GsaAddressPreservation, GsaDirection, GsaMode, IntegId, formatIpAddress, ipPrefixContains, parseIpAddress, parseIpPrefix, type IpPrefix, type TrafficSelector } from '@app/codec';
import type { DataPolicySummary, MemberRole, PolicyTokenContent } from '@app/crypto';
import type { AddressPreservation, Directionality, EspTransform, GspdEntry, SaConfig } from '@app/datapath';
import type { OpenedDataSa } from '@app/gkm';

/** Anti-replay window for per-speaker SAs (RFC 4303 §3.4.3 default 64 is small for bursts). */
export const SPEAKER_REPLAY_WINDOW = 1024;

export class MappingError extends Error {
  override readonly name = 'MappingError';
  constructor(
    readonly code: 'UNSUPPORTED_TRANSFORM' | 'BAD_SELECTOR',
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

/** An address range as one address, a CIDR prefix, or undefined for "any". */
export function rangeToPrefix(start: Uint8Array, end: Uint8Array): string | undefined {
  if (start.length !== end.length) throw new MappingError('BAD_SELECTOR', 'address range of mixed families');
  const bits = start.length * 8;
  let prefix = 0;
  while (prefix < bits) {
    const byte = prefix >> 3;
    const mask = 0x80 >> (prefix & 7);
    if ((start[byte]! & mask) !== (end[byte]! & mask)) break;
    prefix++;
  }
  for (let b = prefix; b < bits; b++) {
    const byte = b >> 3;
    const mask = 0x80 >> (b & 7);
    if ((start[byte]! & mask) !== 0 || (end[byte]! & mask) === 0) throw new MappingError('BAD_SELECTOR', 'address range is not a prefix');
  }
  if (prefix === 0) return undefined;
  const text = formatIpAddress(start);
  return prefix === bits ? text : `${text}/${prefix}`;
}

export interface SelectorSummary {
  source?: string;
  destination: string;
  protocol?: number;
  port?: number | { from: number; to: number };
}

export function selectorOf(source: TrafficSelector, destination: TrafficSelector): SelectorSummary {
  const dst = rangeToPrefix(destination.startAddress, destination.endAddress);
  if (dst === undefined || dst.includes('/')) throw new MappingError('BAD_SELECTOR', 'destination must be one group address');
  const src = rangeToPrefix(source.startAddress, source.endAddress);
  const out: SelectorSummary = { destination: dst };
  if (src !== undefined) out.source = src;
  if (destination.ipProtocol !== 0) out.protocol = destination.ipProtocol;
  if (!(destination.startPort === 0 && destination.endPort === 0xffff)) {
    out.port = destination.startPort === destination.endPort ? destination.startPort : { from: destination.startPort, to: destination.endPort };
  }
  return out;
}

/** The GSPD entry id of a group's traffic to one destination (SAs link to it). */
export function policyIdOf(group: string, s: Pick<SelectorSummary, 'destination' | 'protocol' | 'port'>): string {
  const port = s.port === undefined ? '*' : typeof s.port === 'number' ? String(s.port) : `${s.port.from}-${s.port.to}`;
  return `${group}|${s.destination}|${s.protocol ?? '*'}|${port}`;
}

export function directionFor(role: MemberRole, saDirection: number | undefined): Directionality {
  if (role === 'receiver') return 'receiver-only';
  if (saDirection === GsaDirection.SENDER_ONLY) return 'sender-only';
  return 'symmetric';
}

const PRESERVATION: Record<number, AddressPreservation> = {
  [GsaAddressPreservation.NONE]: 'none',
  [GsaAddressPreservation.SOURCE_ONLY]: 'source',
  [GsaAddressPreservation.DESTINATION_ONLY]: 'destination',
  [GsaAddressPreservation.SOURCE_AND_DESTINATION]: 'both',
};

export function transformOf(sa: OpenedDataSa): EspTransform {
  const encr = sa.transforms.encr;
  const keyBits = encr?.keyLength ?? 128;
  if (keyBits !== 128 && keyBits !== 256) throw new MappingError('UNSUPPORTED_TRANSFORM', `AES key of ${keyBits} bits`);
  if (encr?.id === EncrId.ENCR_AES_GCM_16) return { kind: 'aes-gcm-16', keyBits };
  if (encr?.id === EncrId.ENCR_AES_CBC && sa.transforms.integ === IntegId.AUTH_HMAC_SHA2_256_128) return { kind: 'aes-cbc-hmac-sha256', keyBits };
  throw new MappingError('UNSUPPORTED_TRANSFORM', `ENCR ${encr?.id ?? 'none'} with INTEG ${sa.transforms.integ ?? 'none'}`);
}

export interface DataSaContext {
  group: string;
  role: MemberRole;
  /** This member's first Sender-ID and the group's GWP_SENDER_ID_BITS (RFC 6054). */
  senderId?: number;
  senderIdBits?: number;
  /** This member's own source addresses (A.2: which per-speaker SA is its own). */
  localAddresses?: readonly string[];
}

/** A per-speaker SA's direction at this member: its own sends, every other speaker's receives. */
export function perSpeakerDirection(role: MemberRole, saDirection: number | undefined, source: string, localAddresses: readonly string[] | undefined): Directionality {
  const general = directionFor(role, saDirection);
  if (!localAddresses || general === 'receiver-only') return general;
  const canonical = (text: string) => {
    try {
      return formatIpAddress(parseIpAddress(text));
    } catch {
      return undefined;
    }
  };
  const own = canonical(source);
  return own !== undefined && localAddresses.some((a) => canonical(a) === own) ? 'sender-only' : 'receiver-only';
}

/** One data-security SA as the datapath takes it. Keys are copied (the opened buffers may be reused). */
export function dataSaConfig(sa: OpenedDataSa, ctx: DataSaContext): SaConfig {
  const sel = selectorOf(sa.policy.source, sa.policy.destination);
  const perSpeaker = sel.source !== undefined && !sel.source.includes('/');
  const udpPort = sa.attributes.udpEncapsulationPort;
  const transform = transformOf(sa);
  // GsaPrivateAttr.MODE, absent = tunnel; transport preserves no address (RFC 5374 §3.1; the codec
  // refuses a transport GSA that names another preservation).
  const transport = saModeOf(sa) === GsaMode.TRANSPORT;
  const config: SaConfig = {
    spi: sa.spi,
    policyId: policyIdOf(ctx.group, sel),
    destination: sel.destination,
    ...(perSpeaker ? { source: sel.source! } : {}),
    direction: perSpeaker ? perSpeakerDirection(ctx.role, sa.attributes.direction, sel.source!, ctx.localAddresses) : directionFor(ctx.role, sa.attributes.direction),
    mode: transport ? 'transport' : 'tunnel',
    addressPreservation: PRESERVATION[saPreservationOf(sa)] ?? 'both',
    udpEncapsulation: udpPort ? { sourcePort: udpPort, destinationPort: udpPort } : false,
    transform,
    encryptionKey: Uint8Array.from(sa.encKey),
    ...(transform.kind === 'aes-cbc-hmac-sha256' ? { integrityKey: Uint8Array.from(sa.integKey) } : {}),
    // A.2 (one SA per speaker) keeps per-SA anti-replay; an SA shared by many speakers cannot (A.3).
    replayWindow: perSpeaker ? SPEAKER_REPLAY_WINDOW : 0,
    ...(ctx.senderId !== undefined && ctx.senderIdBits ? { senderId: ctx.senderId, senderIdBits: ctx.senderIdBits } : {}),
    ...(sa.attributes.keyLifetime ? { lifetime: { hard: { seconds: sa.attributes.keyLifetime } } } : {}),
  };
  return config;
}

// ---------------------------------------------------------------------------------------------
// The Group Owner's scope (RFC 5374 §4.1.3.1 PAD, RFC 4534 §3.4 data policy)
// ---------------------------------------------------------------------------------------------

/** Whether the selector's address range [start, end] lies inside the prefix (same family, start <= end). */
function rangeInside(prefix: IpPrefix, sel: TrafficSelector): boolean {
  const n = sel.startAddress.length;
  if (sel.endAddress.length !== n) return false;
  for (let i = 0; i < n; i++) {
    if (sel.startAddress[i]! !== sel.endAddress[i]!) {
      if (sel.startAddress[i]! > sel.endAddress[i]!) return false;
      break;
    }
  }
  // A prefix is contiguous: both ends inside means every address between them is.
  return ipPrefixContains(prefix, sel.startAddress, 0, n) && ipPrefixContains(prefix, sel.endAddress, 0, n);
}

function rangeText(sel: TrafficSelector): string {
  try {
    const start = formatIpAddress(sel.startAddress);
    const end = formatIpAddress(sel.endAddress);
    return start === end ? start : `${start}-${end}`;
  } catch {
    return `an address range of ${sel.startAddress.length} octets`;
  }
}

/** The GSA direction an SA states, as the GCKS encodes it (absent = symmetric, as directionFor reads it). */
function saDirectionOf(sa: OpenedDataSa): number {
  return sa.attributes.direction ?? GsaDirection.SYMMETRIC;
}

/** The mode an SA states (GsaPrivateAttr.MODE, absent = tunnel): what dataSaConfig installs and the token must state. */
function saModeOf(sa: OpenedDataSa): number {
  return sa.attributes.mode ?? GsaMode.TUNNEL;
}

/** The address preservation an SA gets (transport = none, absent = both): what dataSaConfig installs and the token must state. */
function saPreservationOf(sa: OpenedDataSa): number {
  if (saModeOf(sa) === GsaMode.TRANSPORT) return GsaAddressPreservation.NONE;
  return sa.attributes.addressPreservation ?? GsaAddressPreservation.SOURCE_AND_DESTINATION;
}

function modeName(mode: number): string {
  return mode === GsaMode.TUNNEL ? 'tunnel' : mode === GsaMode.TRANSPORT ? 'transport' : String(mode);
}

/**
 * Why one data policy of the token does not cover the SA (undefined: it does), with how far the
 * match went (the rank of the first rule that failed), to report the closest policy's reason.
 */
function policyMismatch(sa: OpenedDataSa, p: DataPolicySummary): { rank: number; reason: string } | undefined {
  const dst = sa.policy.destination;
  const src = sa.policy.source;
  const prefix = (text: string): IpPrefix | undefined => {
    try {
      return parseIpPrefix(text);
    } catch {
      return undefined;
    }
  };
  const pDst = prefix(p.destination);
  if (!pDst || !rangeInside(pDst, dst)) return { rank: 0, reason: `destination ${rangeText(dst)} outside ${p.destination}` };
  const pSrc = prefix(p.source);
  if (!pSrc || !rangeInside(pSrc, src)) return { rank: 1, reason: `source ${rangeText(src)} outside ${p.source}` };
  if (p.ipProtocol !== 0 && dst.ipProtocol !== p.ipProtocol) return { rank: 2, reason: `protocol ${dst.ipProtocol || 'any'}, policy allows ${p.ipProtocol}` };
  if (p.port !== 0 && !(dst.startPort === p.port && dst.endPort === p.port)) {
    const ports = dst.startPort === dst.endPort ? String(dst.startPort) : `${dst.startPort}-${dst.endPort}`;
    return { rank: 3, reason: `destination port ${ports}, policy allows ${p.port}` };
  }
  const encr = sa.transforms.encr?.id ?? 0;
  if (encr !== p.encrId) return { rank: 4, reason: `ENCR ${encr}, policy allows ${p.encrId}` };
  const keyBits = sa.transforms.encr?.keyLength ?? 0;
  if (keyBits !== p.keyBits) return { rank: 5, reason: `ENCR key of ${keyBits} bits, policy allows ${p.keyBits}` };
  const integ = sa.transforms.integ ?? 0;
  if (integ !== p.integId) return { rank: 6, reason: `INTEG ${integ}, policy allows ${p.integId}` };
  const direction = saDirectionOf(sa);
  if (direction !== p.direction) return { rank: 7, reason: `direction ${direction}, policy allows ${p.direction}` };
  const mode = saModeOf(sa);
  if (mode !== p.mode) return { rank: 8, reason: `mode ${modeName(mode)}, policy allows ${modeName(p.mode)}` };
  const preservation = saPreservationOf(sa);
  if (preservation !== p.addressPreservation) return { rank: 9, reason: `address preservation ${preservation}, policy allows ${p.addressPreservation}` };
  // An SA without a lifetime would be installed without one (dataSaConfig): it would outlive the
  // bound the Group Owner set.
  const lifetime = sa.attributes.keyLifetime;
  if (lifetime === undefined) return { rank: 10, reason: `no key lifetime, policy allows at most ${p.keyLifetime} s` };
  if (lifetime > p.keyLifetime) return { rank: 10, reason: `key lifetime ${lifetime} s, policy allows ${p.keyLifetime} s` };
  return undefined;
}

/**
 * Whether the Group Owner's verified policy token authorizes this data SA (RFC 5374 §4.1.3.1: the
 * group's GSPD/SAD changes stay within the flows that belong to the group; RFC 4534 §3.4: the token's
 * data policy states the group's data SAs). Undefined when at least one of the token's data
 * policies covers it: destination and source ranges inside the policy's prefixes (a per-speaker SA,
 * RFC 5374 A.2, names one speaker inside the source prefix), protocol and destination port equal
 * (0 in the policy = any), the same ENCR, ENCR key length and INTEG (0 = none), direction, mode
 * and address preservation, and a key lifetime no longer than the policy's (an SA that states none
 * is refused: it would be installed without one). Otherwise the reason,
 * from the policy that matched furthest. A token without data policies authorizes no data SA.
 */
export function tokenAuthorizes(sa: OpenedDataSa, token: Pick<PolicyTokenContent, 'dataPolicy'>): string | undefined {
  if (token.dataPolicy.length === 0) return 'the policy token states no data policy';
  let best: { rank: number; reason: string; name: string } | undefined;
  for (const p of token.dataPolicy) {
    const m = policyMismatch(sa, p);
    if (!m) return undefined;
    if (!best || m.rank > best.rank) best = { ...m, name: p.name };
  }
  return token.dataPolicy.length === 1 ? best!.reason : `closest data policy ${JSON.stringify(best!.name)}: ${best!.reason}`;
}

/**
 * The group's ordered GSPD entries: one PROTECT entry per distinct destination of its SAs (and of
 * the token's data policies, so a member can trigger registration for traffic it has no SA for).
 * Source selectors stay open on the entry; per-speaker SAs demultiplex by source themselves.
 */
export function gspdEntries(group: string, role: MemberRole, sas: readonly OpenedDataSa[], token?: PolicyTokenContent): GspdEntry[] {
  const entries = new Map<string, GspdEntry>();
  const add = (s: SelectorSummary, dir: Directionality) => {
    const id = policyIdOf(group, s);
    if (entries.has(id)) return;
    entries.set(id, {
      id,
      action: 'protect',
      direction: dir,
      groupId: group,
      selector: { destination: s.destination, ...(s.protocol !== undefined ? { protocol: s.protocol } : {}), ...(s.port !== undefined ? { destinationPort: s.port } : {}) },
    });
  };
  for (const sa of sas) add(selectorOf(sa.policy.source, sa.policy.destination), directionFor(role, sa.attributes.direction));
  for (const p of token?.dataPolicy ?? []) {
    const dst = p.destination.split('/')[0]!;
    add({ destination: dst, ...(p.ipProtocol ? { protocol: p.ipProtocol } : {}), ...(p.port ? { port: p.port } : {}) }, directionFor(role, p.direction));
  }
  return [...entries.values()];
}

/** The entry an on-demand group has before registering: protect, so a first packet triggers it. */
export function onDemandEntry(group: string, role: MemberRole, address: string, port: number): GspdEntry {
  const s: SelectorSummary = { destination: address, protocol: 17, port };
  return { id: policyIdOf(group, s), action: 'protect', direction: directionFor(role, undefined), groupId: group, selector: { destination: address, protocol: 17, destinationPort: port } };
}
