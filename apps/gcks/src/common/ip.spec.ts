import { describe, expect, it } from 'vitest';
import {
  isMulticast,
  isRecognisedIpv6Anycast,
  isSsmRange,
  isUnicastSource,
  parseAddress,
  parseBroadcast,
  parsePrefix,
  prefixWithin,
  type IpPrefix,
} from './ip.js';

const addr = (s: string) => {
  const a = parseAddress(s);
  if (!a) throw new Error(`bad test address ${s}`);
  return a;
};
const prefix = (s: string): IpPrefix => {
  const p = parsePrefix(s);
  if (!p.ok) throw new Error(`bad test prefix ${s}: ${p.reason}`);
  return p.prefix;
};

describe('ip', () => {
  it('parses IPv4 and IPv6 literals, including :: and embedded IPv4', () => {
    expect(addr('239.1.2.3')).toEqual({ version: 4, value: 0xef010203n });
    expect(addr('ff0e::1')).toEqual({ version: 6, value: (0xff0en << 112n) | 1n });
    expect(addr('::ffff:192.0.2.1').value).toBe((0xffffn << 32n) | 0xc0000201n);
    expect(addr('1:2:3:4:5:6:7:8').value).toBe(0x00010002000300040005000600070008n);
    expect(parseAddress('239.1.2')).toBeNull();
    expect(parseAddress('fe80::1%eth0')).toBeNull();
    expect(parseAddress('not an address')).toBeNull();
  });

  it('parses prefixes and refuses host bits or bad lengths', () => {
    expect(prefix('10.0.0.0/8')).toEqual({ version: 4, value: 0x0a000000n, length: 8 });
    expect(prefix('10.1.2.3').length).toBe(32);
    expect(prefix('2001:db8::/32').length).toBe(32);
    expect(parsePrefix('10.0.0.1/8')).toMatchObject({ ok: false, reason: expect.stringMatching(/host bits/) });
    expect(parsePrefix('10.0.0.0/33')).toMatchObject({ ok: false });
    expect(parsePrefix('10.0.0.0/')).toMatchObject({ ok: false });
    expect(parsePrefix('::/129')).toMatchObject({ ok: false });
  });

  it('decides prefix containment', () => {
    expect(prefixWithin(prefix('239.1.1.1'), prefix('239.1.1.1'))).toBe(true);
    expect(prefixWithin(prefix('239.1.1.0/24'), prefix('239.1.1.1'))).toBe(false);
    expect(prefixWithin(prefix('10.1.0.0/16'), prefix('10.0.0.0/8'))).toBe(true);
    expect(prefixWithin(prefix('11.0.0.0/16'), prefix('10.0.0.0/8'))).toBe(false);
    expect(prefixWithin(prefix('0.0.0.0/0'), prefix('10.0.0.0/8'))).toBe(false);
    expect(prefixWithin(prefix('::/0'), prefix('0.0.0.0/0'))).toBe(false);
  });

  it('classifies multicast, SSM, anycast, broadcast and unicast sources', () => {
    expect(isMulticast(addr('224.0.0.1'))).toBe(true);
    expect(isMulticast(addr('239.255.255.255'))).toBe(true);
    expect(isMulticast(addr('240.0.0.1'))).toBe(false);
    expect(isMulticast(addr('ff02::1'))).toBe(true);
    expect(isMulticast(addr('fe80::1'))).toBe(false);
    expect(isSsmRange(addr('232.1.1.1'))).toBe(true);
    expect(isSsmRange(addr('239.1.1.1'))).toBe(false);
    expect(isSsmRange(addr('ff3e::8000:1'))).toBe(true);
    expect(isSsmRange(addr('ff3e:30:2001:db8::1'))).toBe(false);
    expect(isRecognisedIpv6Anycast(addr('2001:db8:1:2::'))).toBe(true);
    expect(isRecognisedIpv6Anycast(addr('2001:db8:1:2:fdff:ffff:ffff:fffe'))).toBe(true);
    expect(isRecognisedIpv6Anycast(addr('2001:db8:1:2::1'))).toBe(false);
    expect(isRecognisedIpv6Anycast(addr('::'))).toBe(false);
    expect(parseBroadcast('255.255.255.255')).toMatchObject({ ok: true });
    expect(parseBroadcast('192.0.2.255/24')).toMatchObject({ ok: true });
    expect(parseBroadcast('192.0.2.254/24')).toMatchObject({ ok: false });
    expect(parseBroadcast('192.0.2.255')).toMatchObject({ ok: false });
    expect(parseBroadcast('ff02::1')).toMatchObject({ ok: false });
    expect(isUnicastSource(addr('192.0.2.7'))).toBe(true);
    expect(isUnicastSource(addr('239.1.1.1'))).toBe(false);
    expect(isUnicastSource(addr('0.0.0.0'))).toBe(false);
    expect(isUnicastSource(addr('2001:db8::7'))).toBe(true);
  });
});
