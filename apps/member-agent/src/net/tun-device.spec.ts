import { describe, expect, it } from 'vitest';
import type { Libc } from './libc.js';
import { routeCommand, TunDevice } from './tun-device.js';

/** A libc that fails the test if anything reaches it: bad options must be refused first. */
const untouchable = new Proxy({} as Libc, {
  get: (_t, name) => () => {
    throw new Error(`libc.${String(name)} was called`);
  },
});

describe('TunDevice options', () => {
  it.each([
    [{ name: '' }, /interface name/],
    [{ name: 'much-too-long-name0' }, /interface name/],
    [{ name: 'tun 0' }, /interface name/],
    [{ name: 'gs0', mtu: 100 }, /MTU/],
    [{ name: 'gs0', mtu: 70000 }, /MTU/],
    [{ name: 'gs0', routes: ['239.1.1.1'] }, /prefix/],
    [{ name: 'gs0', routes: ['239.1.1.1/33'] }, /prefix/],
    [{ name: 'gs0', routes: ['ff3e::1/129'] }, /prefix/],
    [{ name: 'gs0', addresses: ['2001:db8::1/64/1'] }, /prefix/],
  ])('refuses %j before any system call', (options, message) => {
    expect(() => TunDevice.open(options, { libc: untouchable, ip: () => expect.unreachable() })).toThrow(message);
  });

  it('rejects a non-address route with the address error', () => {
    expect(() => TunDevice.open({ name: 'gs0', routes: ['example/32'] }, { libc: untouchable })).toThrow(/not an IP address/);
  });
});

describe('routeCommand', () => {
  it('routes IPv4 in the main table, IPv6 multicast as multicast routes in the local table', () => {
    expect(routeCommand('239.1.1.1/32', 'gs0')).toEqual(['route', 'replace', '239.1.1.1/32', 'dev', 'gs0']);
    expect(routeCommand('ff3e::4000:1/128', 'gs0')).toEqual([
      '-6', 'route', 'replace', 'multicast', 'ff3e::4000:1/128', 'dev', 'gs0', 'table', 'local',
    ]);
    expect(routeCommand('2001:db8::/64', 'gs0')).toEqual(['-6', 'route', 'replace', '2001:db8::/64', 'dev', 'gs0']);
  });
});
