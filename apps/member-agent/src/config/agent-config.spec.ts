import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_GCKS_PORT, loadAgentConfig, parseAgentConfig, readAgentSecrets } from './agent-config.js';

const valid = {
  identity: { kind: 'psk', id: 'alice.demo', secret: 'a long enough secret' },
  trustAnchor: 'owner.pem',
  gcks: [{ address: '127.0.0.1' }, { address: '::1', port: 4501 }],
  groups: [{ name: 'demo', role: 'speaker', applicationPort: 6000, address: '239.1.1.1', dataPort: 5000 }],
};

function issues(value: unknown): { path: string; message: string }[] {
  try {
    parseAgentConfig(value, '/etc/groupsec');
  } catch (e) {
    if (e instanceof ConfigError) return [...e.issues];
    throw e;
  }
  return [];
}

describe('member agent configuration', () => {
  it('fills defaults and resolves relative paths against the config directory', () => {
    const sut = parseAgentConfig(valid, '/etc/groupsec');
    expect(sut.trustAnchor).toBe('/etc/groupsec/owner.pem');
    expect(sut.gcks[0]!.port).toBe(DEFAULT_GCKS_PORT);
    expect(sut.gcks[1]!.port).toBe(4501);
    expect(sut.failMode).toBe('close');
    expect(sut.datapath).toMatchObject({ mode: 'socket', localAddress: '127.0.0.1', multicastInterface: '127.0.0.1' });
    expect(sut.groups[0]!.registration).toBe('at-start');
  });

  it('reports every error at once, each with its path', () => {
    const got = issues({
      identity: { kind: 'psk', id: '', secret: 'short' },
      trustAnchor: 'x',
      gcks: [{ address: 'not-an-ip', port: 70000 }],
      groups: [
        { name: 'g', applicationPort: 6000, address: '239.1.1.1', dataPort: 5000 },
        { name: 'g', registration: 'on-demand' },
      ],
      failMode: 'sometimes',
    });
    const paths = got.map((i) => i.path);
    // Shape errors and the rules between fields, together.
    for (const p of ['identity.id', 'identity.secret', 'gcks.0.address', 'gcks.0.port', 'failMode', 'groups.1.name', 'groups.1.applicationPort', 'groups.1']) expect(paths, p).toContain(p);
    const cross = issues({
      ...valid,
      groups: [
        { name: 'g', applicationPort: 6000, address: '239.1.1.1', dataPort: 5000 },
        { name: 'g', registration: 'on-demand' },
      ],
    }).map((i) => `${i.path}: ${i.message}`);
    expect(cross).toEqual(
      expect.arrayContaining([
        'groups.1.name: duplicate group g',
        'groups.1.applicationPort: required in socket mode',
        'groups.1.address: required in socket mode',
        'groups.1: on-demand registration needs address and dataPort',
      ]),
    );
  });

  it('needs exactly one of secret and secretFile for a PSK identity', () => {
    expect(issues({ ...valid, identity: { kind: 'psk', id: 'a' } }).map((i) => i.path)).toEqual(['identity']);
    expect(issues({ ...valid, identity: { kind: 'psk', id: 'a', secret: 'a long enough secret', secretFile: 's' } }).map((i) => i.path)).toEqual(['identity']);
  });

  it('refuses an empty GCKS list and unknown identity kinds', () => {
    const paths = issues({ ...valid, gcks: [], identity: { kind: 'eap' } }).map((i) => i.path);
    expect(paths).toContain('gcks');
    expect(paths).toContain('identity.kind');
  });

  it('loads a file; unreadable files and bad JSON are ConfigErrors; secrets list every unreadable file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-config-'));
    const path = join(dir, 'agent.json');
    writeFileSync(path, JSON.stringify({ ...valid, identity: { kind: 'psk', id: 'a', secretFile: 'psk.txt' } }));
    const sut = loadAgentConfig(path);
    expect(sut.identity).toMatchObject({ secretFile: join(dir, 'psk.txt') });
    expect(() => readAgentSecrets(sut)).toThrow(ConfigError);
    try {
      readAgentSecrets(sut);
    } catch (e) {
      expect((e as ConfigError).issues.map((i) => i.path)).toEqual(['trustAnchor', 'identity.secretFile']);
    }
    writeFileSync(join(dir, 'owner.pem'), 'PEM');
    writeFileSync(join(dir, 'psk.txt'), 'a long enough secret\n');
    expect(new TextDecoder().decode(readAgentSecrets(sut).psk)).toBe('a long enough secret');
    writeFileSync(path, '{ not json');
    expect(() => loadAgentConfig(path)).toThrow(/not JSON/);
    expect(() => loadAgentConfig(join(dir, 'missing.json'))).toThrow(/cannot read/);
  });

  it('an IPv6 group needs an IPv6 address beside an IPv4 localAddress; the key log path is resolved and off by default', () => {
    const v6group = { ...valid.groups[0]!, name: 'six', address: 'ff0e::1' };
    expect(issues({ ...valid, groups: [...valid.groups, v6group] })).toEqual([
      { path: 'groups.1.address', message: 'an IPv6 group needs datapath.localAddress6 (or an IPv6 localAddress)' },
    ]);
    expect(issues({ ...valid, groups: [...valid.groups, v6group], datapath: { localAddress6: '127.0.0.2' } })).toEqual([
      { path: 'datapath.localAddress6', message: 'must be an IPv6 address' },
    ]);
    const sut = parseAgentConfig({ ...valid, groups: [...valid.groups, v6group], datapath: { localAddress6: '2001:db8::1', interface: 'eth0' }, debug: { espKeyLog: 'keys.txt' } }, '/etc/groupsec');
    expect(sut.datapath.localAddress6).toBe('2001:db8::1');
    expect(sut.debug.espKeyLog).toBe('/etc/groupsec/keys.txt');
    expect(parseAgentConfig(valid, '/').debug.espKeyLog).toBeUndefined();
  });
});
