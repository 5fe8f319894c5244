/**
 * The seams between the datapath and the outside world (wireguard-go's `conn.Bind` and
 * `tun.Device`). The datapath never opens a socket: it is handed one `NetworkBind` (the network
 * side, where ESP travels) and one `PlaintextPort` (the application side, where plain IP packets
 * travel). Implementations: in-memory (./memory-bind.ts, tests and the benchmark), UDP and TUN
 * (apps/member-agent/src/net/).
 */

/** How a datagram is framed on the network side. */
export type NetworkFraming =
  /**
   * `data` is a UDP payload: an ESP packet per RFC 3948 §2.1 (a non-zero SPI first). The bind's
   * kernel socket adds the outer IP and UDP headers; addresses and ports travel beside the data.
   */
  | 'udp'
  /**
   * `data` is a complete outer IPv4 or IPv6 packet (for ESP: protocol/next header 50, or 17 with
   * a UDP header when the SA uses UDP encapsulation). A raw socket with IP_HDRINCL can send it
   * as is, which is how the outer source address is preserved (RFC 5374 §3.1). An all-zero IPv4
   * source asks the kernel to fill in its own address. Bypass traffic (RFC 4301 BYPASS) also
   * leaves this way, with its own protocol.
   */
  | 'raw-ip';

/** One datagram handed from the datapath to a bind. */
export interface OutboundDatagram {
  readonly framing: NetworkFraming;
  /** The datagram; owned by the bind from the moment `send` is called (never reused by us). */
  readonly data: Uint8Array;
  /** IP version of the outer header. */
  readonly family: 4 | 6;
  /** Outer source address (textual). For 'udp' a bind may not be able to honour it. */
  readonly srcAddress: string;
  /** Outer destination address (textual), normally the group's multicast address. */
  readonly dstAddress: string;
  /** UDP ports for 'udp' framing (4500 by default, RFC 3948); 0 for 'raw-ip'. */
  readonly srcPort: number;
  readonly dstPort: number;
}

/** One datagram handed from a bind to the datapath. */
export interface InboundDatagram {
  readonly framing: NetworkFraming;
  /** For 'udp', the UDP payload (ESP, IKE behind a non-ESP marker, or a 0xFF keepalive). */
  readonly data: Uint8Array;
  /**
   * Outer source address. For 'raw-ip' the datapath reads the addresses from the packet itself
   * and these fields are informational.
   */
  readonly srcAddress: string;
  /**
   * Outer destination address: for 'udp', the group address the socket joined (node:dgram does
   * not report the destination of each datagram, so a bind uses one socket per group, or passes
   * the address it bound to).
   */
  readonly dstAddress: string;
  readonly srcPort: number;
  readonly dstPort: number;
}

/** The network side: sends and receives ESP datagrams. */
export interface NetworkBind {
  /** Whether this bind can carry the given framing. */
  supports(framing: NetworkFraming): boolean;
  /**
   * Sends one datagram. Must not throw for network errors (count them inside the bind);
   * must not block. The bind owns `datagram.data` from now on.
   */
  send(datagram: OutboundDatagram): void;
  /** Registers the one receive handler (the datapath's `receive`). */
  onReceive(handler: (datagram: InboundDatagram) => void): void;
  close(): Promise<void>;
}

/** The application side: plain IP packets (a TUN device, or an in-memory port in tests). */
export interface PlaintextPort {
  /** Registers the one handler for packets the applications send (to be protected). */
  onPacket(handler: (packet: Uint8Array) => void): void;
  /** Writes one decrypted, verified IP packet towards the applications. Owned by the port. */
  deliver(packet: Uint8Array): void;
  close(): Promise<void>;
}
