import {
  internetChecksum,
  IPPROTO_UDP,
  ipv4Header,
  ipv6Header,
  parseIpAddress,
  pseudoHeaderSum,
  UDP_HEADER_LENGTH,
  writeUdpHeader,
} from '@app/codec';
import type { SaConfig } from '../types.js';

/** Test helper: a complete IPv4 or IPv6 UDP packet with correct checksums, built with @app/codec. */
export function udpPacket(opts: {
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
  payload: Uint8Array | string;
  ttl?: number;
  tos?: number;
}): Uint8Array {
  const payload = typeof opts.payload === 'string' ? new TextEncoder().encode(opts.payload) : opts.payload;
  const src = parseIpAddress(opts.src);
  const dst = parseIpAddress(opts.dst);
  const ulen = UDP_HEADER_LENGTH + payload.length;
  const v4 = src.length === 4;
  const hlen = v4 ? 20 : 40;
  const out = new Uint8Array(hlen + ulen);
  if (v4) {
    ipv4Header.encode(
      {
        tos: opts.tos ?? 0,
        totalLength: hlen + ulen,
        identification: 0x1234,
        dontFragment: true,
        moreFragments: false,
        fragmentOffset: 0,
        ttl: opts.ttl ?? 16,
        protocol: IPPROTO_UDP,
        source: src,
        destination: dst,
        options: new Uint8Array(0),
      },
      out,
      0,
    );
  } else {
    ipv6Header.encode(
      {
        trafficClass: opts.tos ?? 0,
        flowLabel: 0,
        payloadLength: ulen,
        nextHeader: IPPROTO_UDP,
        hopLimit: opts.ttl ?? 16,
        source: src,
        destination: dst,
      },
      out,
      0,
    );
  }
  writeUdpHeader(out, hlen, opts.sport ?? 5000, opts.dport ?? 6000, ulen, 0);
  out.set(payload, hlen + UDP_HEADER_LENGTH);
  const pseudo = pseudoHeaderSum(out, v4 ? 12 : 8, v4 ? 16 : 24, src.length, ulen, IPPROTO_UDP);
  const sum = internetChecksum(out, hlen, hlen + ulen, pseudo) || 0xffff;
  out[hlen + 6] = sum >> 8;
  out[hlen + 7] = sum & 0xff;
  return out;
}

export function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
}

/** A GCM SA with deterministic keys, for tests. */
export function gcmSa(overrides: Partial<SaConfig> & Pick<SaConfig, 'spi'>): SaConfig {
  const keyBits = overrides.transform?.keyBits ?? 128;
  return {
    policyId: 'p1',
    destination: '239.1.1.1',
    mode: 'tunnel',
    addressPreservation: 'both',
    transform: { kind: 'aes-gcm-16', keyBits },
    encryptionKey: Uint8Array.from({ length: keyBits / 8 + 4 }, (_, i) => (i * 7 + overrides.spi) & 0xff),
    replayWindow: 64,
    ...overrides,
  };
}
