/**
 * IKEv2 initiator (RFC 7296 §1.2): IKE_SA_INIT then IKE_AUTH (or another auth exchange such as
 * RFC 9838 GSA_AUTH, whose extra payloads the caller supplies), childless (RFC 6023). Handles
 * COOKIE (§2.6) and INVALID_KE_PAYLOAD (§1.2) by retrying, retransmits (§2.1), and hands the
 * established SA to `IkeSa`. Every datagram goes through `receive`; nothing escapes as a throw.
 */
import {
  CodecError,
  IkeExchange,
  IkePayload,
  NotifyType,
  NOTIFY_STATUS_MIN,
  getNotify,
  getPayload,
  getPayloads,
  ikeFlags,
  ikeMessage,
  isResponse,
  payload,
  stripNonEspMarker,
  type IdPayload,
  type IkeMessage,
  type IkePayloadEntry,
} from '@app/codec';
import { CryptoError, SUPPORTED_SIGNATURE_HASHES, createKeyExchange, type KeyExchange } from '@app/crypto';
import { certReqHashes, eq, h0, hashList, notify, parseHashList } from './ike-util.js';
import { checkChosenProposal, buildIkeSaPayload, isSupported, suiteOf } from './ike-proposal.js';
import {
  IkeCounters,
  IkeSa,
  authOctets,
  buildAuthPayloads,
  deriveKeys,
  sendIke,
  verifyPeerAuth,
  type IkeDeps,
} from './ike-sa.js';
import {
  DEFAULT_RETRANSMIT,
  IkeError,
  type IkeChosenSuite,
  type IkeInputOutcome,
  type IkeLocalAuth,
  type IkePath,
  type IkePeerPolicy,
  type IkeProposalConfig,
  type IkeTimer,
} from './ike-types.js';

export interface IkeInitiatorOptions extends IkeDeps {
  path: IkePath;
  /** Offered in order of preference; the first one's group is used for the first KE. */
  proposals: IkeProposalConfig[];
  localId: IdPayload;
  localAuth: IkeLocalAuth;
  peer: IkePeerPolicy;
  /** IDr to send, asking for a particular responder identity. */
  remoteId?: IdPayload;
  /** The authenticated exchange: IKE_AUTH (default) or GSA_AUTH (RFC 9838). */
  authExchangeType?: number;
  /** Extra payloads appended inside the auth request (e.g. IDg). */
  authPayloads?: IkePayloadEntry[];
  /** SPI to use (8 octets); random by default. */
  spiI?: Uint8Array;
  /**
   * Our nonce Ni (§2.10: at least 16 octets and half the PRF key size) and key exchange, made
   * ahead of time (they do not depend on the responder); fresh ones by default. Each may be used
   * for one IKE_SA_INIT only. The key exchange must be of the first proposal's group.
   */
  nonce?: Uint8Array;
  keyExchange?: KeyExchange;
  /**
   * Announce SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4); default true. Without it both sides use
   * the classic methods (RFC 4754 method 9 for ECDSA P-256).
   */
  signatureHashes?: boolean;
  /** Send INITIAL_CONTACT (§2.4): the peer may delete our older IKE SAs. Default true. */
  initialContact?: boolean;
}

export interface IkeEstablished {
  sa: IkeSa;
  /** The decrypted payloads of the auth response (for G-IKEv2: GSA, KD, ...). */
  authResponse: IkePayloadEntry[];
}

type Phase = 'idle' | 'init-sent' | 'auth-sent' | 'established' | 'failed';

const EMPTY: Uint8Array = new Uint8Array(0);
const CHILD_ERRORS = new Set<number>([
  NotifyType.NO_PROPOSAL_CHOSEN,
  NotifyType.SINGLE_PAIR_REQUIRED,
  NotifyType.INTERNAL_ADDRESS_FAILURE,
  NotifyType.FAILED_CP_REQUIRED,
  NotifyType.TS_UNACCEPTABLE,
  NotifyType.INVALID_SELECTORS,
]);

export class IkeInitiator {
  phase: Phase = 'idle';
  readonly counters: IkeCounters;
  sa?: IkeSa;
  /** Our SPI (8 octets): the key under which an `IkeDispatcher` routes answers to us. */
  readonly spiI: Uint8Array;
  private spiR = new Uint8Array(8);
  private readonly ni: Uint8Array;
  private ke: KeyExchange;
  private cookie?: Uint8Array;
  private initRequest = EMPTY;
  /** IKE_SA_INIT encoded ahead by `prepare()`, used by the first send only. */
  private preparedInit?: Uint8Array;
  private suite?: IkeChosenSuite;
  private nr = EMPTY;
  private peerHashes: number[] = [];
  private keysForAuth?: ReturnType<typeof deriveKeys>;
  private initResponseRaw = EMPTY;
  private tries = 0;
  private timer?: IkeTimer;
  private restarts = 0;
  private settle?: { resolve(e: IkeEstablished): void; reject(e: Error): void };

  constructor(private readonly opts: IkeInitiatorOptions) {
    this.counters = opts.counters ?? new IkeCounters();
    const usable = opts.proposals.filter(isSupported);
    if (usable.length === 0) throw new IkeError('NO_PROPOSAL_CHOSEN', 'no supported proposal configured');
    this.spiI = opts.spiI ?? opts.random(8);
    if (opts.nonce && (opts.nonce.length < 16 || opts.nonce.length > 256)) throw new RangeError(`nonce of ${opts.nonce.length} octets`);
    if (opts.keyExchange && opts.keyExchange.group !== usable[0]!.group) {
      throw new RangeError(`key exchange of group ${opts.keyExchange.group}, first proposal uses ${usable[0]!.group}`);
    }
    this.ni = opts.nonce ?? opts.random(32);
    this.ke = opts.keyExchange ?? createKeyExchange(usable[0]!.group, opts.random);
  }

  /**
   * Encodes the IKE_SA_INIT request now: it depends only on our SPI, proposals, KE and nonce, not
   * on the responder, so it may be made ahead like them. `start()` then only sends it. A COOKIE or
   * INVALID_KE_PAYLOAD answer still makes a new request. Optional; idempotent before `start()`.
   */
  prepare(): void {
    if (this.phase === 'idle') this.preparedInit ??= this.encodeInit();
  }

  /** Sends IKE_SA_INIT; resolves when the IKE SA is established. */
  start(): Promise<IkeEstablished> {
    return new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
      this.sendInit();
    });
  }

  private sendInit(): void {
    this.initRequest = this.preparedInit ?? this.encodeInit();
    this.preparedInit = undefined;
    this.phase = 'init-sent';
    this.transmit(this.initRequest, true);
  }

  private encodeInit(): Uint8Array {
    const payloads: IkePayloadEntry[] = [];
    if (this.cookie) payloads.push(notify(NotifyType.COOKIE, this.cookie));
    payloads.push(
      payload(IkePayload.SA, buildIkeSaPayload(this.opts.proposals.filter(isSupported))),
      payload(IkePayload.KE, { group: this.ke.group, data: this.ke.publicValue }),
      payload(IkePayload.NONCE, { nonce: this.ni }),
    );
    if (this.opts.signatureHashes !== false) {
      payloads.push(notify(NotifyType.SIGNATURE_HASH_ALGORITHMS, hashList(SUPPORTED_SIGNATURE_HASHES)));
    }
    return ikeMessage.encode(
      {
        header: { spiI: this.spiI, spiR: new Uint8Array(8), majorVersion: 2, minorVersion: 0, exchangeType: IkeExchange.IKE_SA_INIT, flags: ikeFlags({ initiator: true, response: false }), messageId: 0 },
        payloads,
      },
      undefined,
      0,
      this.opts.registry,
    );
  }

  private transmit(wire: Uint8Array, first: boolean): void {
    if (first) this.tries = 0;
    this.timer?.cancel();
    sendIke(this.opts.transport, this.opts.path, wire);
    const r = this.opts.retransmit ?? DEFAULT_RETRANSMIT;
    this.timer = this.opts.clock.setTimer(r.timeoutMs * 2 ** this.tries, () => {
      if (this.phase !== 'init-sent' && this.phase !== 'auth-sent') return;
      if (this.tries >= r.tries) return this.fail(new IkeError('TIMEOUT', `no answer in ${this.phase}`));
      this.tries++;
      this.counters.inc('retransmit');
      this.transmit(wire, false);
    });
  }

  private fail(e: IkeError): void {
    this.timer?.cancel();
    this.phase = 'failed';
    this.counters.inc(`fail_${e.code}`);
    this.settle?.reject(e);
    this.settle = undefined;
  }

  /** Feed every datagram received on the path's socket. Never throws. */
  receive(datagram: Uint8Array, path: IkePath): IkeInputOutcome {
    this.counters.inc('received');
    let outcome: IkeInputOutcome;
    try {
      outcome = this.receiveInner(datagram, path);
    } catch (e) {
      this.counters.inc(e instanceof CodecError || e instanceof CryptoError || e instanceof IkeError ? 'drop_invalid' : 'drop_internal');
      outcome = 'dropped';
    }
    this.counters.inc(`outcome_${outcome}`);
    return outcome;
  }

  private receiveInner(datagram: Uint8Array, path: IkePath): IkeInputOutcome {
    const raw = path.marker ? stripNonEspMarker(datagram) : datagram;
    if (!raw) return this.drop('drop_not_ike');
    let msg: IkeMessage;
    try {
      msg = ikeMessage.decode(raw, 0, this.opts.registry);
    } catch (e) {
      if (e instanceof CodecError) return this.drop('drop_decode');
      throw e;
    }
    const h = msg.header;
    if (!eq(h.spiI, this.spiI) || (h.flags & 0x08) !== 0) return this.drop('drop_unknown_spi');
    if (this.phase === 'established' && this.sa && eq(h.spiR, this.spiR)) return this.sa.receive(raw, msg, path);
    if (!isResponse(h)) return this.drop('drop_unexpected_request');
    if (this.phase === 'init-sent' && h.exchangeType === IkeExchange.IKE_SA_INIT && h.messageId === 0) {
      return this.onInitResponse(raw, msg);
    }
    if (this.phase === 'auth-sent' && h.messageId === 1 && eq(h.spiR, this.spiR)) {
      return this.onAuthResponse(raw, msg);
    }
    return this.drop('drop_unexpected_response');
  }

  private drop(reason: string): IkeInputOutcome {
    this.counters.inc(reason);
    return 'dropped';
  }

  private onInitResponse(raw: Uint8Array, msg: IkeMessage): IkeInputOutcome {
    const p = msg.payloads;
    const cookie = getNotify(p, NotifyType.COOKIE);
    if (cookie) {
      if (cookie.data.length < 1 || cookie.data.length > 64 || this.restarts++ > 4) return this.drop('drop_bad_cookie');
      this.counters.inc('cookie');
      this.cookie = new Uint8Array(cookie.data);
      this.sendInit();
      return 'accepted';
    }
    const invalidKe = getNotify(p, NotifyType.INVALID_KE_PAYLOAD);
    if (invalidKe) {
      const group = invalidKe.data.length === 2 ? (invalidKe.data[0]! << 8) | invalidKe.data[1]! : -1;
      const offered = this.opts.proposals.filter(isSupported).some((c) => c.group === group);
      if (!offered || group === this.ke.group || this.restarts++ > 4) {
        this.fail(new IkeError('INVALID_KE_PAYLOAD', `peer wants group ${group}`));
        return 'accepted';
      }
      this.counters.inc('invalid_ke_retry');
      this.ke = createKeyExchange(group, this.opts.random);
      this.sendInit();
      return 'accepted';
    }
    const error = getPayloads(p, IkePayload.NOTIFY).find((n) => n.notifyType < NOTIFY_STATUS_MIN);
    if (error) {
      this.fail(new IkeError(error.notifyType === NotifyType.NO_PROPOSAL_CHOSEN ? 'NO_PROPOSAL_CHOSEN' : 'PEER_ERROR', `IKE_SA_INIT refused`, error.notifyType));
      return 'accepted';
    }
    const sa = getPayload(p, IkePayload.SA);
    const ke = getPayload(p, IkePayload.KE);
    const nonce = getPayload(p, IkePayload.NONCE);
    if (!sa || !ke || !nonce) return this.drop('drop_missing_payload');
    const chosen = checkChosenProposal(sa, this.opts.proposals.filter(isSupported));
    if (!chosen || chosen.group !== this.ke.group || ke.group !== this.ke.group) return this.drop('drop_bad_proposal');
    if (h0(msg.header.spiR)) return this.drop('drop_zero_spi');
    let shared: Uint8Array;
    try {
      shared = this.ke.computeSecret(ke.data);
    } catch {
      return this.drop('drop_bad_ke');
    }
    this.timer?.cancel();
    this.spiR = new Uint8Array(msg.header.spiR);
    this.nr = new Uint8Array(nonce.nonce);
    this.suite = suiteOf(chosen);
    const sha = getNotify(p, NotifyType.SIGNATURE_HASH_ALGORITHMS);
    this.peerHashes = sha && this.opts.signatureHashes !== false ? parseHashList(sha.data) : [];
    const keys = deriveKeys(this.suite, shared, this.ni, this.nr, this.spiI, this.spiR);
    this.keysForAuth = keys;
    this.initResponseRaw = new Uint8Array(raw);
    this.sendAuth(this.initRequest);
    return 'accepted';
  }

  private sendAuth(realMessage1: Uint8Array): void {
    const suite = this.suite!;
    const keys = this.keysForAuth!;
    const o = this.opts;
    const octets = authOctets({ suite, keys }, 'initiator', realMessage1, this.nr, o.localId);
    const inner: IkePayloadEntry[] = [payload(IkePayload.IDi, o.localId)];
    const authPayloads = this.localAuthPayloads(octets);
    // Order of §1.2: IDi, [CERT,] [CERTREQ,] [IDr,] AUTH.
    inner.push(...authPayloads.filter((x) => x.type === IkePayload.CERT));
    for (const hash of certReqHashes(o.peer)) inner.push(payload(IkePayload.CERTREQ, { encoding: 4, data: hash }));
    if (o.remoteId) inner.push(payload(IkePayload.IDr, o.remoteId));
    inner.push(...authPayloads.filter((x) => x.type === IkePayload.AUTH));
    if (o.initialContact !== false) inner.push(notify(NotifyType.INITIAL_CONTACT, EMPTY));
    inner.push(...(o.authPayloads ?? []));
    this.sa = new IkeSa(
      {
        spiI: this.spiI,
        spiR: this.spiR,
        isInitiator: true,
        suite,
        keys,
        ni: this.ni,
        nr: this.nr,
        localId: o.localId,
        peerId: o.remoteId ?? o.localId,
        nextRequestId: 2,
        nextPeerRequestId: 0,
        path: o.path,
      },
      o,
      this.counters,
    );
    const authWire = this.sa.protect(o.authExchangeType ?? IkeExchange.IKE_AUTH, 1, false, inner);
    this.phase = 'auth-sent';
    this.transmit(authWire, true);
  }

  private localAuthPayloads(octets: Uint8Array): IkePayloadEntry[] {
    return buildAuthPayloads(this.suite!, this.opts.localAuth, this.opts.peer.psk, octets, this.peerHashes);
  }

  private onAuthResponse(raw: Uint8Array, msg: IkeMessage): IkeInputOutcome {
    const sa = this.sa!;
    const inner = sa.unprotect(raw, msg);
    if (!inner) return 'dropped';
    this.timer?.cancel();
    const idr = getPayload(inner, IkePayload.IDr);
    const auth = getPayload(inner, IkePayload.AUTH);
    const error = getPayloads(inner, IkePayload.NOTIFY).find((n) => n.notifyType < NOTIFY_STATUS_MIN && !CHILD_ERRORS.has(n.notifyType));
    if (error || !idr || !auth) {
      const code = error?.notifyType === NotifyType.AUTHENTICATION_FAILED ? 'AUTHENTICATION_FAILED' : 'PEER_ERROR';
      this.fail(new IkeError(code, 'auth exchange refused', error?.notifyType));
      return 'accepted';
    }
    if (this.opts.remoteId && !(idr.idType === this.opts.remoteId.idType && eq(idr.data, this.opts.remoteId.data))) {
      this.fail(new IkeError('AUTHENTICATION_FAILED', 'responder identity differs from the one asked for'));
      return 'accepted';
    }
    // The responder signed its IKE_SA_INIT response as it sent it (§2.15).
    const octets = authOctets({ suite: this.suite!, keys: this.keysForAuth! }, 'responder', this.initResponseRaw, this.ni, idr);
    try {
      const { certificate } = verifyPeerAuth(this.suite!, this.opts.peer, idr, inner, octets, new Date(this.opts.clock.now()));
      sa.state.peerId = { idType: idr.idType, data: new Uint8Array(idr.data) };
      sa.state.peerCertificate = certificate;
    } catch (e) {
      if (e instanceof IkeError) {
        this.fail(e);
        return 'accepted';
      }
      throw e;
    }
    this.phase = 'established';
    this.counters.inc('established');
    this.settle?.resolve({ sa, authResponse: inner });
    this.settle = undefined;
    return 'accepted';
  }

  /** Stops timers (and the SA's). */
  close(): void {
    this.timer?.cancel();
    this.sa?.close();
    if (this.phase !== 'established') this.fail(new IkeError('PROTOCOL_ERROR', 'closed'));
  }
}

