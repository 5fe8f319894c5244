/**
 * Raw IP network bind (Linux, root or CAP_NET_RAW): native ESP (IP protocol 50) without UDP.
 *
 * The datapath hands this bind complete outer packets ('raw-ip' framing). They leave through an
 * `IPPROTO_RAW` socket, which implies IP_HDRINCL (IPv6: IPV6_HDRINCL): the kernel sends our header
 * as written (IPv4: it only fills the checksum and total length, and the source and ID when
 * zero), so the outer source address can be copied from the inner packet (RFC 5374 §3.1 address
 * preservation), and UDP-encapsulated ESP or bypass traffic can leave the same way.
 *
 * ESP arrives on a second raw socket bound to protocol 50. On IPv4 the kernel delivers the packet
 * with its IP header, so the datapath sees the real outer addresses. An IPv6 raw socket never
 * shows the IPv6 header (RFC 3542 §3), so this bind reads with `recvmsg` and rebuilds the fixed
 * header from the source address, the IPV6_PKTINFO destination and the IPV6_HOPLIMIT ancillary
 * data (traffic class and flow label read as zero; extension headers were already processed).
 * Multicast is received only for groups joined on that socket (ASM, or SSM with a source).
 *
 * Both descriptors are non-blocking; reads happen on the main thread when libuv reports the
 * receive socket readable (koffi.node.poll), draining up to `burst` packets per wake-up.
 */
import type { InboundDatagram, NetworkBind, NetworkFraming, OutboundDatagram } from '@app/datapath';
import { check, intOption, LINUX, loadLibc, type Libc } from './libc.js';
import { addressBytes, addressFamily, addressText, isMulticast, sockaddrIn, sockaddrIn6 } from './ip-address.js';
import { PacketSlab } from './packet-slab.js';

/** IPPROTO_RAW: a send-only raw socket with the header included (raw(7), RFC 3542). */
const IPPROTO_RAW = 255;
const IPV4_MIN_HEADER = 20;
const IPV6_HEADER = 40;
const MAX_IP_PACKET = 65535;
const CONTROL_SIZE = 128;

export interface MulticastJoin {
  /** The group address (224.0.0.0/4 or ff00::/8, matching the bind's family). */
  readonly group: string;
  /** Interface name to join on; default: the kernel's choice by route. */
  readonly interface?: string;
  /** Source-specific join (SSM, RFC 4607): accept this group only from this source. */
  readonly source?: string;
}

export interface RawIpBindOptions {
  /** IP version of the outer packets. Default 4. */
  readonly family?: 4 | 6;
  /** Groups the receive socket joins. */
  readonly groups?: readonly MulticastJoin[];
  /** Interface name that multicast leaves by (IP_MULTICAST_IF / IPV6_MULTICAST_IF). */
  readonly multicastInterface?: string;
  /** Loop our own multicast back to local listeners (IP_MULTICAST_LOOP). Default false. */
  readonly loopback?: boolean;
  /** IP protocol received (default 50, ESP). */
  readonly protocol?: number;
  /** Socket receive buffer in bytes (SO_RCVBUFFORCE, else SO_RCVBUF); default: the system's. */
  readonly receiveBuffer?: number;
  /** Packets read per poll wake-up. Default 64. */
  readonly burst?: number;
}

export interface RawIpBindStats {
  sentPackets: number;
  sentBytes: number;
  receivedPackets: number;
  receivedBytes: number;
  /** Datagrams this bind cannot send: 'udp' framing, the other family, not an IP packet. */
  sendRejected: number;
  /** sendto refused with EAGAIN/ENOBUFS (socket or device queue full): counted drops. */
  sendQueueFull: number;
  /** sendto failed otherwise (EMSGSIZE, ENETUNREACH, EPERM, ...). */
  sendErrors: number;
  /**
   * IPv6 packets for an SSM group from a source not joined. Linux checks an IPv6 raw socket's
   * source filter only when the socket is bound to the group address, so this bind applies it.
   */
  sourceFiltered: number;
  /** Received packets that cannot be an IP packet of this family (never expected). */
  receiveMalformed: number;
  receiveErrors: number;
  /** Packets whose receive handler threw (a bug upstream; counted, never rethrown). */
  handlerErrors: number;
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
    sourceFiltered: 0,
    receiveMalformed: 0,
    receiveErrors: 0,
    handlerErrors: 0,
  };
  /** The last errno name seen by send/receive, for diagnostics. */
  lastError = '';
  private handler: ((datagram: InboundDatagram) => void) | undefined;
  private poll: { close(): void } | undefined;
  private closed = false;
  private readonly slab = new PacketSlab(MAX_IP_PACKET + IPV6_HEADER);
  private lastSockaddr: Buffer = Buffer.alloc(0);
  // IPv6 recvmsg state, built once: msghdr -> (name, iovec -> slab tail, control).
  private readonly name = Buffer.alloc(LINUX.SOCKADDR_IN6_SIZE);
  private readonly control = Buffer.alloc(CONTROL_SIZE);
  private readonly iov = Buffer.alloc(16);
  private readonly msghdr = Buffer.alloc(56);
  /** Text of the last source / destination seen: most packets repeat one speaker and one group. */
  private readonly srcText = new AddressTextCache();
  private readonly dstText = new AddressTextCache();
  /** IPv6 SSM groups (canonical text) and the sources joined for each. */
  private readonly ssmSources = new Map<string, Set<string>>();

  private constructor(
    private readonly libc: Libc,
    readonly family: 4 | 6,
    readonly sendFd: number,
    readonly receiveFd: number,
    private readonly burst: number,
    private readonly protocol: number,
  ) {
    if (family === 6) {
      this.msghdr.writeBigUInt64LE(libc.address(this.name), 0);
      this.msghdr.writeBigUInt64LE(libc.address(this.iov), 16);
      this.msghdr.writeBigUInt64LE(1n, 24);
      this.msghdr.writeBigUInt64LE(libc.address(this.control), 32);
    }
  }

  /** Opens both sockets and joins the groups. Throws SysError (EPERM without CAP_NET_RAW). */
  static open(options: RawIpBindOptions = {}, deps: { libc?: Libc } = {}): RawIpBind {
    const family = options.family ?? 4;
    for (const join of options.groups ?? []) validateJoin(family, join);
    const libc = deps.libc ?? loadLibc();
    const domain = family === 4 ? LINUX.AF_INET : LINUX.AF_INET6;
    const level = family === 4 ? LINUX.IPPROTO_IP : LINUX.IPPROTO_IPV6;
    const protocol = options.protocol ?? LINUX.IPPROTO_ESP;
    const flags = LINUX.SOCK_RAW | LINUX.SOCK_NONBLOCK | LINUX.SOCK_CLOEXEC;
    const sendFd = check(libc, 'socket(SOCK_RAW, IPPROTO_RAW)', libc.socket(domain, flags, IPPROTO_RAW));
    let receiveFd = -1;
    try {
      receiveFd = check(libc, 'socket(SOCK_RAW, protocol)', libc.socket(domain, flags, protocol));
      const loop = intOption(options.loopback ? 1 : 0);
      const loopName = family === 4 ? LINUX.IP_MULTICAST_LOOP : LINUX.IPV6_MULTICAST_LOOP;
      check(libc, 'setsockopt(MULTICAST_LOOP)', libc.setsockopt(sendFd, level, loopName, loop, 4));
      if (options.multicastInterface !== undefined) {
        const index = interfaceIndex(libc, options.multicastInterface);
        const value = family === 4 ? ipMreqn('0.0.0.0', index) : intOption(index);
        const name = family === 4 ? LINUX.IP_MULTICAST_IF : LINUX.IPV6_MULTICAST_IF;
        check(libc, 'setsockopt(MULTICAST_IF)', libc.setsockopt(sendFd, level, name, value, value.length));
      }
      if (family === 6) {
        const on = intOption(1);
        check(libc, 'setsockopt(IPV6_RECVPKTINFO)', libc.setsockopt(receiveFd, level, LINUX.IPV6_RECVPKTINFO, on, 4));
        check(libc, 'setsockopt(IPV6_RECVHOPLIMIT)', libc.setsockopt(receiveFd, level, LINUX.IPV6_RECVHOPLIMIT, on, 4));
      }
      if (options.receiveBuffer !== undefined) {
        // SO_RCVBUFFORCE (CAP_NET_ADMIN) may exceed net.core.rmem_max; else SO_RCVBUF, capped by it.
        const size = intOption(options.receiveBuffer);
        if (libc.setsockopt(receiveFd, LINUX.SOL_SOCKET, LINUX.SO_RCVBUFFORCE, size, 4) < 0) {
          check(libc, 'setsockopt(SO_RCVBUF)', libc.setsockopt(receiveFd, LINUX.SOL_SOCKET, LINUX.SO_RCVBUF, size, 4));
        }
      }
      const bind = new RawIpBind(libc, family, sendFd, receiveFd, options.burst ?? 64, protocol);
      for (const join of options.groups ?? []) bind.join(join);
      return bind;
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
    validateJoin(this.family, join);
    joinGroup(this.libc, this.family, this.receiveFd, join);
    if (this.family === 6 && join.source !== undefined) {
      const group = addressText(addressBytes(join.group));
      const sources = this.ssmSources.get(group) ?? new Set<string>();
      sources.add(addressText(addressBytes(join.source)));
      this.ssmSources.set(group, sources);
    }
  }

  send(datagram: OutboundDatagram): void {
    const data = datagram.data;
    const v6 = this.family === 6;
    if (
      this.closed ||
      datagram.framing !== 'raw-ip' ||
      datagram.family !== this.family ||
      data.length < (v6 ? IPV6_HEADER : IPV4_MIN_HEADER) ||
      data[0]! >> 4 !== this.family
    ) {
      this.stats.sendRejected++;
      return;
    }
    // The kernel routes on the sockaddr, so it must name the header's own destination. Most
    // packets go to one group, so the last sockaddr is kept while the destination stays the same.
    if (this.lastSockaddr.length === 0 || !headerDestinationIs(data, this.lastSockaddr, v6)) {
      const dst = addressText(v6 ? data.subarray(24, 40) : data.subarray(16, 20));
      this.lastSockaddr = v6 ? sockaddrIn6(dst) : sockaddrIn(dst);
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
    if (!this.poll && !this.closed) {
      this.poll = this.libc.pollReadable(this.receiveFd, () => (this.family === 4 ? this.drain4() : this.drain6()));
    }
  }

  private drain4(): void {
    for (let i = 0; i < this.burst && !this.closed; i++) {
      const buf = this.slab.tail();
      const n = this.libc.recvfrom(this.receiveFd, buf, buf.length, 0, null as unknown as Uint8Array, null as unknown as Uint8Array);
      if (n < 0) return this.readFailed();
      if (n < IPV4_MIN_HEADER || buf[0]! >> 4 !== 4) {
        this.stats.receiveMalformed++;
        continue;
      }
      const packet = this.slab.take(n);
      this.deliver(packet, this.srcText.of(packet, 12, 4), this.dstText.of(packet, 16, 4));
    }
  }

  private drain6(): void {
    for (let i = 0; i < this.burst && !this.closed; i++) {
      const buf = this.slab.tail();
      // Read the payload 40 bytes in, then write the rebuilt fixed header in front of it.
      this.iov.writeBigUInt64LE(this.libc.address(buf) + BigInt(IPV6_HEADER), 0);
      this.iov.writeBigUInt64LE(BigInt(buf.length - IPV6_HEADER), 8);
      this.msghdr.writeUInt32LE(this.name.length, 8);
      this.msghdr.writeBigUInt64LE(BigInt(this.control.length), 40);
      this.msghdr.writeInt32LE(0, 48);
      const n = this.libc.recvmsg(this.receiveFd, this.msghdr, 0);
      if (n < 0) return this.readFailed();
      const src = this.msghdr.readUInt32LE(8) >= 24 ? this.srcText.of(this.name, 8, 16) : '';
      const ancillary = parseIpv6Control(this.control, Number(this.msghdr.readBigUInt64LE(40)));
      if (src === '' || ancillary.destination === undefined || n > 0xffff) {
        this.stats.receiveMalformed++;
        continue;
      }
      buf.writeUInt32BE(0x60000000, 0);
      buf.writeUInt16BE(n, 4);
      buf[6] = this.protocol;
      buf[7] = ancillary.hopLimit;
      this.name.copy(buf, 8, 8, 24);
      ancillary.destination.copy(buf, 24);
      const dst = this.dstText.of(ancillary.destination, 0, 16);
      const allowed = this.ssmSources.get(dst);
      if (allowed !== undefined && !allowed.has(src)) {
        this.stats.sourceFiltered++;
        continue;
      }
      const packet = this.slab.take(IPV6_HEADER + n);
      this.deliver(packet, src, dst);
    }
  }

  private deliver(packet: Buffer, srcAddress: string, dstAddress: string): void {
    this.stats.receivedPackets++;
    this.stats.receivedBytes += packet.length;
    try {
      this.handler?.({ framing: 'raw-ip', data: packet, srcAddress, dstAddress, srcPort: 0, dstPort: 0 });
    } catch {
      this.stats.handlerErrors++; // a throwing consumer must not take the receive loop down
    }
  }

  private readFailed(): void {
    const name = this.libc.errnoName(this.libc.errno());
    if (name !== 'EAGAIN' && name !== 'EINTR') {
      this.stats.receiveErrors++;
      this.lastError = name;
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

/** Remembers the text of the last address bytes it formatted (no allocation on a repeat). */
class AddressTextCache {
  private bytes = new Uint8Array(16);
  private length = 0;
  private text = '';

  of(buf: Uint8Array, offset: number, length: number): string {
    let same = length === this.length;
    for (let i = 0; same && i < length; i++) same = buf[offset + i] === this.bytes[i];
    if (!same) {
      this.bytes.set(buf.subarray(offset, offset + length));
      this.length = length;
      this.text = addressText(buf.subarray(offset, offset + length));
    }
    return this.text;
  }
}

function validateJoin(family: 4 | 6, join: MulticastJoin): void {
  if (addressFamily(join.group) !== family || !isMulticast(join.group)) {
    throw new RangeError(`not an IPv${family} group: ${join.group}`);
  }
  if (join.source !== undefined && addressFamily(join.source) !== family) {
    throw new RangeError(`not an IPv${family} source: ${join.source}`);
  }
}

function headerDestinationIs(data: Uint8Array, sockaddr: Buffer, v6: boolean): boolean {
  const [from, to, at] = v6 ? [24, 40, 8] : [16, 20, 4];
  for (let i = from; i < to; i++) if (data[i] !== sockaddr[at + i - from]) return false;
  return true;
}

/** IPV6_PKTINFO's destination and IPV6_HOPLIMIT from a control buffer (struct cmsghdr chain). */
function parseIpv6Control(control: Buffer, length: number): { destination?: Buffer; hopLimit: number } {
  const result: { destination?: Buffer; hopLimit: number } = { hopLimit: 0 };
  let off = 0;
  const end = Math.min(length, control.length);
  while (off + 16 <= end) {
    const len = Number(control.readBigUInt64LE(off));
    if (len < 16 || off + len > end) break;
    const level = control.readInt32LE(off + 8);
    const type = control.readInt32LE(off + 12);
    if (level === LINUX.IPPROTO_IPV6 && type === LINUX.IPV6_PKTINFO && len >= 16 + 20) {
      result.destination = control.subarray(off + 16, off + 32);
    } else if (level === LINUX.IPPROTO_IPV6 && type === LINUX.IPV6_HOPLIMIT && len >= 16 + 4) {
      result.hopLimit = control.readInt32LE(off + 16) & 0xff;
    }
    off += (len + 7) & ~7; // CMSG_ALIGN
  }
  return result;
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

function joinGroup(libc: Libc, family: 4 | 6, fd: number, join: MulticastJoin): void {
  const ifindex = join.interface === undefined ? 0 : interfaceIndex(libc, join.interface);
  const level = family === 4 ? LINUX.IPPROTO_IP : LINUX.IPPROTO_IPV6;
  if (join.source === undefined) {
    if (family === 4) {
      const mreqn = ipMreqn(join.group, ifindex);
      check(libc, 'setsockopt(IP_ADD_MEMBERSHIP)', libc.setsockopt(fd, level, LINUX.IP_ADD_MEMBERSHIP, mreqn, mreqn.length));
    } else {
      // struct ipv6_mreq { in6_addr multiaddr; int ifindex; }
      const mreq = Buffer.alloc(20);
      addressBytes(join.group).copy(mreq, 0);
      mreq.writeInt32LE(ifindex, 16);
      check(libc, 'setsockopt(IPV6_JOIN_GROUP)', libc.setsockopt(fd, level, LINUX.IPV6_JOIN_GROUP, mreq, mreq.length));
    }
    return;
  }
  // struct group_source_req { uint32 gsr_interface; sockaddr_storage gsr_group; sockaddr_storage gsr_source; }
  // (protocol-independent, RFC 3678 §5.2; the storage members are 8-byte aligned.)
  const ss = LINUX.SOCKADDR_STORAGE_SIZE;
  const gsr = Buffer.alloc(8 + ss * 2);
  gsr.writeUInt32LE(ifindex, 0);
  const sa = family === 4 ? sockaddrIn : sockaddrIn6;
  sa(join.group).copy(gsr, 8);
  sa(join.source).copy(gsr, 8 + ss);
  check(libc, 'setsockopt(MCAST_JOIN_SOURCE_GROUP)', libc.setsockopt(fd, level, LINUX.MCAST_JOIN_SOURCE_GROUP, gsr, gsr.length));
}
