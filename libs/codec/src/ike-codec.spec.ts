import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CodecError,
  EncrId,
  IkeExchange,
  IkePayload,
  IkeProtocol,
  NotifyType,
  PrfId,
  TransformType,
  TRANSFORM_ATTR_KEY_LENGTH,
  UnsupportedCriticalPayloadError,
  addNonEspMarker,
  classifyPort4500,
  getNotify,
  getPayload,
  ikeMessage,
  ikePayloadRegistry,
  payload,
  saPayload,
  stripNonEspMarker,
  tsPayload,
  type IkeHeaderFields,
} from '@app/codec';

const hex = (h: string) => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));

/**
 * An IKE_SA_INIT request sent by strongSwan 5.9.8's charon to our responder in the interop test
 * (test/netns/strongswan.test.ts, received bytes as traced by test/support/ike-peer.ts):
 * SA (AES-GCM-16-256, PRF-HMAC-SHA2-256, ECP-256), KE, Nonce, NAT_DETECTION_*, FRAG_SUP,
 * SIGNATURE_HASH_ALGORITHMS, REDIRECT_SUPPORTED.
 */
const STRONGSWAN_IKE_SA_INIT =
  '7e9ea097e58b445300000000000000002120220800000000000001082200002800000024010100030300000c01000014' +
  '800e0100030000080200000500000008040000132800004800130000ac7d9b11ee09acaa1d451859c0fd0106ac7bb90d' +
  '71d0b96119cc476dff206c179ad4beba510b0a19692f27f1f8b82a1b32df9c116f6602d02a046c073302b84629000024' +
  'd3609cda18f2d6725bcc1f60c504d0cc67b7cc334a53cae6a4f37a26c0c47fb82900001c00004004f84fdc93f32ff115' +
  'dfe51fa4bb0bcb23a066a93a2900001c00004005b6651d553f4f7697caba690bfd5a1194549d5fba290000080000402e' +
  '290000100000402f00020003000400050000000800004016';

const header: IkeHeaderFields = {
  spiI: hex('0011223344556677'),
  spiR: new Uint8Array(8),
  majorVersion: 2,
  minorVersion: 0,
  exchangeType: IkeExchange.IKE_SA_INIT,
  flags: 0x08,
  messageId: 0,
};

describe('IKEv2 codec', () => {
  it('decodes a strongSwan IKE_SA_INIT and re-encodes it byte for byte', () => {
    const wire = hex(STRONGSWAN_IKE_SA_INIT);
    const sut = ikeMessage.decode(wire);
    expect(sut.header.exchangeType).toBe(IkeExchange.IKE_SA_INIT);
    const sa = getPayload(sut.payloads, IkePayload.SA)!;
    expect(sa.proposals[0]!.protocolId).toBe(IkeProtocol.IKE);
    expect(sa.proposals[0]!.transforms).toEqual([
      { type: TransformType.ENCR, id: EncrId.ENCR_AES_GCM_16, attributes: [{ type: TRANSFORM_ATTR_KEY_LENGTH, value: 256 }] },
      { type: TransformType.PRF, id: PrfId.PRF_HMAC_SHA2_256, attributes: [] },
      { type: TransformType.KE, id: 19, attributes: [] },
    ]);
    expect(getPayload(sut.payloads, IkePayload.KE)).toMatchObject({ group: 19 });
    expect(getPayload(sut.payloads, IkePayload.KE)!.data.length).toBe(64);
    expect(getPayload(sut.payloads, IkePayload.NONCE)!.nonce.length).toBe(32);
    expect(sut.header.flags).toBe(0x08);
    expect(sut.header.length).toBe(wire.length);
    expect(getNotify(sut.payloads, NotifyType.SIGNATURE_HASH_ALGORITHMS)).toBeDefined();
    const again = ikeMessage.encode({ header: sut.header, payloads: sut.payloads });
    expect(Buffer.from(again).toString('hex')).toBe(Buffer.from(wire).toString('hex'));
    for (let n = 0; n < wire.length; n++) {
      expect(() => ikeMessage.decode(wire.subarray(0, n))).toThrow(CodecError);
    }
  });

  it('round-trips a message at an offset, with TS, Delete and Vendor ID payloads', () => {
    const payloads = [
      payload(IkePayload.SA, {
        proposals: [
          {
            num: 1,
            protocolId: IkeProtocol.IKE,
            spi: new Uint8Array(0),
            transforms: [
              { type: TransformType.ENCR, id: EncrId.ENCR_AES_GCM_16, attributes: [{ type: TRANSFORM_ATTR_KEY_LENGTH, value: 256 }] },
              { type: TransformType.PRF, id: PrfId.PRF_HMAC_SHA2_256, attributes: [{ type: 7, value: hex('0102') }] },
            ],
          },
          { num: 2, protocolId: IkeProtocol.ESP, spi: hex('01020304'), transforms: [] },
        ],
      }),
      payload(IkePayload.TSi, {
        selectors: [{ tsType: 7, ipProtocol: 17, startPort: 0, endPort: 65535, startAddress: hex('0a000001'), endAddress: hex('0a0000ff') }],
      }),
      payload(IkePayload.DELETE, { protocolId: IkeProtocol.ESP, spiSize: 4, spis: [hex('01020304'), hex('05060708')] }),
      payload(IkePayload.VENDOR_ID, hex('deadbeef')),
    ];
    const len = ikeMessage.encodingLength({ payloads });
    const buf = new Uint8Array(len + 7);
    ikeMessage.encode({ header, payloads }, buf, 7);
    const sut = ikeMessage.decode(buf, 7);
    expect(sut.header.length).toBe(len);
    expect(sut.payloads.map((p) => p.type)).toEqual(payloads.map((p) => p.type));
    expect(getPayload(sut.payloads, IkePayload.SA)).toEqual(payloads[0]!.body);
    expect(getPayload(sut.payloads, IkePayload.TSi)).toEqual(payloads[1]!.body);
    expect(Buffer.from(ikeMessage.encode(sut)).equals(Buffer.from(buf.subarray(7)))).toBe(true);
  });

  it('skips unknown non-critical payloads and refuses unknown critical ones (RFC 7296 §2.5)', () => {
    const nonce = payload(IkePayload.NONCE, { nonce: new Uint8Array(32) });
    const unknown = { type: 200, critical: false, body: hex('0102'), unknown: true };
    const wire = ikeMessage.encode({ header, payloads: [unknown, nonce] });
    const sut = ikeMessage.decode(wire);
    expect(sut.payloads[0]!.unknown).toBe(true);
    expect(getPayload(sut.payloads, IkePayload.NONCE)!.nonce.length).toBe(32);
    const critical = ikeMessage.encode({ header, payloads: [{ ...unknown, critical: true }, nonce] });
    try {
      ikeMessage.decode(critical);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(UnsupportedCriticalPayloadError);
      expect((e as UnsupportedCriticalPayloadError).payloadType).toBe(200);
    }
  });

  it('refuses inconsistent lengths with typed errors', () => {
    const wire = ikeMessage.encode({ header, payloads: [payload(IkePayload.NONCE, { nonce: new Uint8Array(16) })] });
    const longer = new Uint8Array(wire.length + 1);
    longer.set(wire);
    expect(() => ikeMessage.decode(longer)).toThrow(/TRAILING_BYTES/);
    const badLen = wire.slice();
    badLen[28 + 3] = 3; // payload length below the generic header
    expect(() => ikeMessage.decode(badLen)).toThrow(/BAD_LENGTH/);
    const shortNonce = ikeMessage.encode({ header, payloads: [payload(IkePayload.NONCE, { nonce: new Uint8Array(8) })] });
    expect(() => ikeMessage.decode(shortNonce)).toThrow(/BAD_LENGTH/);
    const v1 = wire.slice();
    v1[17] = 0x10;
    expect(() => ikeMessage.decode(v1)).toThrow(/BAD_VALUE/);
    expect(() => saPayload.decode(hex('00000008010100ff'))).toThrow(CodecError);
    expect(() => tsPayload.decode(hex('01000000090000100000ffff'))).toThrow(/UNKNOWN_TYPE/);
  });

  it('frames IKE on port 4500 with the non-ESP marker (RFC 3948 §2.2)', () => {
    const wire = ikeMessage.encode({ header, payloads: [] });
    const d = addNonEspMarker(wire);
    expect(classifyPort4500(d)).toBe('ike');
    expect(stripNonEspMarker(d)).toEqual(wire);
    expect(classifyPort4500(Uint8Array.of(0xff))).toBe('keepalive');
    expect(classifyPort4500(hex('0000100100000001'))).toBe('esp');
    expect(classifyPort4500(hex('000000'))).toBe('invalid');
    expect(stripNonEspMarker(hex('0000100100000001'))).toBeUndefined();
  });

  it('accepts only a decode or a CodecError on arbitrary and mutated input', () => {
    const golden = hex(STRONGSWAN_IKE_SA_INIT);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 400 }),
          fc.tuple(fc.nat(golden.length - 1), fc.integer({ min: 1, max: 255 })).map(([at, x]) => {
            const m = golden.slice();
            m[at]! ^= x;
            return m;
          }),
        ),
        (bytes) => {
          try {
            ikeMessage.decode(bytes);
          } catch (e) {
            if (!(e instanceof CodecError)) throw e;
          }
        },
      ),
      { numRuns: 3000 },
    );
    expect(ikePayloadRegistry.has(IkePayload.SA)).toBe(true);
  });
});
