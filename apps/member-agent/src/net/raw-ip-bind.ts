/**
 * Raw IP network bind (Linux, root or CAP_NET_RAW): native ESP (IP protocol 50) without UDP.
 *
 * The datapath hands this bind complete outer packets ('raw-ip' framing). They leave through an
 * `IPPROTO_RAW` socket, which implies IP_HDRINCL: the kernel sends our header as is (it only fills
 * the checksum and total length, and the source and ID when zero), so the outer source address can
 * be copied from the inner packet (RFC 5374 §3.1 address preservation) and UDP-encapsulated ESP or
 * bypass traffic can leave the same way. ESP arrives on a second raw socket bound to protocol 50,
 * which on IPv4 delivers the packet with its IP header, so the datapath sees the real outer
 * addresses. Multicast is received only for groups joined on that socket (IP_ADD_MEMBERSHIP, or
 * IP_ADD_SOURCE_MEMBERSHIP for SSM).
 *
 * IPv4 only: an IPv6 raw socket hides the received IPv6 header (RFC 3542 §3), so the outer
 * addresses would have to be rebuilt from recvmsg ancillary data; use the UDP bind for IPv6.
 *
 * Both descriptors are non-blocking; reads happen on the main thread when libuv reports the
 * receive socket readable (koffi.node.poll), draining up to `burst` packets per wake-up.
 */
import type { InboundDatagram, NetworkBind, NetworkFraming, OutboundDatagram } from '@app/datapath';
import { check, intOption, LINUX, loadLibc, type Libc } from './libc.js';
import { addressBytes, addressFamily, addressText, isMulticast, sockaddrIn } from './ip-address.js';
import { PacketSlab } from './packet-slab.js';

/** IPPROTO_RAW: a send-only raw socket with IP_HDRINCL implied (raw(7)). */
const IPPROTO_RAW = 255;
const IPV4_MIN_HEADER = 20;
const MAX_IP_PACKET = 65535;

export interface MulticastJoin {
  /** The group address (IPv4 224.0.0.0/4). */
  readonly group: string;
  /** Interface name to join on; default: the kernel's choice by route. */
  readonly interface?: string;
  /** Source-specific join (SSM, RFC 4607): accept this group only from this source. */
  readonly source?: string;
}

export interface RawIpBindOptions {
  /** Groups the receive socket joins. */
  readonly groups?: readonly MulticastJoin[];
  /** Interface name that multicast leaves by (IP_MULTICAST_IF); default: by route. */
  readonly multicastInterface?: string;
  /** Loop our own multicast back to local listeners (IP_MULTICAST_LOOP). Default false. */
  readonly loopback?: boolean;
  /** IP protocol received (default 50, ESP). */
  readonly protocol?: number;
  /** Socket receive buffer in bytes (SO_RCVBUF); default: the system's. */
  readonly receiveBuffer?: number;
  /** Packets read per poll wake-up. Default 64. */
  readonly burst?: number;
}

export interface RawIpBindStats {
  sentPackets: number;
  sentBytes: number;
  receivedPackets: number;
  receivedBytes: number;
  /** Datagrams this bind cannot send: 'udp' framing, IPv6, or not an IPv4 packet. */
  sendRejected: number;
  /** sendto refused with EAGAIN/ENOBUFS (socket or device queue full): counted drops. */
  sendQueueFull: number;
  /** sendto failed otherwise (EMSGSIZE, ENETUNREACH, EPERM, ...). */
  sendErrors: number;
  /** Received packets shorter than an IPv4 header (never expected from the kernel). */
  receiveMalformed: number;
  receiveErrors: number;
}

export class RawIpBind implements NetworkBind {
  readonly stats: RawIpBindStats = {
    sentPackets: 0,
    sentBytes: 0,
    receivedPackets: 0,
    receivedBytes: 0,
    sendRejected: 0,
    sendQueueFull: 0,
    sendErrors: 0,
    receiveMalformed: 0,
    receiveErrors: 0,
  };
  /** The last errno name seen by send/receive, for diagnostics. */
  lastError = '';
  private handler: ((datagram: InboundDatagram) => void) | undefined;
  private poll: { close(): void } | undefined;
  private closed = false;
  private readonly slab = new PacketSlab(MAX_IP_PACKET);
  private lastDst = -1;
  private lastSockaddr: Buffer = Buffer.alloc(LINUX.SOCKADDR_IN_SIZE);

  private constructor(
    private readonly libc: Libc,
    readonly sendFd: number,
    readonly receiveFd: number,
    private readonly burst: number,
  ) {}

  /** Opens both sockets and joins the groups. Throws SysError (EPERM without CAP_NET_RAW). */
  static open(options: RawIpBindOptions = {}, deps: { libc?: Libc } = {}): RawIpBind {
    for (const join of options.groups ?? []) {
      if (addressFamily(join.group) !== 4 || !isMulticast(join.group)) throw new RangeError(`not an IPv4 group: ${join.group}`);
      if (join.source !== undefined && addressFamily(join.source) !== 4) throw new RangeError(`not an IPv4 source: ${join.source}`);
    }
    const libc = deps.libc ?? loadLibc();
    const flags = LINUX.SOCK_RAW | LINUX.SOCK_NONBLOCK | LINUX.SOCK_CLOEXEC;
    const sendFd = check(libc, 'socket(SOCK_RAW, IPPROTO_RAW)', libc.socket(LINUX.AF_INET, flags, IPPROTO_RAW));
    let receiveFd = -1;
    try {
      receiveFd = check(libc, 'socket(SOCK_RAW, proto)', libc.socket(LINUX.AF_INET, flags, options.protocol ?? LINUX.IPPROTO_ESP));
      const loop = intOption(options.loopback ? 1 : 0);
      check(libc, 'setsockopt(IP_MULTICAST_LOOP)', libc.setsockopt(sendFd, LINUX.IPPROTO_IP, LINUX.IP_MULTICAST_LOOP, loop, 4));
      if (options.multicastInterface !== undefined) {
        const mreqn = ipMreqn('0.0.0.0', interfaceIndex(libc, options.multicastInterface));
        check(libc, 'setsockopt(IP_MULTICAST_IF)', libc.setsockopt(sendFd, LINUX.IPPROTO_IP, LINUX.IP_MULTICAST_IF, mreqn, mreqn.length));
      }
      if (options.receiveBuffer !== undefined) {
        const size = intOption(options.receiveBuffer);
        check(libc, 'setsockopt(SO_RCVBUF)', libc.setsockopt(receiveFd, LINUX.SOL_SOCKET, LINUX.SO_RCVBUF, size, 4));
      }
      for (const join of options.groups ?? []) joinGroup(libc, receiveFd, join);
      return new RawIpBind(libc, sendFd, receiveFd, options.burst ?? 64);
    } catch (err) {
      libc.close(sendFd);
      if (receiveFd >= 0) libc.close(receiveFd);
      throw err;
    }
  }

  supports(framing: NetworkFraming): boolean {
    return framing === 'raw-ip';
  }

  /** Joins one more group on the receive socket (e.g. when an SA for a new group is installed). */
  join(join: MulticastJoin): void {
    joinGroup(this.libc, this.receiveFd, join);
  }

  send(datagram: OutboundDatagram): void {
    const data = datagram.data;
    if (
      this.closed ||
      datagram.framing !== 'raw-ip' ||
      datagram.family !== 4 ||
      data.length < IPV4_MIN_HEADER ||
      data[0]! >> 4 !== 4
    ) {
      this.stats.sendRejected++;
      return;
    }
    // The kernel routes on the sockaddr, so it must name the header's own destination; most
    // packets go to one group, so the last one is cached.
    const dst = ((data[16]! << 24) | (data[17]! << 16) | (data[18]! << 8) | data[19]!) >>> 0;
    if (dst !== this.lastDst) {
      this.lastSockaddr = sockaddrIn(addressText(data.subarray(16, 20)));
      this.lastDst = dst;
    }
    const n = this.libc.sendto(this.sendFd, data, data.length, 0, this.lastSockaddr, this.lastSockaddr.length);
    if (n === data.length) {
      this.stats.sentPackets++;
      this.stats.sentBytes += n;
      return;
    }
    const name = n < 0 ? this.libc.errnoName(this.libc.errno()) : 'SHORT_WRITE';
    this.lastError = name;
    if (name === 'EAGAIN' || name === 'ENOBUFS') this.stats.sendQueueFull++;
    else this.stats.sendErrors++;
  }

  onReceive(handler: (datagram: InboundDatagram) => void): void {
    this.handler = handler;
    if (!this.poll && !this.closed) this.poll = this.libc.pollReadable(this.receiveFd, () => this.drain());
  }

  private drain(): void {
    for (let i = 0; i < this.burst && !this.closed; i++) {
      const buf = this.slab.tail();
      const n = this.libc.recvfrom(this.receiveFd, buf, buf.length, 0, null as unknown as Uint8Array, null as unknown as Uint8Array);
      if (n < 0) {
        const name = this.libc.errnoName(this.libc.errno());
        if (name !== 'EAGAIN' && name !== 'EINTR') {
          this.stats.receiveErrors++;
          this.lastError = name;
        }
        return;
      }
      if (n < IPV4_MIN_HEADER) {
        this.stats.receiveMalformed++;
        continue;
      }
      const packet = this.slab.take(n);
      this.stats.receivedPackets++;
      this.stats.receivedBytes += n;
      this.handler?.({
        framing: 'raw-ip',
        data: packet,
        srcAddress: addressText(packet.subarray(12, 16)),
        dstAddress: addressText(packet.subarray(16, 20)),
        srcPort: 0,
        dstPort: 0,
      });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.poll?.close();
    this.poll = undefined;
    this.libc.close(this.receiveFd);
    this.libc.close(this.sendFd);
  }
}

function interfaceIndex(libc: Libc, name: string): number {
  const index = libc.if_nametoindex(name);
  if (index === 0) check(libc, `if_nametoindex(${name})`, -1);
  return index;
}

/** `struct ip_mreqn { in_addr multiaddr; in_addr address; int ifindex; }` */
function ipMreqn(group: string, ifindex: number): Buffer {
  const b = Buffer.alloc(12);
  addressBytes(group).copy(b, 0);
  b.writeInt32LE(ifindex, 8);
  return b;
}

function joinGroup(libc: Libc, fd: number, join: MulticastJoin): void {
  const ifindex = join.interface === undefined ? 0 : interfaceIndex(libc, join.interface);
  if (join.source === undefined) {
    const mreqn = ipMreqn(join.group, ifindex);
    check(libc, 'setsockopt(IP_ADD_MEMBERSHIP)', libc.setsockopt(fd, LINUX.IPPROTO_IP, LINUX.IP_ADD_MEMBERSHIP, mreqn, mreqn.length));
    return;
  }
  // struct group_source_req { uint32 gsr_interface; sockaddr_storage gsr_group; sockaddr_storage gsr_source; }
  // (MCAST_JOIN_SOURCE_GROUP takes an interface index, unlike ip_mreq_source's address.)
  const ss = LINUX.SOCKADDR_STORAGE_SIZE;
  const gsr = Buffer.alloc(8 + ss * 2); // the storage members are 8-byte aligned
  gsr.writeUInt32LE(ifindex, 0);
  sockaddrIn(join.group).copy(gsr, 8);
  sockaddrIn(join.source).copy(gsr, 8 + ss);
  check(libc, 'setsockopt(MCAST_JOIN_SOURCE_GROUP)', libc.setsockopt(fd, LINUX.IPPROTO_IP, LINUX.MCAST_JOIN_SOURCE_GROUP, gsr, gsr.length));
}
