import { IPV6_ADDRESS_LENGTH, IPV6_HEADER_LENGTH, IPV6_VERSION, IP_MAX_LENGTH_FIELD } from './constants.js';
import { Cursor } from './cursor.js';
import { CodecError } from './errors.js';
import { onesComplementSum } from './ip.js';

/** The fixed IPv6 header (RFC 8200 §3). Extension headers are walked by `parseIpPacket`. */
export interface Ipv6Header {
  readonly trafficClass: number;
  /** 20 bits. */
  readonly flowLabel: number;
  /** Bytes after this fixed header (extension headers included). */
  readonly payloadLength: number;
  readonly nextHeader: number;
  readonly hopLimit: number;
  readonly source: Uint8Array;
  readonly destination: Uint8Array;
}

const FLOW_LABEL_MAX = 0xfffff;

export const ipv6Header = {
  encodingLength(_v: Ipv6Header): number {
    return IPV6_HEADER_LENGTH;
  },

  encode(v: Ipv6Header, buf?: Uint8Array, offset = 0): Uint8Array {
    if (v.source.length !== IPV6_ADDRESS_LENGTH || v.destination.length !== IPV6_ADDRESS_LENGTH) {
      throw new CodecError('BAD_LENGTH', 'IPv6 addresses are 16 bytes', offset);
    }
    for (const [n, max, what] of [
      [v.trafficClass, 0xff, 'traffic class'],
      [v.flowLabel, FLOW_LABEL_MAX, 'flow label'],
      [v.payloadLength, IP_MAX_LENGTH_FIELD, 'payload length'],
      [v.nextHeader, 0xff, 'next header'],
      [v.hopLimit, 0xff, 'hop limit'],
    ] as const) {
      if (!Number.isInteger(n) || n < 0 || n > max) throw new CodecError('BAD_VALUE', `${what} ${n}`, offset);
    }
    const out = buf ?? new Uint8Array(offset + IPV6_HEADER_LENGTH);
    if (out.length - offset < IPV6_HEADER_LENGTH) throw new CodecError('TRUNCATED', 'IPv6 header output', offset);
    out[offset] = (IPV6_VERSION << 4) | (v.trafficClass >> 4);
    out[offset + 1] = ((v.trafficClass & 0x0f) << 4) | (v.flowLabel >> 16);
    out[offset + 2] = (v.flowLabel >> 8) & 0xff;
    out[offset + 3] = v.flowLabel & 0xff;
    out[offset + 4] = v.payloadLength >> 8;
    out[offset + 5] = v.payloadLength & 0xff;
    out[offset + 6] = v.nextHeader;
    out[offset + 7] = v.hopLimit;
    out.set(v.source, offset + 8);
    out.set(v.destination, offset + 24);
    return out;
  },

  /** Decodes the fixed header; the payload length must fit in the buffer. */
  decode(buf: Uint8Array, offset = 0): Ipv6Header {
    const c = new Cursor(buf, offset);
    c.need(IPV6_HEADER_LENGTH, 'IPv6 header');
    const w0 = c.u32();
    if (w0 >>> 28 !== IPV6_VERSION) throw new CodecError('BAD_VALUE', `IP version ${w0 >>> 28}`, offset);
    const payloadLength = c.u16();
    const nextHeader = c.u8();
    const hopLimit = c.u8();
    const source = c.bytes(IPV6_ADDRESS_LENGTH);
    const destination = c.bytes(IPV6_ADDRESS_LENGTH);
    if (payloadLength > c.remaining) {
      throw new CodecError('TRUNCATED', `payload length ${payloadLength}`, offset + 4);
    }
    return {
      trafficClass: (w0 >>> 20) & 0xff,
      flowLabel: w0 & FLOW_LABEL_MAX,
      payloadLength,
      nextHeader,
      hopLimit,
      source,
      destination,
    };
  },
};

/** Writes a fixed IPv6 header at `offset` without allocating (flow label 0). */
export function writeIpv6Header(
  out: Uint8Array,
  offset: number,
  trafficClass: number,
  payloadLength: number,
  nextHeader: number,
  hopLimit: number,
  src: Uint8Array,
  srcOffset: number,
  dst: Uint8Array,
  dstOffset: number,
): void {
  out[offset] = (IPV6_VERSION << 4) | (trafficClass >> 4);
  out[offset + 1] = (trafficClass & 0x0f) << 4;
  out[offset + 2] = 0;
  out[offset + 3] = 0;
  out[offset + 4] = payloadLength >> 8;
  out[offset + 5] = payloadLength & 0xff;
  out[offset + 6] = nextHeader;
  out[offset + 7] = hopLimit;
  for (let i = 0; i < IPV6_ADDRESS_LENGTH; i++) {
    out[offset + 8 + i] = src[srcOffset + i]!;
    out[offset + 24 + i] = dst[dstOffset + i]!;
  }
}

/**
 * The pseudo-header sum for an upper-layer checksum (RFC 8200 §8.1, RFC 768): source and
 * destination addresses, upper-layer length and protocol. Works for IPv4 (4-byte addresses) too.
 */
export function pseudoHeaderSum(
  buf: Uint8Array,
  srcOffset: number,
  dstOffset: number,
  addressLength: number,
  upperLength: number,
  protocol: number,
): number {
  let sum = onesComplementSum(buf, srcOffset, srcOffset + addressLength);
  sum = onesComplementSum(buf, dstOffset, dstOffset + addressLength, sum);
  sum += (upperLength >>> 16) + (upperLength & 0xffff) + protocol;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}
