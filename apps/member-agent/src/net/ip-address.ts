/**
 * Textual IP addresses <-> bytes and Linux socket addresses, for the FFI binds (node:dgram takes
 * text, libc takes `struct sockaddr_in` / `sockaddr_in6`). Bad text gets a typed error.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { formatIpAddress, parseIpAddress } from '@app/codec';
import { LINUX } from './libc.js';

export class AddressError extends Error {
  constructor(readonly address: string) {
    super(`not an IP address: ${JSON.stringify(address).slice(0, 80)}`);
    this.name = 'AddressError';
  }
}

/** 4 or 6 for a literal address (an IPv6 zone `%name` is allowed), or throws AddressError. */
export function addressFamily(address: string): 4 | 6 {
  if (isIPv4(address)) return 4;
  if (isIPv6(stripZone(address))) return 6;
  throw new AddressError(address);
}

function stripZone(address: string): string {
  const i = address.indexOf('%');
  return i < 0 ? address : address.slice(0, i);
}

/** The 4 or 16 bytes of a literal address (zone ignored); the codec's parser does the work. */
export function addressBytes(address: string): Buffer {
  addressFamily(address);
  return Buffer.from(parseIpAddress(address));
}

/** Canonical text for 4 or 16 address bytes (RFC 5952 for IPv6), as the codec formats it. */
export function addressText(bytes: Uint8Array): string {
  if (bytes.length !== 4 && bytes.length !== 16) throw new AddressError(`<${bytes.length} bytes>`);
  return formatIpAddress(bytes);
}

/** Whether a literal address is multicast (224.0.0.0/4 or ff00::/8). */
export function isMulticast(address: string): boolean {
  const b = addressBytes(address);
  return b.length === 4 ? (b[0]! & 0xf0) === 0xe0 : b[0] === 0xff;
}

/** `struct sockaddr_in` (port 0 for raw sockets). */
export function sockaddrIn(address: string, port = 0): Buffer {
  const sa = Buffer.alloc(LINUX.SOCKADDR_IN_SIZE);
  sa.writeUInt16LE(LINUX.AF_INET, 0);
  sa.writeUInt16BE(port, 2);
  addressBytes(address).copy(sa, 4);
  return sa;
}

/** `struct sockaddr_in6`, with the scope id for link-local or interface-scoped addresses. */
export function sockaddrIn6(address: string, port = 0, scopeId = 0): Buffer {
  const sa = Buffer.alloc(LINUX.SOCKADDR_IN6_SIZE);
  sa.writeUInt16LE(LINUX.AF_INET6, 0);
  sa.writeUInt16BE(port, 2);
  addressBytes(address).copy(sa, 8);
  sa.writeUInt32LE(scopeId, 24);
  return sa;
}

/** The address inside a `struct sockaddr_in` / `sockaddr_in6` filled in by the kernel. */
export function sockaddrAddress(sa: Uint8Array, len: number): string {
  const family = sa[0]! | (sa[1]! << 8);
  if (family === LINUX.AF_INET && len >= 8) return addressText(sa.subarray(4, 8));
  if (family === LINUX.AF_INET6 && len >= 24) return addressText(sa.subarray(8, 24));
  return '';
}
