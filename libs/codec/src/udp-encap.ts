import {
  ESP_SPI_MIN,
  NAT_KEEPALIVE_OCTET,
  NON_ESP_MARKER_LENGTH,
  UDP_ENCAP_MIN_ESP_LENGTH,
  UDP_HEADER_LENGTH,
} from './constants.js';
import { Cursor } from './cursor.js';
import { CodecError } from './errors.js';

/** The UDP header (RFC 768). */
export interface UdpHeader {
  readonly sourcePort: number;
  readonly destinationPort: number;
  /** Header plus payload. */
  readonly length: number;
  /** 0 = not computed (allowed for IPv4 only; RFC 3948 §2.1 says SHOULD be zero there). */
  readonly checksum: number;
}

const port = (v: number, what: string, offset: number) => {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new CodecError('BAD_VALUE', `${what} ${v}`, offset);
};

export const udpHeader = {
  encodingLength(_v: UdpHeader): number {
    return UDP_HEADER_LENGTH;
  },
  encode(v: UdpHeader, buf?: Uint8Array, offset = 0): Uint8Array {
    port(v.sourcePort, 'source port', offset);
    port(v.destinationPort, 'destination port', offset);
    port(v.checksum, 'checksum', offset);
    if (!Number.isInteger(v.length) || v.length < UDP_HEADER_LENGTH || v.length > 0xffff) {
      throw new CodecError('BAD_LENGTH', `UDP length ${v.length}`, offset + 4);
    }
    const out = buf ?? new Uint8Array(offset + UDP_HEADER_LENGTH);
    if (out.length - offset < UDP_HEADER_LENGTH) throw new CodecError('TRUNCATED', 'UDP header output', offset);
    writeUdpHeader(out, offset, v.sourcePort, v.destinationPort, v.length, v.checksum);
    return out;
  },
  /** Decodes a header whose length must fit in buf[offset, end). */
  decode(buf: Uint8Array, offset = 0, end = buf.length): UdpHeader {
    const c = new Cursor(buf, offset, end);
    const sourcePort = c.u16('UDP source port');
    const destinationPort = c.u16('UDP destination port');
    const length = c.u16('UDP length');
    const checksum = c.u16('UDP checksum');
    if (length < UDP_HEADER_LENGTH) throw new CodecError('BAD_LENGTH', `UDP length ${length}`, offset + 4);
    if (length > end - offset) throw new CodecError('TRUNCATED', `UDP length ${length}`, offset + 4);
    return { sourcePort, destinationPort, length, checksum };
  },
};

/** Writes a UDP header without allocating. */
export function writeUdpHeader(
  out: Uint8Array,
  offset: number,
  sourcePort: number,
  destinationPort: number,
  length: number,
  checksum: number,
): void {
  out[offset] = sourcePort >> 8;
  out[offset + 1] = sourcePort & 0xff;
  out[offset + 2] = destinationPort >> 8;
  out[offset + 3] = destinationPort & 0xff;
  out[offset + 4] = length >> 8;
  out[offset + 5] = length & 0xff;
  out[offset + 6] = checksum >> 8;
  out[offset + 7] = checksum & 0xff;
}

/** What a UDP payload on the shared port 4500 is (RFC 3948 §2). */
export type UdpEncapKind =
  /** ESP: a non-zero SPI first (RFC 3948 §2.1). */
  | 'esp'
  /** IKE: four zero octets (the non-ESP marker) then an IKE header (RFC 3948 §2.2). */
  | 'ike'
  /** A NAT keepalive: the single octet 0xFF (RFC 3948 §2.3). */
  | 'keepalive'
  /** None of those (too short, reserved SPI, an empty IKE message). */
  | 'invalid';

/** Classifies the UDP payload payload[offset, end) without reading past it. */
export function classifyUdpEncap(payload: Uint8Array, offset = 0, end = payload.length): UdpEncapKind {
  const n = end - offset;
  if (n === 1 && payload[offset] === NAT_KEEPALIVE_OCTET) return 'keepalive';
  if (n < NON_ESP_MARKER_LENGTH) return 'invalid';
  const first =
    ((payload[offset]! << 24) >>> 0) + ((payload[offset + 1]! << 16) | (payload[offset + 2]! << 8) | payload[offset + 3]!);
  if (first === 0) return n > NON_ESP_MARKER_LENGTH ? 'ike' : 'invalid';
  if (n < UDP_ENCAP_MIN_ESP_LENGTH || first < ESP_SPI_MIN) return 'invalid';
  return 'esp';
}
