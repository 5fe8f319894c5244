/**
 * UDP network bind on node:dgram: ESP in UDP (RFC 3948 §2.1) to and from multicast groups, IPv4
 * and IPv6, without root. It also carries IKE behind the non-ESP marker on the same port.
 *
 * Sockets: one unicast socket bound to (localAddress, localPort) sends everything and receives
 * unicast; one socket per joined group is bound to (group, port), so that the kernel hands each
 * socket only its own group's datagrams and the destination address of every received datagram
 * is known (node:dgram does not report it otherwise). All sockets set SO_REUSEADDR so several
 * members on one host (loopback tests, the demo) can share the group port.
 *
 * Loopback without root: localAddress 127.0.0.1, multicastInterface 127.0.0.1 and groups joined on
 * interface 127.0.0.1. Every received datagram is classified as in RFC 3948 §2.2–2.3 (ESP with a
 * non-zero SPI, IKE behind the zero marker, a 0xFF NAT keepalive, or invalid) and counted; all of
 * them go to the datapath, which hands IKE to the control plane and drops the rest with a counter.
 */
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { addNonEspMarker, classifyUdpEncap, IKE_NATT_PORT } from '@app/codec';
import type { InboundDatagram, NetworkBind, NetworkFraming, OutboundDatagram } from '@app/datapath';
import { addressBytes, addressFamily, isMulticast } from './ip-address.js';

export interface UdpGroupJoin {
  /** Group address (224.0.0.0/4 or ff00::/8). */
  readonly group: string;
  /** SSM (RFC 4607): receive this group only from this source. */
  readonly source?: string;
  /**
   * Interface to join on, as node:dgram takes it: a local IPv4 address ('127.0.0.1'), or for IPv6
   * `::%ifname`. Default: the kernel's choice.
   */
  readonly interface?: string;
}

export interface UdpBindOptions {
  readonly family: 4 | 6;
  /** Unicast address to send from and receive unicast on ('127.0.0.1', '::1', '0.0.0.0', ...). */
  readonly localAddress: string;
  /** The groups' UDP port. Default 4500 (RFC 3948). */
  readonly port?: number;
  /** Port of the unicast socket; 0 for an ephemeral one. Default `port`. */
  readonly localPort?: number;
  readonly groups?: readonly UdpGroupJoin[];
  /** Outgoing multicast interface (setMulticastInterface): '127.0.0.1', '::%lo', a local address. */
  readonly multicastInterface?: string;
  /** Multicast TTL / hop limit. Default 1 (the link). */
  readonly multicastTtl?: number;
  /** Loop our multicast back to this host (other members on it). Default true. */
  readonly multicastLoopback?: boolean;
  /** Drop datagrams whose source is our own unicast socket (our multicast looped back). Default true. */
  readonly ignoreOwn?: boolean;
  readonly receiveBufferSize?: number;
  readonly sendBufferSize?: number;
}

export interface UdpBindStats {
  sentPackets: number;
  sentBytes: number;
  /** Datagrams this bind cannot send ('raw-ip' framing or the other address family). */
  sendRejected: number;
  /** Errors reported by the kernel for a send (EMSGSIZE, ENETUNREACH, ENOBUFS, ...). */
  sendErrors: number;
  receivedPackets: number;
  receivedBytes: number;
  /** Received, by RFC 3948 classification. */
  esp: number;
  ike: number;
  keepalive: number;
  invalid: number;
  /** Our own multicast looped back and dropped. */
  ownDropped: number;
  /** Socket-level errors (emitted 'error' events). */
  socketErrors: number;
  /** Datagrams whose receive handler threw (a bug upstream; counted, never rethrown). */
  handlerErrors: number;
}

type SocketType = 'udp4' | 'udp6';

export class UdpBind implements NetworkBind {
  readonly stats: UdpBindStats = {
    sentPackets: 0,
    sentBytes: 0,
    sendRejected: 0,
    sendErrors: 0,
    receivedPackets: 0,
    receivedBytes: 0,
    esp: 0,
    ike: 0,
    keepalive: 0,
    invalid: 0,
    ownDropped: 0,
    socketErrors: 0,
    handlerErrors: 0,
  };
  /** The last error message seen, for diagnostics. */
  lastError = '';
  private handler: ((datagram: InboundDatagram) => void) | undefined;
  private readonly groupSockets = new Map<string, dgram.Socket>();
  private readonly type: SocketType;
  private readonly port: number;
  private ownAddress = '';
  private ownPort = -1;
  private closed = false;
  /** One completion callback for every send (no closure per packet). */
  private readonly onSent = (err: Error | null, bytes: number): void => {
    if (err) {
      this.stats.sendErrors++;
      this.lastError = err.message;
    } else {
      this.stats.sentPackets++;
      this.stats.sentBytes += bytes;
    }
  };

  private constructor(
    private readonly options: UdpBindOptions,
    private readonly unicast: dgram.Socket,
  ) {
    this.type = options.family === 4 ? 'udp4' : 'udp6';
    this.port = options.port ?? IKE_NATT_PORT;
  }

  /** Binds the unicast socket and joins the groups. Rejects with the socket error (EADDRINUSE, ...). */
  static async open(options: UdpBindOptions): Promise<UdpBind> {
    if (addressFamily(options.localAddress) !== options.family) {
      throw new RangeError(`localAddress ${options.localAddress} is not IPv${options.family}`);
    }
    const type: SocketType = options.family === 4 ? 'udp4' : 'udp6';
    const unicast = dgram.createSocket({ type, reuseAddr: true });
    const bind = new UdpBind(options, unicast);
    try {
      await bindSocket(unicast, options.localPort ?? bind.port, options.localAddress);
      const info = unicast.address() as AddressInfo;
      bind.ownAddress = info.address;
      bind.ownPort = info.port;
      bind.configure(unicast);
      unicast.setMulticastTTL(options.multicastTtl ?? 1);
      unicast.setMulticastLoopback(options.multicastLoopback ?? true);
      if (options.multicastInterface !== undefined) unicast.setMulticastInterface(options.multicastInterface);
      if (options.sendBufferSize !== undefined) unicast.setSendBufferSize(options.sendBufferSize);
      unicast.on('message', (msg, rinfo) => bind.receive(msg, rinfo, bind.ownAddress, bind.ownPort));
      for (const join of options.groups ?? []) await bind.join(join);
      return bind;
    } catch (err) {
      await bind.close();
      throw err;
    }
  }

  /** The unicast socket's local address and port (useful with localPort 0). */
  get local(): { address: string; port: number } {
    return { address: this.ownAddress, port: this.ownPort };
  }

  supports(framing: NetworkFraming): boolean {
    return framing === 'udp';
  }

  /** Joins a group (ASM, or SSM with `source`) on its own socket bound to (group, port). */
  async join(join: UdpGroupJoin): Promise<void> {
    if (addressFamily(join.group) !== this.options.family || !isMulticast(join.group)) {
      throw new RangeError(`not an IPv${this.options.family} group: ${join.group}`);
    }
    if (join.source !== undefined && addressFamily(join.source) !== this.options.family) {
      throw new RangeError(`not an IPv${this.options.family} source: ${join.source}`);
    }
    if (this.ownPort === this.port && (this.ownAddress === '0.0.0.0' || this.ownAddress === '::')) {
      // A wildcard socket on the group port gets every joined group's datagrams as well
      // (IP_MULTICAST_ALL), so each would arrive twice, once without its group address.
      throw new RangeError('the unicast socket is bound to the wildcard address on the group port: use a unicast localAddress or another localPort');
    }
    const key = `${join.group}|${join.source ?? ''}`;
    if (this.groupSockets.has(key)) return;
    const socket = dgram.createSocket({ type: this.type, reuseAddr: true });
    this.groupSockets.set(key, socket);
    await bindSocket(socket, this.port, groupBindAddress(join));
    this.configure(socket);
    if (join.source !== undefined) socket.addSourceSpecificMembership(join.source, join.group, join.interface);
    else socket.addMembership(join.group, join.interface);
    const group = join.group;
    socket.on('message', (msg, rinfo) => this.receive(msg, rinfo, group, this.port));
  }

  /** Leaves a group and closes its socket. */
  async leave(join: UdpGroupJoin): Promise<void> {
    const key = `${join.group}|${join.source ?? ''}`;
    const socket = this.groupSockets.get(key);
    if (!socket) return;
    this.groupSockets.delete(key);
    await closeSocket(socket);
  }

  send(datagram: OutboundDatagram): void {
    if (this.closed || datagram.framing !== 'udp' || datagram.family !== this.options.family) {
      this.stats.sendRejected++;
      return;
    }
    // The source address and port are the unicast socket's: a UDP socket cannot honour others.
    this.unicast.send(datagram.data, datagram.dstPort, datagram.dstAddress, this.onSent);
  }

  /** Sends an IKE message behind the non-ESP marker (RFC 3948 §2.2) from the unicast socket. */
  sendIke(message: Uint8Array, address: string, port: number = IKE_NATT_PORT): void {
    if (this.closed) return;
    this.unicast.send(addNonEspMarker(message), port, address, this.onSent);
  }

  onReceive(handler: (datagram: InboundDatagram) => void): void {
    this.handler = handler;
  }

  private configure(socket: dgram.Socket): void {
    socket.on('error', (err) => {
      this.stats.socketErrors++;
      this.lastError = err.message;
    });
    if (this.options.receiveBufferSize !== undefined) socket.setRecvBufferSize(this.options.receiveBufferSize);
  }

  private receive(msg: Buffer, rinfo: dgram.RemoteInfo, dstAddress: string, dstPort: number): void {
    if ((this.options.ignoreOwn ?? true) && rinfo.port === this.ownPort && rinfo.address === this.ownAddress) {
      this.stats.ownDropped++;
      return;
    }
    this.stats.receivedPackets++;
    this.stats.receivedBytes += msg.length;
    this.stats[classifyUdpEncap(msg)]++;
    try {
      this.handler?.({
        framing: 'udp',
        data: msg,
        srcAddress: rinfo.address,
        dstAddress,
        srcPort: rinfo.port,
        dstPort,
      });
    } catch {
      this.stats.handlerErrors++; // a throwing consumer must not become an uncaught exception
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const sockets = [this.unicast, ...this.groupSockets.values()];
    this.groupSockets.clear();
    await Promise.all(sockets.map(closeSocket));
  }
}

/**
 * The address a group's socket binds to: the group itself, with the join's interface as zone for
 * IPv6 groups of interface- or link-local scope (ff01::/16, ff02::/16 and their flag variants),
 * which cannot be bound without one.
 */
function groupBindAddress(join: UdpGroupJoin): string {
  if (!join.group.includes(':') || join.interface === undefined || !join.interface.includes('%')) return join.group;
  const scope = addressBytes(join.group)[1]! & 0x0f;
  if (scope > 2) return join.group;
  return `${join.group}%${join.interface.slice(join.interface.indexOf('%') + 1)}`;
}

function bindSocket(socket: dgram.Socket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    socket.once('error', onError);
    socket.bind({ port, address, exclusive: false }, () => {
      socket.off('error', onError);
      resolve();
    });
  });
}

function closeSocket(socket: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve(); // never bound, or already closed
    }
  });
}
