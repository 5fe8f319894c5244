import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  CodecError,
  gsaPayload,
  idgPayload,
  kdPayload,
  parseGroupKeyBag,
  parseGsaAttributes,
  parseGsaTransforms,
  parseGwAttributes,
  parseMemberKeyBag,
  wrappedKey,
  type WrappedKey,
  type GsaGwPolicy,
  type GsaSaPolicy,
  type GroupKeyBag,
  type MemberKeyBag,
} from '@app/codec';

/**
 * Golden vectors built by make-vectors.py without our encoder: scapy's IKEv2 implementation for
 * the reused RFC 7296 substructures (ID body, transforms, traffic selectors) and hand packing of the
 * RFC 9838 framing from the RFC's figures. We decode them, check every field, and re-encode to the
 * same bytes; every proper prefix that does not end on a substructure boundary must be refused.
 */
const vectors = JSON.parse(readFileSync(new URL('./vectors.json', import.meta.url), 'utf8')) as {
  idg_key_id: { hex: string; value: { idType: number; data: string } };
  gsa_kek_tek_gw: { hex: string; expect: Record<string, Record<string, string | number>> };
  kd_group_and_member: { hex: string; expect: { kekSaKey: string; tekSaKey: string; wrapKeys: string[]; authKey: string; senderIds: number[] } };
};

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const fromHex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const wkHex = (w: WrappedKey) => hex(wrappedKey.encode(w));

function prefixesFail(decode: (b: Uint8Array) => unknown, enc: Uint8Array, boundaries: Set<number>): void {
  for (let n = 0; n < enc.length; n++) {
    if (boundaries.has(n) && n > 0) continue;
    expect(() => decode(enc.subarray(0, n)), `prefix ${n}`).toThrow(CodecError);
  }
}

function topLevelBoundaries(enc: Uint8Array): Set<number> {
  const out = new Set<number>();
  for (let o = 0; o < enc.length; ) {
    o += (enc[o + 2]! << 8) | enc[o + 3]!;
    out.add(o);
  }
  return out;
}

describe('RFC 9838 golden vectors (scapy + hand-packed)', () => {
  it('IDg: ID_KEY_ID body', () => {
    const enc = fromHex(vectors.idg_key_id.hex);
    const v = idgPayload.decode(enc);
    expect(v.idType).toBe(vectors.idg_key_id.value.idType);
    expect(hex(v.data)).toBe(vectors.idg_key_id.value.data);
    expect(hex(idgPayload.encode(v))).toBe(vectors.idg_key_id.hex);
    for (let n = 0; n < 5; n++) expect(() => idgPayload.decode(enc.subarray(0, n))).toThrow(CodecError);
  });

  it('GSA: KEK + TEK + GW policy', () => {
    const enc = fromHex(vectors.gsa_kek_tek_gw.hex);
    const v = gsaPayload.decode(enc);
    expect(v.policies.map((p) => p.kind)).toEqual(['sa', 'sa', 'gw']);
    const [kek, tek, gw] = v.policies as [GsaSaPolicy, GsaSaPolicy, GsaGwPolicy];
    const ek = vectors.gsa_kek_tek_gw.expect;

    expect(hex(kek.spi)).toBe(ek.kek!.spi);
    const kt = parseGsaTransforms(kek);
    expect(kt.encr).toEqual({ id: ek.kek!.encr, keyLength: ek.kek!.keyLength });
    expect(kt.kwa).toBe(ek.kek!.kwa);
    expect(kt.gcauth?.id).toBe(ek.kek!.gcauth);
    expect(hex(kt.gcauth!.signatureAlgorithm!)).toBe(ek.kek!.signatureAlgorithm);
    expect(parseGsaAttributes(kek)).toEqual({ keyLifetime: ek.kek!.keyLifetime, initialMessageId: ek.kek!.initialMessageId, nextSpis: [] });

    expect(hex(tek.spi)).toBe(ek.tek!.spi);
    expect(parseGsaTransforms(tek)).toEqual({ encr: { id: ek.tek!.encr, keyLength: ek.tek!.keyLength }, sn: ek.tek!.sn });
    expect(parseGsaAttributes(tek)).toEqual({
      keyLifetime: ek.tek!.keyLifetime,
      nextSpis: [],
      direction: ek.tek!.direction,
      addressPreservation: ek.tek!.addressPreservation,
      udpEncapsulationPort: ek.tek!.udpEncapsulationPort,
    });
    expect(hex(tek.source.startAddress)).toBe(ek.tek!.srcStart);
    expect(hex(tek.source.endAddress)).toBe(ek.tek!.srcEnd);
    expect(hex(tek.destination.startAddress)).toBe(ek.tek!.dst);
    expect(tek.destination.startPort).toBe(ek.tek!.dstPort);

    expect(parseGwAttributes(gw)).toEqual(ek.gw);
    expect(hex(gsaPayload.encode(v))).toBe(vectors.gsa_kek_tek_gw.hex);
    prefixesFail((b) => gsaPayload.decode(b), enc, topLevelBoundaries(enc));
  });

  it('KD: Rekey SA and ESP group key bags, member key bag', () => {
    const enc = fromHex(vectors.kd_group_and_member.hex);
    const v = kdPayload.decode(enc);
    const [kekBag, tekBag, member] = v.keyBags as [GroupKeyBag, GroupKeyBag, MemberKeyBag];
    const ek = vectors.kd_group_and_member.expect;
    expect(parseGroupKeyBag(kekBag).saKeys.map(wkHex)).toEqual([ek.kekSaKey]);
    expect(parseGroupKeyBag(tekBag).saKeys.map(wkHex)).toEqual([ek.tekSaKey]);
    const m = parseMemberKeyBag(member);
    expect(m.wrapKeys.map(wkHex)).toEqual(ek.wrapKeys);
    expect(hex(m.authKey!)).toBe(ek.authKey);
    expect(m.senderIds).toEqual(ek.senderIds);
    expect(hex(kdPayload.encode(v))).toBe(vectors.kd_group_and_member.hex);
    prefixesFail((b) => kdPayload.decode(b), enc, topLevelBoundaries(enc));
  });
});
