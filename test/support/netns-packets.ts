/**
 * Hand-built IPv4/UDP packets for the namespace tests, independent of @app/codec so that the
 * binds are checked against bytes the tests wrote themselves (RFC 791 header, RFC 768 UDP).
 */
import { addressBytes, addressText } from '../../apps/member-agent/src/net/ip-address.js';

export const PROTO_UDP = 17;
export const PROTO_ESP = 50;

/** RFC 1071 one's-complement sum over 16-bit words. */
export function internetChecksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (b.length % 2) sum += b[b.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export function ipv4Packet(o: { src: string; dst: string; protocol: number; payload: Uint8Array; ttl?: number; id?: number }): Buffer {
  const p = Buffer.alloc(20 + o.payload.length);
  p[0] = 0x45;
  p.writeUInt16BE(p.length, 2);
  p.writeUInt16BE(o.id ?? 0x1234, 4);
  p.writeUInt16BE(0x4000, 6); // DF
  p[8] = o.ttl ?? 8;
  p[9] = o.protocol;
  addressBytes(o.src).copy(p, 12);
  addressBytes(o.dst).copy(p, 16);
  p.writeUInt16BE(internetChecksum(p.subarray(0, 20)), 10);
  Buffer.from(o.payload).copy(p, 20);
  return p;
}

/** An RFC 768 UDP header (checksum field 0) followed by the payload. */
function udpDatagram(o: { srcPort: number; dstPort: number; payload: Uint8Array }): Buffer {
  const u = Buffer.alloc(8 + o.payload.length);
  u.writeUInt16BE(o.srcPort, 0);
  u.writeUInt16BE(o.dstPort, 2);
  u.writeUInt16BE(u.length, 4);
  Buffer.from(o.payload).copy(u, 8);
  return u;
}

/** A UDP datagram inside IPv4 (checksum 0: "none", allowed for IPv4 by RFC 768). */
export function udp4Packet(o: { src: string; dst: string; srcPort: number; dstPort: number; payload: Uint8Array; ttl?: number }): Buffer {
  const u = udpDatagram(o);
  return ipv4Packet({ src: o.src, dst: o.dst, protocol: PROTO_UDP, payload: u, ...(o.ttl !== undefined ? { ttl: o.ttl } : {}) });
}

export interface Ipv4View {
  src: string;
  dst: string;
  protocol: number;
  ttl: number;
  headerLength: number;
  totalLength: number;
  payload: Buffer;
}

export function parseIpv4(p: Buffer): Ipv4View {
  if (p.length < 20 || p[0]! >> 4 !== 4) throw new Error(`not IPv4: ${p.subarray(0, 4).toString('hex')}`);
  const headerLength = (p[0]! & 0x0f) * 4;
  return {
    src: addressText(p.subarray(12, 16)),
    dst: addressText(p.subarray(16, 20)),
    protocol: p[9]!,
    ttl: p[8]!,
    headerLength,
    totalLength: p.readUInt16BE(2),
    payload: p.subarray(headerLength, p.readUInt16BE(2)),
  };
}

/** An IPv6 packet with no extension headers (traffic class and flow label zero). */
export function ipv6Packet(o: { src: string; dst: string; nextHeader: number; payload: Uint8Array; hopLimit?: number }): Buffer {
  const p = Buffer.alloc(40 + o.payload.length);
  p.writeUInt32BE(0x60000000, 0);
  p.writeUInt16BE(o.payload.length, 4);
  p[6] = o.nextHeader;
  p[7] = o.hopLimit ?? 8;
  addressBytes(o.src).copy(p, 8);
  addressBytes(o.dst).copy(p, 24);
  Buffer.from(o.payload).copy(p, 40);
  return p;
}

/** A UDP datagram inside IPv6, with the checksum RFC 8200 §8.1 makes mandatory. */
export function udp6Packet(o: { src: string; dst: string; srcPort: number; dstPort: number; payload: Uint8Array; hopLimit?: number }): Buffer {
  const u = udpDatagram(o);
  const pseudo = Buffer.concat([addressBytes(o.src), addressBytes(o.dst), Buffer.from([0, 0, u.length >> 8, u.length & 0xff, 0, 0, 0, PROTO_UDP]), u]);
  u.writeUInt16BE(internetChecksum(pseudo) || 0xffff, 6);
  return ipv6Packet({ src: o.src, dst: o.dst, nextHeader: PROTO_UDP, payload: u, ...(o.hopLimit !== undefined ? { hopLimit: o.hopLimit } : {}) });
}
