import { describe, expect, it } from 'vitest';
import { IpPacketInfo } from '@app/codec';
import { internetChecksum, ipv4Packet, udp4Packet, udp6Packet } from '../../../../test/support/netns-packets.js';
import { addressBytes } from '../net/ip-address.js';
import { buildInnerUdpPacket, innerUdpPayload, maxInnerUdpPayload } from './inner-udp.js';

const v4 = { source: addressBytes('192.0.2.7'), destination: addressBytes('239.1.2.3'), sourcePort: 40000, destinationPort: 5000, ttl: 3, identification: 0x0102 };
const v6 = { source: addressBytes('2001:db8::7'), destination: addressBytes('ff3e::7'), sourcePort: 40000, destinationPort: 5000, ttl: 1, identification: 0 };

/** The one's-complement sum over the IPv4 pseudo-header and the UDP datagram: 0 when the checksum verifies. */
const udp4ChecksumResidue = (p: Uint8Array) => {
  const b = Buffer.from(p);
  return internetChecksum(Buffer.concat([b.subarray(12, 20), Buffer.from([0, 17, (b.length - 20) >> 8, (b.length - 20) & 0xff]), b.subarray(20)]));
};

describe('buildInnerUdpPacket', () => {
  it('builds IPv4/UDP as an independent builder does, with a UDP checksum that verifies', () => {
    const sut = buildInnerUdpPacket(v4, Buffer.from('payload'));
    const expected = udp4Packet({ src: '192.0.2.7', dst: '239.1.2.3', srcPort: 40000, dstPort: 5000, payload: Buffer.from('payload'), ttl: 3 });
    expected.writeUInt16BE(0x0102, 4); // identification
    expected.writeUInt16BE(0, 6); // no DF
    expected.writeUInt16BE(0, 10);
    expected.writeUInt16BE(internetChecksum(expected.subarray(0, 20)), 10);
    expect(sut.subarray(0, 26).toString('hex')).toBe(expected.subarray(0, 26).toString('hex'));
    expect(sut.subarray(28).toString()).toBe('payload');
    expect(sut.readUInt16BE(26)).not.toBe(0);
    expect(udp4ChecksumResidue(sut)).toBe(0);
  });

  it('builds IPv6/UDP byte for byte as an independent builder does (checksum included)', () => {
    const sut = buildInnerUdpPacket(v6, Buffer.from('six'));
    const expected = udp6Packet({ src: '2001:db8::7', dst: 'ff3e::7', srcPort: 40000, dstPort: 5000, payload: Buffer.from('six'), hopLimit: 1 });
    expect(sut.toString('hex')).toBe(expected.toString('hex'));
  });

  it('sends a computed checksum of 0 as all ones (RFC 768)', () => {
    // With payload 00 00 the checksum is c; a payload word equal to c brings the sum to 0xffff,
    // whose complement 0 must go out as 0xffff.
    const c = buildInnerUdpPacket(v4, new Uint8Array(2)).readUInt16BE(26);
    const sut = buildInnerUdpPacket(v4, Uint8Array.of(c >> 8, c & 0xff));
    expect(sut.readUInt16BE(26)).toBe(0xffff);
    expect(udp4ChecksumResidue(sut)).toBe(0);
  });

  it('carries up to the largest payload of one packet and refuses one octet more', () => {
    expect(maxInnerUdpPayload(4)).toBe(65_507);
    expect(maxInnerUdpPayload(16)).toBe(65_527);
    expect(buildInnerUdpPacket(v4, new Uint8Array(65_507)).length).toBe(0xffff);
    expect(buildInnerUdpPacket(v6, new Uint8Array(65_527)).length).toBe(40 + 0xffff);
    expect(() => buildInnerUdpPacket(v4, new Uint8Array(65_508))).toThrow(RangeError);
    expect(() => buildInnerUdpPacket(v6, new Uint8Array(65_528))).toThrow(RangeError);
  });
});

describe('innerUdpPayload', () => {
  const info = new IpPacketInfo();
  const udp = (payload: string) => udp4Packet({ src: '192.0.2.9', dst: '239.1.2.3', srcPort: 1, dstPort: 5000, payload: Buffer.from(payload) });

  it('returns the UDP payload of IPv4 and IPv6 packets and leaves their destination in info', () => {
    expect(Buffer.from(innerUdpPayload(udp('hello'), info)!).toString()).toBe('hello');
    expect(info.dstPort).toBe(5000);
    expect(Buffer.from(udp('x').subarray(info.dstOffset, info.dstOffset + info.addressLength))).toEqual(addressBytes('239.1.2.3'));
    const six = udp6Packet({ src: '2001:db8::9', dst: 'ff3e::7', srcPort: 1, dstPort: 6000, payload: Buffer.from('back') });
    expect(Buffer.from(innerUdpPayload(six, info)!).toString()).toBe('back');
    expect(info.dstPort).toBe(6000);
  });

  it('stops at the UDP Length: octets after the datagram are not payload', () => {
    const inner = Buffer.concat([udp('hello').subarray(20), Buffer.from('trailer')]);
    const p = ipv4Packet({ src: '192.0.2.9', dst: '239.1.2.3', protocol: 17, payload: inner });
    expect(Buffer.from(innerUdpPayload(p, info)!).toString()).toBe('hello');
  });

  it('refuses what is not a well-formed unfragmented UDP packet', () => {
    expect(innerUdpPayload(Buffer.from('not an ip packet'), info)).toBeUndefined();
    expect(innerUdpPayload(new Uint8Array(0), info)).toBeUndefined();
    expect(innerUdpPayload(ipv4Packet({ src: '192.0.2.9', dst: '239.1.2.3', protocol: 50, payload: new Uint8Array(16) }), info)).toBeUndefined();
    const fragment = udp('frag');
    fragment.writeUInt16BE(0x2000, 6); // MF
    fragment.writeUInt16BE(0, 10);
    fragment.writeUInt16BE(internetChecksum(fragment.subarray(0, 20)), 10);
    expect(innerUdpPayload(fragment, info)).toBeUndefined();
    const long = udp('len');
    long.writeUInt16BE(long.length - 20 + 1, 24); // UDP Length beyond the packet
    expect(innerUdpPayload(long, info)).toBeUndefined();
    const short = udp('len');
    short.writeUInt16BE(7, 24); // shorter than the UDP header
    expect(innerUdpPayload(short, info)).toBeUndefined();
  });
});
