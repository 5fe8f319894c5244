/**
 * One group as a member sees it (RFC 9838 §2.3, §2.4; RFC 5374 §4.1.1, §4.2.1): registers with
 * the first GCKS of the list that answers (GSA_AUTH), checks the Group Owner's policy token,
 * applies policy and SAs to the datapath, follows GSA_REKEY messages (leading edge installed at
 * once and activated after ATD, trailing edge deleted DTD after the switch), and re-registers when
 * it missed rekeys, when an unknown SPI arrives for its group, or before its KEK expires.
 *
 * Nothing here touches a socket or a packet: IKE datagrams go out through `deps.sendIke` and come
 * in through `onIkeDatagram`, rekeys through `onRekeyDatagram`; SAs go to the datapath's API.
 * Key bytes are never logged, nor put in status or errors.
 */
import {
  IkeExchange,
  IkePayload,
  IkeProtocol,
  NotifyType,
  formatIpAddress,
  getPayloads,
  idgKeyId,
  stripNonEspMarker,
  type DeletePayload,
  type IdPayload,
  type IkePayloadEntry,
} from '@app/codec';
import type { MemberRole, PolicyTokenContent, SkSuite, TrustAnchor } from '@app/crypto';
import type { DatapathApi, GspdEntry, SaConfig } from '@app/datapath';
import {
  GroupPayloadError,
  IkeError,
  IkeInitiator,
  acceptGroupPolicyToken,
  ikeNotify,
  openGroupPayloads,
  openGsaRekey,
  openRegistrationResponse,
  registrationRequestPayloads,
  tokenIdentityOf,
  type IkeClock,
  type IkeLocalAuth,
  type IkePath,
  type IkePeerPolicy,
  type IkeProposalConfig,
  type IkeSa,
  type IkeTimer,
  type OpenedGroupPayloads,
  type RandomBytes,
} from '@app/gkm';
import type { KeyObject } from 'node:crypto';
import { MappingError, dataSaConfig, gspdEntries, tokenAuthorizes } from './sa-mapping.js';

export interface GcksAddress {
  address: string;
  port: number;
}

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
}

export interface GroupSessionDeps {
  group: { name: string; role: MemberRole };
  gcks: readonly GcksAddress[];
  datapath: DatapathApi;
  clock: IkeClock;
  random: RandomBytes;
  /** Sends one framed IKE datagram (non-ESP marker included) from the agent's IKE socket. */
  sendIke(datagram: Uint8Array, to: GcksAddress): void;
  /** The agent's IKE socket (for the IKE path; NAT detection hashes use it). */
  localIke: { address: string; port: number };
  /** Registers/unregisters an initiator with the agent's IKE dispatcher. */
  addInitiator(i: IkeInitiator): void;
  removeInitiator(i: IkeInitiator): void;
  /** The group's GSPD entries changed; the agent merges all groups' entries and installs them. */
  setPolicy(group: string, entries: GspdEntry[]): void;
  /** An SA names this ESP-in-UDP port (the agent warns when it does not listen there). */
  onSaPort?(group: string, port: number | undefined): void;
  /** Listen for GSA_REKEY on this address and port (idempotent). */
  listenRekey(address: string, port: number): Promise<void>;
  ike: {
    proposals: IkeProposalConfig[];
    localId: IdPayload;
    localAuth: IkeLocalAuth;
    peer: IkePeerPolicy;
    remoteId?: IdPayload;
    retransmit: { timeoutMs: number; tries: number };
  };
  trustAnchor: TrustAnchor;
  kekRenewBeforeMs: number;
  log: Logger;
}

export type SaEventKind = 'installed' | 'activated' | 'retired' | 'deleted';
export interface SaEvent {
  at: number;
  spi: number;
  event: SaEventKind;
  cause: 'registration' | 'rekey' | 'delete-payload' | 'superseded';
}

export interface HeldSa {
  spi: number;
  policyId: string;
  source?: string;
  /** The SA's anti-replay window in packets; 0 = off (an A.3 SA shared by many speakers). */
  replayWindow: number;
  /** This member's Sender-ID in the SA's counter-mode IVs (RFC 6054), when the group uses them. */
  senderId?: number;
  installedAt: number;
  activateAt: number;
  deleteAt?: number;
  state: 'pending' | 'active' | 'retiring';
}

interface RekeyState {
  spi: Uint8Array;
  suite: SkSuite;
  kek: { enc: Uint8Array; integ: Uint8Array };
  gskW: Uint8Array;
  authKey?: KeyObject;
  signatureAlgorithm?: Uint8Array;
  minMessageId: number;
  expiresAt?: number;
}

export type SessionState = 'idle' | 'registering' | 'registered' | 'excluded' | 'failed' | 'closed';

export const SESSION_COUNTERS = [
  'registrations',
  'registrationFailures',
  'failovers',
  'reRegistrations',
  'rekeysAccepted',
  /** Byte-identical copies of an accepted GSA_REKEY (the GCKS sends each several times): not refusals. */
  'rekeyCopies',
  'rekeysRefused',
  'rekeysMissed',
  'rekeysUnopenable',
  'unknownSpi',
  'saInstallErrors',
  /** Data SAs the Group Owner's policy token does not authorize (RFC 5374 §4.1.3.1), not installed. */
  'saRefusedByToken',
  'deregistrations',
] as const;
export type SessionCounter = (typeof SESSION_COUNTERS)[number];

/** Accepted GSA_REKEY datagrams remembered to recognise their retransmitted copies (rekeyCopies). */
const ACCEPTED_REKEYS_KEPT = 4;

/** Backoff of registration retries after a failure (ms). */
export const FIRST_RETRY_MS = 2_000;
export const MAX_RETRY_MS = 60_000;
/** Earliest re-registration for a KEK about to expire, counted from the moment it was received (ms). */
export const MIN_KEK_RENEW_DELAY_MS = 1_000;
/** Minimum time between two re-registrations caused by unknown SPIs (ms). */
export const UNKNOWN_SPI_REREGISTER_MS = 10_000;

export class GroupSession {
  state: SessionState = 'idle';
  readonly counters: Record<SessionCounter, number> = Object.fromEntries(SESSION_COUNTERS.map((c) => [c, 0])) as Record<SessionCounter, number>;
  readonly refusals = new Map<string, number>();
  readonly timeline: SaEvent[] = [];
  readonly sas = new Map<number, HeldSa>();
  lastRekeyAt: number | undefined;
  lastRekeyMessageId: number | undefined;
  /** The last accepted GSA_REKEY datagrams (marker stripped), to recognise their copies. */
  private readonly acceptedRekeys: Buffer[] = [];
  registeredAt: number | undefined;
  /** Index in the GCKS list of the one we are registered with. */
  gcksIndex = 0;
  lastError = '';
  token: PolicyTokenContent | undefined;
  rekeyAddress: { address: string; port: number } | undefined;

  private ikeSa: IkeSa | undefined;
  private initiator: IkeInitiator | undefined;
  private rekey: RekeyState | undefined;
  private readonly knownKeys = new Map<number, Uint8Array>();
  private senderIds: number[] = [];
  private senderIdBits: number | undefined;
  private atdMs = 0;
  private dtdMs = 0;
  private renewTimer: IkeTimer | undefined;
  private retryTimer: IkeTimer | undefined;
  private retryDelayMs = FIRST_RETRY_MS;
  private readonly saTimers = new Set<IkeTimer>();
  private registering: Promise<boolean> | undefined;
  private lastUnknownSpiRegistration = -Infinity;
  private gcksIdentity: ReturnType<typeof tokenIdentityOf> | undefined;

  constructor(private readonly deps: GroupSessionDeps) {}

  get name(): string {
    return this.deps.group.name;
  }
  get role(): MemberRole {
    return this.deps.group.role;
  }
  get gcks(): GcksAddress | undefined {
    return this.deps.gcks[this.gcksIndex];
  }

  /** Registers (or re-registers); concurrent calls share one attempt. Resolves true when registered. */
  register(): Promise<boolean> {
    if (this.state === 'closed') return Promise.resolve(false);
    this.registering ??= this.registerOnce().finally(() => {
      this.registering = undefined;
    });
    return this.registering;
  }

  private async registerOnce(): Promise<boolean> {
    const wasRegistered = this.state === 'registered';
    if (wasRegistered) this.counters.reRegistrations++;
    this.state = 'registering';
    const n = this.deps.gcks.length;
    for (let k = 0; k < n; k++) {
      const index = (this.gcksIndex + k) % n;
      if (k > 0) this.counters.failovers++;
      const ok = await this.registerWith(index);
      if (ok === 'closed') return false;
      if (ok === 'ok') {
        this.gcksIndex = index;
        return true;
      }
      if (ok === 'refused') break; // a GCKS said no: another authorized one would say the same
    }
    this.counters.registrationFailures++;
    if (this.state === 'registering') {
      this.state = 'failed';
      this.scheduleRetry();
    }
    return false;
  }

  /** A failed registration is tried again, backing off from 2 s to 60 s (reset once registered). */
  private scheduleRetry(): void {
    this.retryTimer?.cancel();
    const delay = this.retryDelayMs;
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, MAX_RETRY_MS);
    this.deps.log.info('registration will be retried', { group: this.name, inMs: delay });
    this.retryTimer = this.deps.clock.setTimer(delay, () => {
      this.retryTimer = undefined;
      if (this.state === 'failed') void this.register();
    });
  }

  private async registerWith(index: number): Promise<'ok' | 'failed' | 'refused' | 'closed'> {
    const gcks = this.deps.gcks[index]!;
    const path: IkePath = { remoteAddress: gcks.address, remotePort: gcks.port, localAddress: this.deps.localIke.address, localPort: this.deps.localIke.port, marker: true };
    const idg = idgKeyId(this.name);
    const speaker = this.role === 'speaker';
    let initiator: IkeInitiator;
    try {
      initiator = new IkeInitiator({
        transport: { send: (datagram) => this.deps.sendIke(datagram, gcks) },
        clock: this.deps.clock,
        random: this.deps.random,
        retransmit: this.deps.ike.retransmit,
        path,
        proposals: this.deps.ike.proposals,
        localId: this.deps.ike.localId,
        localAuth: this.deps.ike.localAuth,
        peer: this.deps.ike.peer,
        ...(this.deps.ike.remoteId ? { remoteId: this.deps.ike.remoteId } : {}),
        authExchangeType: IkeExchange.GSA_AUTH,
        authPayloads: registrationRequestPayloads(idg, { speaker, senderIds: 1 }),
      });
    } catch (e) {
      this.fail(`cannot start IKE: ${(e as Error).message}`);
      return 'failed';
    }
    this.deps.addInitiator(initiator);
    const previous = this.initiator;
    this.initiator = initiator;
    this.deps.log.info('registering', { group: this.name, gcks: `${gcks.address}:${gcks.port}`, role: this.role });
    let established;
    try {
      established = await initiator.start();
    } catch (e) {
      this.deps.removeInitiator(initiator);
      this.initiator = previous;
      if (this.state === 'closed') return 'closed';
      const code = e instanceof IkeError ? e.code : 'ERROR';
      this.fail(`GCKS ${gcks.address}:${gcks.port}: ${code}: ${(e as Error).message}`);
      return code === 'TIMEOUT' ? 'failed' : code === 'PEER_ERROR' || code === 'AUTHENTICATION_FAILED' ? 'refused' : 'failed';
    }
    if (this.state === 'closed') {
      this.deps.removeInitiator(initiator);
      return 'closed';
    }
    const now = this.deps.clock.now();
    const result = openRegistrationResponse(established.authResponse, established.sa.state, {
      token: {
        anchor: this.deps.trustAnchor,
        now: new Date(now),
        groupName: this.name,
        ...(this.token ? { heldEdition: this.token.edition } : {}),
        self: { identity: tokenIdentityOf(this.deps.ike.localId), role: this.role },
      },
    });
    if (!result.ok) {
      this.deps.removeInitiator(initiator);
      this.initiator = previous;
      established.sa.close();
      const detail = result.reason === 'REFUSED' ? `notify ${result.notify}` : result.detail;
      this.bump(`registration:${result.reason}`);
      this.fail(`registration refused: ${result.reason} (${detail})`);
      return 'refused';
    }
    // The old IKE SA (re-registration) is no longer needed.
    if (previous && previous !== initiator) {
      this.deps.removeInitiator(previous);
      previous.sa?.close();
    }
    this.ikeSa = established.sa;
    this.gcksIdentity = tokenIdentityOf(established.sa.state.peerId, established.sa.state.peerCertificate);
    try {
      await this.apply(result.group, result.token, 'registration');
    } catch (e) {
      this.fail(`cannot apply registration: ${(e as Error).message}`);
      return 'failed';
    }
    this.state = 'registered';
    this.retryDelayMs = FIRST_RETRY_MS;
    this.registeredAt = now;
    this.counters.registrations++;
    this.deps.log.info('registered', { group: this.name, gcks: `${gcks.address}:${gcks.port}`, sas: result.group.data.length, edition: result.token?.edition });
    return 'ok';
  }

  /** An IKE datagram from a GCKS (framed as received). */
  onIkeDatagram(datagram: Uint8Array, path: IkePath): void {
    this.initiator?.receive(datagram, path);
  }

  /** A datagram received on the rekey address: GSA_REKEY, with the non-ESP marker if on port 4500. */
  onRekeyDatagram(data: Uint8Array): void {
    if (this.state === 'closed' || this.state === 'excluded') return;
    const rk = this.rekey;
    if (!rk) return this.bump('rekey:NO_REKEY_SA');
    const raw = data.length >= 4 && data[0] === 0 && data[1] === 0 && data[2] === 0 && data[3] === 0 ? stripNonEspMarker(data) : data;
    if (!raw) return this.bump('rekey:MALFORMED');
    // The policy's retransmissions of a message already applied: nothing to open or verify again (a
    // copy of the one that moved us to a new Rekey SA would otherwise be refused as WRONG_SPI).
    const bytes = Buffer.from(raw.buffer, raw.byteOffset, raw.length);
    if (this.acceptedRekeys.some((b) => b.equals(bytes))) {
      this.counters.rekeyCopies++;
      return;
    }
    const r = openGsaRekey(raw, {
      rekeySpi: rk.spi,
      suite: rk.suite,
      kek: rk.kek,
      ...(rk.authKey ? { authKey: rk.authKey } : {}),
      ...(rk.signatureAlgorithm ? { signatureAlgorithm: rk.signatureAlgorithm } : {}),
      minMessageId: rk.minMessageId,
    });
    if (!r.ok) {
      // Retransmitted copies of an accepted message land here as REPLAY: expected, counted apart.
      this.counters.rekeysRefused++;
      this.bump(`rekey:${r.reason}`);
      return;
    }
    rk.minMessageId = r.messageId + 1;
    if (r.skipped > 0 && this.knownKeys.size > 0) {
      // Lost rekeys: our key path may be stale (RFC 9838 §2.4.1.4); a fresh registration is exact.
      this.counters.rekeysMissed++;
      this.deps.log.warn('missed rekeys; re-registering', { group: this.name, skipped: r.skipped, messageId: r.messageId });
      void this.register();
      return;
    }
    let opened: OpenedGroupPayloads;
    try {
      opened = openGroupPayloads(r.payloads, { gskW: rk.gskW, knownKeys: this.knownKeys, registration: false });
    } catch (e) {
      this.counters.rekeysUnopenable++;
      if (e instanceof GroupPayloadError && e.code === 'CANNOT_UNWRAP') {
        // Every key we hold was replaced without us: we were evicted (RFC 9838 §3.2.1).
        this.deps.log.warn('excluded from the group by a rekey', { group: this.name, messageId: r.messageId });
        this.state = 'excluded';
        return;
      }
      this.bump(`rekey:${e instanceof GroupPayloadError ? e.code : 'ERROR'}`);
      return;
    }
    let token: PolicyTokenContent | undefined;
    if (opened.groupWide.policyToken) {
      const t = this.gcksIdentity
        ? acceptGroupPolicyToken(opened.groupWide, {
            anchor: this.deps.trustAnchor,
            now: new Date(this.deps.clock.now()),
            groupName: this.name,
            gcksIdentity: this.gcksIdentity,
            ...(this.token ? { heldEdition: this.token.edition } : {}),
            self: { identity: tokenIdentityOf(this.deps.ike.localId), role: this.role },
          })
        : ({ ok: false, reason: 'NO_GCKS_IDENTITY' } as const);
      if (!t.ok) {
        this.counters.rekeysRefused++;
        this.bump(`rekey-token:${t.reason}`);
        return;
      }
      token = t.token;
    }
    this.counters.rekeysAccepted++;
    this.acceptedRekeys.push(Buffer.from(bytes));
    if (this.acceptedRekeys.length > ACCEPTED_REKEYS_KEPT) this.acceptedRekeys.shift();
    this.lastRekeyAt = this.deps.clock.now();
    this.lastRekeyMessageId = r.messageId;
    const deletes = getPayloads(r.payloads, IkePayload.DELETE) as DeletePayload[];
    void this.apply(opened, token, 'rekey', deletes).catch((e: Error) => this.fail(`cannot apply rekey: ${e.message}`));
  }

  /** The datapath saw ESP for our group under an SPI we do not hold. */
  onUnknownSpi(): void {
    this.counters.unknownSpi++;
    const now = this.deps.clock.now();
    if (this.state !== 'registered' || now - this.lastUnknownSpiRegistration < UNKNOWN_SPI_REREGISTER_MS) return;
    this.lastUnknownSpiRegistration = now;
    this.deps.log.info('unknown SPI for the group; re-registering', { group: this.name });
    void this.register();
  }

  private async apply(g: OpenedGroupPayloads, token: PolicyTokenContent | undefined, cause: 'registration' | 'rekey', deletes: DeletePayload[] = []): Promise<void> {
    const now = this.deps.clock.now();
    if (token) this.token = token;
    if (g.groupWide.atd !== undefined) this.atdMs = g.groupWide.atd * 1000;
    if (g.groupWide.dtd !== undefined) this.dtdMs = g.groupWide.dtd * 1000;
    if (g.groupWide.senderIdBits !== undefined) this.senderIdBits = g.groupWide.senderIdBits;
    if (cause === 'registration') {
      this.knownKeys.clear();
      this.senderIds = g.senderIds;
    }
    for (const [id, key] of g.wrapKeys) this.knownKeys.set(id, Uint8Array.from(key));
    if (g.rekey) {
      const rk = g.rekey;
      const encr = rk.transforms.encr;
      this.rekey = {
        spi: Uint8Array.from(rk.spi),
        suite: { encrId: encr?.id ?? 0, keyBits: encr?.keyLength ?? 0, integId: rk.transforms.integ ?? 0 } as SkSuite,
        kek: { enc: Uint8Array.from(rk.gskE), integ: Uint8Array.from(rk.gskA) },
        gskW: Uint8Array.from(rk.gskW),
        ...(g.authKey ? { authKey: g.authKey } : this.rekey?.authKey ? { authKey: this.rekey.authKey } : {}),
        ...(rk.transforms.gcauth?.signatureAlgorithm ? { signatureAlgorithm: rk.transforms.gcauth.signatureAlgorithm } : {}),
        minMessageId: rk.attributes.initialMessageId ?? 0,
        ...(rk.attributes.keyLifetime ? { expiresAt: now + rk.attributes.keyLifetime * 1000 } : {}),
      };
      this.scheduleKekRenewal();
      const d = rk.policy.destination;
      this.rekeyAddress = { address: formatIpAddress(d.startAddress), port: d.startPort };
      await this.deps.listenRekey(this.rekeyAddress.address, this.rekeyAddress.port);
    }
    const ctx = {
      group: this.name,
      role: this.role,
      ...(this.senderIds[0] !== undefined ? { senderId: this.senderIds[0] } : {}),
      ...(this.senderIdBits !== undefined ? { senderIdBits: this.senderIdBits } : {}),
      // A.2: the GCKS names a speaker by the address its IKE SA comes from, which is ours here
      // (unless the IKE socket is bound to the wildcard address: then no SA is known as our own).
      ...(['0.0.0.0', '::'].includes(this.deps.localIke.address) ? {} : { localAddresses: [this.deps.localIke.address] }),
    };
    // The GCKS may only install what the Group Owner put in the group (RFC 5374 §4.1.3.1, RFC 4534
    // §3.4): an SA no data policy of the verified token covers is refused, the others go on.
    const held = this.token;
    const authorized = held
      ? g.data.filter((sa) => {
          const reason = tokenAuthorizes(sa, held);
          if (reason === undefined) return true;
          this.counters.saRefusedByToken++;
          this.deps.log.warn('SA not authorized by the policy token', { group: this.name, spi: `0x${sa.spi.toString(16)}`, edition: held.edition, reason });
          return false;
        })
      : g.data;
    const configs: SaConfig[] = [];
    for (const sa of authorized) {
      try {
        configs.push(dataSaConfig(sa, ctx));
      } catch (e) {
        if (e instanceof MappingError) {
          this.counters.saInstallErrors++;
          this.deps.log.warn('SA not installable', { group: this.name, spi: sa.spi, reason: e.message });
          continue;
        }
        throw e;
      }
    }
    if (cause === 'registration' || g.data.length > 0 || token) {
      this.deps.setPolicy(this.name, gspdEntries(this.name, this.role, authorized, this.token));
    }
    const activateAt = cause === 'registration' ? now : now + this.atdMs;
    const fresh = new Set(configs.map((c) => c.spi));
    for (const c of configs) {
      if (this.sas.has(c.spi)) continue;
      this.deps.onSaPort?.(this.name, c.udpEncapsulation ? c.udpEncapsulation.destinationPort : undefined);
      try {
        this.deps.datapath.installSa(c, { activateAt });
      } catch (e) {
        this.counters.saInstallErrors++;
        this.deps.log.warn('SA install refused by the datapath', { group: this.name, spi: c.spi, reason: (e as Error).message });
        continue;
      }
      const held: HeldSa = {
        spi: c.spi,
        policyId: c.policyId,
        ...(c.source ? { source: c.source } : {}),
        replayWindow: c.replayWindow,
        ...(c.senderId !== undefined ? { senderId: c.senderId } : {}),
        installedAt: now,
        activateAt,
        state: activateAt > now ? 'pending' : 'active',
      };
      this.sas.set(c.spi, held);
      this.event(now, c.spi, 'installed', cause);
      if (activateAt > now) this.at(activateAt, () => this.activated(held, cause));
      else this.event(now, c.spi, 'activated', cause);
    }
    // Trailing edge: what the new SAs replace stays receivable until DTD after the switch.
    const replaced = [...this.sas.values()].filter(
      (h) => !fresh.has(h.spi) && h.state !== 'retiring' && (cause === 'registration' || configs.some((c) => c.policyId === h.policyId && c.source === h.source)),
    );
    for (const h of replaced) this.retire(h, activateAt + this.dtdMs, 'superseded');
    for (const d of deletes) {
      if (d.protocolId !== IkeProtocol.ESP) continue;
      for (const s of d.spis) {
        const spi = ((s[0]! << 24) >>> 0) + ((s[1]! << 16) | (s[2]! << 8) | s[3]!);
        const h = this.sas.get(spi);
        if (h && h.state !== 'retiring') this.retire(h, now + this.dtdMs, 'delete-payload');
      }
    }
  }

  /**
   * The activation time of an SA has come. A leading edge already superseded by a newer rekey
   * before it activated stays retiring, but the datapath may still send on it until the newer one
   * activates (the latest active SA wins), so its activation is recorded all the same.
   */
  private activated(h: HeldSa, cause: SaEvent['cause']): void {
    if (this.sas.get(h.spi) !== h) return;
    if (h.state === 'pending') h.state = 'active';
    this.event(this.deps.clock.now(), h.spi, 'activated', cause);
  }

  private retire(h: HeldSa, deleteAt: number, cause: SaEvent['cause']): void {
    const now = this.deps.clock.now();
    h.state = 'retiring';
    h.deleteAt = deleteAt;
    try {
      this.deps.datapath.retireSa(h.spi, { deleteAt });
    } catch {
      // Already gone from the datapath (hard lifetime): record and forget.
    }
    this.event(now, h.spi, 'retired', cause);
    this.at(deleteAt, () => {
      if (this.sas.get(h.spi) !== h) return;
      this.deps.datapath.deleteSa(h.spi);
      this.sas.delete(h.spi);
      this.event(this.deps.clock.now(), h.spi, 'deleted', cause);
    });
  }

  private at(when: number, fn: () => void): void {
    const t = this.deps.clock.setTimer(Math.max(0, when - this.deps.clock.now()), () => {
      this.saTimers.delete(t);
      fn();
    });
    this.saTimers.add(t);
  }

  private event(at: number, spi: number, event: SaEventKind, cause: SaEvent['cause']): void {
    this.timeline.push({ at, spi, event, cause });
    if (this.timeline.length > 10_000) this.timeline.splice(0, this.timeline.length - 10_000);
    this.deps.log.info(`sa ${event}`, { group: this.name, spi: `0x${spi.toString(16)}`, cause });
  }

  private scheduleKekRenewal(): void {
    this.renewTimer?.cancel();
    this.renewTimer = undefined;
    const exp = this.rekey?.expiresAt;
    if (exp === undefined) return;
    // Never sooner than MIN_KEK_RENEW_DELAY_MS: a GCKS that answers with the same KEK must not
    // turn renewal into a busy loop.
    const when = Math.max(MIN_KEK_RENEW_DELAY_MS, exp - this.deps.kekRenewBeforeMs - this.deps.clock.now());
    this.renewTimer = this.deps.clock.setTimer(when, () => {
      this.deps.log.info('KEK about to expire; re-registering', { group: this.name });
      void this.register();
    });
  }

  private bump(key: string): void {
    this.refusals.set(key, (this.refusals.get(key) ?? 0) + 1);
  }

  private fail(message: string): void {
    this.lastError = message;
    this.deps.log.warn('group session', { group: this.name, error: message });
  }

  /** Leaves the group (GSA_REGISTRATION with NO_PROPOSAL_CHOSEN, RFC 9838 §2.3.2), deletes the IKE SA, removes SAs. */
  async close(): Promise<void> {
    const sa = this.ikeSa;
    const wasRegistered = this.state === 'registered';
    this.state = 'closed';
    this.renewTimer?.cancel();
    this.retryTimer?.cancel();
    for (const t of this.saTimers) t.cancel();
    this.saTimers.clear();
    if (sa && wasRegistered) {
      try {
        await sa.request(IkeExchange.GSA_REGISTRATION, [...registrationRequestPayloads(idgKeyId(this.name)), ikeNotify(NotifyType.NO_PROPOSAL_CHOSEN)]);
        await sa.delete();
        this.counters.deregistrations++;
      } catch (e) {
        this.deps.log.warn('de-registration not acknowledged', { group: this.name, error: (e as Error).message });
        sa.close();
      }
    }
    if (this.initiator) this.deps.removeInitiator(this.initiator);
    for (const h of this.sas.values()) this.deps.datapath.deleteSa(h.spi);
    this.sas.clear();
  }
}

export type { IkePayloadEntry };
