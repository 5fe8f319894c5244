/**
 * IKEv2 responder (RFC 7296 §1.2) for many peers: IKE_SA_INIT (proposal choice §2.7,
 * INVALID_KE_PAYLOAD, COOKIE under load §2.6, NAT detection §2.23, retransmitted requests §2.1),
 * then the auth exchange — IKE_AUTH, or RFC 9838 GSA_AUTH through the `authorize` hook — and
 * established SAs routed by SPI. `receive` never throws; every datagram is answered, accepted,
 * or dropped with a named counter.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import {
  CodecError,
  IkeExchange,
  IkePayload,
  NotifyType,
  UnsupportedCriticalPayloadError,
  getNotify,
  getPayload,
  ikeFlags,
  ikeHeader,
  ikeMessage,
  isFromInitiator,
  isResponse,
  payload,
  stripNonEspMarker,
  type IdPayload,
  type IkeHeader,
  type IkeMessage,
  type IkePayloadEntry,
} from '@app/codec';
import { CryptoError, SUPPORTED_SIGNATURE_HASHES, createKeyExchange, type Certificate, type IkeSaKeys, type SignatureVerifier } from '@app/crypto';
import { certReqHashes, eq, hashList, notify, parseHashList } from './ike-util.js';
import { chosenSaPayload, selectProposal, suiteOf } from './ike-proposal.js';
import {
  IkeCounters,
  IkeSa,
  authOctets,
  buildAuthPayloads,
  deriveKeys,
  natDetectionHash,
  sendIke,
  verifyPeerAuth,
  verifyPeerAuthWith,
  type IkeDeps,
} from './ike-sa.js';
import {
  IkeError,
  type IkeChosenSuite,
  type IkeInputOutcome,
  type IkeLocalAuth,
  type IkePath,
  type IkePeerPolicy,
  type IkeProposalConfig,
  type IkeSaState,
  type IkeTimer,
} from './ike-types.js';

/** What the layer above decides for an authenticated auth request. */
export interface IkeAuthDecision {
  /** Payloads to append to the response (after IDr, CERT, AUTH). */
  payloads: IkePayloadEntry[];
  /** False to answer but not keep the IKE SA (e.g. authorization refused). Default true. */
  establish?: boolean;
}

export interface IkeAuthContext {
  exchangeType: number;
  peerId: IdPayload;
  peerCertificate?: Certificate;
  /** Decrypted request payloads. */
  request: IkePayloadEntry[];
  sa: IkeSa;
  path: IkePath;
}

/** An auth request the responder answered with a refusal. */
export interface IkeRefusal {
  reason: 'no_idi' | 'unknown_peer' | 'auth' | 'local_auth' | 'policy';
  /** The notification sent. */
  notifyType: number;
  exchangeType: number;
  peerId?: IdPayload;
  /** Why, in words (never key material). */
  detail?: string;
  path: IkePath;
}

export interface IkeResponderOptions extends IkeDeps {
  proposals: IkeProposalConfig[];
  localId: IdPayload;
  localAuth: IkeLocalAuth;
  /** The policy for a peer identity (IDi), or undefined for an unknown peer. */
  resolvePeer(id: IdPayload): IkePeerPolicy | undefined;
  /** Anchors named in our CERTREQ in IKE_SA_INIT responses. */
  certReqAnchors?: Certificate[];
  /** Exchange types accepted as the auth exchange; default IKE_AUTH only. */
  authExchangeTypes?: number[];
  /** Decides on an authenticated auth request. Default: childless IKE_AUTH, child SAs refused. */
  authorize?(ctx: IkeAuthContext): IkeAuthDecision;
  /** Called when an IKE SA is established. */
  onEstablished?(sa: IkeSa, ctx: IkeAuthContext): void;
  /**
   * Called for every authenticated-stage refusal (unknown peer, bad AUTH or certificate, policy),
   * for the audit log. `peerId` is absent when the request named none. Nothing else changes.
   */
  onRefused?(event: IkeRefusal): void;
  /** Half-open SAs above which IKE_SA_INIT needs a COOKIE (§2.6). Default 64. */
  cookieThreshold?: number;
  /** Half-open SAs kept at most; more are dropped. Default 4096. */
  maxHalfOpen?: number;
  /** How long a half-open SA waits for its auth request. Default 30 s. */
  halfOpenTimeoutMs?: number;
  /**
   * Makes the peer's certificate-chain and AUTH signature checks (e.g. `SignatureWorker`, on a
   * worker thread) while `receive` goes on with other datagrams; the auth request is answered when
   * the verdicts come back. Default: checked in line. A PSK AUTH is always checked in line.
   */
  signatureVerifier?: SignatureVerifier;
}

interface HalfOpen {
  spiI: Uint8Array;
  spiR: Uint8Array;
  ni: Uint8Array;
  nr: Uint8Array;
  suite: IkeChosenSuite;
  keys: IkeSaKeys;
  initRequest: Uint8Array;
  initResponse: Uint8Array;
  peerHashes: number[];
  initKey: string;
  timer: IkeTimer;
}

/** An auth request past decryption and peer lookup, waiting for its signature verdicts. */
interface AuthRequest {
  ho: HalfOpen;
  sa: IkeSa;
  /** Responder SPI (hex). */
  key: string;
  exchangeType: number;
  idi: IdPayload;
  inner: IkePayloadEntry[];
  policy: IkePeerPolicy;
  path: IkePath;
  refuse(notifyType: number, why: IkeRefusal['reason'], peerId?: IdPayload, detail?: string): IkeInputOutcome;
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const EMPTY: Uint8Array = new Uint8Array(0);

export class IkeResponder {
  readonly counters: IkeCounters;
  private readonly halfOpen = new Map<string, HalfOpen>();
  private readonly byInit = new Map<string, string>();
  private readonly sas = new Map<string, IkeSa>();
  /** Auth requests whose signatures the `signatureVerifier` is checking, by responder SPI (hex). */
  private readonly verifying = new Map<string, IkeSa>();
  private readonly cookieSecret: Uint8Array;

  constructor(private readonly opts: IkeResponderOptions) {
    this.counters = opts.counters ?? new IkeCounters();
    this.cookieSecret = opts.random(32);
  }

  /** Established SAs by responder SPI (hex). */
  get established(): ReadonlyMap<string, IkeSa> {
    return this.sas;
  }

  get halfOpenCount(): number {
    return this.halfOpen.size;
  }

  /** Auth requests waiting for the `signatureVerifier`'s verdicts. */
  get verifyingCount(): number {
    return this.verifying.size;
  }

  /** Feed every datagram received on an IKE socket. Never throws. */
  receive(datagram: Uint8Array, path: IkePath): IkeInputOutcome {
    this.counters.inc('received');
    let outcome: IkeInputOutcome;
    try {
      outcome = this.receiveInner(datagram, path);
    } catch (e) {
      this.countFailure(e);
      outcome = 'dropped';
    }
    this.counters.inc(`outcome_${outcome}`);
    return outcome;
  }

  /** A datagram whose handling threw: invalid input, or our own bug. */
  private countFailure(e: unknown): void {
    this.counters.inc(e instanceof CodecError || e instanceof CryptoError || e instanceof IkeError ? 'drop_invalid' : 'drop_internal');
  }

  private drop(reason: string): IkeInputOutcome {
    this.counters.inc(reason);
    return 'dropped';
  }

  private receiveInner(datagram: Uint8Array, path: IkePath): IkeInputOutcome {
    const raw = path.marker ? stripNonEspMarker(datagram) : datagram;
    if (!raw) return this.drop('drop_not_ike');
    let header: IkeHeader;
    try {
      header = ikeHeader.decode(raw);
    } catch {
      return this.drop('drop_decode');
    }
    let msg: IkeMessage;
    try {
      msg = ikeMessage.decode(raw, 0, this.opts.registry);
    } catch (e) {
      if (e instanceof UnsupportedCriticalPayloadError && this.isInitRequest(header)) {
        this.answerPlain(header, path, [notify(NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD, Uint8Array.of(e.payloadType))]);
        return 'answered';
      }
      if (e instanceof CodecError) return this.drop('drop_decode');
      throw e;
    }
    if (this.isInitRequest(header)) return this.onInitRequest(raw, msg, path);
    const key = hex(header.spiR);
    const ho = this.halfOpen.get(key);
    if (ho) {
      if (!eq(ho.spiI, header.spiI) || isResponse(header) || !isFromInitiator(header) || header.messageId !== 1) {
        return this.drop('drop_unexpected');
      }
      if (!(this.opts.authExchangeTypes ?? [IkeExchange.IKE_AUTH]).includes(header.exchangeType)) {
        return this.drop('drop_unexpected_exchange');
      }
      return this.onAuthRequest(ho, raw, msg, path);
    }
    if (this.verifying.has(key)) return this.drop('drop_auth_pending');
    const sa = this.sas.get(key);
    if (sa && eq(sa.state.spiI, header.spiI)) {
      if (isFromInitiator(header) === sa.state.isInitiator) return this.drop('drop_bad_flags');
      return sa.receive(raw, msg, path);
    }
    return this.drop('drop_unknown_spi');
  }

  private isInitRequest(h: IkeHeader): boolean {
    return h.exchangeType === IkeExchange.IKE_SA_INIT && !isResponse(h) && isFromInitiator(h) && h.messageId === 0 && h.spiR.every((b) => b === 0);
  }

  /** An unprotected IKE_SA_INIT response carrying only notifications (errors, COOKIE). */
  private answerPlain(h: IkeHeader, path: IkePath, payloads: IkePayloadEntry[]): void {
    const wire = ikeMessage.encode({
      header: { spiI: h.spiI, spiR: new Uint8Array(8), majorVersion: 2, minorVersion: 0, exchangeType: IkeExchange.IKE_SA_INIT, flags: ikeFlags({ initiator: false, response: true }), messageId: 0 },
      payloads,
    });
    sendIke(this.opts.transport, path, wire);
  }

  private cookieFor(ni: Uint8Array, spiI: Uint8Array, path: IkePath): Uint8Array {
    // §2.6: Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>); one secret per process.
    const mac = createHmac('sha256', this.cookieSecret).update(ni).update(path.remoteAddress).update(spiI).digest();
    return new Uint8Array(mac.subarray(0, 16));
  }

  private onInitRequest(raw: Uint8Array, msg: IkeMessage, path: IkePath): IkeInputOutcome {
    const h = msg.header;
    const p = msg.payloads;
    const initKey = `${hex(h.spiI)}/${path.remoteAddress}/${path.remotePort}`;
    const existing = this.byInit.get(initKey);
    if (existing) {
      const ho = this.halfOpen.get(existing);
      if (ho && eq(ho.initRequest, raw)) {
        this.counters.inc('response_retransmitted');
        sendIke(this.opts.transport, path, ho.initResponse);
        return 'answered';
      }
    }
    const sa = getPayload(p, IkePayload.SA);
    const ke = getPayload(p, IkePayload.KE);
    const nonce = getPayload(p, IkePayload.NONCE);
    if (!sa || !ke || !nonce) {
      this.counters.inc('refused_invalid_syntax');
      this.answerPlain(h, path, [notify(NotifyType.INVALID_SYNTAX, EMPTY)]);
      return 'answered';
    }
    if (this.halfOpen.size >= (this.opts.cookieThreshold ?? 64)) {
      const expected = this.cookieFor(nonce.nonce, h.spiI, path);
      const got = getNotify(p, NotifyType.COOKIE);
      const firstIsCookie = p[0]?.type === IkePayload.NOTIFY && got !== undefined && p[0]!.body === got;
      if (!got || !firstIsCookie || got.data.length !== expected.length || !timingSafeEqual(got.data, expected)) {
        this.counters.inc('cookie_sent');
        this.answerPlain(h, path, [notify(NotifyType.COOKIE, expected)]);
        return 'answered';
      }
    }
    if (this.halfOpen.size >= (this.opts.maxHalfOpen ?? 4096)) return this.drop('drop_half_open_limit');
    const choice =
      selectProposal(sa, this.opts.proposals.filter((c) => c.group === ke.group)) ?? selectProposal(sa, this.opts.proposals);
    if (!choice) {
      this.counters.inc('refused_no_proposal');
      this.answerPlain(h, path, [notify(NotifyType.NO_PROPOSAL_CHOSEN, EMPTY)]);
      return 'answered';
    }
    if (choice.config.group !== ke.group) {
      this.counters.inc('refused_invalid_ke');
      const g = choice.config.group;
      this.answerPlain(h, path, [notify(NotifyType.INVALID_KE_PAYLOAD, Uint8Array.of(g >> 8, g & 0xff))]);
      return 'answered';
    }
    const dh = createKeyExchange(ke.group, this.opts.random);
    let shared: Uint8Array;
    try {
      shared = dh.computeSecret(ke.data);
    } catch {
      return this.drop('drop_bad_ke');
    }
    const spiI = new Uint8Array(h.spiI);
    const spiR = this.opts.random(8);
    const ni = new Uint8Array(nonce.nonce);
    const nr = this.opts.random(32);
    const suite = suiteOf(choice.config);
    const keys = deriveKeys(suite, shared, ni, nr, spiI, spiR);
    const out: IkePayloadEntry[] = [
      payload(IkePayload.SA, chosenSaPayload(choice.num, choice.config)),
      payload(IkePayload.KE, { group: dh.group, data: dh.publicValue }),
      payload(IkePayload.NONCE, { nonce: nr }),
    ];
    if (getNotify(p, NotifyType.NAT_DETECTION_SOURCE_IP)) {
      out.push(
        notify(NotifyType.NAT_DETECTION_SOURCE_IP, natDetectionHash(spiI, spiR, path.localAddress, path.localPort)),
        notify(NotifyType.NAT_DETECTION_DESTINATION_IP, natDetectionHash(spiI, spiR, path.remoteAddress, path.remotePort)),
      );
    }
    for (const data of certReqHashes({ trustAnchors: this.opts.certReqAnchors })) {
      out.push(payload(IkePayload.CERTREQ, { encoding: 4, data }));
    }
    const sha = getNotify(p, NotifyType.SIGNATURE_HASH_ALGORITHMS);
    if (sha) out.push(notify(NotifyType.SIGNATURE_HASH_ALGORITHMS, hashList(SUPPORTED_SIGNATURE_HASHES)));
    out.push(notify(NotifyType.CHILDLESS_IKEV2_SUPPORTED, EMPTY));
    const initResponse = ikeMessage.encode(
      {
        header: { spiI, spiR, majorVersion: 2, minorVersion: 0, exchangeType: IkeExchange.IKE_SA_INIT, flags: ikeFlags({ initiator: false, response: true }), messageId: 0 },
        payloads: out,
      },
      undefined,
      0,
      this.opts.registry,
    );
    const key = hex(spiR);
    const timer = this.opts.clock.setTimer(this.opts.halfOpenTimeoutMs ?? 30_000, () => {
      if (this.halfOpen.delete(key)) this.counters.inc('half_open_expired');
      this.byInit.delete(initKey);
    });
    this.halfOpen.set(key, {
      spiI,
      spiR,
      ni,
      nr,
      suite,
      keys,
      initRequest: new Uint8Array(raw),
      initResponse,
      peerHashes: sha ? parseHashList(sha.data) : [],
      initKey,
      timer,
    });
    this.byInit.set(initKey, key);
    sendIke(this.opts.transport, path, initResponse);
    return 'answered';
  }

  private onAuthRequest(ho: HalfOpen, raw: Uint8Array, msg: IkeMessage, path: IkePath): IkeInputOutcome {
    const o = this.opts;
    const sa = new IkeSa(
      {
        spiI: ho.spiI,
        spiR: ho.spiR,
        isInitiator: false,
        suite: ho.suite,
        keys: ho.keys,
        ni: ho.ni,
        nr: ho.nr,
        localId: o.localId,
        peerId: o.localId,
        nextRequestId: 0,
        nextPeerRequestId: 1,
        path,
      },
      o,
      this.counters,
    );
    const inner = sa.unprotect(raw, msg);
    if (!inner) return 'dropped';
    // From here the request is genuine (it decrypted): it is answered, and the half-open SA ends.
    const key = hex(ho.spiR);
    this.halfOpen.delete(key);
    this.byInit.delete(ho.initKey);
    ho.timer.cancel();
    const exchangeType = msg.header.exchangeType;
    const refuse = (notifyType: number, why: IkeRefusal['reason'], peerId?: IdPayload, detail?: string): IkeInputOutcome => {
      this.counters.inc(`refused_${why}`);
      o.onRefused?.({ reason: why, notifyType, exchangeType, path, ...(peerId ? { peerId } : {}), ...(detail ? { detail } : {}) });
      sendIke(o.transport, path, sa.protect(exchangeType, 1, true, [notify(notifyType, EMPTY)]));
      sa.close();
      return 'answered';
    };
    const idi = getPayload(inner, IkePayload.IDi);
    if (!idi) return refuse(NotifyType.INVALID_SYNTAX, 'no_idi');
    const policy = o.resolvePeer(idi);
    if (!policy) return refuse(NotifyType.AUTHENTICATION_FAILED, 'unknown_peer', idi);
    const peerOctets = authOctets(sa.state, 'initiator', ho.initRequest, ho.nr, idi);
    const now = new Date(o.clock.now());
    const req: AuthRequest = { ho, sa, key, exchangeType, idi, inner, policy, path, refuse };
    if (o.signatureVerifier) {
      this.verifying.set(key, sa);
      // Answered when the verdicts come back, unless close() came first.
      verifyPeerAuthWith(o.signatureVerifier, ho.suite, policy, idi, inner, peerOctets, now)
        .then(
          ({ certificate }) => this.verifying.delete(key) && this.completeAuth(req, certificate),
          (e: unknown) => {
            if (!this.verifying.delete(key)) return;
            if (e instanceof IkeError) return refuse(NotifyType.AUTHENTICATION_FAILED, 'auth', idi, e.message);
            throw e;
          },
        )
        .catch((e: unknown) => {
          sa.close();
          this.countFailure(e);
        });
      return 'accepted';
    }
    let peerCertificate: Certificate | undefined;
    try {
      peerCertificate = verifyPeerAuth(ho.suite, policy, idi, inner, peerOctets, now).certificate;
    } catch (e) {
      if (e instanceof IkeError) return refuse(NotifyType.AUTHENTICATION_FAILED, 'auth', idi, e.message);
      throw e;
    }
    return this.completeAuth(req, peerCertificate);
  }

  /** The peer is authenticated: our AUTH, the layer above's decision, the response. */
  private completeAuth(req: AuthRequest, peerCertificate: Certificate | undefined): IkeInputOutcome {
    const { ho, sa, key, exchangeType, idi, inner, policy, path, refuse } = req;
    const o = this.opts;
    // Our AUTH before `authorize`: if we cannot authenticate ourselves, nobody has been admitted.
    const octets = authOctets(sa.state, 'responder', ho.initResponse, ho.ni, o.localId);
    let authPayloads: IkePayloadEntry[];
    try {
      authPayloads = buildAuthPayloads(ho.suite, policy.localAuth ?? o.localAuth, policy.psk, octets, ho.peerHashes);
    } catch (e) {
      if (e instanceof IkeError || e instanceof CryptoError) return refuse(NotifyType.AUTHENTICATION_FAILED, 'local_auth', idi);
      throw e;
    }
    sa.state.peerId = { idType: idi.idType, data: new Uint8Array(idi.data) };
    sa.state.peerCertificate = peerCertificate;
    const ctx: IkeAuthContext = { exchangeType, peerId: sa.state.peerId, peerCertificate, request: inner, sa, path };
    const decision = o.authorize ? o.authorize(ctx) : defaultIkeAuth(inner);
    const response = [payload(IkePayload.IDr, o.localId), ...authPayloads, ...decision.payloads];
    const wire = sa.protect(exchangeType, 1, true, response);
    sa.recordResponse(1, wire);
    sendIke(o.transport, path, wire);
    if (decision.establish === false) {
      this.counters.inc('refused_policy');
      const n = decision.payloads.map((x) => x.body as { notifyType?: number }).find((b) => typeof b?.notifyType === 'number');
      o.onRefused?.({ reason: 'policy', notifyType: n?.notifyType ?? 0, exchangeType, peerId: sa.state.peerId, path });
      sa.close();
      return 'answered';
    }
    this.sas.set(key, sa);
    sa.whenDeleted(() => {
      this.sas.delete(key);
      this.counters.inc('deleted');
    });
    this.counters.inc('established');
    o.onEstablished?.(sa, ctx);
    return 'answered';
  }

  /**
   * Takes over an established SA restored from storage (see `ikeSaFromRecord`), so the peer's
   * later requests reach it and the layer above can send requests (in-band rekeys) on it.
   */
  adopt(state: IkeSaState): IkeSa {
    const sa = new IkeSa(state, this.opts, this.counters);
    const key = hex(state.spiR);
    this.sas.get(key)?.close();
    this.sas.set(key, sa);
    sa.whenDeleted(() => {
      this.sas.delete(key);
      this.counters.inc('deleted');
    });
    return sa;
  }

  /** Forgets an SA (e.g. after the layer above deleted it). */
  remove(sa: IkeSa): void {
    this.sas.delete(hex(sa.state.spiR));
    sa.close();
  }

  /** Cancels every timer. */
  close(): void {
    for (const ho of this.halfOpen.values()) ho.timer.cancel();
    this.halfOpen.clear();
    this.byInit.clear();
    for (const sa of this.sas.values()) sa.close();
    this.sas.clear();
    for (const sa of this.verifying.values()) sa.close();
    this.verifying.clear();
  }
}

/** Plain IKE_AUTH: the IKE SA only; a requested CHILD_SA gets NO_PROPOSAL_CHOSEN (§1.2, RFC 6023). */
export function defaultIkeAuth(request: IkePayloadEntry[]): IkeAuthDecision {
  const wantsChild = getPayload(request, IkePayload.SA) !== undefined;
  return { payloads: wantsChild ? [notify(NotifyType.NO_PROPOSAL_CHOSEN, EMPTY)] : [] };
}

