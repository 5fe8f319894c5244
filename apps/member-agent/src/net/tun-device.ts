/**
 * TUN bind (Linux, root or CAP_NET_ADMIN): the application side of the datapath. Unmodified
 * applications send multicast as usual; a route sends the group addresses into this device, the
 * datapath reads each plain IP packet here (one packet per `read`), protects it and sends it on the
 * network bind. In the other direction, verified packets are written back here and the kernel
 * delivers them to the applications' sockets as if they had arrived on this interface.
 *
 * Facts that matter for operators (see the README): applications must bind 0.0.0.0 (or select
 * this device as their multicast interface), otherwise the kernel sends their multicast out of the
 * interface owning the bound address, in clear; and reverse-path filtering must be off
 * (`rp_filter=0` for "all" and this device) or packets written here from a remote source are
 * dropped by the kernel.
 *
 * Reading: the descriptor is non-blocking and registered with libuv (koffi.node.poll); each
 * wake-up drains up to `burst` packets with plain `read()` calls on the main thread.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import type { PlaintextPort } from '@app/datapath';
import { check, LINUX, loadLibc, SysError, type Libc } from './libc.js';
import { addressFamily, isMulticast } from './ip-address.js';
import { PacketSlab } from './packet-slab.js';

export interface TunOptions {
  /** Interface name, 1–15 characters (IFNAMSIZ - 1). */
  readonly name: string;
  /** MTU of the device; leave room for the outer header and ESP overhead. Default 1400. */
  readonly mtu?: number;
  /**
   * Prefixes routed into the device once it is up, e.g. `239.1.1.1/32` or `ff3e::1234/128`
   * (via iproute2's `ip route replace`, so re-opening is idempotent). IPv6 multicast prefixes go
   * into the `local` table as `multicast` routes: Linux puts `ff00::/8` of every interface there,
   * and the local table is consulted before main, so a main-table route would never be used.
   */
  readonly routes?: readonly string[];
  /**
   * Addresses to put on the device (`ip addr replace <cidr> dev <tun>`, IPv6 without DAD). Needed
   * for IPv6: for a multicast destination Linux picks the source only among the outgoing
   * interface's addresses, so without the host's global address here (e.g. `2001:db8::1/128`)
   * applications would multicast from the TUN's link-local address. IPv4 needs none.
   */
  readonly addresses?: readonly string[];
  /** Write 0 to this device's `rp_filter` (the "all" value must be 0 too). Default true. */
  readonly disableRpFilter?: boolean;
  /** Turn IPv6 off on the device (no link-local address, no MLD or router solicitations). */
  readonly disableIpv6?: boolean;
  /** Packets read per poll wake-up before yielding to the event loop. Default 64. */
  readonly burst?: number;
  /**
   * The device's transmit queue (SIOCSIFTXQLEN): packets the kernel holds for us while the
   * datapath is busy; beyond it the kernel drops them (`kernelStats().txDropped`). Default: the
   * kernel's (500).
   */
  readonly txQueueLength?: number;
}

/** The kernel's own counters for the device (/sys/class/net/<name>/statistics). */
export interface TunKernelStats {
  /** Packets routed into the device that the kernel dropped because our reader fell behind. */
  txDropped: number;
  /** Packets we wrote that the kernel dropped. */
  rxDropped: number;
}

export interface TunStats {
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  /** Writes refused because the device queue was full (EAGAIN/ENOBUFS): counted drops. */
  txQueueFull: number;
  /** Writes refused for another reason (e.g. EINVAL for a malformed packet). */
  txErrors: number;
  /** Reads that failed with something other than EAGAIN. */
  rxErrors: number;
  /** Packets whose handler threw (a bug upstream; counted, never rethrown). */
  handlerErrors: number;
}

const IFACE_NAME = /^[A-Za-z0-9_.-]{1,15}$/;

/** Runs `ip` (iproute2) with fixed arguments; never through a shell. */
export type IpRunner = (args: readonly string[]) => void;
const runIp: IpRunner = (args) => {
  execFileSync('ip', args as string[], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
};

export class TunDevice implements PlaintextPort {
  readonly stats: TunStats = {
    rxPackets: 0,
    rxBytes: 0,
    txPackets: 0,
    txBytes: 0,
    txQueueFull: 0,
    txErrors: 0,
    rxErrors: 0,
    handlerErrors: 0,
  };
  private handler: ((packet: Uint8Array) => void) | undefined;
  private poll: { close(): void } | undefined;
  private closed = false;
  private readonly slab: PacketSlab;
  private readonly burst: number;

  private constructor(
    private readonly libc: Libc,
    readonly name: string,
    readonly fd: number,
    readonly mtu: number,
    burst: number,
  ) {
    this.slab = new PacketSlab(mtu);
    this.burst = burst;
  }

  /**
   * Creates (or attaches to) the TUN device, sets its MTU, brings it up and installs the routes.
   * Throws SysError (EPERM without CAP_NET_ADMIN, ENOENT without /dev/net/tun).
   */
  static open(options: TunOptions, deps: { libc?: Libc; ip?: IpRunner } = {}): TunDevice {
    if (!IFACE_NAME.test(options.name)) throw new RangeError(`bad interface name ${JSON.stringify(options.name)}`);
    const mtu = options.mtu ?? 1400;
    if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65535) throw new RangeError(`bad MTU ${mtu}`);
    const qlen = options.txQueueLength;
    if (qlen !== undefined && (!Number.isInteger(qlen) || qlen < 1 || qlen > 1_000_000)) throw new RangeError(`bad queue length ${qlen}`);
    for (const route of [...(options.routes ?? []), ...(options.addresses ?? [])]) {
      const [prefix, len, ...rest] = route.split('/');
      const family = addressFamily(prefix ?? '');
      const bits = Number(len);
      if (rest.length > 0 || !Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128)) {
        throw new RangeError(`bad prefix ${JSON.stringify(route)}`);
      }
    }
    const libc = deps.libc ?? loadLibc();
    const ip = deps.ip ?? runIp;
    const fd = check(libc, 'open(/dev/net/tun)', libc.open('/dev/net/tun', LINUX.O_RDWR | LINUX.O_NONBLOCK | LINUX.O_CLOEXEC));
    try {
      const ifr = ifreq(options.name);
      ifr.writeUInt16LE(LINUX.IFF_TUN | LINUX.IFF_NO_PI, LINUX.IFNAMSIZ);
      check(libc, 'ioctl(TUNSETIFF)', libc.ioctl(fd, LINUX.TUNSETIFF, ifr));
      const name = ifr.toString('latin1', 0, LINUX.IFNAMSIZ).replace(/\0.*$/s, '');
      if (options.disableIpv6) writeSysctl(`net/ipv6/conf/${name}/disable_ipv6`, '1');
      if (options.disableRpFilter ?? true) writeSysctl(`net/ipv4/conf/${name}/rp_filter`, '0');
      configureLink(libc, name, mtu, qlen);
      for (const cidr of options.addresses ?? []) {
        ip(cidr.includes(':') ? ['-6', 'addr', 'replace', cidr, 'dev', name, 'nodad'] : ['addr', 'replace', cidr, 'dev', name]);
      }
      for (const route of options.routes ?? []) ip(routeCommand(route, name));
      return new TunDevice(libc, name, fd, mtu, options.burst ?? 64);
    } catch (err) {
      libc.close(fd);
      throw err;
    }
  }

  onPacket(handler: (packet: Uint8Array) => void): void {
    this.handler = handler;
    if (!this.poll && !this.closed) this.poll = this.libc.pollReadable(this.fd, () => this.drain());
  }

  /** Writes one IP packet towards the applications. Never throws; failures are counted. */
  deliver(packet: Uint8Array): void {
    if (this.closed) {
      this.stats.txErrors++;
      return;
    }
    const n = this.libc.write(this.fd, packet, packet.length);
    if (n === packet.length) {
      this.stats.txPackets++;
      this.stats.txBytes += n;
      return;
    }
    const errno = n < 0 ? this.libc.errno() : 0;
    const name = this.libc.errnoName(errno);
    if (name === 'EAGAIN' || name === 'ENOBUFS') this.stats.txQueueFull++;
    else this.stats.txErrors++;
  }

  private drain(): void {
    for (let i = 0; i < this.burst && !this.closed; i++) {
      const buf = this.slab.tail();
      const n = this.libc.read(this.fd, buf, buf.length);
      if (n < 0) {
        const name = this.libc.errnoName(this.libc.errno());
        if (name !== 'EAGAIN' && name !== 'EINTR') this.stats.rxErrors++;
        return;
      }
      if (n === 0) return;
      const packet = this.slab.take(n);
      this.stats.rxPackets++;
      this.stats.rxBytes += n;
      try {
        this.handler?.(packet);
      } catch {
        this.stats.handlerErrors++; // a throwing consumer must not take the read loop down
      }
    }
  }

  /** The kernel's drop counters for this device (what never reached us, or what we wrote in vain). */
  kernelStats(): TunKernelStats {
    const read = (counter: string) => {
      try {
        return Number(readFileSync(`/sys/class/net/${this.name}/statistics/${counter}`, 'utf8').trim());
      } catch {
        return 0; // sysfs of another namespace, or the device is gone
      }
    };
    return { txDropped: read('tx_dropped'), rxDropped: read('rx_dropped') };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.poll?.close();
    this.poll = undefined;
    // Closing the last descriptor of a non-persistent TUN device deletes the interface and its routes.
    this.libc.close(this.fd);
  }
}

/** The `ip` arguments that send `prefix` into `device`. */
export function routeCommand(prefix: string, device: string): string[] {
  const address = prefix.split('/')[0]!;
  if (addressFamily(address) === 4) return ['route', 'replace', prefix, 'dev', device];
  if (isMulticast(address)) return ['-6', 'route', 'replace', 'multicast', prefix, 'dev', device, 'table', 'local'];
  return ['-6', 'route', 'replace', prefix, 'dev', device];
}

function ifreq(name: string): Buffer {
  const ifr = Buffer.alloc(LINUX.IFREQ_SIZE);
  ifr.write(name, 0, LINUX.IFNAMSIZ - 1, 'latin1');
  return ifr;
}

/** Sets the MTU and IFF_UP through SIOCSIFMTU / SIOCSIFFLAGS on a throwaway datagram socket. */
function configureLink(libc: Libc, name: string, mtu: number, txQueueLength: number | undefined): void {
  const sock = check(libc, 'socket(AF_INET)', libc.socket(LINUX.AF_INET, LINUX.SOCK_DGRAM | LINUX.SOCK_CLOEXEC, 0));
  try {
    const ifr = ifreq(name);
    ifr.writeInt32LE(mtu, LINUX.IFNAMSIZ);
    check(libc, 'ioctl(SIOCSIFMTU)', libc.ioctl(sock, LINUX.SIOCSIFMTU, ifr));
    if (txQueueLength !== undefined) {
      const q = ifreq(name);
      q.writeInt32LE(txQueueLength, LINUX.IFNAMSIZ);
      check(libc, 'ioctl(SIOCSIFTXQLEN)', libc.ioctl(sock, LINUX.SIOCSIFTXQLEN, q));
    }
    const flags = ifreq(name);
    check(libc, 'ioctl(SIOCGIFFLAGS)', libc.ioctl(sock, LINUX.SIOCGIFFLAGS, flags));
    flags.writeUInt16LE(flags.readUInt16LE(LINUX.IFNAMSIZ) | LINUX.IFF_UP, LINUX.IFNAMSIZ);
    check(libc, 'ioctl(SIOCSIFFLAGS)', libc.ioctl(sock, LINUX.SIOCSIFFLAGS, flags));
  } finally {
    libc.close(sock);
  }
}

function writeSysctl(path: string, value: string): void {
  try {
    writeFileSync(`/proc/sys/${path}`, value);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new SysError(`sysctl ${path}`, 0, code);
  }
}
