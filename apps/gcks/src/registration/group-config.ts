import {
  EncrId,
  GcAuthId,
  GsaAddressPreservation,
  GsaDirection,
  GsaMode,
  IdType,
  IntegId,
  TsType,
  type TrafficSelector,
} from '@app/codec';
import type { DataPolicySummary, IdentityRule, MemberRole, MemberRule, PolicyTokenContent, TokenIdentity } from '@app/crypto';
import type { GroupRekeyPolicy } from '@app/gkm';
import { hostPrefix, parseAddress, parsePrefix, prefixWithin, type IpPrefix } from '../common/ip.js';
import type { RawDb } from '../keys/raw-db.js';

/** The rows of one group that registration and rekeys read (snapshotted; refreshed on change). */
export interface GroupRow {
  id: string;
  name: string;
  address: string;
  ipVersion: number;
  serviceModel: string;
  /** Concurrent speakers allowed (A.2: each gets its own SAs; group.rules.ts). */
  maxSpeakers: number;
  rekeyAddress: string | null;
  rekeyPort: number | null;
  lkhDegree: number;
  enabled: number;
  updatedAt: string;
}
export interface PolicyRow {
  id: string;
  name: string;
  position: number;
  sourcePrefix: string;
  destinationPrefix: string;
  protocol: number | null;
  sourcePort: number | null;
  destinationPort: number | null;
  action: string;
  direction: string;
  mode: string;
  addressPreservation: string;
  udpEncapsulation: number;
  espTransform: string;
  tekLifetime: number;
  kekLifetime: number;
  atd: number;
  dtd: number;
  rekeyRetransmissions: number;
  leaveBehaviour: string;
  leaveBatchInterval: number | null;
  updatedAt: string;
}
export interface PadRow {
  id: string;
  kind: 'member' | 'gcks';
  idType: string;
  pattern: string;
  role: 'receiver' | 'speaker' | 'both' | null;
  pskSealed: string | null;
  updatedAt: string;
}

/** A protect entry as a Data-Security SA template (RFC 9838 §4.4.2; RFC 5374 attributes). */
export interface DataSaTemplate {
  policyId: string;
  name: string;
  source: TrafficSelector;
  destination: TrafficSelector;
  encrId: number;
  keyBits: number;
  integId?: number;
  sn: number;
  direction: number;
  /** NONE in transport mode (preservation is tunnel-only, RFC 5374 §3.1; not sent then). */
  addressPreservation: number;
  /** GsaMode from the policy's mode; the GSA carries it for transport only (absent = tunnel). */
  mode: number;
  udpEncapsulationPort?: number;
  lifetimeSeconds: number;
  summary: DataPolicySummary;
}

export interface GroupConfig {
  group: GroupRow;
  pad: PadRow[];
  data: DataSaTemplate[];
  rekeyPolicy: GroupRekeyPolicy;
  rekeyAddress: string;
  rekeyPort: number;
  /** Sender-IDs are handed out (counter-mode SAs shared by several speakers, RFC 9838 §2.5.1). */
  senderIds: boolean;
  /** A digest of every row above: a change means a new policy token edition. */
  fingerprint: string;
}

/** UDP port of GSA_REKEY when the group names none (RFC 9838 uses the IKE port; we keep 848 apart). */
export const DEFAULT_GSA_REKEY_PORT = 848;
/** Sender-ID field width handed out with GWP_SENDER_ID_BITS (RFC 9838 §4.4.3.1.2). */
export const SENDER_ID_BITS = 16;
/** Copies of a GSA_REKEY are this far apart. */
export const REKEY_RETRANSMIT_MS = 1000;

const UDP = 17;

const DIRECTION: Record<string, number> = { symmetric: GsaDirection.SYMMETRIC, 'sender-only': GsaDirection.SENDER_ONLY, 'receiver-only': GsaDirection.RECEIVER_ONLY };
const PRESERVATION: Record<string, number> = {
  none: GsaAddressPreservation.NONE,
  source: GsaAddressPreservation.SOURCE_ONLY,
  destination: GsaAddressPreservation.DESTINATION_ONLY,
  both: GsaAddressPreservation.SOURCE_AND_DESTINATION,
};
const TRANSFORMS: Record<string, { encrId: number; keyBits: number; integId?: number; counterMode: boolean }> = {
  'aes-gcm-128': { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 128, counterMode: true },
  'aes-gcm-256': { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 256, counterMode: true },
  'aes-cbc-128-hmac-sha256': { encrId: EncrId.ENCR_AES_CBC, keyBits: 128, integId: IntegId.AUTH_HMAC_SHA2_256_128, counterMode: false },
  'aes-cbc-256-hmac-sha256': { encrId: EncrId.ENCR_AES_CBC, keyBits: 256, integId: IntegId.AUTH_HMAC_SHA2_256_128, counterMode: false },
};

function octets(p: IpPrefix, value: bigint): Uint8Array {
  const n = p.version === 4 ? 4 : 16;
  const out = new Uint8Array(n);
  let v = value;
  for (let i = n - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** A prefix, protocol and port (null = any) as an RFC 7296 §3.13.1 range selector. */
export function selectorOf(prefixText: string, protocol: number | null, port: number | null): TrafficSelector {
  const parsed = parsePrefix(prefixText);
  if (!parsed.ok) throw new RangeError(`bad prefix ${prefixText}`);
  const p = parsed.prefix;
  const bits = p.version === 4 ? 32 : 128;
  const host = (1n << BigInt(bits - p.length)) - 1n;
  return {
    tsType: p.version === 4 ? TsType.TS_IPV4_ADDR_RANGE : TsType.TS_IPV6_ADDR_RANGE,
    ipProtocol: protocol ?? 0,
    startPort: port ?? 0,
    endPort: port ?? 0xffff,
    startAddress: octets(p, p.value),
    endAddress: octets(p, p.value | host),
  };
}

/** Reads a group's rows; undefined when the group does not exist. */
export function loadGroupConfig(db: RawDb, where: { id?: string; name?: string }): GroupConfig | undefined {
  const group = (
    where.id !== undefined
      ? db.prepare(`SELECT * FROM "groups" WHERE "id" = ?`).get(where.id)
      : db.prepare(`SELECT * FROM "groups" WHERE "name" = ?`).get(where.name)
  ) as GroupRow | undefined;
  if (!group) return undefined;
  const policies = db.prepare(`SELECT * FROM "policies" WHERE "groupId" = ? ORDER BY "position"`).all(group.id) as PolicyRow[];
  const pad = db.prepare(`SELECT * FROM "pad_rules" WHERE "groupId" = ? ORDER BY "createdAt", "id"`).all(group.id) as PadRow[];
  const protect = policies.filter((p) => p.action === 'protect');
  // Only A.3 shares an SA among speakers; A.1 has one speaker and A.2 one SA per speaker.
  const manySpeakers = group.serviceModel === 'any-to-any';
  const data = protect.map((p): DataSaTemplate => {
    const t = TRANSFORMS[p.espTransform] ?? TRANSFORMS['aes-gcm-256']!;
    const port = p.destinationPort;
    const transport = p.mode === 'transport';
    const mode = transport ? GsaMode.TRANSPORT : GsaMode.TUNNEL;
    const preservation = transport ? GsaAddressPreservation.NONE : (PRESERVATION[p.addressPreservation] ?? GsaAddressPreservation.SOURCE_AND_DESTINATION);
    return {
      policyId: p.id,
      name: p.name,
      source: selectorOf(p.sourcePrefix, p.protocol, p.sourcePort),
      destination: selectorOf(p.destinationPrefix, p.protocol, port),
      encrId: t.encrId,
      keyBits: t.keyBits,
      ...(t.integId !== undefined ? { integId: t.integId } : {}),
      // Counter modes with several speakers need distinct IVs: Sender-IDs (RFC 6054, RFC 9838 §2.5.1).
      sn: t.counterMode && manySpeakers ? 2 : 0,
      direction: DIRECTION[p.direction] ?? GsaDirection.SYMMETRIC,
      addressPreservation: preservation,
      mode,
      ...(p.udpEncapsulation ? { udpEncapsulationPort: 4500 } : {}),
      lifetimeSeconds: p.tekLifetime,
      summary: {
        name: p.name,
        source: p.sourcePrefix,
        destination: p.destinationPrefix,
        ipProtocol: p.protocol ?? 0,
        port: port ?? 0,
        direction: DIRECTION[p.direction] ?? GsaDirection.SYMMETRIC,
        addressPreservation: preservation,
        encrId: t.encrId,
        integId: t.integId ?? 0,
        keyLifetime: p.tekLifetime,
        mode,
        keyBits: t.keyBits,
      },
    };
  });
  const first = protect[0];
  const atd = first?.atd ?? 15;
  const rekeyPolicy: GroupRekeyPolicy = {
    atdSeconds: atd,
    dtdSeconds: first?.dtd ?? 15,
    tekLifetimeSeconds: protect.length > 0 ? Math.min(...protect.map((p) => p.tekLifetime)) : 3600,
    kekLifetimeSeconds: first?.kekLifetime ?? 3600,
    leave:
      first?.leaveBehaviour === 'batched'
        ? { mode: 'batched', intervalSeconds: Math.max(1, first.leaveBatchInterval ?? 60) }
        : { mode: 'immediate' },
    transmissions: 1 + Math.max(0, first?.rekeyRetransmissions ?? 2),
    retransmitIntervalMs: REKEY_RETRANSMIT_MS,
  };
  const fingerprint = JSON.stringify([group.updatedAt, policies.map((p) => [p.id, p.updatedAt]), pad.map((r) => [r.id, r.updatedAt])]);
  return {
    group,
    pad,
    data,
    rekeyPolicy,
    rekeyAddress: group.rekeyAddress ?? group.address,
    rekeyPort: group.rekeyPort ?? DEFAULT_GSA_REKEY_PORT,
    senderIds: data.some((d) => d.sn === 2),
    fingerprint,
  };
}

// ---------------------------------------------------------------------------------------------
// PAD (RFC 5374 §4.1.3, RFC 4301 §4.4.3): which rule types an IKE identity is matched against
// ---------------------------------------------------------------------------------------------

const PAD_TYPES: Record<number, string[]> = {
  [IdType.ID_FQDN]: ['san-dns'],
  [IdType.ID_RFC822_ADDR]: ['san-email'],
  [IdType.ID_IPV4_ADDR]: ['san-ip'],
  [IdType.ID_IPV6_ADDR]: ['san-ip'],
  [IdType.ID_DER_ASN1_DN]: ['subject'],
};
/** PAD idType -> IKE ID type, for the policy token's identity rules. */
const TOKEN_ID_TYPE: Record<string, number> = {
  'san-dns': IdType.ID_FQDN,
  'san-email': IdType.ID_RFC822_ADDR,
  'san-ip': IdType.ID_IPV4_ADDR,
  subject: IdType.ID_DER_ASN1_DN,
  psk: IdType.ID_FQDN,
};

/** Compiled PAD patterns (a registration checks every rule; compiling each time cost more than matching). */
const globs = new Map<string, RegExp>();
const GLOB_CACHE_SIZE = 1024;

function glob(pattern: string, value: string): boolean {
  let re = globs.get(pattern);
  if (!re) {
    re = new RegExp(`^${pattern.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 'i');
    if (globs.size >= GLOB_CACHE_SIZE) globs.delete(globs.keys().next().value!);
    globs.set(pattern, re);
  }
  return re.test(value);
}

/** Does this PAD rule name this identity? PSK rules match exactly and only PSK-authenticated peers. */
export function padRuleMatches(rule: Pick<PadRow, 'idType' | 'pattern'>, id: TokenIdentity, byCertificate: boolean): boolean {
  if (rule.idType === 'psk') return !byCertificate && rule.pattern === id.value;
  if (!byCertificate && rule.idType !== 'san-ip') return false;
  if (!(PAD_TYPES[id.idType] ?? []).includes(rule.idType)) return false;
  if (rule.idType === 'san-ip' && !rule.pattern.includes('*')) {
    const addr = parseAddress(id.value);
    const prefix = parsePrefix(rule.pattern);
    return addr !== null && prefix.ok && prefix.prefix.version === addr.version && prefixWithin(hostPrefix(addr), prefix.prefix);
  }
  return glob(rule.pattern, id.value);
}

/** The first member rule that names the identity and lets it act in `role`, if any. */
export function padAllows(pad: readonly PadRow[], id: TokenIdentity, role: MemberRole, byCertificate: boolean): PadRow | undefined {
  return pad.find(
    (r) =>
      r.kind === 'member' &&
      padRuleMatches(r, id, byCertificate) &&
      (r.role === 'both' || r.role === role),
  );
}

/** The Group Owner's policy token content for a group (RFC 4534 after RFC 5374 §4.1.3.1). */
export function tokenContent(
  cfg: GroupConfig,
  o: { edition: number; ownerKeyId: Uint8Array; gcksIdentity: string; now: Date; validitySeconds: number },
): PolicyTokenContent {
  const toRule = (r: PadRow): IdentityRule => ({ idType: TOKEN_ID_TYPE[r.idType] ?? IdType.ID_FQDN, pattern: r.pattern });
  const gcksRules = cfg.pad.filter((r) => r.kind === 'gcks').map(toRule);
  const members: MemberRule[] = cfg.pad
    .filter((r) => r.kind === 'member')
    .map((r) => ({ identity: toRule(r), maySpeak: r.role === 'speaker' || r.role === 'both', mayReceive: r.role === 'receiver' || r.role === 'both' }));
  const sec = Math.floor(o.now.getTime() / 1000) * 1000;
  return {
    groupName: cfg.group.name,
    edition: o.edition,
    notBefore: new Date(sec - 3_600_000),
    notAfter: new Date(sec + o.validitySeconds * 1000),
    ownerKeyId: o.ownerKeyId,
    gcks: gcksRules.length > 0 ? gcksRules : [{ idType: IdType.ID_FQDN, pattern: o.gcksIdentity }],
    members,
    groupPolicy: {
      rekeyAddress: cfg.rekeyAddress,
      rekeyPort: cfg.rekeyPort,
      atd: cfg.rekeyPolicy.atdSeconds,
      dtd: cfg.rekeyPolicy.dtdSeconds,
      kekLifetime: cfg.rekeyPolicy.kekLifetimeSeconds,
      rekeyAuth: GcAuthId.DIGITAL_SIGNATURE,
    },
    dataPolicy: cfg.data.map((d) => d.summary),
  };
}

/** The Rekey SA's destination selector: one multicast address, UDP, one port (RFC 9838 §4.4.2). */
/**
 * Selectors derived from a config, made once per config object (a registration reads them; the rows
 * are re-read at most once a second, giving a new object). Callers never modify them.
 */
const derived = new WeakMap<GroupConfig, { rekeyDestination: TrafficSelector; anySource: TrafficSelector }>();
function derivedOf(cfg: GroupConfig) {
  let d = derived.get(cfg);
  if (!d) {
    d = {
      rekeyDestination: selectorOf(cfg.rekeyAddress.split('/')[0]!, UDP, cfg.rekeyPort),
      anySource: selectorOf(cfg.group.ipVersion === 6 ? '::/0' : '0.0.0.0/0', UDP, null),
    };
    derived.set(cfg, d);
  }
  return d;
}

export function rekeyDestination(cfg: GroupConfig): TrafficSelector {
  return derivedOf(cfg).rekeyDestination;
}

export function anySource(cfg: GroupConfig): TrafficSelector {
  return derivedOf(cfg).anySource;
}
