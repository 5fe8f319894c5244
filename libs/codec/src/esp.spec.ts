import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  classifyUdpEncap,
  CodecError,
  decodeEspTrailer,
  espHeader,
  espPacketCodec,
  espPadLength,
  udpHeader,
  writeEspTrailer,
} from '@app/codec';
import { codeOf, roundTrip } from './testing/round-trip.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
describe('ESP header and packet (RFC 4303 §2)', () => {
  it('round-trips the header at an offset and refuses reserved SPIs', () => {
    const b = espHeader.encode({ spi: 0xdeadbeef, sequence: 7 }, new Uint8Array(12), 4);
    expect(Buffer.from(b.subarray(4)).toString('hex')).toBe('deadbeef00000007');
    expect(espHeader.decode(b, 4)).toEqual({ spi: 0xdeadbeef, sequence: 7 });
    expect(codeOf(() => espHeader.decode(hex('00000000 00000001')))).toBe('BAD_VALUE');
    expect(codeOf(() => espHeader.decode(hex('000000ff 00000001')))).toBe('BAD_VALUE');
    expect(codeOf(() => espHeader.encode({ spi: 1, sequence: 0 }))).toBe('BAD_VALUE');
    expect(codeOf(() => espHeader.decode(hex('00001000 000000')))).toBe('TRUNCATED');
  });

  it('frames a GCM packet: header, 8-byte IV, aligned ciphertext, 16-byte ICV', () => {
    const codec = espPacketCodec(8, 16);
    const v = { spi: 0x1000, sequence: 1, iv: new Uint8Array(8).fill(1), ciphertext: new Uint8Array(12).fill(2), icv: new Uint8Array(16).fill(3) };
    const { bytes } = roundTrip(codec, v);
    // ESP is not self-delimiting: a prefix either fails with a CodecError or frames a shorter,
    // different packet (whose ICV then fails in the datapath), never more than its frame.
    for (let n = 0; n < bytes.length; n++) {
      const code = codeOf(() => expect(codec.encodingLength(codec.decode(bytes, 0, n))).toBe(n));
      if (n < 36) expect(code, `prefix ${n}`).not.toBe('OK'); // 8 + 8 + 4 (aligned) + 16
      else expect(['OK', 'BAD_LENGTH'], `prefix ${n}`).toContain(code);
    }
    // 13 bytes of ciphertext are not 4-aligned.
    expect(codeOf(() => codec.decode(new Uint8Array([...bytes, 0])))).toBe('BAD_LENGTH');
  });

  it('pads to the block size with 1, 2, 3, ... and reads the trailer back', () => {
    expect(espPadLength(1400, 4)).toBe(2);
    expect(espPadLength(1402, 4)).toBe(0);
    expect(espPadLength(1400, 16)).toBe(6);
    const pt = new Uint8Array(10 + 6 + 2);
    pt.fill(9, 0, 10);
    expect(writeEspTrailer(pt, 10, 6, 4)).toBe(18);
    expect(Array.from(pt.subarray(10))).toEqual([1, 2, 3, 4, 5, 6, 6, 4]);
    expect(decodeEspTrailer(pt, 0, pt.length)).toEqual({ payloadLength: 10, padLength: 6, nextHeader: 4 });
    pt[12] = 0;
    expect(codeOf(() => decodeEspTrailer(pt, 0, pt.length))).toBe('BAD_VALUE');
    expect(codeOf(() => decodeEspTrailer(hex('0504'), 0, 2))).toBe('BAD_LENGTH');
    expect(codeOf(() => decodeEspTrailer(hex('04'), 0, 1))).toBe('TRUNCATED');
  });

  it('trailer decoding accepts or refuses arbitrary plaintext with a CodecError only', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        const code = codeOf(() => {
          const t = decodeEspTrailer(b, 0, b.length);
          expect(t.payloadLength + t.padLength + 2).toBe(b.length);
        });
        expect(['OK', 'TRUNCATED', 'BAD_LENGTH', 'BAD_VALUE']).toContain(code);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('UDP encapsulation (RFC 3948)', () => {
  it('classifies ESP, IKE behind the non-ESP marker, and keepalives', () => {
    expect(classifyUdpEncap(hex('ff'))).toBe('keepalive');
    expect(classifyUdpEncap(hex('00000000 2a'))).toBe('ike');
    expect(classifyUdpEncap(hex('00000000'))).toBe('invalid');
    expect(classifyUdpEncap(hex('00001000 00000001'))).toBe('esp');
    expect(classifyUdpEncap(hex('00001000 000000'))).toBe('invalid');
    expect(classifyUdpEncap(hex('000000ff 00000001'))).toBe('invalid'); // reserved SPI
    expect(classifyUdpEncap(hex('fe'))).toBe('invalid');
    expect(classifyUdpEncap(hex('aa00000000 2a'), 1)).toBe('ike');
  });

  it('round-trips the UDP header and refuses inconsistent lengths', () => {
    const h = { sourcePort: 4500, destinationPort: 4500, length: 20, checksum: 0 };
    roundTrip(udpHeader, h, { tail: 12 });
    const b = new Uint8Array(25);
    udpHeader.encode(h, b, 5);
    expect(codeOf(() => udpHeader.decode(b, 5, 20))).toBe('TRUNCATED');
    const bad = Uint8Array.from(b);
    bad[10] = 0;
    bad[9] = 0;
    expect(codeOf(() => udpHeader.decode(bad, 5))).toBe('BAD_LENGTH');
  });
});
