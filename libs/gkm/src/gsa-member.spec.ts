import { generateKeyPairSync, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EncrId,
  GcAuthId,
  GsaAddressPreservation,
  GsaDirection,
  GsaMode,
  GsaPrivateAttr,
  IkePayload,
  IntegId,
  KwaId,
  NotifyType,
  TsType,
  getPayload,
  CodecError,
  IkeExchange,
  ikeMessage,
  ikePayloadRegistry,
  type WrappedKey,
} from '@app/codec';
import { prfAlgorithm, protectIkeMessage, unprotectIkeMessage } from '@app/crypto';
import {
  buildGsaRekey,
  dataSaKeyLength,
  deriveGskW,
  groupPayloads,
  groupSenderNotify,
  GroupPayloadError,
  openGroupPayloads,
  openGsaRekey,
  rekeySaKeyLength,
  registrationRefusal,
  SIG_ALG_ECDSA_SHA256,
  wrapKey,
  type DataSaParams,
  type RekeySaParams,
} from '@app/gkm';

const rnd = (n: number) => new Uint8Array(randomBytes(n));
const v4 = (...o: number[]) => Uint8Array.from(o);
const ts = (addr: Uint8Array, port: number) => ({ tsType: TsType.TS_IPV4_ADDR_RANGE, ipProtocol: 17, startPort: port, endPort: port, startAddress: addr, endAddress: addr });
const gcksKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

const rekeyShape = { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 256, kwaId: KwaId.KW_5649_256 };
function rekeySa(spiByte: number, initialMessageId = 0): RekeySaParams {
  return {
    spi: new Uint8Array(16).fill(spiByte),
    source: ts(v4(10, 0, 0, 1), 848),
    destination: ts(v4(239, 0, 0, 1), 848),
    ...rekeyShape,
    gcauth: { id: GcAuthId.DIGITAL_SIGNATURE, signatureAlgorithm: SIG_ALG_ECDSA_SHA256 },
    lifetimeSeconds: 3600,
    initialMessageId,
    keyMaterial: rnd(rekeySaKeyLength(rekeyShape)),
  };
}
function tek(spi: number, encrId: number = EncrId.ENCR_AES_GCM_16, integId?: number): DataSaParams {
  const shape = { encrId, keyBits: 128, ...(integId !== undefined ? { integId } : {}) };
  return {
    spi,
    source: { tsType: TsType.TS_IPV4_ADDR_RANGE, ipProtocol: 0, startPort: 0, endPort: 0xffff, startAddress: v4(0, 0, 0, 0), endAddress: v4(255, 255, 255, 255) },
    destination: ts(v4(239, 1, 1, 1), 5000),
    ...shape,
    sn: 2,
    lifetimeSeconds: 900,
    direction: GsaDirection.SYMMETRIC,
    addressPreservation: 4,
    keyMaterial: rnd(dataSaKeyLength(shape)),
  };
}

/** Serialise and parse the payloads, as they would cross the wire inside SK. */
function wire(payloads: ReturnType<typeof groupPayloads>) {
  const bytes = ikePayloadRegistry.encodeChain(payloads);
  return ikePayloadRegistry.decodeChain(payloads[0]!.type, bytes, 0, bytes.length, false);
}

describe('registration payloads, GCKS to GM', () => {
  const skD = rnd(32);
  const gskW = deriveGskW(prfAlgorithm(5), skD, KwaId.KW_5649_256);

  it('GSK_w is prf+(SK_d, "Key Wrap for G-IKEv2") sized for the KWA', () => {
    expect(gskW).toHaveLength(32);
    expect(deriveGskW(prfAlgorithm(5), skD, KwaId.KW_5649_128)).toEqual(gskW.subarray(0, 16));
  });

  it('a GM opens the Rekey SA, two TEKs, GW policy, its path keys, AUTH_KEY and Sender-IDs', () => {
    const r = rekeySa(0x11, 42);
    const t1 = tek(0x1000);
    const t2 = tek(0x2000, EncrId.ENCR_AES_CBC, IntegId.AUTH_HMAC_SHA2_256_128);
    const leaf = rnd(32);
    const parent = rnd(32);
    const wrapKeys: WrappedKey[] = [wrapKey(leaf, 7, 3, parent), wrapKey(gskW, 0, 7, leaf)]; // 7{3} before GSK_w{7}
    const payloads = wire(
      groupPayloads({
        rekey: r,
        data: [t1, t2],
        groupWide: { atd: 15, dtd: 30, senderIdBits: 8, policyToken: rnd(50) },
        gskW,
        member: { wrapKeys, authKey: gcksKey.publicKey, senderIds: [5] },
        registration: true,
      }),
    );
    const sut = openGroupPayloads(payloads, { gskW, registration: true });
    expect(sut.rekey?.gskE).toEqual(r.keyMaterial.subarray(0, 36));
    expect(sut.rekey?.gskW).toEqual(r.keyMaterial.subarray(36));
    expect(sut.rekey?.attributes.initialMessageId).toBe(42);
    expect(sut.rekey?.transforms.gcauth?.id).toBe(GcAuthId.DIGITAL_SIGNATURE);
    expect(sut.data.map((d) => d.spi)).toEqual([0x1000, 0x2000]);
    expect(sut.data[0]!.encKey).toEqual(t1.keyMaterial);
    expect(sut.data[1]!.encKey).toEqual(t2.keyMaterial.subarray(0, 16));
    expect(sut.data[1]!.integKey).toEqual(t2.keyMaterial.subarray(16));
    expect(sut.data[0]!.attributes.direction).toBe(GsaDirection.SYMMETRIC);
    expect(sut.groupWide).toMatchObject({ atd: 15, dtd: 30, senderIdBits: 8 });
    expect([...sut.wrapKeys.entries()]).toEqual([
      [7, leaf],
      [3, parent],
    ]);
    expect(sut.authKey?.export({ type: 'spki', format: 'der' })).toEqual(gcksKey.publicKey.export({ type: 'spki', format: 'der' }));
    expect(sut.senderIds).toEqual([5]);
  });

  it('the SA mode: transport is sent as MODE without address preservation; tunnel as before, with no MODE', () => {
    const transport = { ...tek(0x3000), mode: GsaMode.TRANSPORT, addressPreservation: GsaAddressPreservation.SOURCE_AND_DESTINATION };
    const tunnel = { ...tek(0x4000), mode: GsaMode.TUNNEL };
    const payloads = wire(groupPayloads({ rekey: rekeySa(0x12), data: [transport, tunnel], gskW, registration: true }));
    const gsa = getPayload(payloads, IkePayload.GSA) as { policies: { kind: string; attributes: { type: number; value: unknown }[] }[] };
    const types = gsa.policies.slice(1).map((p) => p.attributes.map((a) => a.type));
    expect(types[0]).toContain(GsaPrivateAttr.MODE);
    expect(types[0]).not.toContain(GsaPrivateAttr.ADDRESS_PRESERVATION);
    expect(types[1]).not.toContain(GsaPrivateAttr.MODE);
    expect(types[1]).toContain(GsaPrivateAttr.ADDRESS_PRESERVATION);
    const sut = openGroupPayloads(payloads, { gskW, registration: true });
    expect(sut.data.map((d) => [d.spi, d.attributes.mode, d.attributes.addressPreservation])).toEqual([
      [0x3000, GsaMode.TRANSPORT, undefined],
      [0x4000, undefined, GsaAddressPreservation.SOURCE_AND_DESTINATION],
    ]);
  });

  it('an AUTH_KEY met again is the same KeyObject; another key is another; a bad one is refused every time', () => {
    const open = (authKey: import('node:crypto').KeyObject) =>
      openGroupPayloads(wire(groupPayloads({ data: [tek(1)], gskW, member: { wrapKeys: [], authKey, senderIds: [] }, registration: true })), { gskW, registration: true }).authKey;
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey;
    const a = open(gcksKey.publicKey);
    expect(open(gcksKey.publicKey)).toBe(a);
    const b = open(other);
    expect(b).not.toBe(a);
    expect(b!.equals(other)).toBe(true);
    // The point's y changed on the wire: off the curve, so no key - every time (nothing cached).
    const spki = Buffer.from(gcksKey.publicKey.export({ type: 'spki', format: 'der' }));
    const payloads = groupPayloads({ data: [tek(1)], gskW, member: { wrapKeys: [], authKey: gcksKey.publicKey, senderIds: [] }, registration: true });
    const bytes = Buffer.from(ikePayloadRegistry.encodeChain(payloads));
    const at = bytes.indexOf(spki);
    expect(at).toBeGreaterThan(0);
    bytes[at + spki.length - 1]! ^= 1;
    const bad = ikePayloadRegistry.decodeChain(payloads[0]!.type, bytes, 0, bytes.length, false);
    for (let i = 0; i < 2; i++) {
      expect(() => openGroupPayloads(bad, { gskW, registration: true })).toThrow(/AUTH_KEY/);
    }
  });

  it('a GM with another IKE SA (another GSK_w) cannot open the keys', () => {
    const payloads = wire(groupPayloads({ data: [tek(1)], gskW, registration: true }));
    expect(() => openGroupPayloads(payloads, { gskW: rnd(32), registration: true })).toThrow(GroupPayloadError);
    try {
      openGroupPayloads(payloads, { gskW: rnd(32), registration: true });
    } catch (e) {
      expect((e as GroupPayloadError).code).toBe('CANNOT_UNWRAP');
    }
  });

  it('refuses missing payloads, key bags that match no policy, wrong key sizes and sender IDs in a rekey', () => {
    const ok = groupPayloads({ data: [tek(1)], gskW, registration: true });
    const code = (f: () => unknown) => {
      try {
        f();
        return 'OK';
      } catch (e) {
        return (e as GroupPayloadError).code;
      }
    };
    expect(code(() => openGroupPayloads([ok[0]!], { gskW, registration: true }))).toBe('MISSING_PAYLOAD');
    const otherSpi = groupPayloads({ data: [tek(2)], gskW, registration: true });
    expect(code(() => openGroupPayloads([ok[0]!, otherSpi[1]!], { gskW, registration: true }))).toBe('NO_KEY');
    const short = tek(1);
    const bad = groupPayloads({ data: [short], gskW, registration: true });
    const kd = getPayload(bad, IkePayload.KD)!;
    (kd.keyBags[0] as { attributes: { type: number; value: number | Uint8Array }[] }).attributes[0]!.value = new Uint8Array(
      Buffer.concat([Buffer.alloc(8), Buffer.from(wrapKey(gskW, 0, 0, rnd(12)).encryptedKey)]),
    );
    expect(code(() => openGroupPayloads(wire(bad), { gskW, registration: true }))).toBe('BAD_KEY_LENGTH');
    expect(() => groupPayloads({ data: [tek(1)], gskW, member: { senderIds: [1] }, registration: false })).toThrow(RangeError);
    const rekeyWithGcauth = groupPayloads({ rekey: rekeySa(1), data: [], gskW, registration: true });
    expect(code(() => openGroupPayloads(wire(rekeyWithGcauth), { gskW, registration: false }))).toBe('BAD_POLICY');
  });

  it('refuses a Rekey SA whose destination is not one multicast address, UDP, one port', () => {
    const unicast = { ...rekeySa(1), destination: ts(v4(10, 0, 0, 9), 848) };
    expect(() => openGroupPayloads(groupPayloads({ rekey: unicast, data: [], gskW, registration: true }), { gskW, registration: true })).toThrow(/BAD_POLICY/);
    const range = { ...rekeySa(1), destination: { ...ts(v4(239, 0, 0, 1), 848), endPort: 849 } };
    expect(() => openGroupPayloads(groupPayloads({ rekey: range, data: [], gskW, registration: true }), { gskW, registration: true })).toThrow(/BAD_POLICY/);
  });

  it('GSA_INBAND_REKEY: new TEKs over the IKE SA (exchange 42) reach the GM; LKH and multicast-only attributes are refused there', () => {
    const suite = { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 128, integId: 0 };
    const keys = { enc: rnd(20), integ: new Uint8Array(0) };
    const header = { spiI: rnd(8), spiR: rnd(8), majorVersion: 2, minorVersion: 0, exchangeType: IkeExchange.GSA_INBAND_REKEY, flags: 0, messageId: 3 };
    const t = tek(0x3000);
    const raw = protectIkeMessage(header, groupPayloads({ data: [t], gskW, registration: false }), suite, keys, rnd);
    const inner = unprotectIkeMessage(raw, ikeMessage.decode(raw), suite, keys);
    const sut = openGroupPayloads(inner, { gskW, registration: false, inband: true });
    expect(sut.data[0]!.encKey).toEqual(t.keyMaterial);
    const lkh = groupPayloads({ data: [tek(1)], gskW, member: { wrapKeys: [wrapKey(gskW, 0, 9, rnd(16))] }, registration: false });
    expect(() => openGroupPayloads(lkh, { gskW, registration: false, inband: true })).toThrow(/BAD_POLICY/);
    const withNext = groupPayloads({ data: [{ ...tek(1), nextSpis: [2] }], gskW, registration: false });
    expect(() => openGroupPayloads(withNext, { gskW, registration: false, inband: true })).toThrow(/BAD_POLICY/);
  });

  it('builds refusal and GROUP_SENDER notifications', () => {
    expect(registrationRefusal(NotifyType.AUTHORIZATION_FAILED).body).toEqual({ protocolId: 0, notifyType: 46, spi: new Uint8Array(0), data: new Uint8Array(0) });
    expect((groupSenderNotify(3).body as { data: Uint8Array }).data).toEqual(Uint8Array.from([0, 0, 0, 3]));
  });
});

describe('LKH exclusion through GSA_REKEY (RFC 9838 Appendix A.4)', () => {
  // Tree: root key 1 (A-D) and 2 (E-H); 5 covers E, F; 6 covers G, H; leaves 11 (E), 12 (F), 13 (G).
  const k = new Map<number, Uint8Array>([1, 2, 3, 4, 5, 6, 11, 12, 13].map((id) => [id, rnd(32)]));
  const paths: Record<string, number[]> = { A: [1], E: [2, 5, 11], F: [2, 5, 12], G: [2, 6, 13] };
  const known = (m: string) => new Map(paths[m]!.map((id) => [id, k.get(id)!]));
  const sa2 = rekeySa(0x22);
  const gskW2 = sa2.keyMaterial.subarray(36);
  const sa3 = rekeySa(0x33);
  const k15 = rnd(32);
  const k16 = rnd(32);
  // KD(GP(SA3)(1{K_sa3},15{K_sa3}), MP(6{15},16{15},11{16})): F's keys 12 and 5 are never used.
  const rekeyPayloads = groupPayloads({
    rekey: sa3,
    rekeySaKeys: [wrapKey(k.get(1)!, 1, 0, sa3.keyMaterial), wrapKey(k15, 15, 0, sa3.keyMaterial)],
    data: [],
    gskW: gskW2,
    member: { wrapKeys: [wrapKey(k.get(6)!, 6, 15, k15), wrapKey(k16, 16, 15, k15), wrapKey(k.get(11)!, 11, 16, k16)] },
    registration: false,
  });
  const suite = { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 256, integId: 0 };
  const kek = { enc: sa2.keyMaterial.subarray(0, 36), integ: new Uint8Array(0) };
  const msg = buildGsaRekey({ rekeySpi: sa2.spi, messageId: 9, payloads: rekeyPayloads, suite, kek, signingKey: gcksKey.privateKey, random: rnd });

  for (const m of ['A', 'E', 'G']) {
    it(`GM ${m} authenticates the rekey and learns the new Rekey SA`, () => {
      const r = openGsaRekey(msg, { rekeySpi: sa2.spi, suite, kek, authKey: gcksKey.publicKey, minMessageId: 9 });
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      const sut = openGroupPayloads(r.payloads, { gskW: gskW2, knownKeys: known(m), registration: false });
      expect(sut.rekey?.spi).toEqual(sa3.spi);
      expect(Buffer.concat([sut.rekey!.gskE, sut.rekey!.gskA, sut.rekey!.gskW])).toEqual(Buffer.from(sa3.keyMaterial));
    });
  }

  it('excluded GM F can decrypt the message but not the new Rekey SA key', () => {
    const r = openGsaRekey(msg, { rekeySpi: sa2.spi, suite, kek, authKey: gcksKey.publicKey, minMessageId: 9 });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(() => openGroupPayloads(r.payloads, { gskW: gskW2, knownKeys: known('F'), registration: false })).toThrow(/CANNOT_UNWRAP/);
  });
});

describe('hostile GSA/KD contents', () => {
  it('mutated payloads decode to a CodecError, or open to SAs, or are refused with a GroupPayloadError: nothing else', () => {
    const gskW = rnd(32);
    const r = rekeySa(0x44);
    const seed = ikePayloadRegistry.encodeChain(
      groupPayloads({
        rekey: r,
        data: [tek(1), tek(2, EncrId.ENCR_AES_CBC, IntegId.AUTH_HMAC_SHA2_256_128)],
        groupWide: { atd: 15, dtd: 30, senderIdBits: 8 },
        gskW,
        member: { wrapKeys: [wrapKey(gskW, 0, 9, rnd(32))], authKey: gcksKey.publicKey, senderIds: [1, 2] },
        registration: true,
      }),
    );
    let opened = 0;
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(seed.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 3 }), fc.boolean(), (edits, registration) => {
        const b = Uint8Array.from(seed);
        for (const [pos, x] of edits) b[pos] = b[pos]! ^ x;
        let payloads;
        try {
          payloads = ikePayloadRegistry.decodeChain(IkePayload.GSA, b, 0, b.length, false);
        } catch (e) {
          expect(e).toBeInstanceOf(CodecError);
          return;
        }
        try {
          openGroupPayloads(payloads, { gskW, registration });
          opened++;
        } catch (e) {
          expect(e).toBeInstanceOf(GroupPayloadError);
        }
      }),
      { numRuns: 3000, seed: 9838 },
    );
    expect(opened).toBeGreaterThan(0); // some edits land in opaque bytes the opener does not read
  });
});
