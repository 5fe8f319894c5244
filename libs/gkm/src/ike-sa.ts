/**
 * An established IKE SA (RFC 7296 §2.1-2.2): protected request/response exchanges with Message
 * IDs, retransmission of our requests, the cached response to the peer's last request, liveness
 * checks and Delete. Also the key derivation and AUTH steps the initiator and responder share.
 */
import { createHash } from 'node:crypto';
import {
  AuthMethod,
  CertEncoding,
  CodecError,
  IkeExchange,
  IkePayload,
  IkeProtocol,
  NotifyType,
  addNonEspMarker,
  getPayloads,
  idPayload,
  ikeFlags,
  isResponse,
  payload,
  type AuthPayload,
  type IdPayload,
  type IkeMessage,
  type IkePayloadEntry,
  type IkePayloadRegistry,
  ikePayloadRegistry,
} from '@app/codec';
import {
  CryptoError,
  classicSignatureAuth,
  pendingIssuerChecks,
  signatureAuthPlan,
  spkiKeyType,
  type SignaturePlan,
  type SignatureVerifier,
  deriveIkeSaKeys,
  identityMatchesCertificate,
  parseCertificate,
  protectIkeMessage,
  pskAuth,
  signatureAuth,
  signedOctets,
  skKeyLengths,
  skeyseed,
  unprotectIkeMessage,
  validateChain,
  verifyPskAuth,
  verifySignatureAuth,
  type Certificate,
  type IkeSaKeys,
  type RandomBytes,
} from '@app/crypto';
import {
  DEFAULT_RETRANSMIT,
  IkeError,
  type IkeChosenSuite,
  type IkeClock,
  type IkeInputOutcome,
  type IkeLocalAuth,
  type IkePath,
  type IkePeerPolicy,
  type IkeRetransmitConfig,
  type IkeSaState,
  type IkeTimer,
  type IkeTransport,
} from './ike-types.js';

/** Named counters every state machine keeps; each dropped input increments exactly one `drop_*`. */
export class IkeCounters {
  readonly values = new Map<string, number>();
  inc(name: string): void {
    this.values.set(name, (this.values.get(name) ?? 0) + 1);
  }
  get(name: string): number {
    return this.values.get(name) ?? 0;
  }
  /** Sum of all `drop_*` counters. */
  drops(): number {
    let n = 0;
    for (const [k, v] of this.values) if (k.startsWith('drop_')) n += v;
    return n;
  }
  toJSON(): Record<string, number> {
    return Object.fromEntries(this.values);
  }
}

export interface IkeDeps {
  transport: IkeTransport;
  clock: IkeClock;
  random: RandomBytes;
  retransmit?: IkeRetransmitConfig;
  registry?: IkePayloadRegistry;
  counters?: IkeCounters;
}

/** Sends an IKE message on a path, with the non-ESP marker where the socket needs it. */
export function sendIke(transport: IkeTransport, path: IkePath, message: Uint8Array): void {
  transport.send(path.marker ? addNonEspMarker(message) : message, path);
}

/** §2.14 key derivation for a finished IKE_SA_INIT. */
export function deriveKeys(
  suite: IkeChosenSuite,
  sharedSecret: Uint8Array,
  ni: Uint8Array,
  nr: Uint8Array,
  spiI: Uint8Array,
  spiR: Uint8Array,
): IkeSaKeys {
  const seed = skeyseed(suite.prf, ni, nr, sharedSecret);
  return deriveIkeSaKeys(suite.prf, seed, { ni, nr, spiI, spiR, ...skKeyLengths(suite.sk) });
}

/** An IPv4 or IPv6 address in text form as network-order octets (4 or 16). */
export function addressOctets(address: string): Uint8Array {
  if (!address.includes(':')) return Uint8Array.from(address.split('.').map(Number));
  const zone = address.indexOf('%');
  const a = zone >= 0 ? address.slice(0, zone) : address;
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const words = (part: string | undefined) => (part ? part.split(':') : []);
  let h = words(head);
  let t = words(tail);
  const v4 = (arr: string[]) => {
    const last = arr[arr.length - 1];
    if (last && last.includes('.')) {
      const o = last.split('.').map(Number);
      arr.splice(arr.length - 1, 1, ((o[0]! << 8) | o[1]!).toString(16), ((o[2]! << 8) | o[3]!).toString(16));
    }
    return arr;
  };
  if (tail === undefined) h = v4(h);
  else t = v4(t);
  const fill = tail === undefined ? [] : new Array<string>(8 - h.length - t.length).fill('0');
  const all = [...h, ...fill, ...t];
  const out = new Uint8Array(16);
  all.slice(0, 8).forEach((w, i) => {
    const v = parseInt(w, 16) || 0;
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

/** NAT_DETECTION_*_IP data (§2.23): SHA-1(SPIi | SPIr | IP | port). */
export function natDetectionHash(spiI: Uint8Array, spiR: Uint8Array, address: string, port: number): Uint8Array {
  const ip = addressOctets(address);
  return new Uint8Array(
    createHash('sha1').update(spiI).update(spiR).update(ip).update(Uint8Array.of(port >> 8, port & 0xff)).digest(),
  );
}

/** The inner payloads that authenticate us: [CERT...], AUTH (after ID payloads the caller adds). */
export function buildAuthPayloads(
  suite: IkeChosenSuite,
  auth: IkeLocalAuth,
  psk: Uint8Array | undefined,
  octets: Uint8Array,
  peerHashes: readonly number[],
): IkePayloadEntry[] {
  if (auth.kind === 'psk') {
    if (!psk) throw new IkeError('AUTHENTICATION_FAILED', 'no pre-shared key for this peer');
    return [payload(IkePayload.AUTH, { method: AuthMethod.PSK, data: pskAuth(suite.prf, psk, octets) })];
  }
  const certs = auth.certificates.map((data) => payload(IkePayload.CERT, { encoding: CertEncoding.X509_SIGNATURE, data }));
  // RFC 7427 §4: method 14 only if the peer announced SIGNATURE_HASH_ALGORITHMS.
  const body = peerHashes.length > 0 ? signatureAuth(auth.privateKey, octets, peerHashes) : classicSignatureAuth(auth.privateKey, octets);
  return [...certs, payload(IkePayload.AUTH, body)];
}

/**
 * Checks the peer's AUTH (§2.15) by PSK or by a certificate chaining to a trust anchor whose
 * subjectAltName matches the peer's ID. Returns the peer's certificate for signatures.
 */
export function verifyPeerAuth(
  suite: IkeChosenSuite,
  policy: IkePeerPolicy,
  peerId: IdPayload,
  inner: readonly IkePayloadEntry[],
  octets: Uint8Array,
  now: Date,
): { certificate?: Certificate } {
  const auth = peerAuthPayload(suite, policy, inner, octets);
  if (!auth) return {};
  return asAuthFailure(() => {
    const { leaf, intermediates, anchors } = peerChain(policy, inner);
    validateChain(leaf, intermediates, anchors, now);
    return matchedPeer(peerId, leaf, () => verifySignatureAuth(leaf.publicKey, auth.method, auth.data, octets));
  });
}

/**
 * `verifyPeerAuth` with the public-key signatures (the chain's and the AUTH's) made by `verifier`
 * in one batch, e.g. on a worker thread (`SignatureWorker`): the same checks in the same order,
 * and the same IkeErrors. A PSK AUTH is checked in line.
 */
export async function verifyPeerAuthWith(
  verifier: SignatureVerifier,
  suite: IkeChosenSuite,
  policy: IkePeerPolicy,
  peerId: IdPayload,
  inner: readonly IkePayloadEntry[],
  octets: Uint8Array,
  now: Date,
): Promise<{ certificate?: Certificate }> {
  const auth = peerAuthPayload(suite, policy, inner, octets);
  if (!auth) return {};
  const planned = asAuthFailure(() => {
    const chain = peerChain(policy, inner);
    const issuers = pendingIssuerChecks(chain.leaf, chain.intermediates, chain.anchors);
    const leaf = chain.leaf;
    // Malformed AUTH data is reported where verifyPeerAuth reports it: after the chain and the ID.
    let plan: SignaturePlan | false = false;
    let planError: unknown;
    try {
      plan = signatureAuthPlan(spkiKeyType(leaf.spki, () => leaf.publicKey), auth.method, auth.data, octets);
    } catch (e) {
      planError = e;
    }
    return { chain, issuers, plan, planError };
  });
  const { chain, issuers, plan, planError } = planned;
  const checks = issuers.map((p) => p.check);
  if (plan) checks.push({ ...plan, spki: chain.leaf.spki });
  const verdicts = await verifier.verify(checks);
  issuers.forEach((p, i) => p.record(verdicts[i] === true));
  return asAuthFailure(() => {
    validateChain(chain.leaf, chain.intermediates, chain.anchors, now);
    return matchedPeer(peerId, chain.leaf, () => {
      if (planError !== undefined) throw planError;
      return plan !== false && verdicts[issuers.length] === true;
    });
  });
}

/** The AUTH payload to check by signature; undefined when a PSK AUTH verified (throws when it does not). */
function peerAuthPayload(suite: IkeChosenSuite, policy: IkePeerPolicy, inner: readonly IkePayloadEntry[], octets: Uint8Array): AuthPayload | undefined {
  const auth = getPayloads(inner, IkePayload.AUTH)[0] as AuthPayload | undefined;
  if (!auth) throw new IkeError('AUTHENTICATION_FAILED', 'no AUTH payload');
  if (auth.method === AuthMethod.PSK) {
    if (!policy.psk || !verifyPskAuth(suite.prf, policy.psk, octets, auth.data)) {
      throw new IkeError('AUTHENTICATION_FAILED', 'PSK AUTH does not verify');
    }
    return undefined;
  }
  if (!policy.trustAnchors || policy.trustAnchors.length === 0) {
    throw new IkeError('AUTHENTICATION_FAILED', `AUTH method ${auth.method} not allowed for this peer`);
  }
  return auth;
}

/** The peer's X.509 CERT payloads, leaf first, and the anchors to chain them to. */
function peerChain(policy: IkePeerPolicy, inner: readonly IkePayloadEntry[]): { leaf: Certificate; intermediates: Certificate[]; anchors: Certificate[] } {
  const certs = getPayloads(inner, IkePayload.CERT)
    .filter((c) => c.encoding === CertEncoding.X509_SIGNATURE)
    .map((c) => parseCertificate(c.data));
  const leaf = certs[0];
  if (!leaf) throw new IkeError('AUTHENTICATION_FAILED', 'no certificate');
  return { leaf, intermediates: certs.slice(1), anchors: policy.trustAnchors ?? [] };
}

function matchedPeer(peerId: IdPayload, leaf: Certificate, signatureOk: () => boolean): { certificate: Certificate } {
  if (!identityMatchesCertificate(peerId, leaf)) throw new IkeError('AUTHENTICATION_FAILED', 'ID does not match certificate');
  if (!signatureOk()) throw new IkeError('AUTHENTICATION_FAILED', 'signature does not verify');
  return { certificate: leaf };
}

/** Runs `f`, turning a CryptoError (bad certificate, key or AUTH data) into AUTHENTICATION_FAILED. */
function asAuthFailure<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof CryptoError) throw new IkeError('AUTHENTICATION_FAILED', e.message);
    throw e;
  }
}

/** Signed octets for one side (§2.15). */
export function authOctets(
  sa: { suite: IkeChosenSuite; keys: IkeSaKeys },
  side: 'initiator' | 'responder',
  realMessage: Uint8Array,
  peerNonce: Uint8Array,
  id: IdPayload,
): Uint8Array {
  const skp = side === 'initiator' ? sa.keys.skpi : sa.keys.skpr;
  return signedOctets(sa.suite.prf, realMessage, peerNonce, skp, idPayload.encode(id));
}

/** A request from the peer on an established SA, for the layer above (G-IKEv2). */
export type IkeRequestHandler = (exchangeType: number, payloads: IkePayloadEntry[], sa: IkeSa) => IkePayloadEntry[] | undefined;

interface Outstanding {
  messageId: number;
  wire: Uint8Array;
  tries: number;
  timer?: IkeTimer;
  resolve(p: IkePayloadEntry[]): void;
  reject(e: Error): void;
}

/** Runtime of an established IKE SA. Window size 1 (§2.3): requests queue behind each other. */
export class IkeSa {
  deleted = false;
  private outstanding?: Outstanding;
  private readonly queue: (() => void)[] = [];
  private lastResponse?: { messageId: number; wire: Uint8Array };
  onRequest?: IkeRequestHandler;
  /** Called once when the SA is deleted (by either peer). */
  onDeleted?: (sa: IkeSa) => void;
  private readonly deletedHooks: ((sa: IkeSa) => void)[] = [];

  constructor(
    readonly state: IkeSaState,
    private readonly deps: IkeDeps,
    readonly counters: IkeCounters = deps.counters ?? new IkeCounters(),
  ) {}

  private get registry(): IkePayloadRegistry {
    return this.deps.registry ?? ikePayloadRegistry;
  }

  private outKeys() {
    const k = this.state.keys;
    return this.state.isInitiator ? { enc: k.skei, integ: k.skai } : { enc: k.sker, integ: k.skar };
  }

  private inKeys() {
    const k = this.state.keys;
    return this.state.isInitiator ? { enc: k.sker, integ: k.skar } : { enc: k.skei, integ: k.skai };
  }

  /** Encodes and protects one message of this SA. */
  protect(exchangeType: number, messageId: number, response: boolean, payloads: readonly IkePayloadEntry[]): Uint8Array {
    return protectIkeMessage(
      {
        spiI: this.state.spiI,
        spiR: this.state.spiR,
        majorVersion: 2,
        minorVersion: 0,
        exchangeType,
        flags: ikeFlags({ initiator: this.state.isInitiator, response }),
        messageId,
      },
      payloads,
      this.state.suite.sk,
      this.outKeys(),
      this.deps.random,
      [],
      this.registry,
    );
  }

  /** Decrypts a message of this SA; undefined (and a counted drop) if it does not verify. */
  unprotect(raw: Uint8Array, msg: IkeMessage): IkePayloadEntry[] | undefined {
    try {
      return unprotectIkeMessage(raw, msg, this.state.suite.sk, this.inKeys(), this.registry);
    } catch (e) {
      if (e instanceof CryptoError || e instanceof CodecError) {
        this.counters.inc(e instanceof CryptoError ? 'drop_integrity' : 'drop_inner_decode');
        return undefined;
      }
      throw e;
    }
  }

  /** Sends a protected request and resolves with the decrypted response payloads. */
  request(exchangeType: number, payloads: readonly IkePayloadEntry[]): Promise<IkePayloadEntry[]> {
    return new Promise((resolve, reject) => {
      const go = () => {
        if (this.deleted) return reject(new IkeError('PROTOCOL_ERROR', 'IKE SA deleted'));
        const messageId = this.state.nextRequestId++;
        let wire: Uint8Array;
        try {
          wire = this.protect(exchangeType, messageId, false, payloads);
        } catch (e) {
          reject(e as Error);
          return this.next();
        }
        this.outstanding = { messageId, wire, tries: 0, resolve, reject };
        this.transmit();
      };
      if (this.outstanding) this.queue.push(go);
      else go();
    });
  }

  private transmit(): void {
    const o = this.outstanding;
    if (!o) return;
    sendIke(this.deps.transport, this.state.path, o.wire);
    const r = this.deps.retransmit ?? DEFAULT_RETRANSMIT;
    o.timer = this.deps.clock.setTimer(r.timeoutMs * 2 ** o.tries, () => {
      if (this.outstanding !== o) return;
      if (o.tries >= r.tries) {
        this.outstanding = undefined;
        this.counters.inc('request_timeout');
        o.reject(new IkeError('TIMEOUT', `no response to message ${o.messageId}`));
        this.next();
        return;
      }
      o.tries++;
      this.counters.inc('retransmit');
      this.transmit();
    });
  }

  private next(): void {
    const go = this.queue.shift();
    if (go) go();
  }

  /** Handles a decoded message addressed to this SA (SPIs already matched). */
  receive(raw: Uint8Array, msg: IkeMessage, path: IkePath): IkeInputOutcome {
    const h = msg.header;
    if (isResponse(h)) {
      const o = this.outstanding;
      if (!o || h.messageId !== o.messageId) {
        this.counters.inc('drop_unexpected_response');
        return 'dropped';
      }
      const inner = this.unprotect(raw, msg);
      if (!inner) return 'dropped';
      o.timer?.cancel();
      this.outstanding = undefined;
      o.resolve(inner);
      this.next();
      return 'accepted';
    }
    if (this.lastResponse && h.messageId === this.lastResponse.messageId) {
      // A retransmitted request: answer with the same bytes (§2.1), after checking it is genuine.
      if (!this.unprotect(raw, msg)) return 'dropped';
      this.counters.inc('response_retransmitted');
      sendIke(this.deps.transport, path, this.lastResponse.wire);
      return 'answered';
    }
    if (h.messageId !== this.state.nextPeerRequestId) {
      this.counters.inc('drop_message_id');
      return 'dropped';
    }
    const inner = this.unprotect(raw, msg);
    if (!inner) return 'dropped';
    this.state.path = path;
    let reply: IkePayloadEntry[] | undefined;
    if (h.exchangeType === IkeExchange.INFORMATIONAL) {
      reply = [];
      const ikeDelete = getPayloads(inner, IkePayload.DELETE).some((d) => d.protocolId === IkeProtocol.IKE);
      if (ikeDelete) this.markDeleted();
    } else if (h.exchangeType === IkeExchange.CREATE_CHILD_SA) {
      reply = [payload(IkePayload.NOTIFY, { protocolId: 0, notifyType: NotifyType.NO_ADDITIONAL_SAS, spi: new Uint8Array(0), data: new Uint8Array(0) })];
    } else {
      reply = this.onRequest?.(h.exchangeType, inner, this);
    }
    if (!reply) {
      this.counters.inc('drop_unhandled_exchange');
      return 'dropped';
    }
    const wire = this.protect(h.exchangeType, h.messageId, true, reply);
    this.state.nextPeerRequestId++;
    this.lastResponse = { messageId: h.messageId, wire };
    sendIke(this.deps.transport, path, wire);
    return 'answered';
  }

  /** Records the response the responder sent to the auth exchange (Message ID 1) for retransmissions. */
  recordResponse(messageId: number, wire: Uint8Array): void {
    this.lastResponse = { messageId, wire };
    this.state.nextPeerRequestId = messageId + 1;
  }

  /** Deletes the IKE SA with an INFORMATIONAL Delete (§1.4.1). */
  async delete(): Promise<void> {
    try {
      await this.request(IkeExchange.INFORMATIONAL, [payload(IkePayload.DELETE, { protocolId: IkeProtocol.IKE, spiSize: 0, spis: [] })]);
    } finally {
      this.markDeleted();
    }
  }

  /** Liveness check: an empty INFORMATIONAL request (§1.4). */
  async ping(): Promise<void> {
    await this.request(IkeExchange.INFORMATIONAL, []);
  }

  /** Registers an internal deletion hook (the responder's SA table), independent of `onDeleted`. */
  whenDeleted(fn: (sa: IkeSa) => void): void {
    this.deletedHooks.push(fn);
  }

  private markDeleted(): void {
    if (this.deleted) return;
    this.close();
    for (const fn of this.deletedHooks) fn(this);
    this.onDeleted?.(this);
  }

  /** Cancels timers; pending requests fail. */
  close(): void {
    const o = this.outstanding;
    this.outstanding = undefined;
    if (o) {
      o.timer?.cancel();
      o.reject(new IkeError('PROTOCOL_ERROR', 'IKE SA closed'));
    }
    const q = this.queue.splice(0);
    this.deleted = true;
    for (const go of q) go();
  }
}
