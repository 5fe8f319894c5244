import {
  IPV4_ADDRESS_LENGTH,
  IPV4_FLAG_DF,
  IPV4_FLAG_MF,
  IPV4_FRAGMENT_OFFSET_MASK,
  IPV4_MAX_HEADER_LENGTH,
  IPV4_MIN_HEADER_LENGTH,
  IPV4_VERSION,
  IP_MAX_LENGTH_FIELD,
} from './constants.js';
import { Cursor } from './cursor.js';
import { CodecError } from './errors.js';
import { internetChecksum } from './ip.js';

/** An IPv4 header (RFC 791 §3.1). Addresses are 4-byte views. */
export interface Ipv4Header {
  /** TOS octet: DSCP and ECN (RFC 2474, RFC 3168). */
  readonly tos: number;
  /** Header plus payload length. */
  readonly totalLength: number;
  readonly identification: number;
  readonly dontFragment: boolean;
  readonly moreFragments: boolean;
  /** In 8-octet units. */
  readonly fragmentOffset: number;
  readonly ttl: number;
  readonly protocol: number;
  readonly source: Uint8Array;
  readonly destination: Uint8Array;
  /** Raw options, a multiple of 4 bytes long (at most 40). */
  readonly options: Uint8Array;
}

const u8 = (v: number, what: string, offset: number) => {
  if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new CodecError('BAD_VALUE', `${what} ${v}`, offset);
};
const u16 = (v: number, what: string, offset: number) => {
  if (!Number.isInteger(v) || v < 0 || v > IP_MAX_LENGTH_FIELD) {
    throw new CodecError('BAD_VALUE', `${what} ${v}`, offset);
  }
};

/** The IPv4 header codec; `encode` computes the header checksum, `decode` verifies it. */
export const ipv4Header = {
  encodingLength(v: Ipv4Header): number {
    return IPV4_MIN_HEADER_LENGTH + v.options.length;
  },

  encode(v: Ipv4Header, buf?: Uint8Array, offset = 0): Uint8Array {
    const len = ipv4Header.encodingLength(v);
    if (v.options.length % 4 !== 0 || len > IPV4_MAX_HEADER_LENGTH) {
      throw new CodecError('BAD_LENGTH', `IPv4 options of ${v.options.length} bytes`, offset);
    }
    if (v.source.length !== IPV4_ADDRESS_LENGTH || v.destination.length !== IPV4_ADDRESS_LENGTH) {
      throw new CodecError('BAD_LENGTH', 'IPv4 addresses are 4 bytes', offset);
    }
    u8(v.tos, 'TOS', offset);
    u8(v.ttl, 'TTL', offset);
    u8(v.protocol, 'protocol', offset);
    u16(v.totalLength, 'total length', offset);
    u16(v.identification, 'identification', offset);
    if (v.totalLength < len) throw new CodecError('BAD_LENGTH', `total length ${v.totalLength}`, offset);
    if (!Number.isInteger(v.fragmentOffset) || v.fragmentOffset < 0 || v.fragmentOffset > IPV4_FRAGMENT_OFFSET_MASK) {
      throw new CodecError('BAD_VALUE', `fragment offset ${v.fragmentOffset}`, offset);
    }
    const out = buf ?? new Uint8Array(offset + len);
    if (out.length - offset < len) throw new CodecError('TRUNCATED', 'IPv4 header output', offset);
    out[offset] = (IPV4_VERSION << 4) | (len >> 2);
    out[offset + 1] = v.tos;
    out[offset + 2] = v.totalLength >> 8;
    out[offset + 3] = v.totalLength & 0xff;
    out[offset + 4] = v.identification >> 8;
    out[offset + 5] = v.identification & 0xff;
    const frag =
      (v.dontFragment ? IPV4_FLAG_DF : 0) | (v.moreFragments ? IPV4_FLAG_MF : 0) | v.fragmentOffset;
    out[offset + 6] = frag >> 8;
    out[offset + 7] = frag & 0xff;
    out[offset + 8] = v.ttl;
    out[offset + 9] = v.protocol;
    out[offset + 10] = 0;
    out[offset + 11] = 0;
    out.set(v.source, offset + 12);
    out.set(v.destination, offset + 16);
    out.set(v.options, offset + IPV4_MIN_HEADER_LENGTH);
    const sum = internetChecksum(out, offset, offset + len);
    out[offset + 10] = sum >> 8;
    out[offset + 11] = sum & 0xff;
    return out;
  },

  /** Decodes and verifies one header; `totalLength` must fit in the buffer from `offset`. */
  decode(buf: Uint8Array, offset = 0): Ipv4Header {
    const c = new Cursor(buf, offset);
    const vihl = c.u8('IPv4 version/IHL');
    if (vihl >> 4 !== IPV4_VERSION) throw new CodecError('BAD_VALUE', `IP version ${vihl >> 4}`, offset);
    const ihl = (vihl & 0x0f) * 4;
    if (ihl < IPV4_MIN_HEADER_LENGTH) throw new CodecError('BAD_LENGTH', `IHL ${ihl / 4}`, offset);
    c.need(ihl - 1, 'IPv4 header');
    const tos = c.u8();
    const totalLength = c.u16();
    if (totalLength < ihl) throw new CodecError('BAD_LENGTH', `total length ${totalLength}`, offset + 2);
    if (totalLength > buf.length - offset) throw new CodecError('TRUNCATED', `total length ${totalLength}`, offset + 2);
    const identification = c.u16();
    const frag = c.u16();
    if (frag & 0x8000) throw new CodecError('BAD_VALUE', 'reserved flag set', offset + 6);
    const ttl = c.u8();
    const protocol = c.u8();
    c.u16('checksum');
    if (internetChecksum(buf, offset, offset + ihl) !== 0) {
      throw new CodecError('BAD_CHECKSUM', 'IPv4 header checksum', offset + 10);
    }
    const source = c.bytes(IPV4_ADDRESS_LENGTH);
    const destination = c.bytes(IPV4_ADDRESS_LENGTH);
    const options = c.bytes(ihl - IPV4_MIN_HEADER_LENGTH);
    return {
      tos,
      totalLength,
      identification,
      dontFragment: (frag & IPV4_FLAG_DF) !== 0,
      moreFragments: (frag & IPV4_FLAG_MF) !== 0,
      fragmentOffset: frag & IPV4_FRAGMENT_OFFSET_MASK,
      ttl,
      protocol,
      source,
      destination,
      options,
    };
  },
};

/**
 * Writes an option-less IPv4 header at `offset` without allocating (the datapath's hot path).
 * Addresses are copied from src/dst byte ranges. Computes the checksum.
 */
export function writeIpv4Header(
  out: Uint8Array,
  offset: number,
  tos: number,
  totalLength: number,
  identification: number,
  dontFragment: boolean,
  ttl: number,
  protocol: number,
  src: Uint8Array,
  srcOffset: number,
  dst: Uint8Array,
  dstOffset: number,
): void {
  out[offset] = (IPV4_VERSION << 4) | (IPV4_MIN_HEADER_LENGTH >> 2);
  out[offset + 1] = tos;
  out[offset + 2] = totalLength >> 8;
  out[offset + 3] = totalLength & 0xff;
  out[offset + 4] = (identification >> 8) & 0xff;
  out[offset + 5] = identification & 0xff;
  out[offset + 6] = dontFragment ? IPV4_FLAG_DF >> 8 : 0;
  out[offset + 7] = 0;
  out[offset + 8] = ttl;
  out[offset + 9] = protocol;
  out[offset + 10] = 0;
  out[offset + 11] = 0;
  for (let i = 0; i < IPV4_ADDRESS_LENGTH; i++) {
    out[offset + 12 + i] = src[srcOffset + i]!;
    out[offset + 16 + i] = dst[dstOffset + i]!;
  }
  const sum = internetChecksum(out, offset, offset + IPV4_MIN_HEADER_LENGTH);
  out[offset + 10] = sum >> 8;
  out[offset + 11] = sum & 0xff;
}
