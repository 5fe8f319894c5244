import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { EncrId, GsaAddressPreservation, GsaMode, IdType, TsType } from '@app/codec';
import type { RawDb } from '../keys/raw-db.js';
import { loadGroupConfig, padAllows, padRuleMatches, selectorOf, type PadRow } from './group-config.js';

const id = (idType: number, value: string) => ({ idType, value });
const rule = (r: Partial<PadRow>): PadRow => ({ id: 'r', kind: 'member', idType: 'san-dns', pattern: '*', role: 'receiver', pskSealed: null, updatedAt: '', ...r });

describe('PAD matching (RFC 4301 §4.4.3 after RFC 5374 §4.1.3)', () => {
  it('san-dns patterns match FQDN identities of certificate peers, * as any run, case-insensitive', () => {
    const sut = rule({ pattern: '*.rx.example.org' });
    expect(padRuleMatches(sut, id(IdType.ID_FQDN, 'tv1.rx.example.org'), true)).toBe(true);
    expect(padRuleMatches(sut, id(IdType.ID_FQDN, 'TV1.RX.example.org'), true)).toBe(true);
    expect(padRuleMatches(sut, id(IdType.ID_FQDN, 'rx.example.org'), true)).toBe(false);
    expect(padRuleMatches(sut, id(IdType.ID_FQDN, 'tv1.rx.example.org.evil'), true)).toBe(false);
    expect(padRuleMatches(sut, id(IdType.ID_RFC822_ADDR, 'tv1.rx.example.org'), true)).toBe(false);
    // Regular-expression characters in a pattern are literal.
    expect(padRuleMatches(rule({ pattern: 'a.b' }), id(IdType.ID_FQDN, 'axb'), true)).toBe(false);
  });

  it('a certificate rule never admits a PSK peer, and a PSK rule only a PSK peer, exactly', () => {
    expect(padRuleMatches(rule({ pattern: 'gm.example.org' }), id(IdType.ID_FQDN, 'gm.example.org'), false)).toBe(false);
    const psk = rule({ idType: 'psk', pattern: 'gm.example.org' });
    expect(padRuleMatches(psk, id(IdType.ID_FQDN, 'gm.example.org'), false)).toBe(true);
    expect(padRuleMatches(psk, id(IdType.ID_FQDN, 'gm.example.org'), true)).toBe(false);
    expect(padRuleMatches(psk, id(IdType.ID_FQDN, 'GM.example.org'), false)).toBe(false);
  });

  it('san-ip rules take a prefix; subject rules match DNs', () => {
    const sut = rule({ idType: 'san-ip', pattern: '10.1.0.0/16' });
    expect(padRuleMatches(sut, id(IdType.ID_IPV4_ADDR, '10.1.200.3'), true)).toBe(true);
    expect(padRuleMatches(sut, id(IdType.ID_IPV4_ADDR, '10.2.0.1'), true)).toBe(false);
    expect(padRuleMatches(sut, id(IdType.ID_IPV6_ADDR, '::1'), true)).toBe(false);
    expect(padRuleMatches(rule({ idType: 'subject', pattern: 'CN=gm*' }), id(IdType.ID_DER_ASN1_DN, 'CN=gm7, O=x'), true)).toBe(true);
  });

  it('roles: receiver rules refuse speakers, both admits either, first matching rule wins', () => {
    const pad = [rule({ pattern: '*.rx.example.org', role: 'receiver' }), rule({ id: 's', pattern: 'cam.example.org', role: 'both' })];
    expect(padAllows(pad, id(IdType.ID_FQDN, 'a.rx.example.org'), 'speaker', true)).toBeUndefined();
    expect(padAllows(pad, id(IdType.ID_FQDN, 'a.rx.example.org'), 'receiver', true)?.id).toBe('r');
    expect(padAllows(pad, id(IdType.ID_FQDN, 'cam.example.org'), 'speaker', true)?.id).toBe('s');
    expect(padAllows([rule({ kind: 'gcks', role: null })], id(IdType.ID_FQDN, 'x'), 'receiver', true)).toBeUndefined();
  });
});

describe('selectors from GSPD prefixes (RFC 7296 §3.13.1)', () => {
  it('turns a prefix, protocol and port into an address range', () => {
    expect(selectorOf('10.1.0.0/16', 17, 5000)).toEqual({
      tsType: TsType.TS_IPV4_ADDR_RANGE,
      ipProtocol: 17,
      startPort: 5000,
      endPort: 5000,
      startAddress: Uint8Array.from([10, 1, 0, 0]),
      endAddress: Uint8Array.from([10, 1, 255, 255]),
    });
    const any6 = selectorOf('ff3e::/16', null, null);
    expect(any6.tsType).toBe(TsType.TS_IPV6_ADDR_RANGE);
    expect([any6.ipProtocol, any6.startPort, any6.endPort]).toEqual([0, 0, 0xffff]);
    expect(Buffer.from(any6.endAddress).toString('hex')).toBe('ff3e' + 'ff'.repeat(14));
    expect(() => selectorOf('10.1.0.1/16', null, null)).toThrow(RangeError);
  });
});

describe('Data-Security SA templates from the policy rows: the ESP mode (RFC 5374 §3.1)', () => {
  function db(rows: { name: string; mode: string; addressPreservation: string }[]): RawDb {
    const d = new Database(':memory:');
    d.exec(`CREATE TABLE "groups" ("id" TEXT, "name" TEXT, "address" TEXT, "ipVersion" INTEGER, "serviceModel" TEXT, "maxSpeakers" INTEGER,
              "rekeyAddress" TEXT, "rekeyPort" INTEGER, "lkhDegree" INTEGER, "enabled" INTEGER, "updatedAt" TEXT);
            CREATE TABLE "policies" ("id" TEXT, "groupId" TEXT, "name" TEXT, "position" INTEGER, "sourcePrefix" TEXT, "destinationPrefix" TEXT,
              "protocol" INTEGER, "sourcePort" INTEGER, "destinationPort" INTEGER, "action" TEXT, "direction" TEXT, "mode" TEXT,
              "addressPreservation" TEXT, "udpEncapsulation" INTEGER, "espTransform" TEXT, "tekLifetime" INTEGER, "kekLifetime" INTEGER,
              "atd" INTEGER, "dtd" INTEGER, "rekeyRetransmissions" INTEGER, "leaveBehaviour" TEXT, "leaveBatchInterval" INTEGER, "updatedAt" TEXT);
            CREATE TABLE "pad_rules" ("id" TEXT, "groupId" TEXT, "kind" TEXT, "idType" TEXT, "pattern" TEXT, "role" TEXT, "pskSealed" TEXT,
              "createdAt" TEXT, "updatedAt" TEXT);`);
    d.prepare(`INSERT INTO "groups" VALUES ('g1', 'g', '239.1.2.3', 4, 'any-to-any', 1, NULL, NULL, 4, 1, 't')`).run();
    const ins = d.prepare(`INSERT INTO "policies" VALUES (?, 'g1', ?, ?, '0.0.0.0/0', '239.1.2.3/32', 17, NULL, 5000, 'protect', 'symmetric', ?, ?, 1,
                           'aes-gcm-256', 900, 3600, 15, 15, 2, 'immediate', NULL, 't')`);
    rows.forEach((r, i) => ins.run(`p${i}`, r.name, i, r.mode, r.addressPreservation));
    return d as unknown as RawDb;
  }

  it('carries tunnel or transport; a transport SA preserves no address', () => {
    const sut = loadGroupConfig(
      db([
        { name: 'tun', mode: 'tunnel', addressPreservation: 'source' },
        { name: 'tra', mode: 'transport', addressPreservation: 'none' },
      ]),
      { name: 'g' },
    )!;
    expect(sut.data.map((d) => [d.name, d.mode, d.addressPreservation, d.udpEncapsulationPort])).toEqual([
      ['tun', GsaMode.TUNNEL, GsaAddressPreservation.SOURCE_ONLY, 4500],
      ['tra', GsaMode.TRANSPORT, GsaAddressPreservation.NONE, 4500],
    ]);
    expect(sut.data[1]!.summary.addressPreservation).toBe(GsaAddressPreservation.NONE);
    // The token states what the SAs carry, so a member can hold the GCKS to it (sa-mapping.ts).
    expect(sut.data.map((d) => [d.summary.mode, d.summary.keyBits, d.summary.encrId])).toEqual([
      [GsaMode.TUNNEL, 256, EncrId.ENCR_AES_GCM_16],
      [GsaMode.TRANSPORT, 256, EncrId.ENCR_AES_GCM_16],
    ]);
  });
});
