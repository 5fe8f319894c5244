/**
 * The few libc calls the TUN and raw-socket binds need, reached through koffi (a dynamic FFI whose
 * prebuilt binary ships inside the npm package, so nothing is compiled on install).
 *
 * Every descriptor made here is non-blocking: instead of parking a worker thread in a blocking
 * `read()` (koffi's `func.async`), the binds register the descriptor with libuv through
 * `koffi.node.poll` and drain it with synchronous, non-blocking calls until EAGAIN. That keeps the
 * packet path on the main thread (no cross-thread hand-off per packet, no thread-pool starvation)
 * and costs one poll wake-up per burst. Buffers are passed to C in place (no copy).
 *
 * Linux only (x86-64 / arm64 share every number used below: asm-generic ioctl and socket values).
 */
import { createRequire } from 'node:module';
import { endianness } from 'node:os';

// koffi is a CommonJS package with a default export; load it lazily so that importing a bind
// module on a platform without it (or in a unit test that never opens a device) costs nothing.
const require = createRequire(import.meta.url);

/** Numbers from the Linux UAPI headers (<linux/if_tun.h>, <linux/sockios.h>, <netinet/in.h>, ...). */
export const LINUX = {
  // <fcntl.h>
  O_RDWR: 0x2,
  O_NONBLOCK: 0x800,
  O_CLOEXEC: 0x80000,
  // <sys/socket.h>
  AF_INET: 2,
  AF_INET6: 10,
  SOCK_DGRAM: 2,
  SOCK_RAW: 3,
  SOCK_NONBLOCK: 0x800,
  SOCK_CLOEXEC: 0x80000,
  SOL_SOCKET: 1,
  SO_SNDBUF: 7,
  SO_RCVBUF: 8,
  SO_BINDTODEVICE: 25,
  SO_RCVBUFFORCE: 33,
  // <netinet/in.h>
  IPPROTO_IP: 0,
  IPPROTO_IPV6: 41,
  IPPROTO_ESP: 50,
  IP_HDRINCL: 3,
  IP_MULTICAST_IF: 32,
  IP_MULTICAST_TTL: 33,
  IP_MULTICAST_LOOP: 34,
  IP_ADD_MEMBERSHIP: 35,
  IP_DROP_MEMBERSHIP: 36,
  IP_ADD_SOURCE_MEMBERSHIP: 39,
  IPV6_MULTICAST_IF: 17,
  IPV6_MULTICAST_HOPS: 18,
  IPV6_MULTICAST_LOOP: 19,
  IPV6_JOIN_GROUP: 20,
  IPV6_LEAVE_GROUP: 21,
  IPV6_HDRINCL: 36,
  IPV6_RECVPKTINFO: 49,
  IPV6_PKTINFO: 50,
  IPV6_RECVHOPLIMIT: 51,
  IPV6_HOPLIMIT: 52,
  MCAST_JOIN_SOURCE_GROUP: 46,
  // <linux/if_tun.h>
  TUNSETIFF: 0x400454ca,
  IFF_TUN: 0x0001,
  IFF_NO_PI: 0x1000,
  // <linux/sockios.h>, <net/if.h>
  SIOCGIFFLAGS: 0x8913,
  SIOCSIFFLAGS: 0x8914,
  SIOCSIFMTU: 0x8922,
  SIOCSIFTXQLEN: 0x8943,
  IFF_UP: 0x1,
  IFNAMSIZ: 16,
  IFREQ_SIZE: 40,
  SOCKADDR_IN_SIZE: 16,
  SOCKADDR_IN6_SIZE: 28,
  SOCKADDR_STORAGE_SIZE: 128,
} as const;

/** A failed system call, with the errno name (EPERM, EAGAIN, ...) so callers can branch on it. */
export class SysError extends Error {
  constructor(
    readonly syscall: string,
    readonly errno: number,
    readonly code: string,
  ) {
    super(`${syscall} failed: ${code} (${errno})`);
    this.name = 'SysError';
  }
}

type Fn = (...args: unknown[]) => number;

export interface Libc {
  open(path: string, flags: number): number;
  close(fd: number): number;
  read(fd: number, buf: Uint8Array, len: number): number;
  write(fd: number, buf: Uint8Array, len: number): number;
  ioctl(fd: number, request: number, arg: Uint8Array): number;
  socket(domain: number, type: number, protocol: number): number;
  setsockopt(fd: number, level: number, name: number, value: Uint8Array, len: number): number;
  bind(fd: number, addr: Uint8Array, len: number): number;
  sendto(fd: number, buf: Uint8Array, len: number, flags: number, addr: Uint8Array, alen: number): number;
  /** recvfrom with the address length in a 4-byte in/out buffer. */
  recvfrom(fd: number, buf: Uint8Array, len: number, flags: number, addr: Uint8Array, alen: Uint8Array): number;
  /** recvmsg with a caller-built `struct msghdr` (see `address`). */
  recvmsg(fd: number, msghdr: Uint8Array, flags: number): number;
  if_nametoindex(name: string): number;
  /**
   * The native address of a buffer's bytes, for pointers stored inside structures (msghdr, iovec).
   * Node's ArrayBuffer backing stores never move; the caller keeps the buffer referenced.
   */
  address(buf: Uint8Array): bigint;
  /** errno of the last failed call made through this object. */
  errno(): number;
  errnoName(errno: number): string;
  /** Registers a non-blocking descriptor with libuv; the callback runs when it turns readable. */
  pollReadable(fd: number, onReadable: () => void): { close(): void; unref(): void };
}

let cached: Libc | undefined;

/** Loads libc through koffi once per process. Throws a plain Error off Linux. */
export function loadLibc(): Libc {
  if (cached) return cached;
  if (process.platform !== 'linux') throw new Error(`libc FFI binds need Linux, not ${process.platform}`);
  // Option values and struct fields below are written little-endian (x86-64, arm64).
  if (endianness() !== 'LE') throw new Error('libc FFI binds assume a little-endian host');
  const koffi = require('koffi') as typeof import('koffi');
  const lib = koffi.load('libc.so.6');
  const f = (decl: string) => lib.func(decl) as unknown as Fn;
  const names = new Map<number, string>();
  for (const [name, value] of Object.entries(koffi.os.errno)) if (!names.has(value)) names.set(value, name);
  // EWOULDBLOCK is EAGAIN on Linux; callers test for the latter name.
  if (koffi.os.errno.EAGAIN !== undefined) names.set(koffi.os.errno.EAGAIN, 'EAGAIN');
  const open = f('int open(const char *path, int flags)');
  const close = f('int close(int fd)');
  const read = f('long read(int fd, void *buf, size_t count)');
  const write = f('long write(int fd, const void *buf, size_t count)');
  const ioctl = f('int ioctl(int fd, unsigned long request, void *arg)');
  const socket = f('int socket(int domain, int type, int protocol)');
  const setsockopt = f('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)');
  const bind = f('int bind(int fd, const void *addr, uint32_t len)');
  const sendto = f('long sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t alen)');
  const recvfrom = f('long recvfrom(int fd, void *buf, size_t len, int flags, void *addr, void *alen)');
  const recvmsg = f('long recvmsg(int fd, void *msg, int flags)');
  const ifNameToIndex = f('unsigned int if_nametoindex(const char *name)');
  cached = {
    open: (path, flags) => open(path, flags),
    close: (fd) => close(fd),
    read: (fd, buf, len) => read(fd, buf, len),
    write: (fd, buf, len) => write(fd, buf, len),
    ioctl: (fd, request, arg) => ioctl(fd, request, arg),
    socket: (domain, type, protocol) => socket(domain, type, protocol),
    setsockopt: (fd, level, name, value, len) => setsockopt(fd, level, name, value, len),
    bind: (fd, addr, len) => bind(fd, addr, len),
    sendto: (fd, buf, len, flags, addr, alen) => sendto(fd, buf, len, flags, addr, alen),
    recvfrom: (fd, buf, len, flags, addr, alen) => recvfrom(fd, buf, len, flags, addr, alen),
    recvmsg: (fd, msghdr, flags) => recvmsg(fd, msghdr, flags),
    if_nametoindex: (name) => ifNameToIndex(name),
    address: (buf) => koffi.address(buf) as bigint,
    errno: () => koffi.errno(),
    errnoName: (errno) => names.get(errno) ?? `E${errno}`,
    pollReadable(fd, onReadable) {
      // koffi calls back with (status, events); any wake-up just means "try to read".
      const handle = koffi.node.poll(fd, { readable: true }, () => onReadable());
      return { close: () => handle.close(), unref: () => handle.unref() };
    },
  };
  return cached;
}

/** Throws a SysError for a negative return value, else returns it. */
export function check(libc: Libc, syscall: string, ret: number): number {
  if (ret < 0) {
    const errno = libc.errno();
    throw new SysError(syscall, errno, libc.errnoName(errno));
  }
  return ret;
}

/** A 4-byte int option value, in host (little-endian on every Linux target we run) order. */
export function intOption(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value, 0);
  return b;
}
