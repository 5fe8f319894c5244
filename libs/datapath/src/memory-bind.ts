import type { InboundDatagram, NetworkBind, NetworkFraming, OutboundDatagram, PlaintextPort } from './bind.js';

/** What a receiver sees of a datagram someone sent (the kernel's view is the same). */
export function toInbound(d: OutboundDatagram): InboundDatagram {
  return {
    framing: d.framing,
    data: d.data,
    srcAddress: d.srcAddress,
    dstAddress: d.dstAddress,
    srcPort: d.srcPort,
    dstPort: d.dstPort,
  };
}

export interface MemoryNetworkBindOptions {
  /** Framings this bind accepts (default both). */
  framings?: readonly NetworkFraming[];
  /** Keep every sent datagram in `sent` (default true; the benchmark turns it off). */
  capture?: boolean;
  /** Called for every sent datagram, after capture. */
  onSend?: (d: OutboundDatagram) => void;
}

/**
 * An in-memory network side: what the datapath sends is captured (and/or handed to `onSend`);
 * `inject` plays a received datagram into the datapath. `link` wires two binds like a wire.
 */
export class MemoryNetworkBind implements NetworkBind {
  readonly sent: OutboundDatagram[] = [];
  sentCount = 0;
  closed = false;
  private handler: ((d: InboundDatagram) => void) | undefined;
  private readonly framings: ReadonlySet<NetworkFraming>;
  private readonly capture: boolean;
  private readonly onSendHook: ((d: OutboundDatagram) => void) | undefined;

  constructor(options: MemoryNetworkBindOptions = {}) {
    this.framings = new Set(options.framings ?? ['udp', 'raw-ip']);
    this.capture = options.capture ?? true;
    this.onSendHook = options.onSend;
  }

  supports(framing: NetworkFraming): boolean {
    return this.framings.has(framing);
  }

  send(datagram: OutboundDatagram): void {
    if (this.closed) return;
    this.sentCount++;
    if (this.capture) this.sent.push(datagram);
    this.onSendHook?.(datagram);
  }

  onReceive(handler: (datagram: InboundDatagram) => void): void {
    this.handler = handler;
  }

  /** Plays one datagram into the registered receive handler. */
  inject(datagram: InboundDatagram): void {
    if (this.closed) return;
    this.handler?.(datagram);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/** An in-memory application side: `emit` plays an application packet; delivered ones are kept. */
export class MemoryPlaintextPort implements PlaintextPort {
  readonly delivered: Uint8Array[] = [];
  deliveredCount = 0;
  closed = false;
  private handler: ((packet: Uint8Array) => void) | undefined;

  constructor(private readonly capture = true) {}

  onPacket(handler: (packet: Uint8Array) => void): void {
    this.handler = handler;
  }

  /** An application sends this IP packet. */
  emit(packet: Uint8Array): void {
    if (this.closed) return;
    this.handler?.(packet);
  }

  deliver(packet: Uint8Array): void {
    if (this.closed) return;
    this.deliveredCount++;
    if (this.capture) this.delivered.push(packet);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
