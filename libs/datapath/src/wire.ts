/**
 * Byte-level helpers the send and receive pipelines (and the ESP ciphers) share, so that each
 * header rewrite is written once.
 */
import { internetChecksum, IPV6_HEADER_LENGTH, type IpPacketInfo } from '@app/codec';

/** Writes `v` as a big-endian 32-bit word at out[o]. */
export function put32(out: Uint8Array, o: number, v: number): void {
  out[o] = (v >>> 24) & 0xff;
  out[o + 1] = (v >>> 16) & 0xff;
  out[o + 2] = (v >>> 8) & 0xff;
  out[o + 3] = v & 0xff;
}

/**
 * Transport mode (RFC 4303 §3.1.1): copies the IP header of the packet `info` describes, IPv4
 * options and IPv6 extension headers included, to out[0..), then makes it describe a packet of
 * `total` bytes whose upper layer is `protocol`: the protocol field (IPv4 Protocol or the last
 * Next Header), the IPv4 Total Length and header checksum (RFC 791, RFC 1071) or the IPv6 Payload
 * Length (RFC 8200 §3). The caller has checked that the lengths fit their fields.
 * Returns the copied header's length.
 */
export function copyIpHeader(out: Uint8Array, packet: Uint8Array, info: IpPacketInfo, protocol: number, total: number): number {
  const hdrLength = info.upperOffset - info.start;
  out.set(packet.subarray(info.start, info.upperOffset), 0);
  out[info.protocolFieldOffset - info.start] = protocol;
  if (info.version === 4) {
    out[2] = total >> 8;
    out[3] = total & 0xff;
    out[10] = 0;
    out[11] = 0;
    const sum = internetChecksum(out, 0, hdrLength);
    out[10] = sum >> 8;
    out[11] = sum & 0xff;
  } else {
    const pl = total - IPV6_HEADER_LENGTH;
    out[4] = pl >> 8;
    out[5] = pl & 0xff;
  }
  return hdrLength;
}
