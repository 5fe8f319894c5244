/**
 * Types shared by the IKEv2 state machines (RFC 7296): the injected transport, clock and
 * randomness, configuration of proposals and credentials, and the established IKE SA view.
 */
import type { IdPayload, IkePayloadEntry } from '@app/codec';
import type { Certificate, IkeSaKeys, PrfAlgorithm, RandomBytes, SkSuite } from '@app/crypto';
import type { KeyObject } from 'node:crypto';

/** Where a datagram came from / goes to. `marker` = the socket speaks RFC 3948 framing (port 4500). */
export interface IkePath {
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  marker: boolean;
}

/** Sends one UDP datagram (already framed). Must not throw; failures are the transport's to count. */
export interface IkeTransport {
  send(datagram: Uint8Array, path: IkePath): void;
}

export interface IkeTimer {
  cancel(): void;
}

/** Injected time: milliseconds and one-shot timers. */
export interface IkeClock {
  now(): number;
  setTimer(ms: number, fn: () => void): IkeTimer;
}

export type { RandomBytes };

/** One IKE SA proposal (RFC 7296 §3.3): ENCR (+ key bits), INTEG (omitted for AEAD), PRF, KE. */
export interface IkeProposalConfig {
  encrId: number;
  keyBits: number;
  integId?: number;
  prfId: number;
  group: number;
}

/** The negotiated algorithms of an IKE SA. */
export interface IkeChosenSuite {
  sk: SkSuite;
  prf: PrfAlgorithm;
  group: number;
}

/** Our way of authenticating: the peer's PSK, or a signature with our key and certificates (leaf first). */
export type IkeLocalAuth = { kind: 'psk' } | { kind: 'signature'; privateKey: KeyObject; certificates: Uint8Array[] };

/** What we accept from a peer. */
export interface IkePeerPolicy {
  /** Shared secret for AUTH method 2 (both directions). */
  psk?: Uint8Array;
  /** Trust anchors for signature AUTH; the peer's ID must match its certificate. */
  trustAnchors?: Certificate[];
  /** How we authenticate to this peer (responder), overriding the responder's default (PAD, RFC 4301 §4.4.3). */
  localAuth?: IkeLocalAuth;
}

export interface IkeRetransmitConfig {
  /** First timeout; doubled per retry (RFC 7296 §2.1). */
  timeoutMs: number;
  /** Retransmissions before giving up. */
  tries: number;
}

export const DEFAULT_RETRANSMIT: IkeRetransmitConfig = { timeoutMs: 1000, tries: 5 };

/** An established IKE SA: what the G-IKEv2 layer needs to run further exchanges on it. */
export interface IkeSaState {
  spiI: Uint8Array;
  spiR: Uint8Array;
  /** True when we are the original initiator (sets the I flag, §3.1). */
  isInitiator: boolean;
  suite: IkeChosenSuite;
  keys: IkeSaKeys;
  ni: Uint8Array;
  nr: Uint8Array;
  localId: IdPayload;
  peerId: IdPayload;
  /** The peer's end-entity certificate if it authenticated by signature. */
  peerCertificate?: Certificate;
  /** Next Message ID we use for our requests, and the one we expect for the peer's (§2.2). */
  nextRequestId: number;
  nextPeerRequestId: number;
  path: IkePath;
}

/** Outcome of feeding one datagram to a state machine. Every input is exactly one of these. */
export type IkeInputOutcome = 'answered' | 'accepted' | 'dropped';

/** Typed reasons an IKE SA setup fails. */
export type IkeFailure =
  | 'NO_PROPOSAL_CHOSEN'
  | 'INVALID_KE_PAYLOAD'
  | 'AUTHENTICATION_FAILED'
  | 'TIMEOUT'
  | 'PEER_ERROR'
  | 'PROTOCOL_ERROR';

export class IkeError extends Error {
  override readonly name = 'IkeError';
  constructor(
    readonly code: IkeFailure,
    message: string,
    /** Notify type the peer sent, if it said no. */
    readonly notifyType?: number,
  ) {
    super(`${code}: ${message}`);
  }
}

/** Payloads of an exchange, decrypted. */
export type IkePayloads = IkePayloadEntry[];
