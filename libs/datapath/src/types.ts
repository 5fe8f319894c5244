/**
 * The SA/policy API of the datapath: the one seam between the control plane (member agent,
 * G-IKEv2) and the data plane (DESIGN.md). Parameter objects in, events out. All times are
 * milliseconds on the injected clock.
 */

/** An injected clock (milliseconds, monotonic enough for lifetimes and rollover). */
export interface Clock {
  now(): number;
}

/** RFC 5374 §4.1.1 GSPD entry directionality (and the SA Direction attribute, §4.4.2). */
export type Directionality = 'symmetric' | 'sender-only' | 'receiver-only';

/** RFC 4301 §4.4.1 processing choices. `protect` is RFC 5374's GKM-triggering PROTECT. */
export type PolicyAction = 'protect' | 'bypass' | 'discard';

/** An inclusive port range, or one port. */
export type PortSelector = number | { readonly from: number; readonly to: number };

/**
 * Selectors over the (inner) IP packet. Addresses are an address or a CIDR prefix ("ff3e::/16",
 * "232.1.1.1/32"); absent means ANY. In a multicast group both directions carry the group address
 * as destination, so selectors name packet source and destination literally in both directions
 * (not RFC 4301's local/remote pair).
 */
export interface Selector {
  readonly source?: string;
  readonly destination?: string;
  /** Upper-layer protocol (IANA protocol number); absent means ANY. */
  readonly protocol?: number;
  readonly sourcePort?: PortSelector;
  readonly destinationPort?: PortSelector;
}

/** One ordered GSPD entry (RFC 5374 §4.1.1). The first matching entry decides. */
export interface GspdEntry {
  /** Unique within the policy; SAs link to their parent entry by this id. */
  readonly id: string;
  readonly action: PolicyAction;
  /** Default 'symmetric' (RFC 5374 §4.1.1 SHOULD). */
  readonly direction?: Directionality;
  readonly selector: Selector;
  /** For `protect`: the group whose registration a missing SA triggers. */
  readonly groupId?: string;
}

/** RFC 5374 §3.1 tunnel mode with address preservation (GDOI attribute 14's four values). */
export type AddressPreservation = 'none' | 'source' | 'destination' | 'both';

/** ESP transforms this datapath implements. */
export type EspTransform =
  /** AES-GCM with a 16-octet ICV, RFC 4106. Encryption key = AES key || 4-byte salt. */
  | { readonly kind: 'aes-gcm-16'; readonly keyBits: 128 | 256 }
  /** AES-CBC (RFC 3602) with HMAC-SHA-256-128 (RFC 4868). */
  | { readonly kind: 'aes-cbc-hmac-sha256'; readonly keyBits: 128 | 256 };

/** A lifetime bound; absent fields do not apply. Seconds count from installation. */
export interface LifetimeBound {
  readonly seconds?: number;
  readonly bytes?: number;
  readonly packets?: number;
}

/** One group IPsec SA as the GCKS defined it. */
export interface SaConfig {
  /** Chosen by the GCKS, not the receiver (RFC 5374 §4.1.2). 256..2^32-1 (RFC 4303 §2.1). */
  readonly spi: number;
  /** The GSPD entry this SA serves (its parent SPD entry, RFC 5374 §4.1.1). */
  readonly policyId: string;
  /** The group's destination address (multicast), outer destination unless preserved. */
  readonly destination: string;
  /** The speaker's address for a per-speaker SA (RFC 4301 §4.1 demux); absent = any source. */
  readonly source?: string;
  /** From this member's point of view: may it send, receive, or both on this SA. Default symmetric. */
  readonly direction?: Directionality;
  readonly mode: 'tunnel' | 'transport';
  /** Tunnel mode only; default 'both' (RFC 5374 §4.4.2 default Source-and-Destination). */
  readonly addressPreservation?: AddressPreservation;
  /** Outer source when the source is not preserved; default the datapath's local address. */
  readonly tunnelSource?: string;
  /** ESP in UDP (RFC 3948); ports default 4500. Absent/false: plain ESP (protocol 50). */
  readonly udpEncapsulation?: false | { readonly sourcePort?: number; readonly destinationPort?: number };
  readonly transform: EspTransform;
  /** GCM: key || salt (20 or 36 bytes, RFC 4106 §8.1). CBC: the AES key (16 or 32 bytes). */
  readonly encryptionKey: Uint8Array;
  /** CBC+HMAC only: the 32-byte HMAC-SHA-256 key (RFC 4868 §2.1.1). */
  readonly integrityKey?: Uint8Array;
  /**
   * 64-bit Extended Sequence Numbers (RFC 4303 §2.2.1): only the low 32 bits travel, the high
   * half is authenticated (GCM AAD SPI||high||low, RFC 4106 §5; HMAC over ...||high) and inferred
   * by the receiver (RFC 4303 Appendix A2). Default false.
   */
  readonly extendedSequenceNumbers?: boolean;
  /** Anti-replay window in packets: 0 (off) or 64..4096 (RFC 4303 §3.4.3, RFC 6479). */
  readonly replayWindow: number;
  /** RFC 6054: this member's sender ID, placed in the IV's most significant bits. */
  readonly senderId?: number;
  /** RFC 6054 / RFC 9838 GWP_SENDER_ID_BITS: width of the sender ID (0..32, default 0). */
  readonly senderIdBits?: number;
  readonly lifetime?: { readonly soft?: LifetimeBound; readonly hard?: LifetimeBound };
}

export interface InstallSaOptions {
  /** When a speaker may start sending on it (leading edge, RFC 5374 §4.2.1). Default now. */
  readonly activateAt?: number;
}

export interface RetireSaOptions {
  /** When receivers stop accepting it (trailing edge). Default now. */
  readonly deleteAt?: number;
}

/** Why a packet was dropped; each has a counter. */
export type DropReason =
  | 'malformed' // failed to parse (outer, ESP, padding, inner)
  | 'noPolicy' // no GSPD entry matched (default discard, RFC 4301 §4.4.1)
  | 'discard' // a DISCARD entry matched
  | 'noSa' // ESP with an SPI we do not hold (RFC 4301 §5.2 step 3a)
  | 'replay' // duplicate or left of the window (RFC 4303 §3.4.3)
  | 'icv' // integrity check failed (RFC 4303 §3.4.4)
  | 'expired' // hard lifetime reached or trailing edge deleted
  | 'preservationMismatch' // outer address differs from inner (RFC 5374 §5.2, audited)
  | 'policyMismatch' // inner packet not allowed by the SA's GSPD-I entry (RFC 4301 §5.2 step 4)
  | 'directionViolation' // sent on a receive-only SA/entry, or received on a send-only one
  | 'queueFull' // registration hold queue full
  | 'noRegistration' // protect entry without SA and no hold queue configured
  | 'unsupported' // fragments, oversize packets, a framing the bind cannot carry
  | 'bindError'; // the bind refused the datagram

export const DROP_REASONS: readonly DropReason[] = [
  'malformed',
  'noPolicy',
  'discard',
  'noSa',
  'replay',
  'icv',
  'expired',
  'preservationMismatch',
  'policyMismatch',
  'directionViolation',
  'queueFull',
  'noRegistration',
  'unsupported',
  'bindError',
];

export interface RegistrationNeededEvent {
  readonly groupId: string;
  readonly policyId: string;
  /** The packet's destination (the group address). */
  readonly destination: string;
  readonly at: number;
}

export interface ExpireEvent {
  readonly spi: number;
  readonly policyId: string;
  readonly cause: 'seconds' | 'bytes' | 'packets' | 'sequence';
  readonly at: number;
}

export interface UnknownSpiEvent {
  readonly spi: number;
  readonly srcAddress: string;
  readonly dstAddress: string;
  readonly at: number;
}

/** An auditable event (RFC 5374 §5.2, RFC 4301 §5.2). Never carries key bytes. */
export interface AuditEvent {
  readonly kind: 'preservation-mismatch' | 'policy-mismatch' | 'direction-violation';
  readonly spi: number;
  readonly at: number;
  readonly detail: string;
}

/** An IKE message that arrived behind the non-ESP marker on the shared port (RFC 3948 §2.2). */
export interface IkeDatagramEvent {
  /** The IKE message, without the 4-byte marker. */
  readonly message: Uint8Array;
  readonly srcAddress: string;
  readonly srcPort: number;
  readonly dstAddress: string;
  readonly dstPort: number;
}

export interface SaStats {
  readonly spi: number;
  readonly policyId: string;
  readonly state: 'pending' | 'active' | 'retiring';
  readonly packetsOut: number;
  readonly bytesOut: number;
  readonly packetsIn: number;
  readonly bytesIn: number;
  /** Clock time of the last packet sent or accepted, or undefined. */
  readonly lastUsed: number | undefined;
}

export interface DatapathStats {
  readonly drops: Readonly<Record<DropReason, number>>;
  /** Packets protected and handed to the bind. */
  readonly sent: number;
  /** Packets sent as BYPASS. */
  readonly bypassed: number;
  /** Packets of a PROTECT entry sent in clear because no SA was usable (fail-open only). */
  readonly sentClear: number;
  /** Packets verified and delivered to the plaintext port. */
  readonly delivered: number;
  /** Packets currently held waiting for registration. */
  readonly held: number;
  /** Inputs that were not for us to drop: IKE handed on, NAT keepalives. */
  readonly ike: number;
  readonly keepalives: number;
  readonly sas: readonly SaStats[];
}

/** The SA/policy API (DESIGN.md); `Datapath` implements it. */
export interface DatapathApi {
  /** Replaces the GSPD with these ordered entries. Throws DatapathConfigError on invalid ones. */
  installPolicy(entries: readonly GspdEntry[]): void;
  /** Adds an SA; as a speaker it becomes the sending SA at `activateAt`. */
  installSa(sa: SaConfig, options?: InstallSaOptions): void;
  /** Marks an SA as trailing edge: no more sending once another is active; deleted at `deleteAt`. */
  retireSa(spi: number, options?: RetireSaOptions): void;
  /** Removes an SA now. Returns whether it existed. */
  deleteSa(spi: number): boolean;
  stats(): DatapathStats;
  onRegistrationNeeded(handler: (e: RegistrationNeededEvent) => void): () => void;
  onSoftExpire(handler: (e: ExpireEvent) => void): () => void;
  onHardExpire(handler: (e: ExpireEvent) => void): () => void;
  onUnknownSpi(handler: (e: UnknownSpiEvent) => void): () => void;
  onAudit(handler: (e: AuditEvent) => void): () => void;
  onIke(handler: (e: IkeDatagramEvent) => void): () => void;
}
