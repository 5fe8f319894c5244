import type { KeyObject } from 'node:crypto';
import {
  EncrId,
  GcAuthId,
  GIKE_MAX_POLICIES,
  IkePayload,
  IkeProtocol,
  KwaId,
  TsType,
  parseIpAddress,
  payload,
  writeU32,
  type GwAttributes,
  type IkePayloadEntry,
  type TrafficSelector,
  type WrappedKey,
} from '@app/codec';
import { signPolicyToken, type MemberRole, type RandomBytes } from '@app/crypto';
import {
  allocateSenderIds,
  buildGsaRekey,
  dataSaKeyLength,
  groupPayloads,
  nextRekeyDue,
  rekeySaKeyLength,
  signatureAlgorithmFor,
  splitRekeyKeys,
  wrapKey,
  type DataSaParams,
  type GroupAdmission,
  type RekeyReason,
  type RekeySaParams,
} from '@app/gkm';
import { LkhTree, type PathKey } from '@app/lkh';
import type { SecretBox } from '../security/secret-box.js';
import { anySource, rekeyDestination, tokenContent, SENDER_ID_BITS, type GroupConfig } from '../registration/group-config.js';
import type { GkmAudit, GkmStore } from './gkm-store.js';

/** The Rekey SA's protection (RFC 9838 §4.4.2.1): AES-GCM-256 (16-octet ICV), KW_5649_256, signed rekeys. */
export const REKEY_SHAPE = { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 256, kwaId: KwaId.KW_5649_256 } as const;
const REKEY_SUITE = { encrId: REKEY_SHAPE.encrId, keyBits: REKEY_SHAPE.keyBits, integId: 0 };
/** LKH node keys are AES-256 key-wrap keys. */
export const LKH_KEY_SIZE = 32;
/** Policy tokens are valid this long and re-signed when less than half of it is left. */
const TOKEN_VALIDITY_S = 7 * 86_400;
/** Parent-under-child path wraps kept for reuse (pathWrap). */
const PATH_WRAP_CACHE = 4096;
/** Most Sender-IDs one registration gets. */
const MAX_SENDER_IDS = 4;
/** SPIs 1..255 are reserved (RFC 4303 §2.1). */
const MIN_SPI = 256;
/**
 * LKH join pool sizes, and the window within which a refill doubles the next one. A refill of K
 * contiguous leaves takes about 2.7·K wraps; 32 keeps one GSA_REKEY's member key bag under the
 * codec's 128 attributes (GIKE_MAX_ATTRIBUTES) and near 4 KB.
 */
const POOL_MIN = 8;
const POOL_MAX = 32;
const POOL_GROW_WINDOW_MS = 1000;
/**
 * A.2 (per-speaker SAs, RFC 5374 Appendix A.2): speakers joining (or leaving) within this window are
 * announced to the group in one GSA_REKEY carrying only their SAs (or Delete payloads).
 */
export const SPEAKER_BATCH_MS = 300;
/** Per-speaker SAs in one announcing GSA_REKEY (with the GW policy well under GIKE_MAX_POLICIES). */
const SPEAKER_SAS_PER_MESSAGE = 16;
/**
 * A registration response carries every per-speaker SA in one GSA payload, next to the KEK and GW
 * policies (RFC 9838 §4.4): at most GIKE_MAX_POLICIES − 2 speaker SAs in a group.
 */
export const MAX_SPEAKER_SAS = GIKE_MAX_POLICIES - 2;

interface RekeySaKeys {
  spi: Uint8Array;
  keymat: Uint8Array;
  initialMessageId: number;
  createdAt: number;
}
interface Tek {
  policyId: string;
  spi: number;
  keymat: Uint8Array;
  createdAt: number;
}
/**
 * A.2: one speaker's SA for one protect entry. Its source selector is the speaker's address: the
 * address its IKE SA comes from (RFC 9838's GSA_AUTH carries no address of the GM, and the SA's
 * traffic selectors are the GCKS's to choose, §4.4.2), so the SA demultiplexes by SPI + destination
 * + source at the receivers (RFC 5374 §4.1.2, RFC 4301 §4.1).
 */
interface SpeakerTek extends Tek {
  identity: string;
  address: string;
}
/** Non-secret schedule state (clear column). */
export interface GroupSchedule {
  tekSince: number;
  kekSince: number;
  pendingLeaves: number[];
  firstPendingLeaveAt?: number;
  senderIdNext: number;
  /** LKH join pool: reserved leaves, when and how large the last refill was, leaves to release. */
  free?: number[];
  poolAt?: number;
  poolSize?: number;
  retired?: number[];
  fingerprint: string;
  tokenSignedAt: number;
  /** A.2: SPIs of speaker SAs not yet announced to the group, SPIs to delete, and since when. */
  pendingSpeakerSpis?: number[];
  pendingDeleteSpis?: number[];
  firstSpeakerChangeAt?: number;
}
interface SealedGroup {
  rekeySa: { spi: string; keymat: string; initialMessageId: number; createdAt: number };
  teks: { policyId: string; spi: number; keymat: string; createdAt: number }[];
  speakers?: { identity: string; address: string; policyId: string; spi: number; keymat: string; createdAt: number }[];
}

/** The per-speaker SAs a group holds for one speaker (status and tests; no key material). */
export interface SpeakerSaInfo {
  identity: string;
  address: string;
  spis: number[];
}

export interface MemberRecord {
  id: string;
  identity: string;
  role: MemberRole;
  state: 'registered' | 'left' | 'evicted';
  leaf: number | null;
  ikeSpi: string | null;
}

/** A GSA_REKEY ready to multicast: the same bytes `copies` times. */
export interface OutgoingRekey {
  messageId: number;
  bytes: Uint8Array;
}

export interface GroupKeyDeps {
  store: GkmStore;
  secrets: SecretBox;
  random: RandomBytes;
  now: () => number;
  signingKey: KeyObject;
  authKey: KeyObject;
  owner: { signingKey: KeyObject; ownerKeyId: Uint8Array };
  gcksIdentity: string;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const sealContext = (groupId: string) => `gkm_groups.sealed:${groupId}`;

/**
 * One group's key state at the GCKS: the Rekey SA (KEK), the TEKs, the LKH tree, the Message ID
 * counter and the members' leaves. Every change is persisted (one SQLite transaction, keys sealed)
 * before any key leaves the process; the caller multicasts the returned GSA_REKEY messages.
 *
 * Message IDs grow by one per GSA_REKEY for the life of the group; a new Rekey SA announces the ID
 * of its first message in GSA_INITIAL_MESSAGE_ID (RFC 9838 §4.4.2.2.2), so the counter is never
 * reset and a restart continues above the last persisted ID.
 */
export class GroupKeyState {
  private token!: Uint8Array;
  private tokenEdition: number;
  readonly members = new Map<string, MemberRecord>(); // by identity
  private readonly byLeaf = new Map<number, MemberRecord>();
  /** RFC 7427 AlgorithmIdentifier of the GCKS signing key (GCAUTH), read once. */
  private readonly signatureAlgorithm: Uint8Array;
  private readonly pathWraps = new Map<number, { parentKeyId: number; kwk: Buffer; key: Buffer; wrapped: WrappedKey }>();

  private constructor(
    public cfg: GroupConfig,
    private readonly deps: GroupKeyDeps,
    readonly tree: LkhTree,
    private rekeySa: RekeySaKeys,
    private teks: Tek[],
    public lastMessageId: number,
    tokenEdition: number,
    public schedule: GroupSchedule,
    private speakerTeks: SpeakerTek[] = [],
  ) {
    this.tokenEdition = tokenEdition;
    this.signatureAlgorithm = signatureAlgorithmFor(deps.signingKey);
  }

  /** Appendix A.2: every speaker gets SAs of its own instead of sharing the group's TEKs. */
  get perSpeaker(): boolean {
    return this.cfg.group.serviceModel === 'per-speaker';
  }

  /** The per-speaker SAs held now, by speaker. */
  speakers(): SpeakerSaInfo[] {
    const out = new Map<string, SpeakerSaInfo>();
    for (const t of this.speakerTeks) {
      let e = out.get(t.identity);
      if (!e) out.set(t.identity, (e = { identity: t.identity, address: t.address, spis: [] }));
      e.spis.push(t.spi);
    }
    return [...out.values()];
  }

  get groupId(): string {
    return this.cfg.group.id;
  }

  /** A new group: fresh Rekey SA and TEKs, an empty tree, persisted. */
  static create(cfg: GroupConfig, deps: GroupKeyDeps): GroupKeyState {
    const now = deps.now();
    const tree = new LkhTree({ degree: cfg.group.lkhDegree, keySize: LKH_KEY_SIZE, random: (b) => void b.set(deps.random(b.length)) });
    const rekeySa = freshRekeySa(deps.random, now, 0);
    const schedule: GroupSchedule = { tekSince: now, kekSince: now, pendingLeaves: [], senderIdNext: 0, fingerprint: cfg.fingerprint, tokenSignedAt: now };
    const g = new GroupKeyState(cfg, deps, tree, rekeySa, [], -1, 1, schedule);
    g.teks = g.freshTeks(now);
    g.signToken();
    deps.store.tx(() => {
      g.persistGroup();
      deps.store.saveTree(cfg.group.id, tree);
    });
    return g;
  }

  /** A group read back after a restart. */
  static restore(
    cfg: GroupConfig,
    deps: GroupKeyDeps,
    row: { sealed: string; lastMessageId: number; tokenEdition: number; stateJson: string },
    tree: LkhTree,
    members: MemberRecord[],
  ): GroupKeyState {
    const s = JSON.parse(deps.secrets.open(row.sealed, sealContext(cfg.group.id)).toString('utf8')) as SealedGroup;
    const rekeySa: RekeySaKeys = { spi: unhex(s.rekeySa.spi), keymat: unhex(s.rekeySa.keymat), initialMessageId: s.rekeySa.initialMessageId, createdAt: s.rekeySa.createdAt };
    const teks = s.teks.map((t) => ({ policyId: t.policyId, spi: t.spi, keymat: unhex(t.keymat), createdAt: t.createdAt }));
    const speakers = (s.speakers ?? []).map((t) => ({ ...t, keymat: unhex(t.keymat) }));
    const g = new GroupKeyState(cfg, deps, tree, rekeySa, teks, row.lastMessageId, row.tokenEdition, JSON.parse(row.stateJson) as GroupSchedule, speakers);
    for (const m of members) g.index(m);
    g.signToken();
    return g;
  }

  private index(m: MemberRecord): void {
    this.members.set(m.identity, m);
    if (m.leaf !== null) this.byLeaf.set(m.leaf, m);
  }

  private freshTeks(now: number): Tek[] {
    // A per-speaker group has no shared TEK: each speaker's SAs are its own (speakerTeksFor).
    if (this.perSpeaker) return [];
    return this.cfg.data.map((d) => this.freshTek(d.policyId, dataSaKeyLength(d), now));
  }

  /**
   * A new SA key and an SPI chosen by the GCKS (RFC 5374 §4.1.2; RFC 9838 §4.4.2) that no SA of the
   * group uses now, so an SPI alone never names two of its SAs.
   */
  private freshTek(policyId: string, keyLength: number, now: number, taken: ReadonlySet<number> = new Set()): Tek {
    let spi: number;
    do {
      spi = (Buffer.from(this.deps.random(4)).readUInt32BE(0) % (0xffff_ffff - MIN_SPI)) + MIN_SPI;
    } while (taken.has(spi) || this.teks.some((t) => t.spi === spi) || this.speakerTeks.some((t) => t.spi === spi));
    return { policyId, spi, keymat: new Uint8Array(this.deps.random(keyLength)), createdAt: now };
  }

  /** One speaker's SAs, one per protect entry, its address as the source selector. */
  private speakerTeksFor(identity: string, address: string, now: number, taken: Set<number>): SpeakerTek[] {
    return this.cfg.data.map((d) => {
      const t = this.freshTek(d.policyId, dataSaKeyLength(d), now, taken);
      taken.add(t.spi);
      return { ...t, identity, address };
    });
  }

  /** Every current speaker's SAs replaced (TEK rollover and membership rekeys). */
  private freshSpeakerTeks(now: number): SpeakerTek[] {
    const taken = new Set<number>(this.speakerTeks.map((t) => t.spi));
    const out: SpeakerTek[] = [];
    for (const s of this.speakers()) out.push(...this.speakerTeksFor(s.identity, s.address, now, taken));
    return out;
  }

  private sealed(): string {
    const s: SealedGroup = {
      rekeySa: { spi: hex(this.rekeySa.spi), keymat: hex(this.rekeySa.keymat), initialMessageId: this.rekeySa.initialMessageId, createdAt: this.rekeySa.createdAt },
      teks: this.teks.map((t) => ({ policyId: t.policyId, spi: t.spi, keymat: hex(t.keymat), createdAt: t.createdAt })),
      ...(this.speakerTeks.length > 0
        ? { speakers: this.speakerTeks.map((t) => ({ identity: t.identity, address: t.address, policyId: t.policyId, spi: t.spi, keymat: hex(t.keymat), createdAt: t.createdAt })) }
        : {}),
    };
    return this.deps.secrets.seal(Buffer.from(JSON.stringify(s), 'utf8'), sealContext(this.groupId));
  }

  /** The counter row's values now (read when a group commit commits). */
  private readonly counterRow = () => ({ lastMessageId: this.lastMessageId, state: this.schedule });

  /** The audit row of a rekey the GCKS made (inside the transaction that persists it). */
  private auditRekey(details: Record<string, unknown>): void {
    this.deps.store.audit({ actor: 'gcks', remoteAddress: null, action: 'rekey', entityType: 'group', entityId: this.groupId, groupId: this.groupId, details });
  }

  private persistGroup(): void {
    this.deps.store.saveGroup(this.groupId, this.sealed(), this.lastMessageId, this.tokenEdition, this.schedule);
  }

  /** Re-signs the policy token (new edition when the policy rows changed). */
  private signToken(): void {
    const now = this.deps.now();
    if (this.schedule.fingerprint !== this.cfg.fingerprint) {
      this.tokenEdition++;
      this.schedule = { ...this.schedule, fingerprint: this.cfg.fingerprint };
    }
    const content = tokenContent(this.cfg, {
      edition: this.tokenEdition,
      ownerKeyId: this.deps.owner.ownerKeyId,
      gcksIdentity: this.deps.gcksIdentity,
      now: new Date(now),
      validitySeconds: TOKEN_VALIDITY_S,
    });
    this.token = signPolicyToken(content, this.deps.owner.signingKey);
    this.schedule = { ...this.schedule, tokenSignedAt: now };
  }

  get policyToken(): Uint8Array {
    return this.token;
  }
  get edition(): number {
    return this.tokenEdition;
  }
  /** The current Rekey SA's SPI and KEK (tests and the member client read them from registration). */
  get rekeySpi(): Uint8Array {
    return this.rekeySa.spi;
  }

  /** New rows for the group (policy or PAD change): a new token edition, carried by the next rekey. */
  updateConfig(cfg: GroupConfig): boolean {
    const changed = cfg.fingerprint !== this.cfg.fingerprint;
    this.cfg = cfg;
    if (changed) {
      this.signToken();
      this.deps.store.tx(() => this.persistGroup());
    }
    return changed;
  }

  private groupWide(withToken: boolean): GwAttributes {
    if (withToken && this.deps.now() - this.schedule.tokenSignedAt > (TOKEN_VALIDITY_S * 1000) / 2) this.signToken();
    return {
      atd: this.cfg.rekeyPolicy.atdSeconds,
      dtd: this.cfg.rekeyPolicy.dtdSeconds,
      ...(this.cfg.senderIds ? { senderIdBits: SENDER_ID_BITS } : {}),
      ...(withToken ? { policyToken: this.token } : {}),
    };
  }

  private rekeyParams(sa: RekeySaKeys, o: { registration: boolean; initialMessageId?: number }): RekeySaParams {
    return {
      spi: sa.spi,
      source: anySource(this.cfg),
      destination: rekeyDestination(this.cfg),
      ...REKEY_SHAPE,
      gcauth: { id: GcAuthId.DIGITAL_SIGNATURE, signatureAlgorithm: this.signatureAlgorithm },
      lifetimeSeconds: this.cfg.rekeyPolicy.kekLifetimeSeconds,
      ...(o.initialMessageId !== undefined ? { initialMessageId: o.initialMessageId } : {}),
      keyMaterial: sa.keymat,
    };
  }

  /** The Data-Security SAs members get: the shared TEKs, or (A.2) every speaker's SAs. */
  private dataParams(only?: readonly SpeakerTek[]): DataSaParams[] {
    const out: DataSaParams[] = [];
    const shared = this.perSpeaker ? [] : this.teks;
    for (const t of only ?? [...shared, ...this.speakerTeks]) {
      const d = this.cfg.data.find((x) => x.policyId === t.policyId);
      if (!d) continue;
      const source = 'address' in t ? speakerSelector(d.source, (t as SpeakerTek).address) : d.source;
      if (!source) continue;
      out.push({
        spi: t.spi,
        source,
        destination: d.destination,
        encrId: d.encrId,
        keyBits: d.keyBits,
        ...(d.integId !== undefined ? { integId: d.integId } : {}),
        sn: d.sn,
        lifetimeSeconds: d.lifetimeSeconds,
        direction: d.direction,
        addressPreservation: d.addressPreservation,
        mode: d.mode,
        ...(d.udpEncapsulationPort !== undefined ? { udpEncapsulationPort: d.udpEncapsulationPort } : {}),
        keyMaterial: t.keymat,
      });
    }
    return out;
  }

  private gskW(sa: RekeySaKeys): Uint8Array {
    return splitRekeyKeys(REKEY_SHAPE, sa.keymat).gskW;
  }

  /** Builds, signs and protects one GSA_REKEY on `carrying` with the next Message ID. */
  private message(carrying: RekeySaKeys, payloads: ReturnType<typeof groupPayloads>): OutgoingRekey {
    const messageId = ++this.lastMessageId;
    const k = splitRekeyKeys(REKEY_SHAPE, carrying.keymat);
    const bytes = buildGsaRekey({
      rekeySpi: carrying.spi,
      messageId,
      payloads,
      suite: REKEY_SUITE,
      kek: { enc: k.gskE, integ: k.gskA },
      signingKey: this.deps.signingKey,
      random: this.deps.random,
    });
    return { messageId, bytes };
  }

  // -------------------------------------------------------------------------------------------
  // Registration
  // -------------------------------------------------------------------------------------------

  /**
   * Joins a member (RFC 9838 §2.3.4; LKH join after Wong–Gouda–Lam): a leaf of its own, its path
   * keys as WRAP_KEYs (leaf under the IKE SA's GSK_w, each parent under its child), the current
   * Rekey SA and TEKs under GSK_w, Sender-IDs for a speaker of counter-mode SAs, the policy token.
   * The leaf comes from the join pool (takeLeaf); a refill's GSA_REKEY is returned, to multicast.
   * Everything is persisted before this returns. Undefined when Sender-IDs are exhausted.
   *
   * A.2 (per-speaker group): a speaker gets SAs of its own (speakerTeksFor) unless it already holds
   * them from this address; the response carries every speaker's SAs, and the other members get the
   * new ones in one batched GSA_REKEY SPEAKER_BATCH_MS later (`speakerJoined`; nextDue 'speakers').
   * Beyond maxSpeakers concurrent speakers (or MAX_SPEAKER_SAS) the answer is a GroupRefusal.
   */
  admit(
    req: { identity: string; role: MemberRole; senderIdsRequested: number; address: string | null },
    ike: { gskW: Uint8Array; spi: string; sealedRecord: string },
    audit: Omit<GkmAudit, 'entityId' | 'groupId'>,
  ): { admission: GroupAdmission; messages: OutgoingRekey[]; member: MemberRecord; speakerJoined: boolean } | { refused: string } | undefined {
    const schedStart = this.schedule;
    const speakersStart = this.speakerTeks;
    const speakerChange = this.perSpeaker ? this.speakerChange(req) : { joined: [] as SpeakerTek[], dropped: [] as number[] };
    if ('refused' in speakerChange) return speakerChange;
    let senderIds: number[] = [];
    let senderIdNext = this.schedule.senderIdNext;
    if (req.role === 'speaker' && this.cfg.senderIds) {
      const a = allocateSenderIds({ next: senderIdNext }, { senderIdBits: SENDER_ID_BITS, maxPerRegistration: MAX_SENDER_IDS }, req.senderIdsRequested || 1);
      if (!a.ok) return undefined;
      senderIds = a.ids;
      senderIdNext = a.state.next;
    }
    const existing = this.members.get(req.identity);
    // A member registering again gives up its old leaf; it goes with the next pool refill (only this
    // member ever held its keys), or with a pending batched leave already recorded for it.
    const oldLeaf = existing?.leaf ?? null;
    this.schedule = {
      ...this.schedule,
      senderIdNext,
      pendingLeaves: this.schedule.pendingLeaves.filter((l) => l !== oldLeaf),
      retired: oldLeaf !== null ? [...(this.schedule.retired ?? []), oldLeaf] : (this.schedule.retired ?? []),
    };
    const { messages, changedNodes } = this.takeLeaf();
    const leaf = this.schedule.free![0]!;
    this.schedule = { ...this.schedule, free: this.schedule.free!.slice(1) };
    const member: MemberRecord = {
      id: existing?.id ?? this.memberId(),
      identity: req.identity,
      role: req.role,
      state: 'registered',
      leaf,
      ikeSpi: ike.spi,
    };
    const path = this.tree.memberPath(leaf);
    const joinedAt = new Date(this.deps.now()).toISOString();
    const speakersChanged = speakerChange.joined.length > 0 || speakerChange.dropped.length > 0;
    if (speakersChanged) this.applySpeakerChange(req.identity, speakerChange);
    try {
      this.persistJoin(changedNodes, member, req, senderIds, joinedAt, ike, audit, speakersChanged);
    } catch (e) {
      // Nothing of this registration is kept: the leaf goes back to the pool, and whatever the
      // failed transaction would have written for the group (a pool refill) is written on its own.
      this.speakerTeks = speakersStart;
      this.schedule = {
        ...this.schedule,
        free: [leaf, ...(this.schedule.free ?? [])],
        senderIdNext: schedStart.senderIdNext,
        pendingLeaves: schedStart.pendingLeaves,
        retired: (this.schedule.retired ?? []).filter((l) => l !== oldLeaf),
        pendingSpeakerSpis: schedStart.pendingSpeakerSpis ?? [],
        pendingDeleteSpis: schedStart.pendingDeleteSpis ?? [],
      };
      if (schedStart.firstSpeakerChangeAt === undefined) delete this.schedule.firstSpeakerChangeAt;
      else this.schedule.firstSpeakerChangeAt = schedStart.firstSpeakerChangeAt;
      try {
        this.deps.store.tx(() => {
          if (changedNodes) this.deps.store.saveTree(this.groupId, this.tree, changedNodes);
          this.persistGroup();
        });
      } catch {
        // The database refuses everything; the error below says why.
      }
      throw e;
    }
    if (oldLeaf !== null) this.byLeaf.delete(oldLeaf);
    this.index(member);
    // Leaf key under GSK_w, then each parent under its child (RFC 9838 Appendix A.2).
    const wrapKeys: WrappedKey[] = [wrapKey(ike.gskW, 0, path[0]!.keyId, path[0]!.key)];
    for (let i = 1; i < path.length; i++) wrapKeys.push(this.pathWrap(path[i - 1]!, path[i]!));
    const admission: GroupAdmission = {
      rekey: this.rekeyParams(this.rekeySa, { registration: true, initialMessageId: this.lastMessageId + 1 }),
      data: this.dataParams(),
      groupWide: this.groupWide(true),
      member: { wrapKeys, authKey: this.deps.authKey, senderIds },
    };
    return { admission, messages, member, speakerJoined: speakersChanged };
  }

  /**
   * A parent's key wrapped under its child's (RFC 9838 Appendix A.2). RFC 5649 with the fixed AIV is
   * deterministic, so the members below one node get the same wrap while both keys stay the same:
   * it is made once and reused, checked against both keys' octets (Key IDs carry only the low
   * version bits). Bounded; dropped as a whole when full.
   */
  private pathWrap(child: PathKey, parent: PathKey): WrappedKey {
    const hit = this.pathWraps.get(child.keyId);
    if (hit && hit.parentKeyId === parent.keyId && hit.kwk.equals(child.key) && hit.key.equals(parent.key)) return hit.wrapped;
    const wrapped = wrapKey(child.key, child.keyId, parent.keyId, parent.key);
    if (this.pathWraps.size >= PATH_WRAP_CACHE) this.pathWraps.clear();
    this.pathWraps.set(child.keyId, { parentKeyId: parent.keyId, kwk: Buffer.from(child.key), key: Buffer.from(parent.key), wrapped });
    return wrapped;
  }

  /**
   * What a registration changes in the per-speaker SAs: a speaker (new, or from a new address) gets
   * its own; a member registering again as a receiver, or from a new address, drops its old ones.
   */
  private speakerChange(req: { identity: string; role: MemberRole; address: string | null }): { joined: SpeakerTek[]; dropped: number[] } | { refused: string } {
    const held = this.speakerTeks.filter((t) => t.identity === req.identity);
    if (req.role !== 'speaker') return { joined: [], dropped: held.map((t) => t.spi) };
    const address = req.address === null ? undefined : plainAddress(req.address);
    const probe = this.cfg.data[0];
    if (!address || (probe && !speakerSelector(probe.source, address))) {
      return { refused: `per-speaker group: no usable source address for speaker ${req.identity} (${req.address ?? 'none'})` };
    }
    if (held.length > 0 && held.every((t) => t.address === address) && this.cfg.data.every((d) => held.some((t) => t.policyId === d.policyId))) {
      return { joined: [], dropped: [] };
    }
    const others = new Set(this.speakerTeks.filter((t) => t.identity !== req.identity).map((t) => t.identity));
    const max = this.cfg.group.maxSpeakers;
    if (others.size >= max) return { refused: `per-speaker group ${this.cfg.group.name} has its ${max} concurrent speakers (maxSpeakers)` };
    if ((others.size + 1) * this.cfg.data.length > MAX_SPEAKER_SAS) {
      return { refused: `per-speaker group ${this.cfg.group.name}: ${others.size + 1} speakers × ${this.cfg.data.length} protect entries exceed ${MAX_SPEAKER_SAS} SAs in one GSA` };
    }
    const taken = new Set(this.speakerTeks.map((t) => t.spi));
    return { joined: this.speakerTeksFor(req.identity, address, this.deps.now(), taken), dropped: held.map((t) => t.spi) };
  }

  /** Installs a speaker change and queues its announcement (only other registered members need it). */
  private applySpeakerChange(identity: string, c: { joined: SpeakerTek[]; dropped: number[] }): void {
    const dropped = new Set(c.dropped);
    this.speakerTeks = [...this.speakerTeks.filter((t) => !dropped.has(t.spi)), ...c.joined];
    let others = 0;
    for (const m of this.members.values()) if (m.state === 'registered' && m.identity !== identity) others++;
    const pending = (this.schedule.pendingSpeakerSpis ?? []).filter((spi) => !dropped.has(spi));
    const deletes = this.schedule.pendingDeleteSpis ?? [];
    this.schedule = {
      ...this.schedule,
      pendingSpeakerSpis: others > 0 ? [...pending, ...c.joined.map((t) => t.spi)] : pending,
      // Members that registered since hold even an SA never announced by rekey: always a Delete.
      pendingDeleteSpis: [...deletes, ...c.dropped],
    };
    if ((this.schedule.pendingSpeakerSpis!.length > 0 || this.schedule.pendingDeleteSpis!.length > 0) && this.schedule.firstSpeakerChangeAt === undefined) {
      this.schedule.firstSpeakerChangeAt = this.deps.now();
    }
  }

  private persistJoin(
    changedNodes: readonly number[] | undefined,
    member: MemberRecord,
    req: { address: string | null },
    senderIds: number[],
    joinedAt: string,
    ike: { spi: string; sealedRecord: string },
    audit: Omit<GkmAudit, 'entityId' | 'groupId'>,
    sealedChanged = false,
  ): void {
    this.deps.store.tx(() => {
      if (changedNodes) this.deps.store.saveTree(this.groupId, this.tree, changedNodes);
      if (sealedChanged) this.persistGroup();
      else this.deps.store.saveCounterAtCommit(this.groupId, this.counterRow);
      this.deps.store.saveMember({
        id: member.id,
        groupId: this.groupId,
        identity: member.identity,
        role: member.role,
        state: 'registered',
        address: req.address,
        senderId: senderIds[0] ?? null,
        joinedAt,
        leaf: member.leaf,
        ikeSpi: ike.spi,
      });
      this.deps.store.saveIkeSa(ike.spi, ike.sealedRecord);
      this.deps.store.audit({ ...audit, entityId: member.id, groupId: this.groupId });
    });
  }

  /**
   * Makes sure a reserved leaf is free (LKH join pool). Joins are batched ahead of registrations:
   * one tree rekey reserves `poolSize` leaves and one GSA_REKEY tells the current members the new
   * path keys, instead of one rekey and one multicast per registration. A registration takes a
   * reserved leaf and its current path. Reserved leaves older than one ATD are released (with the
   * retired leaves of re-registered members) in the next refill, so a joiner never receives path
   * keys older than that; the size grows while registrations arrive fast and shrinks when idle.
   */
  private takeLeaf(): { messages: OutgoingRekey[]; changedNodes?: readonly number[] } {
    const now = this.deps.now();
    const s = this.schedule;
    const fresh = now - (s.poolAt ?? 0) <= this.cfg.rekeyPolicy.atdSeconds * 1000;
    const free = (s.free ?? []).filter((l) => this.tree.isMember(l));
    if (free.length > 0 && fresh) {
      this.schedule = { ...s, free };
      return { messages: [] };
    }
    const size = now - (s.poolAt ?? 0) < POOL_GROW_WINDOW_MS ? Math.min(POOL_MAX, Math.max(POOL_MIN, (s.poolSize ?? POOL_MIN) * 2)) : POOL_MIN;
    const release = [...new Set([...free, ...(s.retired ?? [])])].filter((l) => this.tree.isMember(l));
    const registered = this.anyRegistered();
    const res = this.tree.rekey({ joins: size, leaves: release });
    this.schedule = { ...s, free: res.joined.map((j) => j.leaf), poolAt: now, poolSize: size, retired: [] };
    const messages: OutgoingRekey[] = [];
    if (registered) {
      // A GSA needs a KEK or TEK policy: the current Rekey SA is restated (same SPI and key), with
      // GSA_INITIAL_MESSAGE_ID naming the next message, so the member's replay floor only rises.
      const payloads = groupPayloads({
        rekey: this.rekeyParams(this.rekeySa, { registration: false, initialMessageId: this.lastMessageId + 2 }),
        data: [],
        groupWide: this.groupWide(false),
        gskW: this.gskW(this.rekeySa),
        member: { wrapKeys: [...res.rekey.wraps] },
        registration: false,
      });
      messages.push(this.message(this.rekeySa, payloads));
    }
    return { messages, changedNodes: res.changes.nodes };
  }

  /**
   * A new member's row id: a time-ordered UUID (RFC 9562 §5.7, version 7; rand_a is a counter
   * within the millisecond, §6.2 method 1), so the members' primary-key indexes grow at their end
   * instead of taking a random page per registration.
   */
  private memberId(): string {
    let ms = Math.max(this.deps.now(), this.lastIdMs);
    if (ms === this.lastIdMs) {
      if (++this.idCounter > 0xfff) {
        ms++;
        this.idCounter = 0;
      }
    } else this.idCounter = 0;
    this.lastIdMs = ms;
    const b = Buffer.from(this.deps.random(16));
    b.writeUIntBE(ms, 0, 6);
    b[6] = 0x70 | (this.idCounter >> 8);
    b[7] = this.idCounter & 0xff;
    b[8] = 0x80 | (b[8]! & 0x3f);
    const h = b.toString('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  private lastIdMs = 0;
  private idCounter = 0;

  /** Some member is registered now (stops at the first). */
  private anyRegistered(): boolean {
    for (const m of this.members.values()) if (m.state === 'registered') return true;
    return false;
  }

  /** Members registered now (reserved pool leaves are not members). */
  registeredCount(): number {
    let n = 0;
    for (const m of this.members.values()) if (m.state === 'registered') n++;
    return n;
  }

  /** The payload options of a GSA_INBAND_REKEY over a member's IKE SA (RFC 9838 §2.4.2). */
  inbandPayloads(gskW: Uint8Array): ReturnType<typeof groupPayloads> {
    const rekey = this.rekeyParams(this.rekeySa, { registration: false });
    return groupPayloads({ rekey, data: this.dataParams(), groupWide: this.groupWide(true), gskW, registration: false });
  }

  // -------------------------------------------------------------------------------------------
  // Leave and rekeys
  // -------------------------------------------------------------------------------------------

  /**
   * A member left (INFORMATIONAL Delete / GSA_REGISTRATION leave) or was evicted. Immediate leave
   * behaviour rekeys now (messages returned); batched records the leaf for the next batch.
   */
  leave(identity: string, state: 'left' | 'evicted', audit: Omit<GkmAudit, 'entityId' | 'groupId'>): { messages: OutgoingRekey[]; member?: MemberRecord } {
    const m = this.members.get(identity);
    if (!m || m.state !== 'registered' || m.leaf === null) return { messages: [] };
    const leaf = m.leaf;
    m.state = state;
    m.ikeSpi = null;
    // A.2: the speaker's SAs go at once; the group deletes them with the leave rekey (immediate) or
    // the next speaker announcement (batched leaves), and a batched leave rekey replaces the rest.
    const dropped = this.speakerTeks.filter((t) => t.identity === identity).map((t) => t.spi);
    if (dropped.length > 0) this.applySpeakerChange(identity, { joined: [], dropped });
    const now = this.deps.now();
    this.schedule = {
      ...this.schedule,
      pendingLeaves: [...this.schedule.pendingLeaves, leaf],
      firstPendingLeaveAt: this.schedule.firstPendingLeaveAt ?? now,
    };
    if (this.cfg.rekeyPolicy.leave.mode === 'immediate') {
      const messages = this.rekey('leave', () => {
        this.deps.store.setMemberState(m.id, this.groupId, state, null, null);
        this.deps.store.audit({ ...audit, entityId: m.id, groupId: this.groupId });
      });
      m.leaf = null;
      return { messages, member: m };
    }
    this.deps.store.tx(() => {
      this.deps.store.setMemberState(m.id, this.groupId, state, leaf, null);
      if (dropped.length > 0) this.persistGroup();
      else this.deps.store.saveCounter(this.groupId, this.lastMessageId, this.schedule);
      this.deps.store.audit({ ...audit, entityId: m.id, groupId: this.groupId });
    });
    return { messages: [], member: m };
  }

  /** When the next rekey is owed (ms) and why. */
  nextDue(): { at: number; reason: RekeyReason } {
    const s = this.schedule;
    if ((s.pendingSpeakerSpis?.length ?? 0) + (s.pendingDeleteSpis?.length ?? 0) > 0) {
      const at = (s.firstSpeakerChangeAt ?? this.deps.now()) + SPEAKER_BATCH_MS;
      const due = this.scheduledDue();
      return due.at <= at ? due : { at, reason: 'speakers' };
    }
    return this.scheduledDue();
  }

  private scheduledDue(): { at: number; reason: RekeyReason } {
    return nextRekeyDue(
      {
        tekSince: this.schedule.tekSince,
        kekSince: this.schedule.kekSince,
        lastMessageId: this.lastMessageId,
        pendingLeaves: this.schedule.pendingLeaves.length,
        ...(this.schedule.firstPendingLeaveAt !== undefined ? { firstPendingLeaveAt: this.schedule.firstPendingLeaveAt } : {}),
      },
      this.cfg.rekeyPolicy,
    );
  }

  /**
   * One rekey event (RFC 9838 §2.4.1; schedule in libs/gkm group-schedule.ts). With pending leaves:
   * LKH update and a new Rekey SA wrapped under the new root, on the current Rekey SA, then the new
   * TEKs on the new Rekey SA (forward access control, §3.2.1). Forced: new Rekey SA and TEKs. TEK
   * expiry: new TEKs. KEK expiry: new Rekey SA. Persisted (with `extra` writes) before returning.
   */
  rekey(reason: RekeyReason, extra?: () => void): OutgoingRekey[] {
    if (reason === 'speakers') return this.announceSpeakers();
    const now = this.deps.now();
    const leaves = this.schedule.pendingLeaves.filter((l) => this.tree.isMember(l));
    const membership = leaves.length > 0;
    const newKek = membership || reason === 'kek-expiry' || reason === 'forced';
    const newTeks = reason !== 'kek-expiry' || membership;
    const messages: OutgoingRekey[] = [];
    const old = this.rekeySa;
    let changedNodes: readonly number[] | undefined;
    let next = old;
    if (newKek) next = freshRekeySa(this.deps.random, now, 0);
    // New TEKs replace every speaker's SAs too (a departed member held them all); the agents retire
    // each old SA by its entry and source. SAs of departed speakers are deleted outright.
    const deletes = newTeks ? this.takeSpeakerDeletes() : [];
    if (newTeks) {
      this.teks = this.freshTeks(now);
      this.speakerTeks = this.freshSpeakerTeks(now);
    }
    if (membership) {
      const res = this.tree.rekey({ leaves });
      changedNodes = res.changes.nodes;
      for (const l of leaves) this.byLeaf.delete(l);
      const root = this.tree.rootKey();
      if (root) {
        next.initialMessageId = this.lastMessageId + 2;
        const first = groupPayloads({
          rekey: this.rekeyParams(next, { registration: false, initialMessageId: next.initialMessageId }),
          rekeySaKeys: [wrapKey(root, this.tree.rootKeyId, 0, next.keymat)],
          data: [],
          gskW: this.gskW(old),
          member: { wrapKeys: [...res.rekey.wraps] },
          registration: false,
        });
        messages.push(this.message(old, first));
        const teks = groupPayloads({ data: this.dataParams(), groupWide: this.groupWide(true), gskW: this.gskW(next), registration: false });
        messages.push(this.message(next, [...teks, ...deletePayloads(deletes)]));
      }
    } else if (this.tree.memberCount > 0) {
      if (newKek) next.initialMessageId = this.lastMessageId + 2;
      const payloads = groupPayloads({
        ...(newKek ? { rekey: this.rekeyParams(next, { registration: false, initialMessageId: next.initialMessageId }) } : {}),
        data: newTeks ? this.dataParams() : [],
        groupWide: this.groupWide(true),
        gskW: this.gskW(old),
        registration: false,
      });
      messages.push(this.message(old, [...payloads, ...deletePayloads(deletes)]));
    }
    if (next !== old && messages.length === 0) next.initialMessageId = this.lastMessageId + 1;
    this.rekeySa = next;
    this.schedule = {
      ...this.schedule,
      tekSince: newTeks ? now : this.schedule.tekSince,
      kekSince: newKek ? now : this.schedule.kekSince,
      pendingLeaves: membership ? [] : this.schedule.pendingLeaves.filter((l) => this.tree.isMember(l)),
      ...(membership ? { firstPendingLeaveAt: undefined } : {}),
    };
    if (membership) delete this.schedule.firstPendingLeaveAt;
    this.deps.store.tx(() => {
      if (changedNodes) this.deps.store.saveTree(this.groupId, this.tree, changedNodes);
      this.persistGroup();
      extra?.();
      this.auditRekey({ reason, messageIds: messages.map((m) => m.messageId), newKek, newTeks, leaves: leaves.length, members: this.tree.memberCount });
    });
    return messages;
  }

  get memberCount(): number {
    return this.registeredCount();
  }

  /** The SPIs to delete at the next TEK-carrying rekey; pending announcements are covered by it. */
  private takeSpeakerDeletes(): number[] {
    const deletes = this.schedule.pendingDeleteSpis ?? [];
    this.schedule = { ...this.schedule, pendingSpeakerSpis: [], pendingDeleteSpis: [] };
    delete this.schedule.firstSpeakerChangeAt;
    return deletes;
  }

  /**
   * A.2 speaker announcement: the SAs of speakers that joined since the last one, SPEAKER_SAS_PER_MESSAGE
   * per GSA_REKEY on the current Rekey SA, and Delete payloads (RFC 9838 §2.4.1) for the SAs of
   * speakers that left. No key the group holds is replaced. A message with nothing but Deletes
   * restates the current Rekey SA (a GSA needs a KEK or TEK policy), as a pool refill does.
   */
  private announceSpeakers(): OutgoingRekey[] {
    const pending = new Set(this.schedule.pendingSpeakerSpis ?? []);
    const announce = this.speakerTeks.filter((t) => pending.has(t.spi));
    const deletes = this.takeSpeakerDeletes();
    const messages: OutgoingRekey[] = [];
    if (this.anyRegistered() && (announce.length > 0 || deletes.length > 0)) {
      const chunks: SpeakerTek[][] = [];
      for (let i = 0; i < announce.length; i += SPEAKER_SAS_PER_MESSAGE) chunks.push(announce.slice(i, i + SPEAKER_SAS_PER_MESSAGE));
      if (chunks.length === 0) chunks.push([]);
      chunks.forEach((chunk, i) => {
        const payloads = groupPayloads({
          ...(chunk.length === 0 ? { rekey: this.rekeyParams(this.rekeySa, { registration: false, initialMessageId: this.lastMessageId + 2 }) } : {}),
          data: this.dataParams(chunk),
          groupWide: this.groupWide(false),
          gskW: this.gskW(this.rekeySa),
          registration: false,
        });
        messages.push(this.message(this.rekeySa, i === chunks.length - 1 ? [...payloads, ...deletePayloads(deletes)] : payloads));
      });
    }
    this.deps.store.tx(() => {
      this.deps.store.saveCounter(this.groupId, this.lastMessageId, this.schedule);
      this.auditRekey({ reason: 'speakers', messageIds: messages.map((m) => m.messageId), announced: announce.map((t) => t.spi), deleted: deletes });
    });
    return messages;
  }
}

/** An address as the GCKS's UDP socket reports it, IPv4-mapped IPv6 ('::ffff:a.b.c.d') unmapped. */
function plainAddress(text: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(text);
  return m ? m[1]! : text;
}

/**
 * The protect entry's source selector narrowed to one speaker's address (protocol and ports kept);
 * undefined when the address is unreadable or of the other family.
 */
function speakerSelector(template: TrafficSelector, address: string): TrafficSelector | undefined {
  let bytes: Uint8Array;
  try {
    bytes = parseIpAddress(address);
  } catch {
    return undefined;
  }
  if (bytes.length !== template.startAddress.length) return undefined;
  return { ...template, tsType: bytes.length === 4 ? TsType.TS_IPV4_ADDR_RANGE : TsType.TS_IPV6_ADDR_RANGE, startAddress: bytes, endAddress: Uint8Array.from(bytes) };
}

/** Delete payload for ESP SAs (RFC 7296 §3.11, carried in GSA_REKEY per RFC 9838 §2.4.1). */
function deletePayloads(spis: readonly number[]): IkePayloadEntry[] {
  if (spis.length === 0) return [];
  return [
    payload(IkePayload.DELETE, {
      protocolId: IkeProtocol.ESP,
      spiSize: 4,
      spis: spis.map((spi) => {
        const b = new Uint8Array(4);
        writeU32(b, 0, spi >>> 0);
        return b;
      }),
    }),
  ];
}

function freshRekeySa(random: RandomBytes, now: number, initialMessageId: number): RekeySaKeys {
  return { spi: new Uint8Array(random(16)), keymat: new Uint8Array(random(rekeySaKeyLength(REKEY_SHAPE))), initialMessageId, createdAt: now };
}
