/**
 * Socket mode's inner packets, used by its application port (UdpAppPort):
 * the IP/UDP packet an application's datagram to a group would have been on the wire (RFC 791 /
 * RFC 8200 header, RFC 768 UDP with its checksum), and the UDP payload of a verified inner packet
 * the datapath delivers.
 */
import {
  CodecError,
  IPPROTO_UDP,
  IPV4_MIN_HEADER_LENGTH,
  IPV6_HEADER_LENGTH,
  IpPacketInfo,
  UDP_HEADER_LENGTH,
  internetChecksum,
  parseIpPacket,
  pseudoHeaderSum,
  writeIpv4Header,
  writeIpv6Header,
  writeUdpHeader,
} from '@app/codec';

/** The largest value of the IPv4 Total Length / IPv6 Payload Length / UDP Length fields. */
const MAX_LENGTH_FIELD = 0xffff;

export interface InnerUdpHeader {
  /** Source and destination addresses: both 4 octets (IPv4) or both 16 (IPv6). */
  readonly source: Uint8Array;
  readonly destination: Uint8Array;
  readonly sourcePort: number;
  readonly destinationPort: number;
  /** IPv4 TTL / IPv6 Hop Limit. */
  readonly ttl: number;
  /** IPv4 Identification (not used for IPv6). */
  readonly identification: number;
}

/** The largest UDP payload one inner packet of this address length can carry. */
export function maxInnerUdpPayload(addressLength: number): number {
  return addressLength === 16 ? MAX_LENGTH_FIELD - UDP_HEADER_LENGTH : MAX_LENGTH_FIELD - IPV4_MIN_HEADER_LENGTH - UDP_HEADER_LENGTH;
}

/**
 * Builds the inner packet: an option-less IPv4 header (DF clear) or a fixed IPv6 header, then UDP
 * with its checksum over the pseudo-header (0 sent as all ones, RFC 768). The caller keeps the
 * payload within `maxInnerUdpPayload`; beyond it this throws RangeError.
 */
export function buildInnerUdpPacket(h: InnerUdpHeader, payload: Uint8Array): Buffer {
  const alen = h.source.length;
  if (payload.length > maxInnerUdpPayload(alen)) throw new RangeError(`UDP payload of ${payload.length} octets does not fit one packet`);
  const v6 = alen === 16;
  const ipLen = v6 ? IPV6_HEADER_LENGTH : IPV4_MIN_HEADER_LENGTH;
  const udpLen = UDP_HEADER_LENGTH + payload.length;
  const out = Buffer.allocUnsafe(ipLen + udpLen); // every octet is written below
  if (v6) writeIpv6Header(out, 0, 0, udpLen, IPPROTO_UDP, h.ttl, h.source, 0, h.destination, 0);
  else writeIpv4Header(out, 0, 0, out.length, h.identification, false, h.ttl, IPPROTO_UDP, h.source, 0, h.destination, 0);
  writeUdpHeader(out, ipLen, h.sourcePort, h.destinationPort, udpLen, 0);
  out.set(payload, ipLen + UDP_HEADER_LENGTH);
  const srcOffset = v6 ? 8 : 12;
  const sum = pseudoHeaderSum(out, srcOffset, srcOffset + alen, alen, udpLen, IPPROTO_UDP);
  const checksum = internetChecksum(out, ipLen, out.length, sum) || 0xffff;
  out[ipLen + 6] = checksum >> 8;
  out[ipLen + 7] = checksum & 0xff;
  return out;
}

/**
 * Parses a delivered inner packet into `info` and returns its UDP payload (as far as the UDP
 * Length says), or undefined when it is not a well-formed unfragmented UDP packet. On success
 * `info` holds its destination (`dstOffset`, `addressLength`) and ports.
 */
export function innerUdpPayload(packet: Uint8Array, info: IpPacketInfo): Uint8Array | undefined {
  try {
    parseIpPacket(packet, 0, packet.length, info);
  } catch (err) {
    if (err instanceof CodecError) return undefined;
    throw err;
  }
  if (info.protocol !== IPPROTO_UDP || info.fragment || info.dstPort < 0) return undefined;
  const udpLength = (packet[info.upperOffset + 4]! << 8) | packet[info.upperOffset + 5]!;
  if (udpLength < UDP_HEADER_LENGTH || info.upperOffset + udpLength > info.end) return undefined;
  return packet.subarray(info.upperOffset + UDP_HEADER_LENGTH, info.upperOffset + udpLength);
}
