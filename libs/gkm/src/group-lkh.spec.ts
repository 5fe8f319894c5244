import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { EncrId, GcAuthId, IkePayload, KwaId, TsType, getPayload, parseMemberKeyBag, type MemberKeyBag, type WrappedKey } from '@app/codec';
import { LkhTree, MemberKeys, type PathKey } from '@app/lkh';
import {
  initialRekeyState,
  onMemberLeft,
  planRekey,
  dataSaKeyLength,
  buildGsaRekey,
  groupPayloads,
  openGroupPayloads,
  openGsaRekey,
  rekeySaKeyLength,
  SIG_ALG_ECDSA_SHA256,
  wrapKey,
  type RekeySaParams,
} from '@app/gkm';

/**
 * The LKH tree (libs/lkh) carried in RFC 9838 payloads end to end: registration delivers a GM's
 * path as WRAP_KEYs (RFC 9838 Appendix A.2: KD(GP(SA1)(root{K_sa1}), MP(..., leaf{parent}, GSK_w{leaf})));
 * a leave is a signed GSA_REKEY whose member key bag carries the tree's wraps and whose Rekey SA
 * key is wrapped under the new root (Appendix A.4). Remaining GMs get the new Rekey SA; the
 * evicted one cannot, by our opener and by the LKH member code alike.
 */

const rnd = (n: number) => new Uint8Array(randomBytes(n));
const v4 = (...o: number[]) => Uint8Array.from(o);
const ts = (a: Uint8Array) => ({ tsType: TsType.TS_IPV4_ADDR_RANGE, ipProtocol: 17, startPort: 848, endPort: 848, startAddress: a, endAddress: a });
const shape = { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 256, kwaId: KwaId.KW_5649_256 };
const gcks = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const suite = { encrId: shape.encrId, keyBits: shape.keyBits, integId: 0 };

function rekeySa(spiByte: number): RekeySaParams {
  return {
    spi: new Uint8Array(16).fill(spiByte),
    source: ts(v4(10, 0, 0, 1)),
    destination: ts(v4(239, 0, 0, 1)),
    ...shape,
    gcauth: { id: GcAuthId.DIGITAL_SIGNATURE, signatureAlgorithm: SIG_ALG_ECDSA_SHA256 },
    lifetimeSeconds: 3600,
    keyMaterial: rnd(rekeySaKeyLength(shape)),
  };
}

/** The member key bag of a registration: leaf under GSK_w, each parent under its child. */
function pathWraps(path: readonly PathKey[], gskW: Uint8Array): WrappedKey[] {
  const out = [wrapKey(gskW, 0, path[0]!.keyId, path[0]!.key)];
  for (let i = 1; i < path.length; i++) out.push(wrapKey(path[i - 1]!.key, path[i - 1]!.keyId, path[i]!.keyId, path[i]!.key));
  return out;
}

describe('LKH through G-IKEv2 payloads', () => {
  const tree = LkhTree.build({ degree: 2, keySize: 32 }, 8);
  const sa1 = rekeySa(1);
  const members = new Map<number, MemberKeys>();

  it('registration gives each GM its Working Key Path and the Rekey SA key wrapped under the root', () => {
    for (let leaf = 0; leaf < 8; leaf++) {
      const gskW = rnd(32); // each GM's own IKE SA
      const path = tree.memberPath(leaf);
      const root = path[path.length - 1]!;
      const payloads = groupPayloads({
        rekey: sa1,
        rekeySaKeys: [wrapKey(root.key, root.keyId, 0, sa1.keyMaterial)],
        data: [],
        gskW,
        member: { wrapKeys: pathWraps(path, gskW), authKey: gcks.publicKey },
        registration: true,
      });
      const got = openGroupPayloads(payloads, { gskW, registration: true });
      expect(Buffer.from(got.rekey!.gskW)).toEqual(Buffer.from(sa1.keyMaterial.subarray(36)));
      const received = path.map((p) => ({ keyId: p.keyId, key: Buffer.from(got.wrapKeys.get(p.keyId)!) }));
      expect(received).toEqual(path);
      members.set(leaf, MemberKeys.fromPath({ degree: 2, keySize: 32, epoch: tree.epoch, path: received }));
    }
  });

  it('a leave: the others open the signed GSA_REKEY and reach the new Rekey SA; the evicted GM cannot', () => {
    const res = tree.leave(5);
    const sa2 = rekeySa(2);
    const newRoot = { keyId: tree.rootKeyId, key: tree.rootKey()! };
    const payloads = groupPayloads({
      rekey: sa2,
      rekeySaKeys: [wrapKey(newRoot.key, newRoot.keyId, 0, sa2.keyMaterial)],
      data: [],
      gskW: sa1.keyMaterial.subarray(36),
      member: { wrapKeys: [...res.rekey.wraps] },
      registration: false,
    });
    const kek = { enc: sa1.keyMaterial.subarray(0, 36), integ: new Uint8Array(0) };
    const msg = buildGsaRekey({ rekeySpi: sa1.spi, messageId: 1, payloads, suite, kek, signingKey: gcks.privateKey, random: rnd });

    for (const [leaf, keys] of members) {
      const r = openGsaRekey(msg, { rekeySpi: sa1.spi, suite, kek, authKey: gcks.publicKey, minMessageId: 0 });
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      const known = new Map(keys.path().map((p) => [p.keyId, p.key]));
      const open = () => openGroupPayloads(r.payloads, { gskW: sa1.keyMaterial.subarray(36), knownKeys: known, registration: false });
      // The WRAP_KEYs as decoded from the wire, for the LKH member code.
      const bag = getPayload(r.payloads, IkePayload.KD)!.keyBags.find((b) => b.kind === 'member') as MemberKeyBag;
      const wireWraps = parseMemberKeyBag(bag).wrapKeys;
      const lkhRekey = { epoch: res.rekey.epoch, rootKeyId: newRoot.keyId, wraps: wireWraps };
      if (leaf === 5) {
        expect(open, `evicted GM ${leaf}`).toThrow(/CANNOT_UNWRAP/);
        expect(() => keys.apply(lkhRekey)).toThrow(/EXCLUDED/);
        continue;
      }
      const got = open();
      expect(Buffer.from(got.rekey!.gskE), `GM ${leaf}`).toEqual(Buffer.from(sa2.keyMaterial.subarray(0, 36)));
      expect(keys.apply(lkhRekey).rootKey).toEqual(newRoot.key);
    }
  });
});

describe('forward access control on leave: KEK message, then TEKs under the new Rekey SA (RFC 9838 §3.2.1)', () => {
  it('remaining GMs follow both messages; the evicted GM reads neither the new KEK nor the new TEKs', () => {
    const tree = LkhTree.build({ degree: 4, keySize: 32 }, 6);
    const sa1 = rekeySa(0x51);
    const kek1 = { enc: sa1.keyMaterial.subarray(0, 36), integ: new Uint8Array(0) };
    const held = new Map([0, 1, 2, 3, 4, 5].map((leaf) => [leaf, new Map(tree.memberPath(leaf).map((p) => [p.keyId, p.key]))]));
    const policy = { atdSeconds: 15, dtdSeconds: 30, tekLifetimeSeconds: 3600, kekLifetimeSeconds: 7200, leave: { mode: 'immediate' as const }, transmissions: 2, retransmitIntervalMs: 1000 };
    const state = onMemberLeft({ ...initialRekeyState(0), lastMessageId: 11 }, 5_000);
    const plan = planRekey(state, policy, 5_000, 'leave');
    expect(plan.messages.map((m) => [m.rekeySa, m.messageId, m.newKek, m.newTeks])).toEqual([
      ['current', 12, true, false],
      ['new', 0, false, true],
    ]);

    const res = tree.leave(2);
    const sa2 = rekeySa(0x52);
    const root = { keyId: tree.rootKeyId, key: tree.rootKey()! };
    const first = buildGsaRekey({
      rekeySpi: sa1.spi,
      messageId: plan.messages[0]!.messageId,
      payloads: groupPayloads({ rekey: sa2, rekeySaKeys: [wrapKey(root.key, root.keyId, 0, sa2.keyMaterial)], data: [], gskW: sa1.keyMaterial.subarray(36), member: { wrapKeys: [...res.rekey.wraps] }, registration: false }),
      suite,
      kek: kek1,
      signingKey: gcks.privateKey,
      random: rnd,
    });
    const teks = [{ spi: 0xbeef, source: ts(v4(10, 0, 0, 5)), destination: ts(v4(239, 9, 9, 9)), encrId: EncrId.ENCR_AES_GCM_16, keyBits: 128, sn: 2, keyMaterial: rnd(dataSaKeyLength({ encrId: EncrId.ENCR_AES_GCM_16, keyBits: 128 })) }];
    const kek2 = { enc: sa2.keyMaterial.subarray(0, 36), integ: new Uint8Array(0) };
    const second = buildGsaRekey({
      rekeySpi: sa2.spi,
      messageId: plan.messages[1]!.messageId,
      payloads: groupPayloads({ data: teks, gskW: sa2.keyMaterial.subarray(36), registration: false }),
      suite,
      kek: kek2,
      signingKey: gcks.privateKey,
      random: rnd,
    });

    const excluded: number[] = [];
    for (const [leaf, keys] of held) {
      const r1 = openGsaRekey(first, { rekeySpi: sa1.spi, suite, kek: kek1, authKey: gcks.publicKey, minMessageId: 12 });
      expect(r1.ok).toBe(true); // everyone still holds the old KEK...
      if (!r1.ok) return;
      let newSa;
      try {
        newSa = openGroupPayloads(r1.payloads, { gskW: sa1.keyMaterial.subarray(36), knownKeys: keys, registration: false }).rekey!;
      } catch (e) {
        expect(leaf, `GM ${leaf} should have reached the new KEK`).toBe(2); // ...but only the evicted GM cannot go further
        expect(String(e)).toMatch(/CANNOT_UNWRAP/);
        // Without the new KEK it cannot even authenticate-decrypt the TEK message.
        const guess = openGsaRekey(second, { rekeySpi: sa2.spi, suite, kek: kek1, authKey: gcks.publicKey, minMessageId: 0 });
        expect(!guess.ok && guess.reason).toBe('INTEGRITY');
        excluded.push(leaf);
        continue;
      }
      const kekNew = { enc: newSa.gskE, integ: newSa.gskA };
      const r2 = openGsaRekey(second, { rekeySpi: newSa.spi, suite, kek: kekNew, authKey: gcks.publicKey, minMessageId: 0 });
      expect(r2.ok, `GM ${leaf}`).toBe(true);
      if (!r2.ok) return;
      const opened = openGroupPayloads(r2.payloads, { gskW: newSa.gskW, registration: false });
      expect(opened.data[0]!.encKey).toEqual(teks[0]!.keyMaterial);
    }
    expect(excluded).toEqual([2]);
  });
});
