import { describe, expect, it } from 'vitest';
import { EncrId, GsaAddressPreservation, GsaDirection, GsaMode, IntegId, TsType, parseIpAddress } from '@app/codec';
import { Datapath } from '@app/datapath';
import type { OpenedDataSa } from '@app/gkm';
import { MappingError, SPEAKER_REPLAY_WINDOW, dataSaConfig, directionFor, gspdEntries, onDemandEntry, policyIdOf, rangeToPrefix } from './sa-mapping.js';

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
