import { isIPv4, isIPv6 } from 'node:net';

/** An IPv4 or IPv6 address as a number. */
export interface IpAddress {
  readonly version: 4 | 6;
  readonly value: bigint;
}

/** A network prefix; host bits of `value` are zero. */
export interface IpPrefix extends IpAddress {
  readonly length: number;
}

const BITS = { 4: 32, 6: 128 } as const;

function v4ToBigInt(s: string): bigint {
  return s.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function v6ToBigInt(s: string): bigint {
  let text = s;
  // An embedded IPv4 tail (::ffff:192.0.2.1) becomes two hextets.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = v4ToBigInt(v4[1]);
    text = text.slice(0, v4.index) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** Parses a literal IPv4 or IPv6 address (no zone, no prefix); null if it is not one. */
export function parseAddress(text: string): IpAddress | null {
  if (isIPv4(text)) return { version: 4, value: v4ToBigInt(text) };
  if (isIPv6(text) && !text.includes('%')) return { version: 6, value: v6ToBigInt(text) };
  return null;
}

export type PrefixParse = { ok: true; prefix: IpPrefix } | { ok: false; reason: string };

/** Parses `address[/length]`; a bare address is a host prefix. Host bits must be zero. */
export function parsePrefix(text: string): PrefixParse {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const addr = parseAddress(addrText);
  if (!addr) return { ok: false, reason: 'must be an IPv4 or IPv6 address or prefix (address/length)' };
  const max: number = BITS[addr.version];
  let length = max;
  if (slash >= 0) {
    const lenText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > max) {
      return { ok: false, reason: `prefix length must be an integer from 0 to ${max}` };
    }
    length = Number(lenText);
  }
  if ((addr.value & hostMask(addr.version, length)) !== 0n) {
    return { ok: false, reason: 'has host bits set beyond the prefix length' };
  }
  return { ok: true, prefix: { ...addr, length } };
}

export function hostMask(version: 4 | 6, length: number): bigint {
  return (1n << BigInt(BITS[version] - length)) - 1n;
}

export function hostPrefix(a: IpAddress): IpPrefix {
  return { ...a, length: BITS[a.version] };
}

/** True when every address of `inner` is also in `outer`. */
export function prefixWithin(inner: IpPrefix, outer: IpPrefix): boolean {
  if (inner.version !== outer.version || inner.length < outer.length) return false;
  return (inner.value & ~hostMask(outer.version, outer.length)) === outer.value;
}

/** IPv4 224.0.0.0/4 (RFC 5771) or IPv6 ff00::/8 (RFC 4291 §2.7). */
export function isMulticast(a: IpAddress): boolean {
  return a.version === 4 ? a.value >> 28n === 0xen : a.value >> 120n === 0xffn;
}

/** Source-specific multicast ranges of RFC 4607 §1: 232.0.0.0/8 and ff3x::/96. */
export function isSsmRange(a: IpAddress): boolean {
  if (a.version === 4) return a.value >> 24n === 232n;
  return a.value >> 116n === 0xff3n && ((a.value >> 32n) & ((1n << 80n) - 1n)) === 0n;
}

/** A unicast address a host can send from: not multicast, unspecified, or a broadcast. */
export function isUnicastSource(a: IpAddress): boolean {
  if (isMulticast(a) || a.value === 0n) return false;
  if (a.version === 4) return a.value !== 0xffffffffn && a.value >> 24n !== 0n;
  return true;
}

/**
 * IPv6 anycast addresses that can be recognised syntactically: the Subnet-Router anycast address
 * (RFC 4291 §2.6.1, interface identifier zero) and the reserved subnet anycast addresses of
 * RFC 2526 §2 for EUI-64 interface identifiers (fdff:ffff:ffff:ff80 to fdff:ffff:ffff:ffff).
 * Other anycast addresses are indistinguishable from unicast ones and are not accepted.
 */
export function isRecognisedIpv6Anycast(a: IpAddress): boolean {
  if (a.version !== 6 || isMulticast(a) || a.value >> 64n === 0n) return false;
  const iid = a.value & ((1n << 64n) - 1n);
  return iid === 0n || iid >> 7n === 0xfdffffffffffff80n >> 7n;
}

/**
 * An IPv4 broadcast group address: the limited broadcast 255.255.255.255, or a directed
 * broadcast written `address/length` whose host bits are all ones (RFC 919, RFC 922).
 */
export function parseBroadcast(text: string): { ok: true; address: IpAddress } | { ok: false; reason: string } {
  if (text === '255.255.255.255') return { ok: true, address: { version: 4, value: 0xffffffffn } };
  const m = /^([^/]+)\/(\d{1,2})$/.exec(text);
  const addr = m ? parseAddress(m[1]) : parseAddress(text);
  if (!addr || addr.version !== 4) return { ok: false, reason: 'a broadcast group address must be IPv4' };
  if (!m) return { ok: false, reason: 'must be 255.255.255.255 or a directed broadcast written address/length' };
  const length = Number(m[2]);
  if (length < 1 || length > 30) return { ok: false, reason: 'a directed broadcast needs a prefix length from 1 to 30' };
  const mask = hostMask(4, length);
  if ((addr.value & mask) !== mask) return { ok: false, reason: 'host bits of a directed broadcast address must all be ones' };
  if (isMulticast(addr) || addr.value >> 24n === 0n || addr.value >> 24n === 127n) {
    return { ok: false, reason: 'is not a usable broadcast address' };
  }
  return { ok: true, address: addr };
}
