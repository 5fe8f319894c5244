import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CodecError,
  formatIpAddress,
  internetChecksum,
  IpPacketInfo,
  ipPrefixContains,
  ipv4Header,
  ipv6Header,
  parseIpAddress,
  parseIpPacket,
  parseIpPrefix,
  pseudoHeaderSum,
  type Ipv4Header,
  type Ipv6Header,
} from '@app/codec';
import { codeOf, roundTrip } from './testing/round-trip.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

describe('addresses', () => {
  it('parses and formats IPv4 and IPv6 (RFC 5952 canonical form)', () => {
    expect(Array.from(parseIpAddress('239.1.2.3'))).toEqual([239, 1, 2, 3]);
    for (const [text, canonical] of [
      ['ff3e::1234', 'ff3e::1234'],
      ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['::', '::'],
      ['::1', '::1'],
      ['fe80::1%eth0', 'fe80::1'],
      ['::ffff:192.0.2.1', '::ffff:c000:201'],
      ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ]) {
      expect(formatIpAddress(parseIpAddress(text!))).toBe(canonical);
    }
    for (const bad of ['1.2.3', '256.1.1.1', '01.2.3.4', '1::2::3', '1:2:3:4:5:6:7:8:9', 'x', '', '1:2:3:4:5:6:7::8:9']) {
      expect(codeOf(() => parseIpAddress(bad)), bad).toBe('BAD_VALUE');
    }
  });

  it('formats every 16-byte address in a form that parses back to the same bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (a) => {
        expect(Array.from(parseIpAddress(formatIpAddress(a)))).toEqual(Array.from(a));
      }),
      { numRuns: 500 },
    );
  });

  it('matches prefixes bit by bit', () => {
    const p = parseIpPrefix('232.0.0.0/8');
    expect(ipPrefixContains(p, parseIpAddress('232.9.9.9'), 0, 4)).toBe(true);
    expect(ipPrefixContains(p, parseIpAddress('233.0.0.0'), 0, 4)).toBe(false);
    expect(ipPrefixContains(p, parseIpAddress('ff3e::1'), 0, 16)).toBe(false);
    const q = parseIpPrefix('ff30::/12');
    expect(ipPrefixContains(q, parseIpAddress('ff3e::1'), 0, 16)).toBe(true);
    expect(ipPrefixContains(q, parseIpAddress('ff4e::1'), 0, 16)).toBe(false);
    expect(codeOf(() => parseIpPrefix('10.0.0.0/33'))).toBe('BAD_VALUE');
  });
});

describe('checksums (RFC 1071)', () => {
  it('computes the RFC 1071 §3 example and a known IPv4 header', () => {
    // RFC 1071 §3: 0001 f203 f4f5 f6f7 sums to ddf2 (complement 220d).
    expect(internetChecksum(hex('0001f203f4f5f6f7'), 0, 8)).toBe(0x220d);
    // A header from a capture (checksum b861, Wikipedia's IPv4 checksum example).
    const h = hex('450000730000400040110000c0a80001c0a800c7');
    expect(internetChecksum(h, 0, 20)).toBe(0xb861);
  });
});

const v4: Ipv4Header = {
  tos: 0xb8,
  totalLength: 48,
  identification: 0xbeef,
  dontFragment: true,
  moreFragments: false,
  fragmentOffset: 0,
  ttl: 17,
  protocol: 50,
  source: parseIpAddress('10.1.1.1'),
  destination: parseIpAddress('239.1.1.1'),
  options: hex('94040000'), // Router Alert (RFC 2113)
};

describe('IPv4 header', () => {
  it('round-trips and verifies its checksum', () => {
    const back = roundTrip(ipv4Header, v4, { tail: 24 }).decoded;
    expect(back.tos).toBe(0xb8);
    expect(formatIpAddress(back.destination)).toBe('239.1.1.1');
    expect(Array.from(back.options)).toEqual([0x94, 4, 0, 0]);
    const bytes = new Uint8Array(48);
    ipv4Header.encode(v4, bytes, 0);
    expect(internetChecksum(bytes, 0, 24)).toBe(0);
  });

  it('refuses a bad checksum, version, IHL, and lengths', () => {
    const good = new Uint8Array(48);
    ipv4Header.encode(v4, good, 0);
    const mut = (f: (b: Uint8Array) => void) => {
      const b = Uint8Array.from(good);
      f(b);
      return codeOf(() => ipv4Header.decode(b));
    };
    expect(mut((b) => (b[8] = 1))).toBe('BAD_CHECKSUM');
    expect(mut((b) => (b[0] = 0x65))).toBe('BAD_VALUE');
    expect(mut((b) => (b[0] = 0x44))).toBe('BAD_LENGTH');
    expect(mut((b) => (b[3] = 10))).toBe('BAD_LENGTH');
    expect(mut((b) => (b[3] = 200))).toBe('TRUNCATED');
    for (let n = 0; n < 24; n++) expect(codeOf(() => ipv4Header.decode(good.subarray(0, n)))).not.toBe('OK');
  });

  it('accepts only a header or a CodecError for arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (b) => {
        expect(['OK', 'TRUNCATED', 'BAD_LENGTH', 'BAD_VALUE', 'BAD_CHECKSUM']).toContain(codeOf(() => ipv4Header.decode(b)));
      }),
      { numRuns: 2000 },
    );
  });
});

const v6: Ipv6Header = {
  trafficClass: 0xa5,
  flowLabel: 0xabcde,
  payloadLength: 8,
  nextHeader: 17,
  hopLimit: 3,
  source: parseIpAddress('2001:db8::1'),
  destination: parseIpAddress('ff3e::1'),
};

describe('IPv6 header', () => {
  it('round-trips', () => {
    const back = roundTrip(ipv6Header, v6, { tail: 8 }).decoded;
    expect(back.flowLabel).toBe(0xabcde);
    expect(back.trafficClass).toBe(0xa5);
    expect(formatIpAddress(back.destination)).toBe('ff3e::1');
  });

  it('refuses a short payload and a wrong version, and every proper prefix', () => {
    const b = new Uint8Array(48);
    ipv6Header.encode(v6, b, 0);
    expect(codeOf(() => ipv6Header.decode(b.subarray(0, 47)))).toBe('TRUNCATED');
    for (let n = 0; n < 40; n++) expect(codeOf(() => ipv6Header.decode(b.subarray(0, n)))).toBe('TRUNCATED');
    const w = Uint8Array.from(b);
    w[0] = 0x40;
    expect(codeOf(() => ipv6Header.decode(w))).toBe('BAD_VALUE');
  });
});

describe('parseIpPacket', () => {
  it('walks IPv6 extension headers to the upper layer and finds ports', () => {
    // IPv6 | Hop-by-Hop (8) | Destination Options (16) | UDP 1234 -> 5678
    const udp = hex('04d2162e000c0000 61626364');
    const dst = hex('1101 0000000000000000000000000000'.replace(/ /g, '')); // nh UDP, len 1 (16 bytes)
    const hbh = hex('3c00 050200000100'.replace(/ /g, '')); // nh DSTOPTS, len 0, Router Alert + PadN
    const payload = new Uint8Array([...hbh, ...dst, ...udp]);
    const pkt = new Uint8Array(40 + payload.length);
    ipv6Header.encode({ ...v6, nextHeader: 0, payloadLength: payload.length }, pkt, 0);
    pkt.set(payload, 40);
    const info = parseIpPacket(pkt, 0, pkt.length, new IpPacketInfo());
    expect(info.version).toBe(6);
    expect(info.protocol).toBe(17);
    expect(info.upperOffset).toBe(40 + 8 + 16);
    expect(info.protocolFieldOffset).toBe(48); // the Destination Options header's Next Header
    expect([info.srcPort, info.dstPort]).toEqual([1234, 5678]);
    expect(info.fragment).toBe(false);
    // Truncate inside the extension chain.
    expect(codeOf(() => parseIpPacket(pkt, 0, 50, new IpPacketInfo()))).toBe('TRUNCATED');
  });

  it('flags fragments, stops at ESP, and refuses long or misordered chains', () => {
    const frag = hex('1100 0008 00000001'.replace(/ /g, '')); // offset 1 -> a fragment
    const pkt = new Uint8Array(48);
    ipv6Header.encode({ ...v6, nextHeader: 44, payloadLength: 8 }, pkt, 0);
    pkt.set(frag, 40);
    const info = parseIpPacket(pkt, 0, pkt.length, new IpPacketInfo());
    expect(info.fragment).toBe(true);
    expect(info.srcPort).toBe(-1);

    const chain = new Uint8Array(40 + 8 * 10);
    ipv6Header.encode({ ...v6, nextHeader: 60, payloadLength: 80 }, chain, 0);
    for (let i = 0; i < 10; i++) chain[40 + i * 8] = 60;
    expect(codeOf(() => parseIpPacket(chain, 0, chain.length, new IpPacketInfo()))).toBe('LIMIT_EXCEEDED');
    chain[40] = 0;
    ipv6Header.encode({ ...v6, nextHeader: 60, payloadLength: 80 }, chain, 0);
    chain[40] = 0; // DSTOPTS then HOPOPTS: Hop-by-Hop must come first
    expect(codeOf(() => parseIpPacket(chain, 0, chain.length, new IpPacketInfo()))).toBe('BAD_VALUE');
  });

  it('computes UDP checksums that Linux would accept (pseudo-header over IPv6)', () => {
    const pkt = new Uint8Array(48);
    ipv6Header.encode(v6, pkt, 0);
    pkt.set(hex('04d2162e00080000'), 40);
    const sum = internetChecksum(pkt, 40, 48, pseudoHeaderSum(pkt, 8, 24, 16, 8, 17));
    pkt[46] = sum >> 8;
    pkt[47] = sum & 0xff;
    expect(internetChecksum(pkt, 40, 48, pseudoHeaderSum(pkt, 8, 24, 16, 8, 17))).toBe(0);
  });

  it('never throws anything but a CodecError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (b) => {
        const code = codeOf(() => parseIpPacket(b, 0, b.length, new IpPacketInfo()));
        expect(typeof code).toBe('string');
      }),
      { numRuns: 3000 },
    );
  });
});
