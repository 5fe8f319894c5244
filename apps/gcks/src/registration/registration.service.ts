import { createSocket, type Socket } from 'node:dgram';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { EncrId, IdType, IkeExchange, IntegId, KeGroup, KwaId, NON_ESP_MARKER_LENGTH, PrfId, type IdPayload, type IdgPayload } from '@app/codec';
import { SignatureWorker, ownerKeyIdOf, parseCertificate, type Certificate } from '@app/crypto';
import {
  deriveGskW,
  groupRegistrar,
  IkeResponder,
  ikeSaFromRecord,
  ikeSaToRecord,
  tokenIdentityOf,
  type IkeClock,
  type IkePath,
  type IkePeerPolicy,
  type IkeProposalConfig,
  type IkeRefusal,
  type IkeSa,
  type IkeSaState,
  type RegistrarGroup,
  type RegistrationOutcome,
  type RekeyReason,
} from '@app/gkm';
import { NodeKeySealer } from '@app/lkh';
import { CLOCK, RANDOM_BYTES, RANDOM_POOL, type Clock, type RandomBytes } from '../common/clock.js';
import { DomainError } from '../common/domain-error.js';
import { GCKS_CONFIG, type GcksConfig } from '../config/gcks-config.js';
import { GcksKeysService } from '../keys/gcks-keys.service.js';
import { rawDb, type RawDb, type RawStatement } from '../keys/raw-db.js';
import { MasterKeyService } from '../security/master-key.service.js';
import { SecretBox } from '../security/secret-box.js';
import { GkmStore } from '../rekey/gkm-store.js';
import { GroupCommit } from '../rekey/group-commit.js';
import { GroupKeyState, LKH_KEY_SIZE, type MemberRecord, type OutgoingRekey } from '../rekey/group-key-state.js';
import { RekeySender, realTimers, type RekeyTimers } from '../rekey/rekey-sender.js';
import { loadGroupConfig, padAllows, type GroupConfig, type PadRow } from './group-config.js';

/** Where the registration responder listens (RFC 3948: 4500 with the non-ESP marker; 500 plain). */
export interface RegistrationListenOptions {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  /** The port speaks RFC 3948 framing (true for 4500, the default). */
  natT: boolean;
  /** Also listen on this plain-IKE port (500 needs root); undefined = not at all. */
  plainPort?: number;
}

export const DEFAULT_IKE_PORT = 4500;
/** Our proposals, most preferred first (RFC 7296 §3.3): GCM and CBC+HMAC, groups 19 and 31. */
export const GCKS_PROPOSALS: IkeProposalConfig[] = [
  { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 256, prfId: PrfId.PRF_HMAC_SHA2_256, group: KeGroup.ECP_256 },
  { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 256, prfId: PrfId.PRF_HMAC_SHA2_256, group: KeGroup.CURVE25519 },
  { encrId: EncrId.ENCR_AES_CBC, keyBits: 256, integId: IntegId.AUTH_HMAC_SHA2_256_128, prfId: PrfId.PRF_HMAC_SHA2_256, group: KeGroup.ECP_256 },
  { encrId: EncrId.ENCR_AES_CBC, keyBits: 256, integId: IntegId.AUTH_HMAC_SHA2_256_128, prfId: PrfId.PRF_HMAC_SHA2_256, group: KeGroup.CURVE25519 },
];
/** The KWA both ends use for GSK_w (the IKE proposals carry no KWA transform; see README). */
const KWA = KwaId.KW_5649_256;
/** Group rows are re-read at most this often (policy and PAD changes take effect within it). */
const CONFIG_TTL_MS = 1000;
/** Group rows are polled this often for policy changes that must reach members (token edition). */
const POLICY_POLL_MS = 2000;
/** Injection token for timers (tests may inject their own). */
export const REKEY_TIMERS = Symbol('REKEY_TIMERS');

/** Registrations committed together at most (group commit; their answers wait for the COMMIT). */
const MAX_BATCH = 16;
/** RFC 7296 §3.1: the Exchange Type octet of the IKE header, after the RFC 3948 marker if any. */
const EXCHANGE_TYPE_OFFSET = 18;
const isSaInit = (datagram: Uint8Array, marker: boolean) => datagram[EXCHANGE_TYPE_OFFSET + (marker ? NON_ESP_MARKER_LENGTH : 0)] === IkeExchange.IKE_SA_INIT;
const ikeSaContext = (spi: string) => `gkm_ike_sas.sealed:${spi}`;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

interface Loaded {
  state: GroupKeyState;
  loadedAt: number;
  timer?: unknown;
  /** Token edition the members have last been sent by multicast. */
  editionSent: number;
}

/**
 * SO_RCVBUF asked for each IKE socket: requests that arrive while the event loop is busy (a group
 * commit, a GC pause) wait in the kernel; the default 208 KB holds only ~60-90 datagrams of
 * loopback truesize, and a dropped GSA_AUTH costs its member a retransmission timeout (RFC 7296
 * §2.1). Linux caps the value at net.core.rmem_max.
 */
const IKE_RECV_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * The G-IKEv2 registration responder of the GCKS (RFC 9838 §2.3) and the owner of every group's
 * key state: UDP listener(s) feeding libs/gkm's IkeResponder with the groupRegistrar; PAD rules
 * and roles from the database; members joined to the group's LKH tree and recorded before their
 * keys are sent; de-registration (IKE SA Delete or GSA_REGISTRATION leave) and eviction trigger the
 * leave rekey; TEK/KEK expiry, batched leaves and forced rekeys are scheduled per group; GSA_REKEY
 * is multicast to the group's rekey address. Every refusal is audited and changes no state.
 */
@Injectable()
export class RegistrationService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Registration');
  private readonly db: RawDb;
  private store!: GkmStore;
  private responder!: IkeResponder;
  private readonly groups = new Map<string, Loaded>(); // by group id
  private readonly sockets: { socket: Socket; marker: boolean; port: number }[] = [];
  private sender!: RekeySender;
  /**
   * Members' certificate-chain and AUTH signatures (two ECDSA verifies and a key import, ~0.3 ms
   * per registration) are checked on this worker thread while the event loop serves other peers.
   */
  private verifier?: SignatureWorker;
  /** The IKE SA whose auth or GSA_REGISTRATION request is being decided (the hooks are synchronous). */
  private current?: IkeSaState;
  /** Groups each IKE SA registered for (by responder SPI), for de-registration on IKE SA Delete. */
  private readonly saGroups = new Map<string, Set<string>>();
  private anchorsCache?: { at: number; anchors: Certificate[] };
  private pskRule?: RawStatement;
  private closed = false;
  /** Registrations of one event-loop turn commit together; their answers wait for the COMMIT. */
  commits!: GroupCommit;
  /** IKE SAs that registered in the open batch (forgotten if its COMMIT fails). */
  private readonly batchSpis = new Set<string>();
  /** TypeORM queries first commit the open batch (one connection: theirs must not join ours). */
  private readonly flushBeforeQuery = { beforeQuery: () => void this.commits?.flush() };
  private registrar!: ReturnType<typeof groupRegistrar>;
  /** The groups are being read back after a failed commit. */
  private reloading = false;
  /** Ports that could not be bound at start. */
  listenErrors = 0;
  readonly listen: RegistrationListenOptions;

  constructor(
    private readonly ds: DataSource,
    private readonly keys: GcksKeysService,
    private readonly secrets: SecretBox,
    private readonly masterKey: MasterKeyService,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(RANDOM_BYTES) private readonly random: RandomBytes,
    /** Short random draws (SPIs, nonces, KE private values, IVs, member ids, TEKs) in 4 KB blocks. */
    @Inject(RANDOM_POOL) private readonly pooledRandom: (n: number) => Uint8Array,
    @Inject(GCKS_CONFIG) config: GcksConfig,
    @Inject(REKEY_TIMERS) private readonly timers: RekeyTimers = realTimers,
  ) {
    this.db = rawDb(ds);
    const c = config as GcksConfig & { ikeHost?: string; ikePort?: number; ikeNatT?: boolean; ikePlainPort?: number };
    this.listen = {
      host: c.ikeHost ?? '127.0.0.1',
      port: c.ikePort ?? DEFAULT_IKE_PORT,
      natT: c.ikeNatT ?? true,
      ...(c.ikePlainPort !== undefined ? { plainPort: c.ikePlainPort } : {}),
    };
  }

  // -------------------------------------------------------------------------------------------
  // Start and stop
  // -------------------------------------------------------------------------------------------

  async onApplicationBootstrap(): Promise<void> {
    this.keys.load();
    // WAL with synchronous=NORMAL: a commit survives a crash of this process (not of the machine)
    // without an fsync per registration.
    this.db.pragma('synchronous = NORMAL');
    const sealerKey = this.masterKey.key();
    // The GCM IV of each sealed LKH node row (several per registration) from the pool too.
    const sealer = new NodeKeySealer(sealerKey, (iv) => iv.set(this.pooledRandom(iv.length)));
    sealerKey.fill(0);
    this.store = new GkmStore(this.db, sealer, () => this.clock.now());
    this.commits = new GroupCommit(this.db, { onRollback: (e) => this.onBatchRollback(e) });
    this.store.commits = this.commits;
    this.ds.subscribers.push(this.flushBeforeQuery as never);
    this.sender = new RekeySender(this.listen.host, this.timers);
    this.verifier = new SignatureWorker();
    this.responder = this.makeResponder();
    this.restore();
    // A port already taken must not keep the console and REST API down (the operator fixes the
    // configuration there); it is logged as an error and counted.
    for (const [port, marker] of [[this.listen.port, this.listen.natT], ...(this.listen.plainPort !== undefined ? [[this.listen.plainPort, false]] : [])] as [number, boolean][]) {
      try {
        await this.bind(port, marker);
      } catch (e) {
        this.listenErrors++;
        this.logger.error(`G-IKEv2 registration cannot listen on ${this.listen.host}:${port}: ${(e as Error).message}`);
      }
    }
  }

  onApplicationShutdown(): void {
    this.close();
  }

  close(): void {
    if (this.closed) return;
    // What the last turn registered is committed and answered before the sockets close.
    this.commits?.flush();
    const i = this.ds.subscribers.indexOf(this.flushBeforeQuery as never);
    if (i >= 0) this.ds.subscribers.splice(i, 1);
    this.closed = true;
    for (const g of this.groups.values()) if (g.timer !== undefined) this.timers.clearTimeout(g.timer);
    for (const s of this.sockets) s.socket.close();
    this.sockets.length = 0;
    this.responder?.close();
    this.sender?.close();
    void this.verifier?.close();
  }

  /** The bound registration port (after bootstrap). */
  get port(): number {
    return this.sockets[0]?.port ?? this.listen.port;
  }

  get counters(): Record<string, number> {
    return {
      ...this.responder.counters.toJSON(),
      rekeys_sent: this.sender.stats.sent,
      rekey_send_errors: this.sender.stats.errors,
      group_commits: this.commits.stats.commits,
      group_commit_rollbacks: this.commits.stats.rollbacks,
      // Batches of members' signature checks sent to the worker thread, and run in line (it failed).
      signature_batches: this.verifier?.stats.batches ?? 0,
      signature_inline: this.verifier?.stats.inline ?? 0,
    };
  }

  private bind(port: number, marker: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = createSocket({ type: this.listen.host.includes(':') ? 'udp6' : 'udp4', recvBufferSize: IKE_RECV_BUFFER_BYTES });
      socket.once('error', reject);
      socket.bind({ address: this.listen.host, port }, () => {
        socket.off('error', reject);
        socket.on('error', (e) => this.logger.warn(`IKE socket: ${e.message}`));
        const bound = socket.address().port;
        const entry = { socket, marker, port: bound };
        this.sockets.push(entry);
        socket.on('message', (msg, rinfo) => {
          this.responder.receive(msg, { remoteAddress: rinfo.address, remotePort: rinfo.port, localAddress: this.listen.host, localPort: bound, marker });
        });
        resolve();
      });
    });
  }

  private clockForIke(): IkeClock {
    return {
      now: () => this.clock.now().getTime(),
      setTimer: (ms, fn) => {
        const t = this.timers.setTimeout(fn, ms);
        return { cancel: () => this.timers.clearTimeout(t) };
      },
    };
  }

  private makeResponder(): IkeResponder {
    const registrar = groupRegistrar({
      kwaId: KWA,
      findGroup: (idg) => this.findGroup(idg),
      onOutcome: (o) => this.onOutcome(o),
    });
    this.registrar = registrar;
    const gcksCert = this.keys.gcksCertificate;
    const send = (datagram: Uint8Array, path: IkePath) => {
      const s = this.sockets.length === 1 ? this.sockets[0] : (this.sockets.find((x) => x.port === path.localPort) ?? this.sockets[0]);
      s?.socket.send(datagram, path.remotePort, path.remoteAddress);
    };
    return new IkeResponder({
      transport: {
        // Held while a batch is open: an answer may carry keys that are not committed yet. An
        // IKE_SA_INIT response carries none (RFC 7296 §1.2) and goes at once.
        send: (datagram, path) => {
          if (this.commits.isOpen && !isSaInit(datagram, path.marker)) this.commits.afterCommit(() => send(datagram, path));
          else send(datagram, path);
        },
      },
      clock: this.clockForIke(),
      // SPIs, nonces, KE private values and IVs: ~15 short draws per registration, batched.
      random: this.pooledRandom,
      proposals: GCKS_PROPOSALS,
      localId: { idType: IdType.ID_FQDN, data: new TextEncoder().encode(this.keys.gcksIdentity) },
      localAuth: { kind: 'signature', privateKey: this.keys.gcksKey, certificates: [gcksCert.der] },
      resolvePeer: (id) => this.resolvePeer(id),
      certReqAnchors: [this.keys.owner.ca.certificate],
      authExchangeTypes: [IkeExchange.GSA_AUTH],
      ...(this.verifier ? { signatureVerifier: this.verifier } : {}),
      authorize: (ctx) => {
        this.current = ctx.sa.state;
        try {
          return registrar.authorize(ctx);
        } catch (e) {
          // The responder counts it as a drop; the reason belongs in the log (never key material).
          this.logger.error(`registration of ${ctx.peerId.idType}:${Buffer.from(ctx.peerId.data).toString('utf8')} failed: ${(e as Error).message}`);
          throw e;
        } finally {
          this.current = undefined;
        }
      },
      onEstablished: (sa) => this.wire(sa, registrar.onRequest),
      onRefused: (e) => this.onRefused(e),
    });
  }

  private wire(sa: IkeSa, onRequest: ReturnType<typeof groupRegistrar>['onRequest']): void {
    sa.onRequest = (exchangeType, request, s) => {
      this.current = s.state;
      try {
        return onRequest(exchangeType, request, s);
      } finally {
        this.current = undefined;
      }
    };
    sa.onDeleted = (s) => this.onIkeSaDeleted(s);
  }

  // -------------------------------------------------------------------------------------------
  // Peers, groups, PAD
  // -------------------------------------------------------------------------------------------

  private trustAnchors(): Certificate[] {
    const now = this.clock.now().getTime();
    if (this.anchorsCache && now - this.anchorsCache.at < CONFIG_TTL_MS) return this.anchorsCache.anchors;
    const anchors = [this.keys.owner.ca.certificate];
    for (const r of this.db.prepare(`SELECT "pem" FROM "trust_anchors"`).all() as { pem: string }[]) {
      try {
        anchors.push(parseCertificate(new Uint8Array(Buffer.from(r.pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, ''), 'base64'))));
      } catch {
        // An unreadable anchor row trusts nothing.
      }
    }
    this.anchorsCache = { at: now, anchors };
    return anchors;
  }

  /** PSK identities are matched exactly against `psk` PAD rules; everyone else proves a certificate. */
  private resolvePeer(id: IdPayload): IkePeerPolicy | undefined {
    const identity = tokenIdentityOf(id);
    this.pskRule ??= this.db.prepare(
      `SELECT "id", "pskSealed" FROM "pad_rules" WHERE "kind" = 'member' AND "idType" = 'psk' AND "pattern" = ? AND "pskSealed" IS NOT NULL LIMIT 1`,
    );
    const rule = this.pskRule.get(identity.value) as { id: string; pskSealed: string } | undefined;
    if (rule) {
      try {
        const psk = this.secrets.open(rule.pskSealed, `pad_rules.pskSealed:${rule.id}`);
        return { psk: new Uint8Array(psk), localAuth: { kind: 'psk' } };
      } catch {
        return undefined;
      }
    }
    return { trustAnchors: this.trustAnchors() };
  }

  private configOf(where: { id?: string; name?: string }): GroupConfig | undefined {
    return loadGroupConfig(this.db, where);
  }

  private deps() {
    return {
      store: this.store,
      secrets: this.secrets,
      random: this.pooledRandom,
      now: () => this.clock.now().getTime(),
      signingKey: this.keys.gcksKey,
      authKey: this.keys.gcksPublicKey,
      owner: { signingKey: this.keys.owner.signing.privateKey, ownerKeyId: ownerKeyIdOf(this.keys.owner.signing.publicKey) },
      gcksIdentity: this.keys.gcksIdentity,
    };
  }

  /** The key state of a group (created on first use), with its rows re-read when stale. */
  private stateOf(where: { id?: string; name?: string }): GroupKeyState | undefined {
    const now = this.clock.now().getTime();
    let loaded = where.id ? this.groups.get(where.id) : [...this.groups.values()].find((g) => g.state.cfg.group.name === where.name);
    if (loaded && now - loaded.loadedAt < CONFIG_TTL_MS) return loaded.state;
    const cfg = this.configOf(loaded ? { id: loaded.state.groupId } : where);
    if (!cfg) {
      if (loaded) this.groups.delete(loaded.state.groupId);
      return undefined;
    }
    if (loaded) {
      if (loaded.state.updateConfig(cfg)) this.schedule(loaded);
      loaded.loadedAt = now;
      return loaded.state;
    }
    const created = GroupKeyState.create(cfg, this.deps());
    loaded = { state: created, loadedAt: now, editionSent: created.edition };
    this.groups.set(cfg.group.id, loaded);
    this.schedule(loaded);
    return loaded.state;
  }

  private findGroup(idg: IdgPayload): RegistrarGroup | undefined {
    const name = new TextDecoder().decode(idg.data);
    const state = this.stateOf({ name });
    if (!state) return undefined;
    return {
      name,
      authorize: (req) => state.cfg.group.enabled !== 0 && padAllows(state.cfg.pad, req.identity, req.role, req.certificate !== undefined) !== undefined,
      admit: (req) => {
        const sa = this.current;
        // While the groups are read back after a failed commit, REGISTRATION_FAILED (members retry).
        if (!sa || this.reloading) return undefined;
        const spi = hex(sa.spiR);
        // A full batch commits first, so answers wait at most MAX_BATCH registrations.
        const rollbacks = this.commits.stats.rollbacks;
        if (this.commits.isOpen && this.batchSpis.size >= MAX_BATCH) this.commits.flush();
        if (!this.commits.isOpen) this.batchSpis.clear();
        this.commits.begin();
        // A commit that failed just now read the groups back: `state` is no longer the group's.
        if (this.commits.stats.rollbacks !== rollbacks) return undefined;
        const record = ikeSaToRecord({ ...sa, nextPeerRequestId: Math.max(sa.nextPeerRequestId, 2) });
        let r: ReturnType<GroupKeyState['admit']>;
        try {
          r = state.admit(
            { identity: req.identity.value, role: req.role, senderIdsRequested: req.senderIdsRequested, address: sa.path.remoteAddress },
            {
              gskW: deriveGskW(sa.suite.prf, sa.keys.skd, KWA),
              spi,
              sealedRecord: this.secrets.seal(Buffer.from(JSON.stringify(record), 'utf8'), ikeSaContext(spi)),
            },
            { actor: `member:${req.identity.value}`, remoteAddress: sa.path.remoteAddress, action: 'register', entityType: 'member', details: { role: req.role, group: name } },
          );
        } catch (e) {
          // The tree is full, or the state could not be persisted: REGISTRATION_FAILED (audited as a
          // refusal), never an unanswered request. Nothing was sent.
          this.logger.error(`registration of ${req.identity.value} to ${name} failed: ${(e as Error).message}`);
          return undefined;
        }
        if (!r) return undefined;
        if ('refused' in r) return r;
        if (this.commits.isOpen) this.batchSpis.add(spi);
        let set = this.saGroups.get(spi);
        if (!set) this.saGroups.set(spi, (set = new Set()));
        set.add(state.groupId);
        this.multicast(state, r.messages);
        // A.2: a speaker's new SAs reach the other members in the next batched announcement.
        const loaded = r.speakerJoined ? this.groups.get(state.groupId) : undefined;
        if (loaded) this.schedule(loaded);
        return r.admission;
      },
      leave: (req) => {
        const sa = this.current;
        const r = state.leave(req.identity.value, 'left', {
          actor: `member:${req.identity.value}`,
          remoteAddress: sa?.path.remoteAddress ?? null,
          action: 'leave',
          entityType: 'member',
          details: { group: name, via: 'GSA_REGISTRATION' },
        });
        if (sa) this.saGroups.get(hex(sa.spiR))?.delete(state.groupId);
        this.afterLeave(state, r.messages);
      },
    };
  }

  private onIkeSaDeleted(sa: IkeSa): void {
    const spi = hex(sa.state.spiR);
    const groups = this.saGroups.get(spi);
    this.saGroups.delete(spi);
    const identity = tokenIdentityOf(sa.state.peerId, sa.state.peerCertificate).value;
    for (const id of groups ?? []) {
      const state = this.groups.get(id)?.state;
      if (!state || state.members.get(identity)?.ikeSpi !== spi) continue;
      const r = state.leave(identity, 'left', {
        actor: `member:${identity}`,
        remoteAddress: sa.state.path.remoteAddress,
        action: 'leave',
        entityType: 'member',
        details: { group: state.cfg.group.name, via: 'INFORMATIONAL Delete' },
      });
      this.afterLeave(state, r.messages);
    }
    this.store.deleteIkeSa(spi);
  }

  private afterLeave(state: GroupKeyState, messages: OutgoingRekey[]): void {
    this.multicast(state, messages);
    const loaded = this.groups.get(state.groupId);
    if (loaded && messages.length > 0) loaded.editionSent = state.edition;
    if (loaded) this.schedule(loaded);
  }

  // -------------------------------------------------------------------------------------------
  // Audit of refusals (nothing else changes)
  // -------------------------------------------------------------------------------------------

  private onOutcome(o: RegistrationOutcome): void {
    if (!('admitted' in o) || o.admitted) return;
    const groupId = o.group ? (this.configOf({ name: o.group })?.group.id ?? null) : null;
    this.store.audit({
      actor: `member:${o.identity.value}`,
      remoteAddress: this.current?.path.remoteAddress ?? null,
      action: 'refuse',
      entityType: 'registration',
      entityId: o.identity.value,
      groupId,
      details: { notify: o.notify, reason: o.reason, exchangeType: o.exchangeType, ...(o.group ? { group: o.group } : {}) },
    });
  }

  private onRefused(e: IkeRefusal): void {
    if (e.reason === 'policy') return; // already audited by onOutcome
    const who = e.peerId ? tokenIdentityOf(e.peerId).value : '(none)';
    this.store.audit({
      actor: `member:${who}`,
      remoteAddress: e.path.remoteAddress,
      action: 'refuse',
      entityType: 'registration',
      entityId: who,
      groupId: null,
      details: { notify: e.notifyType, reason: e.reason, ...(e.detail ? { detail: e.detail } : {}), exchangeType: e.exchangeType },
    });
  }

  // -------------------------------------------------------------------------------------------
  // Rekeys
  // -------------------------------------------------------------------------------------------

  private multicast(state: GroupKeyState, messages: readonly OutgoingRekey[]): void {
    if (messages.length === 0) return;
    const p = state.cfg.rekeyPolicy;
    const address = state.cfg.rekeyAddress.split('/')[0]!;
    const port = state.cfg.rekeyPort;
    // A GSA_REKEY made in an open batch leaves once the batch has committed.
    this.commits.afterCommit(() => this.sender.send(address, port, messages, { copies: p.transmissions, intervalMs: p.retransmitIntervalMs }));
  }

  private schedule(loaded: Loaded): void {
    if (this.closed) return;
    if (loaded.timer !== undefined) this.timers.clearTimeout(loaded.timer);
    const due = loaded.state.nextDue();
    // Woken at least every POLICY_POLL_MS to notice policy and PAD changes made through REST.
    const wait = Math.min(POLICY_POLL_MS, Math.max(0, due.at - this.clock.now().getTime()));
    loaded.timer = this.timers.setTimeout(() => {
      loaded.timer = undefined;
      if (this.closed) return;
      // Re-read the rows: a policy change yields a new token edition, which a rekey carries to the
      // members at once (new TEKs and Rekey SA under the new policy; DESIGN "Policy").
      if (!this.stateOf({ id: loaded.state.groupId })) return;
      const d = loaded.state.nextDue();
      const now = this.clock.now().getTime();
      if (d.at <= now) this.rekeyNow(loaded, d.reason);
      else if (loaded.state.edition !== loaded.editionSent && loaded.state.memberCount > 0) this.rekeyNow(loaded, 'forced');
      this.schedule(loaded);
    }, wait);
  }

  private rekeyNow(loaded: Loaded, reason: RekeyReason): OutgoingRekey[] {
    const messages = loaded.state.rekey(reason);
    // A speaker announcement carries no policy token.
    if (messages.length > 0 && reason !== 'speakers') loaded.editionSent = loaded.state.edition;
    this.multicast(loaded.state, messages);
    return messages;
  }

  /** The Group Owner forces a rekey (new Rekey SA and TEKs, pending leaves included). */
  forceRekey(groupId: string): { messageIds: number[]; members: number } {
    this.commits.flush();
    const state = this.stateOf({ id: groupId });
    if (!state) throw DomainError.notFound('group', groupId);
    const loaded = this.groups.get(groupId)!;
    const messages = this.rekeyNow(loaded, 'forced');
    this.schedule(loaded);
    return { messageIds: messages.map((m) => m.messageId), members: state.memberCount };
  }

  /** The Group Owner evicts a member: its leaf is removed and the leave rekey follows the policy. */
  evict(groupId: string, memberId: string, actor: { actor: string; remoteAddress: string | null }): { messageIds: number[] } {
    this.commits.flush();
    const state = this.stateOf({ id: groupId });
    if (!state) throw DomainError.notFound('group', groupId);
    const m = [...state.members.values()].find((x) => x.id === memberId);
    if (!m || m.state !== 'registered') throw DomainError.notFound('member', memberId);
    const r = state.leave(m.identity, 'evicted', { ...actor, action: 'evict', entityType: 'member', details: { identity: m.identity } });
    if (m.ikeSpi) this.saGroups.get(m.ikeSpi)?.delete(groupId);
    this.afterLeave(state, r.messages);
    return { messageIds: r.messages.map((x) => x.messageId) };
  }

  /** GSA_INBAND_REKEY (RFC 9838 §2.4.2) of the current SAs over the member's IKE SA. */
  async inbandRekey(groupId: string, memberId: string): Promise<{ messageId: number }> {
    this.commits.flush();
    const state = this.stateOf({ id: groupId });
    if (!state) throw DomainError.notFound('group', groupId);
    const m = [...state.members.values()].find((x) => x.id === memberId);
    const sa = m?.ikeSpi ? this.responder.established.get(m.ikeSpi) : undefined;
    if (!m || m.state !== 'registered' || !sa) throw DomainError.notFound('member IKE SA', memberId);
    const gskW = deriveGskW(sa.state.suite.prf, sa.state.keys.skd, KWA);
    const messageId = sa.state.nextRequestId;
    const done = sa.request(IkeExchange.GSA_INBAND_REKEY, state.inbandPayloads(gskW));
    this.persistIkeSa(sa.state);
    await done;
    return { messageId };
  }

  private persistIkeSa(s: IkeSaState): void {
    const spi = hex(s.spiR);
    this.store.saveIkeSa(spi, this.secrets.seal(Buffer.from(JSON.stringify(ikeSaToRecord(s)), 'utf8'), ikeSaContext(spi)));
  }

  /** Members and key state of a group (for the console and tests). */
  groupStatus(groupId: string): { members: number; lastMessageId: number; tokenEdition: number; epoch: number; rekeySpi: string; pendingLeaves: number; speakers: number } | undefined {
    const state = this.stateOf({ id: groupId });
    if (!state) return undefined;
    return {
      members: state.memberCount,
      lastMessageId: state.lastMessageId,
      tokenEdition: state.edition,
      epoch: state.tree.epoch,
      rekeySpi: hex(state.rekeySpi),
      pendingLeaves: state.schedule.pendingLeaves.length,
      // A.2: speakers holding SAs of their own.
      speakers: state.speakers().length,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Restart
  // -------------------------------------------------------------------------------------------

  /** Groups, members and IKE SAs read back from the database (start, and after a failed commit). */
  private restore(): void {
    this.loadGroups();
    this.adoptIkeSas();
  }

  private loadGroups(): void {
    const rows = this.db.prepare(`SELECT * FROM "gkm_groups"`).all() as { groupId: string; sealed: string; lastMessageId: number; tokenEdition: number; stateJson: string }[];
    for (const row of rows) {
      const cfg = this.configOf({ id: row.groupId });
      if (!cfg) continue;
      const tree = this.store.loadTree(row.groupId, { random: (b) => void b.set(this.random(b.length)) });
      if (!tree || tree.keySize !== LKH_KEY_SIZE) continue;
      const members = (
        this.db
          .prepare(`SELECT m."id", m."identity", m."role", m."state", g."leaf", g."ikeSpi" FROM "members" m JOIN "gkm_members" g ON g."memberId" = m."id" WHERE m."groupId" = ?`)
          .all(row.groupId) as MemberRecord[]
      ).map((m) => ({ ...m }));
      const state = GroupKeyState.restore(cfg, this.deps(), row, tree, members);
      const loaded: Loaded = { state, loadedAt: this.clock.now().getTime(), editionSent: state.edition };
      this.groups.set(row.groupId, loaded);
      for (const m of members) {
        if (m.state !== 'registered' || !m.ikeSpi) continue;
        let set = this.saGroups.get(m.ikeSpi);
        if (!set) this.saGroups.set(m.ikeSpi, (set = new Set()));
        set.add(row.groupId);
      }
      this.schedule(loaded);
    }
  }

  /** IKE SAs kept for in-band rekeys and de-registration (libs/gkm ike-sa-record.ts) the responder lacks. */
  private adoptIkeSas(): void {
    for (const r of this.db.prepare(`SELECT "spi", "sealed" FROM "gkm_ike_sas"`).all() as { spi: string; sealed: string }[]) {
      if (this.responder.established.has(r.spi)) continue;
      try {
        const rec = JSON.parse(this.secrets.open(r.sealed, ikeSaContext(r.spi)).toString('utf8'));
        const sa = this.responder.adopt(ikeSaFromRecord(rec));
        this.wire(sa, this.registrar.onRequest);
      } catch (e) {
        this.logger.warn(`IKE SA ${r.spi.slice(0, 8)}… not restored: ${(e as Error).message}`);
      }
    }
  }

  /**
   * The batch's COMMIT failed and was rolled back; its answers and rekeys were dropped. The IKE SAs
   * that registered in it are forgotten (their cached responses carry keys that were not kept; the
   * members register again), and every group's state, members and IKE SAs are read back from the
   * database exactly as at a restart.
   */
  private onBatchRollback(e: unknown): void {
    this.logger.error(`group commit failed; ${this.batchSpis.size} registrations dropped, state read back: ${(e as Error)?.message ?? String(e)}`);
    this.reloading = true;
    try {
      for (const spi of this.batchSpis) {
        const sa = this.responder.established.get(spi);
        if (sa) this.responder.remove(sa);
      }
      this.batchSpis.clear();
      for (const g of this.groups.values()) if (g.timer !== undefined) this.timers.clearTimeout(g.timer);
      this.groups.clear();
      this.saGroups.clear();
      this.restore();
    } catch (err) {
      // The database cannot even be read (closed at shutdown, disk gone): nothing is answered.
      this.logger.error(`group state not read back after the failed commit: ${(err as Error).message}`);
    } finally {
      this.reloading = false;
    }
  }
}

/** PAD rows are exported for tests of the matcher. */
export type { PadRow };
