import { describe, expect, it } from 'vitest';
import { validateGroupSettings, type GroupSettings } from '../groups/group.rules.js';
import { validatePadRule, validateSpeakerRules } from '../pad/pad.rules.js';
import { validatePolicy, type PolicySettings } from './policy.rules.js';

const group: GroupSettings = {
  name: 'g', address: '239.1.2.3', addressType: 'multicast', sourceMode: 'asm', ssmSources: [], serviceModel: 'per-speaker',
  rekeyTransport: 'multicast', rekeyAddress: '239.1.2.3', rekeyPort: 4500, maxSpeakers: 16, lkhDegree: 4, enabled: true,
};
const policy: PolicySettings = {
  name: 'p', sourcePrefix: '0.0.0.0/0', destinationPrefix: '239.1.2.3/32', protocol: null, sourcePort: null, destinationPort: null,
  action: 'protect', direction: 'symmetric', mode: 'tunnel', addressPreservation: 'both', udpEncapsulation: false,
  espTransform: 'aes-gcm-256', antiReplay: true, replayWindow: 64, dataOriginAuth: 'none', tekLifetime: 3600, kekLifetime: 3600,
  rekeyRollover: true, atd: 15, dtd: 15, rekeyRetransmissions: 2, leaveBehaviour: 'immediate', leaveBatchInterval: null,
};
const fields = (errors: { field: string }[]) => errors.map((e) => e.field);

describe('validatePolicy', () => {
  it('accepts a well-formed entry', () => {
    expect(validatePolicy(policy, group)).toEqual([]);
  });

  it.each([
    [{ destinationPrefix: '239.1.2.0/24' }, 'destinationPrefix'],
    [{ destinationPrefix: '239.1.2.4' }, 'destinationPrefix'],
    [{ destinationPrefix: 'ff0e::1' }, 'destinationPrefix'],
    [{ sourcePrefix: '::/0' }, 'sourcePrefix'],
    [{ sourcePrefix: 'garbage' }, 'sourcePrefix'],
    [{ mode: 'transport' as const }, 'addressPreservation'],
    [{ atd: 400 }, 'tekLifetime'],
    [{ destinationPort: 80 }, 'destinationPort'],
    [{ protocol: 50, sourcePort: 1 }, 'sourcePort'],
    [{ leaveBehaviour: 'batched' as const }, 'leaveBatchInterval'],
    [{ leaveBatchInterval: 30 }, 'leaveBatchInterval'],
  ])('rejects %j on %s', (change, field) => {
    expect(fields(validatePolicy({ ...policy, ...change }, group))).toEqual([field]);
  });

  it('allows exactly 10×ATD as TEK lifetime', () => {
    expect(validatePolicy({ ...policy, atd: 360, tekLifetime: 3600 }, group)).toEqual([]);
    expect(fields(validatePolicy({ ...policy, atd: 361, tekLifetime: 3600 }, group))).toEqual(['tekLifetime']);
  });

  it('forbids anti-replay in an A.3 group only', () => {
    const a3 = { ...group, serviceModel: 'any-to-any' as const, maxSpeakers: 64 };
    expect(fields(validatePolicy(policy, a3))).toEqual(['antiReplay']);
    expect(validatePolicy({ ...policy, antiReplay: false }, a3)).toEqual([]);
  });

  it('confines SSM sources to the authorized ones', () => {
    const ssm = { ...group, address: '232.1.1.1', sourceMode: 'ssm' as const, ssmSources: ['192.0.2.1'], rekeyAddress: '232.1.1.1' };
    const p = { ...policy, destinationPrefix: '232.1.1.1/32' };
    expect(validatePolicy({ ...p, sourcePrefix: '192.0.2.1/32' }, ssm)).toEqual([]);
    expect(fields(validatePolicy({ ...p, sourcePrefix: '192.0.2.0/31' }, ssm))).toEqual(['sourcePrefix']);
    expect(fields(validatePolicy({ ...p, sourcePrefix: '0.0.0.0/0' }, ssm))).toEqual(['sourcePrefix']);
  });

  it('uses the host part of a directed broadcast group address', () => {
    const b = { ...group, address: '192.0.2.255/24', addressType: 'broadcast' as const, rekeyTransport: 'unicast' as const, rekeyAddress: null, rekeyPort: null };
    expect(validatePolicy({ ...policy, destinationPrefix: '192.0.2.255/32' }, b)).toEqual([]);
    expect(fields(validatePolicy({ ...policy, destinationPrefix: '192.0.2.0/24' }, b))).toEqual(['destinationPrefix']);
  });
});

describe('validateGroupSettings', () => {
  it('accepts the defaults', () => {
    expect(validateGroupSettings(group)).toEqual([]);
  });

  it.each([
    [{ address: '10.0.0.1' }, 'address'],
    [{ address: '10.0.0.1', addressType: 'anycast' as const }, 'address'],
    [{ maxSpeakers: 15 }, 'maxSpeakers'],
    [{ serviceModel: 'unidirectional' as const }, 'maxSpeakers'],
    [{ sourceMode: 'ssm' as const, address: '232.0.0.1', rekeyAddress: '232.0.0.1' }, 'ssmSources'],
    [{ ssmSources: ['192.0.2.1'] }, 'ssmSources'],
    [{ rekeyAddress: null }, 'rekeyAddress'],
    [{ rekeyPort: null }, 'rekeyPort'],
    [{ rekeyTransport: 'unicast' as const, rekeyPort: null }, 'rekeyAddress'],
  ])('rejects %j on %s', (change, field) => {
    expect(fields(validateGroupSettings({ ...group, ...change }))).toContain(field);
  });
});

describe('PAD rules', () => {
  it('needs a role for member rules and none for GCKS rules', () => {
    expect(fields(validatePadRule({ kind: 'member', idType: 'subject', pattern: 'CN=x', role: null, hasPsk: false }))).toEqual(['role']);
    expect(fields(validatePadRule({ kind: 'gcks', idType: 'subject', pattern: 'CN=x', role: 'both', hasPsk: false }))).toEqual(['role']);
    expect(validatePadRule({ kind: 'gcks', idType: 'san-dns', pattern: 'gcks.example', role: null, hasPsk: false })).toEqual([]);
  });

  it('pairs PSKs with psk rules only, matched exactly', () => {
    expect(fields(validatePadRule({ kind: 'member', idType: 'psk', pattern: 'a*', role: 'receiver', hasPsk: true }))).toEqual(['pattern']);
    expect(fields(validatePadRule({ kind: 'member', idType: 'psk', pattern: 'a', role: 'receiver', hasPsk: false }))).toEqual(['psk']);
    expect(fields(validatePadRule({ kind: 'member', idType: 'subject', pattern: 'a', role: 'receiver', hasPsk: true }))).toEqual(['psk']);
    expect(fields(validatePadRule({ kind: 'member', idType: 'san-ip', pattern: '10.0.0.1/8', role: 'receiver', hasPsk: false }))).toEqual(['pattern']);
  });

  it('gives an A.1 group one named speaker at most', () => {
    const a1 = { serviceModel: 'unidirectional' as const };
    const speaker = { kind: 'member' as const, role: 'speaker' as const, pattern: 'cam1' };
    expect(validateSpeakerRules(a1, [speaker, { ...speaker, role: 'receiver', pattern: '*' }], 'role')).toEqual([]);
    expect(fields(validateSpeakerRules(a1, [speaker, { ...speaker, pattern: 'cam2', role: 'both' }], 'role'))).toEqual(['role']);
    expect(fields(validateSpeakerRules(a1, [{ ...speaker, pattern: 'cam*' }], 'role'))).toEqual(['role']);
    expect(validateSpeakerRules({ serviceModel: 'per-speaker' }, [speaker, { ...speaker, pattern: 'cam2' }], 'role')).toEqual([]);
  });
});

describe('validation never throws on arbitrary text', () => {
  it('reports hostile addresses and prefixes as field errors', async () => {
    const fc = await import('fast-check');
    const text = fc.oneof(fc.string(), fc.ipV4(), fc.ipV6(), fc.ipV4Extended(), fc.tuple(fc.ipV6(), fc.nat(200)).map(([a, n]) => `${a}/${n}`));
    fc.assert(
      fc.property(text, text, text, text, (address, src, dst, source) => {
        const g = { ...group, address, ssmSources: [source], sourceMode: 'ssm' as const, rekeyAddress: address };
        expect(Array.isArray(validateGroupSettings(g))).toBe(true);
        expect(Array.isArray(validateGroupSettings({ ...g, addressType: 'broadcast' }))).toBe(true);
        expect(Array.isArray(validateGroupSettings({ ...g, addressType: 'anycast' }))).toBe(true);
        expect(Array.isArray(validatePolicy({ ...policy, sourcePrefix: src, destinationPrefix: dst }, g))).toBe(true);
      }),
      { numRuns: 500, seed: 20261122 },
    );
  });
});
