import { describe, expect, it } from 'vitest';
import { EncrId, GsaAddressPreservation, GsaDirection, GsaMode, IntegId, TsType, parseIpAddress } from '@app/codec';
import { Datapath } from '@app/datapath';
import type { OpenedDataSa } from '@app/gkm';
import type { DataPolicySummary } from '@app/crypto';
import { MappingError, SPEAKER_REPLAY_WINDOW, dataSaConfig, directionFor, gspdEntries, onDemandEntry, policyIdOf, rangeToPrefix, tokenAuthorizes } from './sa-mapping.js';

const a = (s: string) => parseIpAddress(s);
const ts = (start: string, end: string, port?: number) => ({
  tsType: start.includes(':') ? TsType.TS_IPV6_ADDR_RANGE : TsType.TS_IPV4_ADDR_RANGE,
  ipProtocol: port === undefined ? 0 : 17,
  startPort: port ?? 0,
  endPort: port ?? 0xffff,
  startAddress: a(start),
  endAddress: a(end),
});

function sa(over: Omit<Partial<OpenedDataSa>, 'attributes'> & { attributes?: Partial<OpenedDataSa['attributes']> } = {}): OpenedDataSa {
  return {
    protocol: 3,
    spi: 0x1234,
    policy: { kind: 'sa', protocol: 3, spi: new Uint8Array(4), source: ts('0.0.0.0', '255.255.255.255'), destination: ts('239.1.1.1', '239.1.1.1', 5000), transforms: [], attributes: [] },
    transforms: { encr: { id: EncrId.ENCR_AES_GCM_16, keyLength: 128 }, sn: 2 },
    encKey: new Uint8Array(20).fill(1),
    integKey: new Uint8Array(0),
    ...over,
    attributes: { nextSpis: [], ...over.attributes },
  };
}

describe('address ranges to selectors', () => {
  it.each([
    ['10.0.0.1', '10.0.0.1', '10.0.0.1'],
    ['10.0.0.0', '10.0.0.255', '10.0.0.0/24'],
    ['0.0.0.0', '255.255.255.255', undefined],
    ['ff3e::', 'ff3e:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'ff3e::/16'],
    ['ff3e:0:0:1::', 'ff3e:0:0:1:ffff:ffff:ffff:ffff', 'ff3e:0:0:1::/64'],
  ])('%s-%s is %s', (s, e, want) => {
    expect(rangeToPrefix(a(s), a(e))).toBe(want);
  });

  it('a range that is no prefix, or of mixed families, is a MappingError', () => {
    expect(() => rangeToPrefix(a('10.0.0.1'), a('10.0.0.5'))).toThrow(MappingError);
    expect(() => rangeToPrefix(a('10.0.0.0'), a('::1'))).toThrow(/mixed/);
  });
});

describe('data SAs for the datapath', () => {
  it('a shared any-source SA: no anti-replay (A.3), tunnel with address preservation, ESP in UDP, sender ID, lifetime', () => {
    const sut = dataSaConfig(sa({ attributes: { udpEncapsulationPort: 4500, keyLifetime: 900, addressPreservation: GsaAddressPreservation.SOURCE_ONLY } }), {
      group: 'g',
      role: 'speaker',
      senderId: 3,
      senderIdBits: 8,
    });
    expect(sut).toMatchObject({
      spi: 0x1234,
      policyId: 'g|239.1.1.1|17|5000',
      destination: '239.1.1.1',
      direction: 'symmetric',
      mode: 'tunnel',
      addressPreservation: 'source',
      udpEncapsulation: { sourcePort: 4500, destinationPort: 4500 },
      transform: { kind: 'aes-gcm-16', keyBits: 128 },
      replayWindow: 0,
      senderId: 3,
      senderIdBits: 8,
      lifetime: { hard: { seconds: 900 } },
    });
    expect(sut.source).toBeUndefined();
  });

  it('the GSA mode: absent or TUNNEL is tunnel; TRANSPORT is transport without address preservation, and the datapath takes it', () => {
    expect(dataSaConfig(sa({ attributes: { mode: GsaMode.TUNNEL } }), { group: 'g', role: 'speaker' })).toMatchObject({ mode: 'tunnel', addressPreservation: 'both' });
    const sut = dataSaConfig(sa({ attributes: { mode: GsaMode.TRANSPORT, udpEncapsulationPort: 4500 } }), { group: 'g', role: 'speaker' });
    expect(sut).toMatchObject({ mode: 'transport', addressPreservation: 'none', udpEncapsulation: { sourcePort: 4500, destinationPort: 4500 } });
    // Even a preservation value that slipped past the codec is not applied to a transport SA.
    const odd = dataSaConfig(sa({ attributes: { mode: GsaMode.TRANSPORT, addressPreservation: GsaAddressPreservation.SOURCE_ONLY } }), { group: 'g', role: 'receiver' });
    expect(odd.addressPreservation).toBe('none');
    const datapath = new Datapath({ clock: { now: () => 0 } });
    datapath.installSa(sut);
    datapath.installSa({ ...odd, spi: 0x1235 });
    expect(datapath.stats().sas.map((x) => x.spi)).toEqual([0x1234, 0x1235]);
    // The datapath itself refuses preservation in transport mode (RFC 5374 §3.1): the mapping must not produce it.
    expect(() => datapath.installSa({ ...sut, spi: 0x1236, addressPreservation: 'source' })).toThrow(/BAD_POLICY/);
  });

  it('a per-speaker SA keeps the source and an anti-replay window (A.2); keys are copies', () => {
    const opened = sa({ policy: { ...sa().policy, source: ts('10.0.0.7', '10.0.0.7') } });
    const sut = dataSaConfig(opened, { group: 'g', role: 'receiver' });
    expect(sut.source).toBe('10.0.0.7');
    expect(sut.replayWindow).toBe(SPEAKER_REPLAY_WINDOW);
    expect(sut.direction).toBe('receiver-only');
    opened.encKey.fill(9);
    expect(sut.encryptionKey[0]).toBe(1);
  });

  it('A.2 directionality at a speaker that knows its addresses: its own SA is sender-only, every other speaker’s receiver-only', () => {
    const of = (src: string) => sa({ policy: { ...sa().policy, source: ts(src, src) } });
    const ctx = { group: 'g', role: 'speaker' as const, localAddresses: ['10.0.0.7'] };
    expect(dataSaConfig(of('10.0.0.7'), ctx).direction).toBe('sender-only');
    expect(dataSaConfig(of('10.0.0.8'), ctx).direction).toBe('receiver-only');
    // IPv6 text in another spelling is the same address.
    const v6 = (src: string) => sa({ policy: { ...sa().policy, source: ts(src, src), destination: ts('ff3e::1', 'ff3e::1', 5000) } });
    expect(dataSaConfig(v6('2001:db8::7'), { ...ctx, localAddresses: ['2001:0db8:0:0::7'] }).direction).toBe('sender-only');
    // A receiver stays receiver-only, its own address or not; without addresses the SA's direction holds.
    expect(dataSaConfig(of('10.0.0.7'), { ...ctx, role: 'receiver' }).direction).toBe('receiver-only');
    expect(dataSaConfig(of('10.0.0.8'), { group: 'g', role: 'speaker' }).direction).toBe('symmetric');
    // An SA of any source (A.1/A.3) is not per-speaker: unchanged.
    expect(dataSaConfig(sa(), ctx).direction).toBe('symmetric');
  });

  it('CBC with HMAC-SHA-256 carries the integrity key; other transforms are refused', () => {
    const cbc = dataSaConfig(sa({ transforms: { encr: { id: EncrId.ENCR_AES_CBC, keyLength: 256 }, integ: IntegId.AUTH_HMAC_SHA2_256_128 }, encKey: new Uint8Array(32), integKey: new Uint8Array(32).fill(5) }), { group: 'g', role: 'speaker' });
    expect(cbc.transform).toEqual({ kind: 'aes-cbc-hmac-sha256', keyBits: 256 });
    expect(cbc.integrityKey?.[0]).toBe(5);
    expect(() => dataSaConfig(sa({ transforms: { encr: { id: EncrId.ENCR_AES_CTR, keyLength: 128 } } }), { group: 'g', role: 'speaker' })).toThrow(/UNSUPPORTED_TRANSFORM/);
    expect(() => dataSaConfig(sa({ transforms: { encr: { id: EncrId.ENCR_AES_GCM_16, keyLength: 192 } } }), { group: 'g', role: 'speaker' })).toThrow(MappingError);
  });

  it('a destination that is no single address is refused', () => {
    expect(() => dataSaConfig(sa({ policy: { ...sa().policy, destination: ts('239.1.1.0', '239.1.1.255', 5000) } }), { group: 'g', role: 'speaker' })).toThrow(/BAD_SELECTOR/);
  });
});

describe('GSPD entries and directionality (RFC 5374 §4.1.1)', () => {
  it('receivers are receiver-only; speakers follow the SA direction', () => {
    expect(directionFor('receiver', GsaDirection.SYMMETRIC)).toBe('receiver-only');
    expect(directionFor('speaker', GsaDirection.SENDER_ONLY)).toBe('sender-only');
    expect(directionFor('speaker', undefined)).toBe('symmetric');
  });

  it('one protect entry per destination, shared by the SAs of several speakers, plus token-only policies', () => {
    const one = sa({ spi: 1, policy: { ...sa().policy, source: ts('10.0.0.1', '10.0.0.1') } });
    const two = sa({ spi: 2, policy: { ...sa().policy, source: ts('10.0.0.2', '10.0.0.2') } });
    const token = { dataPolicy: [{ name: 'v6', source: '::/0', destination: 'ff3e::1234/128', ipProtocol: 17, port: 6000, direction: GsaDirection.SYMMETRIC, addressPreservation: 4, encrId: 20, integId: 0, keyLifetime: 3600 }] } as never;
    const sut = gspdEntries('g', 'speaker', [one, two], token);
    expect(sut).toEqual([
      { id: 'g|239.1.1.1|17|5000', action: 'protect', direction: 'symmetric', groupId: 'g', selector: { destination: '239.1.1.1', protocol: 17, destinationPort: 5000 } },
      { id: 'g|ff3e::1234|17|6000', action: 'protect', direction: 'symmetric', groupId: 'g', selector: { destination: 'ff3e::1234', protocol: 17, destinationPort: 6000 } },
    ]);
    // The on-demand entry a group starts with has the id its SAs will link to.
    expect(onDemandEntry('g', 'speaker', '239.1.1.1', 5000).id).toBe(sut[0]!.id);
    expect(policyIdOf('g', { destination: '239.1.1.1' })).toBe('g|239.1.1.1|*|*');
  });
});

describe('the policy token scopes the data SAs (RFC 5374 §4.1.3.1, RFC 4534 §3.4)', () => {
  // As apps/gcks states a policy row in its token: the flow, the transforms, the SA attributes.
  const v4: DataPolicySummary = {
    name: 'v4',
    source: '0.0.0.0/0',
    destination: '239.1.1.1/32',
    ipProtocol: 17,
    port: 5000,
    direction: GsaDirection.SYMMETRIC,
    addressPreservation: GsaAddressPreservation.SOURCE_AND_DESTINATION,
    encrId: EncrId.ENCR_AES_GCM_16,
    integId: 0,
    keyLifetime: 3600,
    mode: GsaMode.TUNNEL,
    keyBits: 128,
  };
  const v6: DataPolicySummary = { ...v4, name: 'v6', source: '::/0', destination: 'ff3e::1234/128', port: 6000 };
  const cbc: DataPolicySummary = { ...v4, name: 'cbc', encrId: EncrId.ENCR_AES_CBC, keyBits: 256, integId: IntegId.AUTH_HMAC_SHA2_256_128 };
  const speakers: DataPolicySummary = { ...v4, name: 'speakers', source: '10.0.0.0/24' };
  const open: DataPolicySummary = { ...v4, name: 'open', ipProtocol: 0, port: 0 };
  const gcksSa = (over: Parameters<typeof sa>[0] = {}) =>
    sa({ ...over, attributes: { direction: GsaDirection.SYMMETRIC, addressPreservation: GsaAddressPreservation.SOURCE_AND_DESTINATION, keyLifetime: 3600, ...over.attributes } });
  const withPolicy = (source: ReturnType<typeof ts>, destination: ReturnType<typeof ts>) => ({ ...sa().policy, source, destination });
  const v6Sa = (src: [string, string]) => gcksSa({ policy: withPolicy(ts(src[0], src[1]), ts('ff3e::1234', 'ff3e::1234', 6000)) });
  const tcp = (port?: number) => ({ ...ts('239.1.1.1', '239.1.1.1', port), ipProtocol: 6 });

  it.each<[string, OpenedDataSa, DataPolicySummary[]]>([
    ['an any-source IPv4 SA as the GCKS sends it', gcksSa(), [v4]],
    ['an IPv6 SA', v6Sa(['::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff']), [v4, v6]],
    ['an IPv6 per-speaker SA (A.2)', v6Sa(['2001:db8::7', '2001:db8::7']), [v6]],
    ['an IPv4 per-speaker SA inside the source prefix', gcksSa({ policy: withPolicy(ts('10.0.0.7', '10.0.0.7'), ts('239.1.1.1', '239.1.1.1', 5000)) }), [speakers]],
    ['a destination inside a wider prefix', gcksSa(), [{ ...v4, destination: '239.1.0.0/16' }]],
    ['protocol 0 and port 0 = any: UDP 5000', gcksSa(), [open]],
    ['protocol 0 and port 0 = any: TCP, any port', gcksSa({ policy: withPolicy(ts('0.0.0.0', '255.255.255.255'), tcp()) }), [open]],
    ['absent direction and preservation read as symmetric and both', sa({ attributes: { keyLifetime: 3600 } }), [v4]],
    ['a shorter key lifetime', gcksSa({ attributes: { keyLifetime: 900 } }), [v4]],
    ['a transport SA under a transport policy', gcksSa({ attributes: { mode: GsaMode.TRANSPORT, addressPreservation: undefined } }), [{ ...v4, mode: GsaMode.TRANSPORT, addressPreservation: GsaAddressPreservation.NONE }]],
    ['a stated tunnel mode under a tunnel policy', gcksSa({ attributes: { mode: GsaMode.TUNNEL } }), [v4]],
    ['AES-256 under a policy stating 256 bits', gcksSa({ transforms: { encr: { id: EncrId.ENCR_AES_GCM_16, keyLength: 256 }, sn: 2 } }), [v4, { ...v4, name: 'strong', keyBits: 256 }]],
    ['a sender-only SA under a sender-only policy', gcksSa({ attributes: { direction: GsaDirection.SENDER_ONLY } }), [{ ...v4, direction: GsaDirection.SENDER_ONLY }]],
    ['CBC with HMAC-SHA-256', gcksSa({ transforms: { encr: { id: EncrId.ENCR_AES_CBC, keyLength: 256 }, integ: IntegId.AUTH_HMAC_SHA2_256_128 } }), [v6, cbc]],
  ])('authorized: %s', (_what, opened, dataPolicy) => {
    expect(tokenAuthorizes(opened, { dataPolicy })).toBeUndefined();
  });

  it.each<[string, OpenedDataSa, DataPolicySummary[], RegExp]>([
    ['destination outside', gcksSa({ policy: withPolicy(ts('0.0.0.0', '255.255.255.255'), ts('239.1.1.2', '239.1.1.2', 5000)) }), [v4], /^destination 239\.1\.1\.2 outside 239\.1\.1\.1\/32$/],
    ['destination of another family', v6Sa(['::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff']), [v4], /^destination ff3e::1234 outside/],
    ['source outside (another speaker)', gcksSa({ policy: withPolicy(ts('10.0.1.7', '10.0.1.7'), ts('239.1.1.1', '239.1.1.1', 5000)) }), [speakers], /^source 10\.0\.1\.7 outside 10\.0\.0\.0\/24$/],
    ['source wider than the prefix', gcksSa(), [speakers], /^source 0\.0\.0\.0-255\.255\.255\.255 outside/],
    ['protocol', gcksSa({ policy: withPolicy(ts('0.0.0.0', '255.255.255.255'), tcp(5000)) }), [v4], /^protocol 6, policy allows 17$/],
    ['protocol any where the policy names one', gcksSa({ policy: withPolicy(ts('0.0.0.0', '255.255.255.255'), ts('239.1.1.1', '239.1.1.1')) }), [v4], /^protocol any, policy allows 17$/],
    ['port', gcksSa({ policy: withPolicy(ts('0.0.0.0', '255.255.255.255'), ts('239.1.1.1', '239.1.1.1', 5001)) }), [v4], /^destination port 5001, policy allows 5000$/],
    ['port range where the policy names one port', gcksSa({ policy: withPolicy(ts('0.0.0.0', '255.255.255.255'), { ...ts('239.1.1.1', '239.1.1.1', 5000), endPort: 5001 }) }), [v4], /^destination port 5000-5001/],
    ['encryption transform', gcksSa({ transforms: { encr: { id: EncrId.ENCR_AES_CBC, keyLength: 128 }, integ: IntegId.AUTH_HMAC_SHA2_256_128 } }), [v4], /^ENCR 12, policy allows 20$/],
    ['encryption key length', gcksSa(), [{ ...v4, keyBits: 256 }], /^ENCR key of 128 bits, policy allows 256$/],
    ['encryption key length not stated', gcksSa({ transforms: { encr: { id: EncrId.ENCR_AES_GCM_16 }, sn: 2 } }), [v4], /^ENCR key of 0 bits, policy allows 128$/],
    ['integrity transform', gcksSa({ transforms: { encr: { id: EncrId.ENCR_AES_CBC, keyLength: 256 }, integ: IntegId.AUTH_HMAC_SHA1_96 } }), [cbc], /^INTEG 2, policy allows 12$/],
    ['direction', gcksSa({ attributes: { direction: GsaDirection.SENDER_ONLY } }), [v4], /^direction 1, policy allows 3$/],
    ['direction absent (symmetric) under a sender-only policy', sa(), [{ ...v4, direction: GsaDirection.SENDER_ONLY }], /^direction 3, policy allows 1$/],
    ['address preservation', gcksSa({ attributes: { addressPreservation: GsaAddressPreservation.SOURCE_ONLY } }), [v4], /^address preservation 2, policy allows 4$/],
    ['transport under a tunnel policy', gcksSa({ attributes: { mode: GsaMode.TRANSPORT, addressPreservation: undefined } }), [v4], /^mode transport, policy allows tunnel$/],
    ['tunnel (mode absent) under a transport policy', gcksSa({ attributes: { addressPreservation: GsaAddressPreservation.NONE } }), [{ ...v4, mode: GsaMode.TRANSPORT, addressPreservation: GsaAddressPreservation.NONE }], /^mode tunnel, policy allows transport$/],
    ['key lifetime longer', gcksSa({ attributes: { keyLifetime: 7200 } }), [v4], /^key lifetime 7200 s, policy allows 3600 s$/],
    ['no key lifetime stated (it would be installed without one)', sa(), [v4], /^no key lifetime, policy allows at most 3600 s$/],
    ['a policy prefix that does not parse', gcksSa(), [{ ...v4, destination: '239.1.1.1/40' }], /^destination 239\.1\.1\.1 outside 239\.1\.1\.1\/40$/],
    ['a token without data policies', gcksSa(), [], /states no data policy/],
    ['several policies: the reason of the closest', gcksSa({ transforms: { encr: { id: EncrId.ENCR_AES_CTR, keyLength: 128 } } }), [v6, v4], /^closest data policy "v4": ENCR 13, policy allows 20$/],
  ])('refused: %s', (_what, opened, dataPolicy, reason) => {
    expect(tokenAuthorizes(opened, { dataPolicy })).toMatch(reason);
  });
});
