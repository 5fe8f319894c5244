import { formatIpAddress, isCodecError, parseIpAddress } from '@app/codec';
import type { NetworkBind, PlaintextPort } from './bind.js';
import {
  ADDRESS_CACHE_SIZE,
  MAX_HOLD_GROUPS,
  MAX_UNKNOWN_SPI_TRACKED,
  OUTPUT_SLAB_BYTES,
  UNKNOWN_SPI_REPORT_MS,
} from './constants.js';
import type { CompiledEntry } from './gspd.js';
import { Gspd } from './gspd.js';
import { SaTable, type SaEntry } from './sa-table.js';
import {
  DROP_REASONS,
  type AuditEvent,
  type Clock,
  type DropReason,
  type ExpireEvent,
  type IkeDatagramEvent,
  type RegistrationNeededEvent,
  type UnknownSpiEvent,
} from './types.js';

/** A list of handlers; a throwing handler is counted, never allowed to break packet processing. */
export class Emitter<T> {
  private handlers: Array<(e: T) => void> = [];
  errors = 0;

  on(handler: (e: T) => void): () => void {
    this.handlers = [...this.handlers, handler];
    return () => {
      this.handlers = this.handlers.filter((h) => h !== handler);
    };
  }

  get active(): boolean {
    return this.handlers.length > 0;
  }

  emit(e: T): void {
    for (const h of this.handlers) {
      try {
        h(e);
      } catch {
        this.errors++;
      }
    }
  }
}

export interface HeldPacket {
  readonly packet: Uint8Array;
  readonly at: number;
}

export interface ContextOptions {
  clock: Clock;
  holdQueue: number;
  failOpen: boolean;
  holdMs: number;
  registrationRetryMs: number;
  localAddresses: { v4?: Uint8Array; v6?: Uint8Array };
}

/** The state the send and receive pipelines share: databases, counters, events, binds. */
export class DatapathContext {
  readonly gspd = new Gspd();
  readonly sad = new SaTable();
  readonly drops: Record<DropReason, number>;
  sent = 0;
  bypassed = 0;
  sentClear = 0;
  delivered = 0;
  ike = 0;
  keepalives = 0;
  /** Unexpected (non-codec) exceptions caught in the pipelines; should stay 0. */
  internalErrors = 0;
  bind: NetworkBind | undefined;
  port: PlaintextPort | undefined;

  readonly registrationNeeded = new Emitter<RegistrationNeededEvent>();
  readonly softExpire = new Emitter<ExpireEvent>();
  readonly hardExpire = new Emitter<ExpireEvent>();
  readonly unknownSpi = new Emitter<UnknownSpiEvent>();
  readonly audit = new Emitter<AuditEvent>();
  readonly ikeMessage = new Emitter<IkeDatagramEvent>();

  /** Packets waiting for a group's registration, by group id. */
  readonly held = new Map<string, HeldPacket[]>();
  heldCount = 0;
  private readonly lastRegistration = new Map<string, number>();
  private readonly lastUnknownSpi = new Map<number, number>();
  private readonly addressCache = new Map<string, Uint8Array | null>();
  /** Identification for IPv4 outer headers we construct (RFC 6864: only unique per fragmentable flow). */
  ipv4Id = 0;
  /** All-zero addresses: "the kernel fills in its own" for a raw IPv4 socket (IP_HDRINCL). */
  readonly zero4 = new Uint8Array(4);
  readonly zero6 = new Uint8Array(16);

  private slab = new ArrayBuffer(OUTPUT_SLAB_BYTES);
  private slabUsed = 0;

  /**
   * One zero-filled output buffer of `n` bytes (slab memory is never reused). Owned by
   * whoever receives it; never reused by us. Large ones get their own ArrayBuffer.
   */
  allocOut(n: number): Uint8Array {
    if (n > OUTPUT_SLAB_BYTES >>> 3) return new Uint8Array(n);
    if (this.slabUsed + n > OUTPUT_SLAB_BYTES) {
      this.slab = new ArrayBuffer(OUTPUT_SLAB_BYTES);
      this.slabUsed = 0;
    }
    const out = new Uint8Array(this.slab, this.slabUsed, n);
    this.slabUsed = (this.slabUsed + n + 7) & ~7;
    return out;
  }

  constructor(readonly options: ContextOptions) {
    this.drops = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
  }

  get clock(): Clock {
    return this.options.clock;
  }

  drop(reason: DropReason): void {
    this.drops[reason]++;
  }

  emitAudit(kind: AuditEvent['kind'], spi: number, detail: string): void {
    this.audit.emit({ kind, spi, at: this.clock.now(), detail });
  }

  /** Textual address to bytes through a bounded cache (binds hand us strings). Null if invalid. */
  addressBytes(text: string): Uint8Array | null {
    let v = this.addressCache.get(text);
    if (v !== undefined) return v;
    try {
      v = parseIpAddress(text);
    } catch (e) {
      if (!isCodecError(e)) throw e;
      v = null;
    }
    if (this.addressCache.size >= ADDRESS_CACHE_SIZE) this.addressCache.clear();
    this.addressCache.set(text, v);
    return v;
  }

  /** Removes an SA from every table. */
  removeSa(sa: SaEntry): void {
    this.sad.remove(sa);
  }

  /**
   * Lifetime stage: whether the SA may still carry packets at `now`. Deletes SAs past their
   * trailing-edge delete time or hard lifetime (raising onHardExpire for the latter) and raises
   * onSoftExpire once.
   */
  alive(sa: SaEntry, now: number): boolean {
    if (sa.hardFired) return false;
    if (now >= sa.deleteAt) {
      sa.hardFired = true;
      this.removeSa(sa);
      return false;
    }
    if (sa.hard) {
      const cause = sa.reached(sa.hard, now);
      if (cause) {
        this.expireHard(sa, cause, now);
        return false;
      }
    }
    if (sa.soft && !sa.softFired) {
      const cause = sa.reached(sa.soft, now);
      if (cause) {
        sa.softFired = true;
        this.softExpire.emit({ spi: sa.spi, policyId: sa.policyId, cause, at: now });
      }
    }
    return true;
  }

  expireHard(sa: SaEntry, cause: ExpireEvent['cause'], now: number): void {
    if (sa.hardFired) return;
    sa.hardFired = true;
    this.removeSa(sa);
    this.hardExpire.emit({ spi: sa.spi, policyId: sa.policyId, cause, at: now });
  }

  /** Reports an SPI we do not hold, at most once per UNKNOWN_SPI_REPORT_MS per SPI. */
  reportUnknownSpi(spi: number, srcAddress: string, dstAddress: string): void {
    if (!this.unknownSpi.active) return;
    const now = this.clock.now();
    const last = this.lastUnknownSpi.get(spi);
    if (last !== undefined && now - last < UNKNOWN_SPI_REPORT_MS) return;
    if (this.lastUnknownSpi.size >= MAX_UNKNOWN_SPI_TRACKED) this.lastUnknownSpi.clear();
    this.lastUnknownSpi.set(spi, now);
    this.unknownSpi.emit({ spi, srcAddress, dstAddress, at: now });
  }

  /**
   * A PROTECT entry without a usable SA. With `register`, this is the RFC 5374 §4.1.1
   * registration trigger: raise the event (rate-limited per group). Either way the packet waits
   * in the group's bounded queue, or is dropped when holding is off or the queue is full.
   * Returns whether the packet is held.
   */
  holdForSa(entry: CompiledEntry, packet: Uint8Array, dstOffset: number, addressLength: number, register: boolean): boolean {
    const groupId = entry.groupId!;
    const now = this.clock.now();
    if (register) this.raiseRegistration(entry, packet, dstOffset, addressLength);
    if (this.options.holdQueue === 0) {
      this.drop('noRegistration');
      return false;
    }
    let q = this.held.get(groupId);
    if (!q) {
      if (this.held.size >= MAX_HOLD_GROUPS) {
        this.drop('queueFull');
        return false;
      }
      q = [];
      this.held.set(groupId, q);
    }
    if (q.length >= this.options.holdQueue) {
      this.drop('queueFull');
      return false;
    }
    // Hold a copy: the port may reuse its buffer.
    q.push({ packet: Uint8Array.from(packet), at: now });
    this.heldCount++;
    return true;
  }

  /** The RFC 5374 §4.1.1 registration trigger, at most once per registrationRetryMs per group. */
  raiseRegistration(entry: CompiledEntry, packet: Uint8Array, dstOffset: number, addressLength: number): void {
    const groupId = entry.groupId!;
    const now = this.clock.now();
    const last = this.lastRegistration.get(groupId);
    if (last !== undefined && now - last < this.options.registrationRetryMs) return;
    this.lastRegistration.set(groupId, now);
    this.registrationNeeded.emit({
      groupId,
      policyId: entry.id,
      destination: formatIpAddress(packet, dstOffset, addressLength),
      at: now,
    });
  }

  /** Registration is over for this group (an SA arrived): forget the rate limit. */
  registered(groupId: string): void {
    this.lastRegistration.delete(groupId);
  }
}
