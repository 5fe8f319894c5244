import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CodecError,
  GcAuthId,
  GikeProtocol,
  GsaAddressPreservation,
  GsaDirection,
  GsaMode,
  GsaPrivateAttr,
  IdType,
  IkeExchange,
  IkePayload,
  KwaId,
  SN_32BIT_UNSPECIFIED,
  TsType,
  getPayload,
  groupKeyBag,
  gsaAttributes,
  gsaPayload,
  gsaTransforms,
  gwAttributes,
  idgKeyId,
  idgPayload,
  ikeMessage,
  kdPayload,
  memberKeyBag,
  parseGroupKeyBag,
  parseGsaAttributes,
  parseGsaTransforms,
  parseGwAttributes,
  parseMemberKeyBag,
  payload,
  type GsaPayload,
  type GsaSaPolicy,
  type KdPayload,
  type PayloadBodyCodec,
  type WrappedKey,
} from '@app/codec';
import { codeOf, roundTrip } from './testing/round-trip.js';

const v4 = (a: number, b: number, c: number, d: number) => Uint8Array.from([a, b, c, d]);
const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);
/** A Wrapped Key (RFC 9838 §4.5.4): Key ID, KWK ID, then the (opaque here) encrypted key. */
const wrapped = (keyId: number, kwkId: number, len = 24): WrappedKey => ({ keyId, kwkId, encryptedKey: new Uint8Array(len).fill(0xa5) });

const kek: GsaSaPolicy = {
  kind: 'sa',
  protocol: GikeProtocol.GIKE_UPDATE,
  spi: bytes(16, 0x11),
  source: { tsType: TsType.TS_IPV4_ADDR_RANGE, ipProtocol: 17, startPort: 4500, endPort: 4500, startAddress: v4(10, 0, 0, 1), endAddress: v4(10, 0, 0, 1) },
  destination: { tsType: TsType.TS_IPV4_ADDR_RANGE, ipProtocol: 17, startPort: 4500, endPort: 4500, startAddress: v4(239, 1, 1, 1), endAddress: v4(239, 1, 1, 1) },
  transforms: gsaTransforms({
    encr: { id: 20, keyLength: 256 },
    kwa: KwaId.KW_5649_256,
    gcauth: { id: GcAuthId.DIGITAL_SIGNATURE, signatureAlgorithm: Uint8Array.from([0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]) },
  }),
  attributes: gsaAttributes({ keyLifetime: 3600, initialMessageId: 7, nextSpis: [bytes(16, 0x12)] }),
};

const tek: GsaSaPolicy = {
  kind: 'sa',
  protocol: GikeProtocol.ESP,
  spi: Uint8Array.from([0xde, 0xad, 0xbe, 0xef]),
  source: { tsType: TsType.TS_IPV6_ADDR_RANGE, ipProtocol: 0, startPort: 0, endPort: 0xffff, startAddress: bytes(16, 0), endAddress: bytes(16, 0xff) },
  destination: { tsType: TsType.TS_IPV4_ADDR_RANGE, ipProtocol: 17, startPort: 5000, endPort: 5000, startAddress: v4(239, 2, 2, 2), endAddress: v4(239, 2, 2, 2) },
  transforms: gsaTransforms({ encr: { id: 20, keyLength: 128 }, sn: SN_32BIT_UNSPECIFIED }),
  attributes: gsaAttributes({
    keyLifetime: 900,
    nextSpis: [],
    direction: GsaDirection.SYMMETRIC,
    addressPreservation: GsaAddressPreservation.SOURCE_AND_DESTINATION,
    udpEncapsulationPort: 4500,
  }),
};

const gsa: GsaPayload = {
  policies: [kek, tek, { kind: 'gw', attributes: gwAttributes({ atd: 15, dtd: 30, senderIdBits: 8, policyToken: bytes(40, 0x30) }) }],
};

const kd: KdPayload = {
  keyBags: [
    groupKeyBag(GikeProtocol.GIKE_UPDATE, bytes(16, 0x11), [wrapped(0, 0, 72)]),
    groupKeyBag(GikeProtocol.ESP, Uint8Array.from([0xde, 0xad, 0xbe, 0xef]), [wrapped(0, 0, 28)]),
    memberKeyBag({ wrapKeys: [wrapped(5, 0), wrapped(2, 5)], authKey: bytes(91, 0x30), senderIds: [3, 4] }),
  ],
};

/** Offsets where a top-level substructure of a GSA/KD body starts (Length at +2). */
function boundaries(enc: Uint8Array): Set<number> {
  const out = new Set<number>([0]);
  let o = 0;
  while (o < enc.length) {
    o += (enc[o + 2]! << 8) | enc[o + 3]!;
    out.add(o);
  }
  return out;
}

describe('IDg body (RFC 9838 §4.2)', () => {
  it('round-trips every ID type a group may use', () => {
    roundTrip(idgPayload, idgKeyId('video-group'));
    roundTrip(idgPayload, { idType: IdType.ID_FQDN, data: new TextEncoder().encode('grp.example') });
    roundTrip(idgPayload, { idType: IdType.ID_IPV4_ADDR, data: v4(239, 1, 1, 1) });
    roundTrip(idgPayload, { idType: IdType.ID_IPV6_ADDR, data: bytes(16, 0xff) });
  });

  it('refuses DN identities, wrong address sizes and empty data', () => {
    const dn = Uint8Array.from([IdType.ID_DER_ASN1_DN, 0, 0, 0, 0x30, 0]);
    expect(codeOf(() => idgPayload.decode(dn))).toBe('UNKNOWN_TYPE');
    expect(codeOf(() => idgPayload.decode(Uint8Array.from([1, 0, 0, 0, 1, 2, 3])))).toBe('BAD_LENGTH');
    expect(codeOf(() => idgPayload.decode(Uint8Array.from([11, 0, 0, 0])))).toBe('BAD_LENGTH');
    expect(codeOf(() => idgPayload.decode(Uint8Array.from([11, 0])))).toBe('TRUNCATED');
  });
});

describe('GSA body (RFC 9838 §4.4)', () => {
  it('round-trips KEK, TEK and GW policies with transforms and attributes', () => {
    const enc = roundTrip(gsaPayload, gsa).bytes;
    const dec = gsaPayload.decode(enc);
    const [k, t, g] = dec.policies;
    expect(parseGsaTransforms(k as GsaSaPolicy)).toEqual({
      encr: { id: 20, keyLength: 256 },
      kwa: KwaId.KW_5649_256,
      gcauth: { id: GcAuthId.DIGITAL_SIGNATURE, signatureAlgorithm: (kek.transforms[2]!.attributes[0]!.value as Uint8Array) },
    });
    expect(parseGsaAttributes(k as GsaSaPolicy)).toEqual({ keyLifetime: 3600, initialMessageId: 7, nextSpis: [bytes(16, 0x12)] });
    expect(parseGsaTransforms(t as GsaSaPolicy)).toEqual({ encr: { id: 20, keyLength: 128 }, sn: SN_32BIT_UNSPECIFIED });
    expect(parseGsaAttributes(t as GsaSaPolicy)).toMatchObject({ direction: 3, addressPreservation: 4, udpEncapsulationPort: 4500 });
    expect(g!.kind).toBe('gw');
    expect(parseGwAttributes(g as never)).toEqual({ atd: 15, dtd: 30, senderIdBits: 8, policyToken: bytes(40, 0x30) });
  });

  it('fails cleanly on every proper prefix; only substructure boundaries decode, to a prefix of the policies', () => {
    const enc = gsaPayload.encode(gsa);
    const cuts = boundaries(enc);
    for (let n = 0; n < enc.length; n++) {
      const code = codeOf(() => gsaPayload.decode(enc.subarray(0, n)));
      if (cuts.has(n) && n > 0) {
        expect(code).toBe('OK');
        expect(gsaPayload.decode(enc.subarray(0, n)).policies).toEqual(gsa.policies.slice(0, gsaPayload.decode(enc.subarray(0, n)).policies.length));
      } else {
        expect(code, `prefix ${n}`).not.toBe('OK');
      }
    }
  });

  it('enforces the structural rules: one KEK, one GW, at least one SA policy, SPI sizes', () => {
    expect(codeOf(() => gsaPayload.encode({ policies: [kek, kek] }))).toBe('BAD_VALUE');
    expect(codeOf(() => gsaPayload.encode({ policies: [{ kind: 'gw', attributes: [] }] }))).toBe('BAD_VALUE');
    expect(codeOf(() => gsaPayload.decode(new Uint8Array(0)))).toBe('BAD_VALUE');
    const enc = gsaPayload.encode({ policies: [tek] });
    const badSpiSize = Uint8Array.from(enc);
    badSpiSize[1] = 16;
    expect(codeOf(() => gsaPayload.decode(badSpiSize))).toBe('BAD_LENGTH');
    const unknownProto = Uint8Array.from(enc);
    unknownProto[0] = 1; // IKE is no group SA protocol
    expect(codeOf(() => gsaPayload.decode(unknownProto))).toBe('UNKNOWN_TYPE');
    const overLength = Uint8Array.from(enc);
    overLength[3] = overLength[3]! + 4;
    expect(codeOf(() => gsaPayload.decode(overLength))).toBe('TRUNCATED');
  });

  it('checks transform rules of RFC 9838 §4.4.2.1', () => {
    const noKwa = { ...kek, transforms: gsaTransforms({ encr: { id: 20 }, gcauth: { id: GcAuthId.IMPLICIT } }) };
    expect(codeOf(() => parseGsaTransforms(noKwa))).toBe('BAD_VALUE');
    const cbcNoInteg = { ...kek, transforms: gsaTransforms({ encr: { id: 12 }, kwa: 1, gcauth: { id: GcAuthId.IMPLICIT } }) };
    expect(codeOf(() => parseGsaTransforms(cbcNoInteg))).toBe('BAD_VALUE');
    const cbc = { ...kek, transforms: gsaTransforms({ encr: { id: 12 }, integ: 12, kwa: 1, gcauth: { id: GcAuthId.IMPLICIT } }) };
    expect(parseGsaTransforms(cbc).integ).toBe(12);
    expect(codeOf(() => parseGsaTransforms(kek, { registration: false }))).toBe('BAD_VALUE'); // GCAUTH in a rekey
    const sigNoAlg = { ...kek, transforms: gsaTransforms({ encr: { id: 20 }, kwa: 1, gcauth: { id: GcAuthId.DIGITAL_SIGNATURE } }) };
    expect(codeOf(() => parseGsaTransforms(sigNoAlg))).toBe('BAD_VALUE');
    const espNoSn = { ...tek, transforms: gsaTransforms({ encr: { id: 20 } }) };
    expect(codeOf(() => parseGsaTransforms(espNoSn))).toBe('BAD_VALUE');
    const iiv = { ...tek, transforms: gsaTransforms({ encr: { id: 30 }, sn: 0 }) };
    expect(codeOf(() => parseGsaTransforms(iiv))).toBe('BAD_VALUE');
    const dup = { ...tek, transforms: [...tek.transforms, tek.transforms[0]!] };
    expect(codeOf(() => parseGsaTransforms(dup))).toBe('BAD_VALUE');
  });

  it('checks attribute formats and multiplicity', () => {
    const twoLifetimes = { ...tek, attributes: [...gsaAttributes({ keyLifetime: 1, nextSpis: [] }), ...gsaAttributes({ keyLifetime: 2, nextSpis: [] })] };
    expect(codeOf(() => parseGsaAttributes(twoLifetimes))).toBe('BAD_VALUE');
    const initialOnTek = { ...tek, attributes: gsaAttributes({ initialMessageId: 1, nextSpis: [] }) };
    expect(codeOf(() => parseGsaAttributes(initialOnTek))).toBe('BAD_VALUE');
    const shortSpi = { ...tek, attributes: gsaAttributes({ nextSpis: [bytes(3, 1)] }) };
    expect(codeOf(() => parseGsaAttributes(shortSpi))).toBe('BAD_VALUE');
    const tvLifetime = { ...tek, attributes: [{ type: 1, value: 5 }] };
    expect(codeOf(() => parseGsaAttributes(tvLifetime))).toBe('BAD_VALUE');
    const badDirection = { ...tek, attributes: gsaAttributes({ nextSpis: [], direction: 9 }) };
    expect(codeOf(() => parseGsaAttributes(badDirection))).toBe('BAD_VALUE');
    expect(codeOf(() => parseGwAttributes({ kind: 'gw', attributes: [{ type: 3, value: 0 }] }))).toBe('BAD_VALUE');
    expect(parseGwAttributes({ kind: 'gw', attributes: [{ type: 9999, value: 1 }] })).toEqual({});
  });

  it('carries the private MODE attribute (absent = tunnel) and refuses a bad or contradictory one', () => {
    const transport = { ...tek, attributes: gsaAttributes({ nextSpis: [], direction: GsaDirection.SYMMETRIC, udpEncapsulationPort: 4500, mode: GsaMode.TRANSPORT }) };
    const enc = roundTrip(gsaPayload, { policies: [transport] }).bytes;
    const t = gsaPayload.decode(enc).policies[0] as GsaSaPolicy;
    expect(t.attributes).toContainEqual({ type: GsaPrivateAttr.MODE, value: GsaMode.TRANSPORT });
    expect(parseGsaAttributes(t)).toEqual({ nextSpis: [], direction: GsaDirection.SYMMETRIC, udpEncapsulationPort: 4500, mode: GsaMode.TRANSPORT });
    expect(parseGsaAttributes(tek).mode).toBeUndefined();
    const withNone = { ...tek, attributes: gsaAttributes({ nextSpis: [], addressPreservation: GsaAddressPreservation.NONE, mode: GsaMode.TRANSPORT }) };
    expect(parseGsaAttributes(withNone)).toMatchObject({ addressPreservation: GsaAddressPreservation.NONE, mode: GsaMode.TRANSPORT });
    const unknown = { ...tek, attributes: [{ type: GsaPrivateAttr.MODE, value: 3 }] };
    expect(codeOf(() => parseGsaAttributes(unknown))).toBe('BAD_VALUE');
    const zero = { ...tek, attributes: [{ type: GsaPrivateAttr.MODE, value: 0 }] };
    expect(codeOf(() => parseGsaAttributes(zero))).toBe('BAD_VALUE');
    const tlvMode = { ...tek, attributes: [{ type: GsaPrivateAttr.MODE, value: Uint8Array.of(0, 2) }] };
    expect(codeOf(() => parseGsaAttributes(tlvMode))).toBe('BAD_VALUE');
    const twice = { ...tek, attributes: [...gsaAttributes({ nextSpis: [], mode: 2 }), ...gsaAttributes({ nextSpis: [], mode: 2 })] };
    expect(codeOf(() => parseGsaAttributes(twice))).toBe('BAD_VALUE');
    const onKek = { ...kek, attributes: gsaAttributes({ nextSpis: [], mode: GsaMode.TUNNEL }) };
    expect(codeOf(() => parseGsaAttributes(onKek))).toBe('BAD_VALUE');
    // RFC 5374 §3.1: address preservation belongs to tunnel mode; in either attribute order.
    const preserved = gsaAttributes({ nextSpis: [], addressPreservation: GsaAddressPreservation.SOURCE_ONLY, mode: GsaMode.TRANSPORT });
    expect(codeOf(() => parseGsaAttributes({ ...tek, attributes: preserved }))).toBe('BAD_VALUE');
    expect(codeOf(() => parseGsaAttributes({ ...tek, attributes: [...preserved].reverse() }))).toBe('BAD_VALUE');
    expect(codeOf(() => gsaAttributes({ nextSpis: [], mode: 0x10000 }))).toBe('BAD_VALUE');
  });
});

describe('KD body (RFC 9838 §4.5)', () => {
  it('round-trips group and member key bags', () => {
    const enc = roundTrip(kdPayload, kd).bytes;
    const dec = kdPayload.decode(enc);
    expect(parseGroupKeyBag(dec.keyBags[0] as never).saKeys).toEqual([wrapped(0, 0, 72)]);
    expect(parseMemberKeyBag(dec.keyBags[2] as never)).toEqual({ wrapKeys: [wrapped(5, 0), wrapped(2, 5)], authKey: bytes(91, 0x30), senderIds: [3, 4] });
  });

  it('fails cleanly on every proper prefix not at a key bag boundary', () => {
    const enc = kdPayload.encode(kd);
    const cuts = boundaries(enc);
    for (let n = 0; n < enc.length; n++) {
      const code = codeOf(() => kdPayload.decode(enc.subarray(0, n)));
      if (cuts.has(n) && n > 0) expect(code).toBe('OK');
      else expect(code, `prefix ${n}`).not.toBe('OK');
    }
  });

  it('checks key bag semantics', () => {
    const twoTekKeys = groupKeyBag(GikeProtocol.ESP, bytes(4, 1), [wrapped(0, 0), wrapped(0, 0)]);
    expect(codeOf(() => parseGroupKeyBag(twoTekKeys))).toBe('BAD_VALUE');
    const twoKekKeys = groupKeyBag(GikeProtocol.GIKE_UPDATE, bytes(16, 1), [wrapped(0, 0), wrapped(0, 7)]);
    expect(codeOf(() => parseGroupKeyBag(twoKekKeys))).toBe('BAD_VALUE');
    expect(parseGroupKeyBag(twoKekKeys, { rekey: true }).saKeys).toHaveLength(2);
    expect(codeOf(() => parseGroupKeyBag(groupKeyBag(GikeProtocol.ESP, bytes(4, 1), [wrapped(3, 0)])))).toBe('BAD_VALUE');
    expect(codeOf(() => parseMemberKeyBag(memberKeyBag({ wrapKeys: [wrapped(0, 0)], senderIds: [] })))).toBe('BAD_VALUE');
    expect(codeOf(() => parseMemberKeyBag({ kind: 'member', attributes: [{ type: 3, value: bytes(5, 1) }] }))).toBe('BAD_VALUE');
    expect(codeOf(() => kdPayload.encode({ keyBags: [] }))).toBe('BAD_VALUE');
    expect(codeOf(() => kdPayload.decode(Uint8Array.from([3, 16, 0, 8, 0, 0, 0, 0])))).toBe('BAD_LENGTH');
  });
});

describe('G-IKEv2 payloads in the IKEv2 payload chain', () => {
  it('are registered, so a message carrying IDg, GSA and KD decodes to typed bodies', () => {
    const header = {
      spiI: bytes(8, 1),
      spiR: bytes(8, 2),
      majorVersion: 2,
      minorVersion: 0,
      exchangeType: IkeExchange.GSA_INBAND_REKEY,
      flags: 0,
      messageId: 5,
    };
    const msg = { header, payloads: [payload(IkePayload.IDg, idgKeyId('g1')), payload(IkePayload.GSA, gsa), payload(IkePayload.KD, kd)] };
    const dec = ikeMessage.decode(ikeMessage.encode(msg));
    expect(getPayload(dec.payloads, IkePayload.GSA)).toEqual(gsa);
    expect(getPayload(dec.payloads, IkePayload.KD)).toEqual(kd);
    expect(getPayload(dec.payloads, IkePayload.IDg)).toEqual(idgKeyId('g1'));
  });
});

describe('round trip over generated valid values', () => {
  const attr = fc.oneof(
    fc.record({ type: fc.integer({ min: 0, max: 0x7fff }), value: fc.integer({ min: 0, max: 0xffff }) }),
    fc.record({ type: fc.integer({ min: 0, max: 0x7fff }), value: fc.uint8Array({ maxLength: 40 }) }),
  );
  const addr = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
  const selector = fc.oneof(
    fc.record({ tsType: fc.constant(TsType.TS_IPV4_ADDR_RANGE), ipProtocol: fc.nat(255), startPort: fc.nat(0xffff), endPort: fc.nat(0xffff), startAddress: addr(4), endAddress: addr(4) }),
    fc.record({ tsType: fc.constant(TsType.TS_IPV6_ADDR_RANGE), ipProtocol: fc.nat(255), startPort: fc.nat(0xffff), endPort: fc.nat(0xffff), startAddress: addr(16), endAddress: addr(16) }),
  );
  const transform = fc.record({ type: fc.nat(255), id: fc.nat(0xffff), attributes: fc.array(attr, { maxLength: 3 }) });
  const saPolicy = (protocol: number, spiLen: number) =>
    fc.record({
      kind: fc.constant('sa' as const),
      protocol: fc.constant(protocol),
      spi: addr(spiLen),
      source: selector,
      destination: selector,
      transforms: fc.array(transform, { minLength: 1, maxLength: 5 }),
      attributes: fc.array(attr, { maxLength: 6 }),
    });
  const gsaArb = fc
    .tuple(
      fc.option(saPolicy(GikeProtocol.GIKE_UPDATE, 16), { nil: undefined }),
      fc.array(fc.oneof(saPolicy(GikeProtocol.ESP, 4), saPolicy(GikeProtocol.AH, 4)), { maxLength: 4 }),
      fc.option(fc.record({ kind: fc.constant('gw' as const), attributes: fc.array(attr, { maxLength: 6 }) }), { nil: undefined }),
    )
    .filter(([k, t]) => k !== undefined || t.length > 0)
    .map(([k, t, g]) => ({ policies: [...(k ? [k] : []), ...t, ...(g ? [g] : [])] }) as GsaPayload);
  const kdArb = fc
    .array(
      fc.oneof(
        fc.record({ kind: fc.constant('group' as const), protocol: fc.constant(GikeProtocol.ESP as number), spi: addr(4), attributes: fc.array(attr, { maxLength: 4 }) }),
        fc.record({ kind: fc.constant('group' as const), protocol: fc.constant(GikeProtocol.GIKE_UPDATE as number), spi: addr(16), attributes: fc.array(attr, { maxLength: 4 }) }),
        fc.record({ kind: fc.constant('member' as const), attributes: fc.array(attr, { maxLength: 8 }) }),
      ),
      { minLength: 1, maxLength: 6 },
    )
    .map((keyBags) => ({ keyBags }) as KdPayload);

  it('GSA: encode, decode, re-encode and encode-at-offset agree for any valid policy set', () => {
    fc.assert(fc.property(gsaArb, (v) => void roundTrip(gsaPayload, v)), { numRuns: 300 });
  });

  it('KD: likewise for any key bag list', () => {
    fc.assert(fc.property(kdArb, (v) => void roundTrip(kdPayload, v)), { numRuns: 300 });
  });
});

describe('hostile input', () => {
  const codecs: [string, PayloadBodyCodec<unknown>][] = [
    ['IDg', idgPayload as PayloadBodyCodec<unknown>],
    ['GSA', gsaPayload as PayloadBodyCodec<unknown>],
    ['KD', kdPayload as PayloadBodyCodec<unknown>],
  ];
  for (const [name, codec] of codecs) {
    it(`${name}: arbitrary bytes decode or throw CodecError, nothing else`, () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 300 }), (buf) => {
          codeOf(() => codec.decode(buf));
        }),
        { numRuns: 2000 },
      );
    });
  }

  it('mutated valid GSA/KD encodings decode or throw CodecError, and what decodes re-encodes', () => {
    const seeds = [gsaPayload.encode(gsa), kdPayload.encode(kd)];
    const pair = [gsaPayload, kdPayload] as PayloadBodyCodec<unknown>[];
    fc.assert(
      fc.property(fc.nat(1), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (which, edits) => {
        const buf = Uint8Array.from(seeds[which]!);
        for (const [pos, val] of edits) buf[pos % buf.length] = val;
        let v: unknown;
        try {
          v = pair[which]!.decode(buf);
        } catch (e) {
          expect(e).toBeInstanceOf(CodecError);
          return;
        }
        // Whatever decodes is structurally sound enough to encode again to the same length.
        expect(() => pair[which]!.encode(v)).not.toThrow();
        expect(pair[which]!.encodingLength(v)).toBe(buf.length);
      }),
      { numRuns: 3000 },
    );
  });
});
