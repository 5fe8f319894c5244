import {
  IPPROTO_AH,
  IPPROTO_DSTOPTS,
  IPPROTO_EXPERIMENT1,
  IPPROTO_EXPERIMENT2,
  IPPROTO_FRAGMENT,
  IPPROTO_HIP,
  IPPROTO_HOPOPTS,
  IPPROTO_MOBILITY,
  IPPROTO_ROUTING,
  IPPROTO_SHIM6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV4_ADDRESS_LENGTH,
  IPV4_FLAG_DF,
  IPV4_FLAG_MF,
  IPV4_FRAGMENT_OFFSET_MASK,
  IPV4_MIN_HEADER_LENGTH,
  IPV4_VERSION,
  IPV6_ADDRESS_LENGTH,
  IPV6_EXT_UNIT,
  IPV6_FRAGMENT_HEADER_LENGTH,
  IPV6_HEADER_LENGTH,
  IPV6_VERSION,
  MAX_IPV6_EXTENSION_HEADERS,
} from './constants.js';
import { CodecError } from './errors.js';

// ---------------------------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------------------------

/** Parses a textual IPv4 or IPv6 address (an IPv6 zone "%if" is ignored) into 4 or 16 bytes. */
export function parseIpAddress(text: string): Uint8Array {
  const v4 = parseIpv4Text(text);
  if (v4) return v4;
  const v6 = parseIpv6Text(text);
  if (v6) return v6;
  throw new CodecError('BAD_VALUE', `not an IP address: ${JSON.stringify(text.slice(0, 64))}`, 0);
}

function parseIpv4Text(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(IPV4_ADDRESS_LENGTH);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseIpv6Text(input: string): Uint8Array | undefined {
  const pct = input.indexOf('%');
  const text = pct >= 0 ? input.slice(0, pct) : input;
  if (text.length < 2 || text.length > 45) return undefined;
  const out = new Uint8Array(IPV6_ADDRESS_LENGTH);
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string): number[] | undefined => {
    if (s === '') return [];
    const parts = s.split(':');
    const words: number[] = [];
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIpv4Text(p);
        if (!v4) return undefined;
        words.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
        words.push(parseInt(p, 16));
      }
    }
    return words;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  if (halves.length === 2 ? head.length + tail.length > 7 : head.length !== 8) return undefined;
  const words = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  for (let i = 0; i < 8; i++) {
    out[i * 2] = words[i]! >> 8;
    out[i * 2 + 1] = words[i]! & 0xff;
  }
  return out;
}

/** Formats 4 or 16 address bytes at `offset` (RFC 5952 canonical text for IPv6). */
export function formatIpAddress(buf: Uint8Array, offset = 0, length = buf.length - offset): string {
  if (length === IPV4_ADDRESS_LENGTH) {
    return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
  }
  if (length !== IPV6_ADDRESS_LENGTH) {
    throw new CodecError('BAD_LENGTH', `an address has 4 or 16 bytes, not ${length}`, offset);
  }
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((buf[offset + i * 2]! << 8) | buf[offset + i * 2 + 1]!);
  // RFC 5952 §4.2: compress the longest run (>= 2) of zero words, the first one on ties.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(':');
  if (bestStart < 0) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLen))}`;
}

/** Whether two address byte ranges are equal. */
export function ipAddressEquals(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  return true;
}

/** An address or CIDR prefix ("10.0.0.0/8", "ff3e::/16", "232.1.1.1"). */
export interface IpPrefix {
  readonly address: Uint8Array;
  readonly prefixLength: number;
}

export function parseIpPrefix(text: string): IpPrefix {
  const slash = text.indexOf('/');
  const address = parseIpAddress(slash >= 0 ? text.slice(0, slash) : text);
  const max = address.length * 8;
  let prefixLength = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(p) || Number(p) > max) {
      throw new CodecError('BAD_VALUE', `bad prefix length in ${JSON.stringify(text.slice(0, 64))}`, slash + 1);
    }
    prefixLength = Number(p);
  }
  return { address, prefixLength };
}

/** Whether the address bytes at buf[offset..offset+length) fall in the prefix. */
export function ipPrefixContains(prefix: IpPrefix, buf: Uint8Array, offset: number, length: number): boolean {
  if (prefix.address.length !== length) return false;
  const full = prefix.prefixLength >> 3;
  for (let i = 0; i < full; i++) if (prefix.address[i] !== buf[offset + i]) return false;
  const rest = prefix.prefixLength & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (prefix.address[full]! & mask) === (buf[offset + full]! & mask);
}

// ---------------------------------------------------------------------------------------------
// Checksums (RFC 1071)
// ---------------------------------------------------------------------------------------------

/** The un-complemented 16-bit one's-complement sum of buf[start, end), added to `initial`. */
export function onesComplementSum(buf: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) sum += buf[i]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The Internet checksum of buf[start, end) (RFC 1071). */
export function internetChecksum(buf: Uint8Array, start: number, end: number, initial = 0): number {
  return ~onesComplementSum(buf, start, end, initial) & 0xffff;
}

// ---------------------------------------------------------------------------------------------
// A zero-allocation view of an IP packet, for the datapath's hot path
// ---------------------------------------------------------------------------------------------

/**
 * What `parseIpPacket` learned about one IPv4 or IPv6 packet. Offsets are absolute in the buffer.
 * The object is meant to be reused (the datapath keeps one per pipeline).
 */
export class IpPacketInfo {
  version: 4 | 6 = 4;
  /** First byte of the IP header and one past the packet's last byte (per its length field). */
  start = 0;
  end = 0;
  /** Length of the fixed header (IPv4 with options; IPv6: 40). */
  headerLength = 0;
  srcOffset = 0;
  dstOffset = 0;
  addressLength = 4;
  /** The upper-layer protocol after any IPv6 extension headers (or 50 for ESP, which ends the walk). */
  protocol = 0;
  /** Offset of the upper-layer header, after IPv4 options / IPv6 extension headers. */
  upperOffset = 0;
  /** Offset of the byte that holds `protocol` (IPv4 Protocol or the last Next Header field). */
  protocolFieldOffset = 0;
  /** A fragment (IPv4 MF or offset, or an IPv6 Fragment header). */
  fragment = false;
  /** IPv4 TOS / IPv6 Traffic Class. */
  trafficClass = 0;
  /** IPv4 TTL / IPv6 Hop Limit. */
  ttl = 0;
  /** IPv4 DF flag. */
  dontFragment = false;
  /** Upper-layer ports for unfragmented TCP/UDP with a full header, otherwise -1. */
  srcPort = -1;
  dstPort = -1;
}

/**
 * Parses the IP packet in buf[offset, end) into `out`, checking every length against the frame:
 * version, IPv4 IHL, header checksum and total length, IPv6 payload length, and the IPv6
 * extension header chain (bounded by MAX_IPV6_EXTENSION_HEADERS). Bytes after the packet's own
 * length (link padding) are tolerated; `out.end` tells where the packet ends.
 * Throws CodecError on malformed input.
 */
export function parseIpPacket(buf: Uint8Array, offset: number, end: number, out: IpPacketInfo): IpPacketInfo {
  if (offset < 0 || end > buf.length || offset >= end) {
    throw new CodecError('TRUNCATED', 'empty IP packet', offset);
  }
  const version = buf[offset]! >> 4;
  if (version === IPV4_VERSION) {
    if (end - offset < IPV4_MIN_HEADER_LENGTH) throw new CodecError('TRUNCATED', 'IPv4 header', offset);
    const ihl = (buf[offset]! & 0x0f) * 4;
    if (ihl < IPV4_MIN_HEADER_LENGTH) throw new CodecError('BAD_LENGTH', `IPv4 IHL ${ihl / 4}`, offset);
    const total = (buf[offset + 2]! << 8) | buf[offset + 3]!;
    if (total < ihl) throw new CodecError('BAD_LENGTH', `IPv4 total length ${total} < IHL`, offset + 2);
    if (total > end - offset) throw new CodecError('TRUNCATED', `IPv4 total length ${total}`, offset + 2);
    if (internetChecksum(buf, offset, offset + ihl) !== 0) {
      throw new CodecError('BAD_CHECKSUM', 'IPv4 header checksum', offset + 10);
    }
    const frag = (buf[offset + 6]! << 8) | buf[offset + 7]!;
    out.version = 4;
    out.start = offset;
    out.end = offset + total;
    out.headerLength = ihl;
    out.trafficClass = buf[offset + 1]!;
    out.ttl = buf[offset + 8]!;
    out.protocol = buf[offset + 9]!;
    out.protocolFieldOffset = offset + 9;
    out.srcOffset = offset + 12;
    out.dstOffset = offset + 16;
    out.addressLength = IPV4_ADDRESS_LENGTH;
    out.upperOffset = offset + ihl;
    out.fragment = (frag & (IPV4_FLAG_MF | IPV4_FRAGMENT_OFFSET_MASK)) !== 0;
    out.dontFragment = (frag & IPV4_FLAG_DF) !== 0;
  } else if (version === IPV6_VERSION) {
    if (end - offset < IPV6_HEADER_LENGTH) throw new CodecError('TRUNCATED', 'IPv6 header', offset);
    const payload = (buf[offset + 4]! << 8) | buf[offset + 5]!;
    if (payload > end - offset - IPV6_HEADER_LENGTH) {
      throw new CodecError('TRUNCATED', `IPv6 payload length ${payload}`, offset + 4);
    }
    out.version = 6;
    out.start = offset;
    out.end = offset + IPV6_HEADER_LENGTH + payload;
    out.headerLength = IPV6_HEADER_LENGTH;
    out.trafficClass = ((buf[offset]! & 0x0f) << 4) | (buf[offset + 1]! >> 4);
    out.ttl = buf[offset + 7]!;
    out.srcOffset = offset + 8;
    out.dstOffset = offset + 24;
    out.addressLength = IPV6_ADDRESS_LENGTH;
    out.dontFragment = false;
    out.fragment = false;
    walkIpv6Extensions(buf, offset + 6, offset + IPV6_HEADER_LENGTH, out.end, out);
  } else {
    throw new CodecError('BAD_VALUE', `IP version ${version}`, offset);
  }
  readPorts(buf, out);
  return out;
}

function isIpv6Extension(nh: number): boolean {
  return (
    nh === IPPROTO_HOPOPTS ||
    nh === IPPROTO_ROUTING ||
    nh === IPPROTO_FRAGMENT ||
    nh === IPPROTO_DSTOPTS ||
    nh === IPPROTO_AH ||
    nh === IPPROTO_MOBILITY ||
    nh === IPPROTO_HIP ||
    nh === IPPROTO_SHIM6 ||
    nh === IPPROTO_EXPERIMENT1 ||
    nh === IPPROTO_EXPERIMENT2
  );
}

/**
 * Skips IPv6 extension headers (RFC 8200 §4; AH per RFC 4302 §2.2). Stops at the first header that
 * is not an extension header (ESP included: what follows it is encrypted). Hop-by-Hop must be
 * first (RFC 8200 §4.3).
 */
function walkIpv6Extensions(buf: Uint8Array, nhField: number, at: number, end: number, out: IpPacketInfo): void {
  let nh = buf[nhField]!;
  let count = 0;
  while (isIpv6Extension(nh)) {
    if (nh === IPPROTO_HOPOPTS && count !== 0) {
      throw new CodecError('BAD_VALUE', 'Hop-by-Hop options not first', nhField);
    }
    if (++count > MAX_IPV6_EXTENSION_HEADERS) {
      throw new CodecError('LIMIT_EXCEEDED', 'too many IPv6 extension headers', at);
    }
    if (end - at < 2) throw new CodecError('TRUNCATED', 'IPv6 extension header', at);
    let len: number;
    if (nh === IPPROTO_FRAGMENT) {
      len = IPV6_FRAGMENT_HEADER_LENGTH;
      if (end - at >= IPV6_FRAGMENT_HEADER_LENGTH) {
        const fo = (buf[at + 2]! << 8) | buf[at + 3]!;
        // An atomic fragment (offset 0, M 0, RFC 6946) is a whole packet.
        if ((fo & 0xfff9) !== 0) out.fragment = true;
      }
    } else if (nh === IPPROTO_AH) {
      len = (buf[at + 1]! + 2) * 4;
    } else {
      len = (buf[at + 1]! + 1) * IPV6_EXT_UNIT;
    }
    if (len > end - at) throw new CodecError('TRUNCATED', `IPv6 extension header of ${len} bytes`, at);
    nhField = at;
    nh = buf[at]!;
    at += len;
  }
  out.protocol = nh;
  out.protocolFieldOffset = nhField;
  out.upperOffset = at;
}

function readPorts(buf: Uint8Array, out: IpPacketInfo): void {
  out.srcPort = -1;
  out.dstPort = -1;
  if (out.fragment) return;
  if (out.protocol !== IPPROTO_UDP && out.protocol !== IPPROTO_TCP) return;
  const o = out.upperOffset;
  if (out.end - o < 4) return;
  out.srcPort = (buf[o]! << 8) | buf[o + 1]!;
  out.dstPort = (buf[o + 2]! << 8) | buf[o + 3]!;
}
