import { isCodecError, parseIpAddress } from '@app/codec';
import type { InboundDatagram, NetworkBind, PlaintextPort } from './bind.js';
import { DEFAULT_HOLD_MS, DEFAULT_HOLD_QUEUE, DEFAULT_REGISTRATION_RETRY_MS, MAX_HOLD_QUEUE } from './constants.js';
import { DatapathContext } from './context.js';
import { DatapathConfigError } from './errors.js';
import { ReceivePipeline, type ReceiveOutcome } from './receive.js';
import { SaEntry } from './sa-table.js';
import { SendPipeline, type SendOutcome } from './send.js';
import type {
  AuditEvent,
  Clock,
  DatapathApi,
  DatapathStats,
  ExpireEvent,
  GspdEntry,
  IkeDatagramEvent,
  InstallSaOptions,
  RegistrationNeededEvent,
  RetireSaOptions,
  SaConfig,
  UnknownSpiEvent,
} from './types.js';

export interface DatapathOptions {
  /** The injected clock (milliseconds). */
  readonly clock: Clock;
  /** The network side; can also be attached later with `attach`. */
  readonly bind?: NetworkBind;
  /** The application side; can also be attached later with `attach`. */
  readonly port?: PlaintextPort;
  /** Packets held per group while registration runs (0 = drop them). Default 8, at most 256. */
  readonly holdQueue?: number;
  /**
   * Fail-open: send a PROTECT entry's packets in clear (as BYPASS, counted in `sentClear`) while
   * no SA is usable, instead of holding or dropping them (fail-close, the default). The
   * registration event is raised either way. Needs a bind that carries 'raw-ip'.
   */
  readonly failOpen?: boolean;
  /** Held packets older than this are dropped (ms). Default 10 s. */
  readonly holdMs?: number;
  /** Minimum interval between two registration-needed events for one group (ms). Default 5 s. */
  readonly registrationRetryMs?: number;
  /** Outer source for tunnel SAs that preserve no source and name none (else 0.0.0.0 / ::). */
  readonly localAddresses?: { readonly v4?: string; readonly v6?: string };
  /** UDP ports recognised as ESP-in-UDP inside 'raw-ip' framing. Default [4500]. */
  readonly encapsulationPorts?: readonly number[];
}

/**
 * The user-space multicast ESP datapath: a GSPD (RFC 5374 §4.1.1), an SAD (§4.1.2, RFC 4301
 * §4.1 lookup), and the send/receive pipelines (send.ts, receive.ts), between one NetworkBind
 * and one PlaintextPort. Driven by the control plane through the SA/policy API below; it never
 * negotiates. Time only moves through the injected clock: call `tick()` periodically (the
 * member agent does, e.g. every second) so that time lifetimes, trailing-edge deletions and
 * held packets are handled even when no traffic flows.
 */
export class Datapath implements DatapathApi {
  private readonly ctx: DatapathContext;
  private readonly sender: SendPipeline;
  private readonly receiver: ReceivePipeline;

  constructor(options: DatapathOptions) {
    const holdQueue = options.holdQueue ?? DEFAULT_HOLD_QUEUE;
    if (!Number.isInteger(holdQueue) || holdQueue < 0 || holdQueue > MAX_HOLD_QUEUE) {
      throw new DatapathConfigError('BAD_POLICY', `hold queue ${holdQueue} outside 0..${MAX_HOLD_QUEUE}`);
    }
    const local = (text: string | undefined, family: 4 | 6): Uint8Array | undefined => {
      if (text === undefined) return undefined;
      let a: Uint8Array;
      try {
        a = parseIpAddress(text);
      } catch (e) {
        if (isCodecError(e)) throw new DatapathConfigError('BAD_ADDRESS', `local address: ${e.message}`);
        throw e;
      }
      if (a.length !== (family === 4 ? 4 : 16)) throw new DatapathConfigError('BAD_ADDRESS', `local IPv${family} address ${text}`);
      return a;
    };
    this.ctx = new DatapathContext({
      clock: options.clock,
      holdQueue,
      failOpen: options.failOpen ?? false,
      holdMs: options.holdMs ?? DEFAULT_HOLD_MS,
      registrationRetryMs: options.registrationRetryMs ?? DEFAULT_REGISTRATION_RETRY_MS,
      localAddresses: { v4: local(options.localAddresses?.v4, 4), v6: local(options.localAddresses?.v6, 6) },
    });
    this.sender = new SendPipeline(this.ctx);
    this.receiver = new ReceivePipeline(this.ctx);
    if (options.encapsulationPorts) {
      this.receiver.encapPorts.clear();
      for (const p of options.encapsulationPorts) this.receiver.encapPorts.add(p);
    }
    this.attach(options.bind, options.port);
  }

  /** Wires a bind and/or a port: their handlers call `receive` and `send`. */
  attach(bind?: NetworkBind, port?: PlaintextPort): void {
    if (bind) {
      this.ctx.bind = bind;
      bind.onReceive((d) => {
        this.receive(d);
      });
    }
    if (port) {
      this.ctx.port = port;
      port.onPacket((p) => {
        this.send(p);
      });
    }
  }

  /** Protects one application IP packet (what a PlaintextPort's handler calls). Never throws. */
  send(packet: Uint8Array): SendOutcome {
    try {
      return this.sender.send(packet);
    } catch {
      this.ctx.internalErrors++;
      this.ctx.drop('malformed');
      return 'dropped';
    }
  }

  /** Processes one datagram from the network (what a NetworkBind's handler calls). Never throws. */
  receive(datagram: InboundDatagram): ReceiveOutcome {
    return this.receiver.receive(datagram);
  }

  // ------------------------------------------------------------------------------------------
  // SA / policy API
  // ------------------------------------------------------------------------------------------

  installPolicy(entries: readonly GspdEntry[]): void {
    this.ctx.gspd.install(entries);
    this.flushHeld();
  }

  installSa(sa: SaConfig, options: InstallSaOptions = {}): void {
    const now = this.ctx.clock.now();
    const entry = new SaEntry(sa, options.activateAt ?? now, now, this.ctx.sad.nextSerial());
    this.ctx.sad.add(entry);
    const groupId = this.ctx.gspd.get(sa.policyId)?.groupId;
    if (groupId !== undefined) this.ctx.registered(groupId);
    this.flushHeld();
  }

  retireSa(spi: number, options: RetireSaOptions = {}): void {
    const list = this.ctx.sad.withSpi(spi);
    if (list.length === 0) throw new DatapathConfigError('UNKNOWN_SA', `SPI ${spi}`);
    const deleteAt = options.deleteAt ?? this.ctx.clock.now();
    if (!Number.isFinite(deleteAt)) throw new DatapathConfigError('BAD_LIFETIME', 'deleteAt must be a finite time');
    for (const sa of list) {
      sa.retired = true;
      sa.deleteAt = deleteAt;
    }
    this.tick();
  }

  deleteSa(spi: number): boolean {
    const list = [...this.ctx.sad.withSpi(spi)];
    for (const sa of list) {
      sa.hardFired = true;
      this.ctx.removeSa(sa);
    }
    return list.length > 0;
  }

  /**
   * Applies the passage of time: deletes trailing-edge SAs past their delete time, enforces time
   * lifetimes (raising events), sends held packets whose SA has become active, drops stale ones.
   */
  tick(): void {
    const now = this.ctx.clock.now();
    for (const sa of this.ctx.sad.all()) this.ctx.alive(sa, now);
    this.flushHeld();
  }

  private flushHeld(): void {
    const ctx = this.ctx;
    if (ctx.heldCount === 0) return;
    const now = ctx.clock.now();
    for (const [group, queue] of [...ctx.held]) {
      const keep = [];
      for (const h of queue) {
        if (now - h.at >= ctx.options.holdMs) {
          ctx.drop('noRegistration');
          continue;
        }
        let outcome: SendOutcome;
        try {
          outcome = this.sender.send(h.packet, true);
        } catch {
          ctx.internalErrors++;
          ctx.drop('malformed');
          continue;
        }
        if (outcome === 'held') keep.push(h);
      }
      ctx.heldCount -= queue.length - keep.length;
      if (keep.length === 0) ctx.held.delete(group);
      else ctx.held.set(group, keep);
    }
  }

  stats(): DatapathStats {
    const ctx = this.ctx;
    const now = ctx.clock.now();
    return {
      drops: { ...ctx.drops },
      sent: ctx.sent,
      bypassed: ctx.bypassed,
      sentClear: ctx.sentClear,
      delivered: ctx.delivered,
      held: ctx.heldCount,
      ike: ctx.ike,
      keepalives: ctx.keepalives,
      sas: ctx.sad.all().map((sa) => sa.stats(now)),
    };
  }

  /** Unexpected exceptions caught inside the pipelines (a bug indicator; 0 in a healthy run). */
  get internalErrors(): number {
    return this.ctx.internalErrors;
  }

  onRegistrationNeeded(handler: (e: RegistrationNeededEvent) => void): () => void {
    return this.ctx.registrationNeeded.on(handler);
  }
  onSoftExpire(handler: (e: ExpireEvent) => void): () => void {
    return this.ctx.softExpire.on(handler);
  }
  onHardExpire(handler: (e: ExpireEvent) => void): () => void {
    return this.ctx.hardExpire.on(handler);
  }
  onUnknownSpi(handler: (e: UnknownSpiEvent) => void): () => void {
    return this.ctx.unknownSpi.on(handler);
  }
  onAudit(handler: (e: AuditEvent) => void): () => void {
    return this.ctx.audit.on(handler);
  }
  onIke(handler: (e: IkeDatagramEvent) => void): () => void {
    return this.ctx.ikeMessage.on(handler);
  }
}
