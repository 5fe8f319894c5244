import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AddressError,
  addressBytes,
  addressFamily,
  addressText,
  isMulticast,
  sockaddrAddress,
  sockaddrIn,
  sockaddrIn6,
} from './ip-address.js';

/** The uncompressed eight-group form, which every parser accepts. */
const fullForm = (b: Uint8Array) =>
  Array.from({ length: 8 }, (_, i) => ((b[2 * i]! << 8) | b[2 * i + 1]!).toString(16).padStart(4, '0')).join(':');

/** WHATWG URL host serialization: RFC 5952 canonical IPv6 text, an independent implementation. */
const urlCanonical = (text: string) => new URL(`http://[${text}]/`).hostname.slice(1, -1);

// Bias towards zero words so that "::" compression is exercised often.
const words = fc.array(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff })), {
  minLength: 8,
  maxLength: 8,
});
const ipv6Bytes = words.map((ws) => {
  const b = Buffer.alloc(16);
  ws.forEach((w, i) => b.writeUInt16BE(w, i * 2));
  return b;
});

describe('ip-address', () => {
  it('formats IPv6 exactly as the WHATWG URL parser canonicalizes it, and parses it back', () => {
    fc.assert(
      fc.property(ipv6Bytes, (b) => {
        const sut = addressText(b);
        expect(sut).toBe(urlCanonical(fullForm(b)));
        expect(addressBytes(sut)).toEqual(b);
        expect(addressBytes(fullForm(b))).toEqual(b);
      }),
      { numRuns: 2000 },
    );
  });

  it('round-trips IPv4 and reads embedded IPv4 and zones in IPv6 text', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), (b) => {
        expect(addressBytes(addressText(b))).toEqual(Buffer.from(b));
      }),
    );
    expect(addressBytes('::ffff:192.0.2.1').toString('hex')).toBe('00000000000000000000ffffc0000201');
    expect(addressText(addressBytes('fe80::1%eth0'))).toBe('fe80::1');
    expect(addressFamily('fe80::1%eth0')).toBe(6);
    expect(addressFamily('198.51.100.7')).toBe(4);
  });

  it('rejects what is not an address with AddressError', () => {
    for (const bad of ['', '1.2.3', '256.1.1.1', '::1::2', 'example.org', '1.2.3.4/32', 'g::1']) {
      expect(() => addressBytes(bad), bad).toThrow(AddressError);
      expect(() => addressFamily(bad), bad).toThrow(AddressError);
    }
    expect(() => addressText(new Uint8Array(5))).toThrow(AddressError);
  });

  it('tells multicast from unicast at the prefix edges', () => {
    expect(isMulticast('224.0.0.0')).toBe(true);
    expect(isMulticast('239.255.255.255')).toBe(true);
    expect(isMulticast('223.255.255.255')).toBe(false);
    expect(isMulticast('240.0.0.0')).toBe(false);
    expect(isMulticast('ff02::1')).toBe(true);
    expect(isMulticast('fe80::1')).toBe(false);
  });

  it('builds Linux sockaddr_in / sockaddr_in6 and reads the address back', () => {
    const v4 = sockaddrIn('192.0.2.9', 4500);
    expect(v4.toString('hex')).toBe('0200' + '1194' + 'c0000209' + '0000000000000000');
    expect(sockaddrAddress(v4, v4.length)).toBe('192.0.2.9');
    const v6 = sockaddrIn6('ff3e::1', 4500, 3);
    expect(v6.length).toBe(28);
    expect(v6.readUInt16LE(0)).toBe(10);
    expect(v6.readUInt16BE(2)).toBe(4500);
    expect(v6.readUInt32LE(24)).toBe(3);
    expect(sockaddrAddress(v6, v6.length)).toBe('ff3e::1');
    expect(sockaddrAddress(v6, 10)).toBe('');
  });
});
