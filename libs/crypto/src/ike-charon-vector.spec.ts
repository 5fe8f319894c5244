/**
 * Key-derivation and SK vectors taken from strongSwan 5.9.8 (charon) in the interop test, cases
 * sw-psk-cbc (AES-CBC-256 / HMAC-SHA2-256-128 / PRF-HMAC-SHA2-256 / Curve25519) and sw-psk-gcm
 * (AES-GCM-16-256 / PRF-HMAC-SHA2-256 / ECP-256), charon initiating with a PSK: the SPIs and nonces
 * of the exchange; the DH secret, SKEYSEED and SK_* keys charon logged (`ike = 4`); charon's
 * IKE_SA_INIT request and its IKE_AUTH request (sent to port 4500, non-ESP marker included) as
 * received. None of these bytes come from our encoder or our key derivation.
 */
import { describe, expect, it } from 'vitest';
import { AuthMethod, EncrId, IdType, IkePayload, IntegId, PrfId, getPayload, idPayload, ikeMessage, stripNonEspMarker } from '@app/codec';
import { CryptoError, deriveIkeSaKeys, prfAlgorithm, pskAuth, signedOctets, skKeyLengths, skeyseed, unprotectIkeMessage, type SkSuite } from '@app/crypto';

interface CharonVector {
  name: string;
  suite: SkSuite;
  spiI: string;
  spiR: string;
  ni: string;
  nr: string;
  gir: string;
  skeyseed: string;
  skd: string;
  skai: string;
  skar: string;
  skei: string;
  sker: string;
  skpi: string;
  skpr: string;
  initRequest: string;
  authRequest: string;
}

const VECTORS: CharonVector[] = [
  {
    name: 'sw-psk-cbc',
    suite: { encrId: EncrId.ENCR_AES_CBC, keyBits: 256, integId: IntegId.AUTH_HMAC_SHA2_256_128 },
    spiI:
      '74011d14fa77487b',
    spiR:
      '782e76a6cfc4e707',
    ni:
      '9ef4df57914bd94022d52e41555d894f835b7d7ab28a14dc71aeb4027b0a5313',
    nr:
      'd953863a1862f12d7fd2fba04ba25e2d0f2b0a26fd345a9f55028449e325bb81',
    gir:
      'fb902e32716e9ac476614ca2fc84f209a72dbcd85d631228e02f0c9b156b4845',
    skeyseed:
      'd366349658782421a664d1a9efc87531bf9d8caf3cf50eb326b2008c8c79a673',
    skd:
      'dc2ef2da69992d64fbf84278709cdcfdb83a1f8726a5995f7a851db6bc96c226',
    skai:
      '16c4d3a3d2158e51a1067b4107b8930da3c2d688b70f0dd24910905995e336de',
    skar:
      '928b965f617a49ce5a39e4dfc99ddc003ec51108792c24a5454cd1e1f5fd6425',
    skei:
      'bbb495ca0a3c7e6263b8d7744c1cb50540705510d04f55d4bfc1cf172f51641c',
    sker:
      'c59c9c6126dbde28db7370c135f3761dd618db7e37838ec474d11cfbf0da06a6',
    skpi:
      'afde9790c55ffa575c97b2936f12d062816fd1146ed069431b0d60385ea58184',
    skpr:
      '97373da00feffabeaf13889844f637db65ab213ec37045a756d8b780bcd8ff33',
    initRequest:
      '74011d14fa77487b00000000000000002120220800000000000000f0220000300000002c010100040300000c0100000c'
      + '800e0100030000080300000c0300000802000005000000080400001f28000028001f0000e4849d53b4f8ede6afc99b0e'
      + '8e9d57c9e6630a0a6be1bc3dd5042db9207ebc2d290000249ef4df57914bd94022d52e41555d894f835b7d7ab28a14dc'
      + '71aeb4027b0a53132900001c00004004124c85525d6d426e1b0e15e7bb044dbf707417212900001c0000400534e09ac6'
      + 'e00eca5349b4f1a470dc448a5ee5356d290000080000402e290000100000402f00020003000400050000000800004016',
    authRequest:
      '0000000074011d14fa77487b782e76a6cfc4e7072e2023080000000100000100230000e45a7dc1683af489a3bcaa33ae'
      + '66840276982d863fd9c400e0f80458d02a5990b970e1319bb44957b5a09ae640325ee8cc42bccc2d2b45595b46fd9348'
      + '7328e6ebaad7ef37b9674983c8e673588bc6b5ba42cceda73903571778208a5aae86a241d87992ab8b9e82be4e063dab'
      + '10da7aedb7170511dd298ae09d6a466acb0ae2d29e7bb41e50cefbc4e3ab874889c461a2158c10f82cde7e47650dc0c4'
      + 'e00096486d5f06aa80af3d872de251f7fc6129d43ad03a8725926c1df77919cbae36510cb24c3c8147dffef08af785d1'
      + 'aa17d8b47ccbcaadfe8e4a5bf0aee65641853ff6',
  },
  {
    name: 'sw-psk-gcm',
    suite: { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 256, integId: IntegId.NONE },
    spiI:
      '5ad9e9edbc527dcf',
    spiR:
      'c95b2701bf451d86',
    ni:
      '5690663e35437c0f469a4ede632315fca46d7a11fa4008f5b92a94494607f264',
    nr:
      'c9119815aba754cb399b8df045a7607e33b22880e08be44942e5510947c66845',
    gir:
      '85191bb82fba06ed4ddf55031acd91bd5f4c06e7009b67e3331ccb24f27f9833',
    skeyseed:
      '77c82d68081a49a33489c37b87e53621de0e590ca01e9b4c4313c1272d58fe3a',
    skd:
      '447729f179eea3f57aa5af810209c0f1156b7161a155bf54ad2d11fd14edd837',
    skai:
      '',
    skar:
      '',
    skei:
      'a50265ba88d6f044555f95ddf6f17959f1e99c3789559f8f0a993fa3fbab06db75600e06',
    sker:
      'c2e1374f033ce586a51f08b0cf9e111799f4d54548e2b2b53251d5680a402181e162ca4d',
    skpi:
      '301ab8ebf18d1e608e68c48b4d7faba081f57e13e4faa324da471ca5d63213be',
    skpr:
      '5b2ba4639fe00459948f7df1f1c0296a6a423f43431d59a654b3dd68801240a1',
    initRequest:
      '5ad9e9edbc527dcf00000000000000002120220800000000000001082200002800000024010100030300000c01000014'
      + '800e010003000008020000050000000804000013280000480013000076446d9b913fdcd72df3c2e0e27a4128557e0e9b'
      + '905e828cbe673db73a23db104746d8e71221610d07539ae3a388505b0d841651dae5df6b45f37c5b5edcbf8329000024'
      + '5690663e35437c0f469a4ede632315fca46d7a11fa4008f5b92a94494607f2642900001c000040042ca42a8283153a20'
      + '57181117fa8e5c724302277f2900001c000040055bc9e258d5233bbd010ce67e171098d3a9cc2c0e290000080000402e'
      + '290000100000402f00020003000400050000000800004016',
    authRequest:
      '000000005ad9e9edbc527dcfc95b2701bf451d862e20230800000001000000f0230000d4718167da356e36c64ba0473a'
      + 'faa387e1ef7664c016b1d53c43c0487cd32ed56f31c24f9267b7cfca5b8734b2de5eb14cd1c37ea6d4e8e94d43abc728'
      + '26d99128833fe64895c134b1e1182e36b1e8b4bf948277b7e86d45dcb6ecbe5a8fb88c4f2b6a31e156ce8321c648f17e'
      + '01adce25ab9131d5806ff53883c0af01be2cf6d0972c837a8fe4c93a9206d6a75b02345fbb73054fd0faedf7045735f3'
      + '5208c0d59fcb9ef6381238202e6fe341ea295b6264f10bb0c897b5b9ba0891f85e4fb93a0ae71d8e3b67341843e2bef8'
      + '69361258',
  },
];

const b = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const h = (x: Uint8Array) => Buffer.from(x).toString('hex');
const prf = prfAlgorithm(PrfId.PRF_HMAC_SHA2_256);

describe.each(VECTORS)('IKEv2 key derivation and SK payload against charon ($name)', (v) => {
  it('SKEYSEED and every SK_* key equal what charon derived (RFC 7296 §2.14)', () => {
    const seed = skeyseed(prf, b(v.ni), b(v.nr), b(v.gir));
    expect(h(seed)).toBe(v.skeyseed);
    const sut = deriveIkeSaKeys(prf, seed, { ni: b(v.ni), nr: b(v.nr), spiI: b(v.spiI), spiR: b(v.spiR), ...skKeyLengths(v.suite) });
    expect({ skd: h(sut.skd), skai: h(sut.skai), skar: h(sut.skar), skei: h(sut.skei), sker: h(sut.sker), skpi: h(sut.skpi), skpr: h(sut.skpr) }).toEqual({
      skd: v.skd,
      skai: v.skai,
      skar: v.skar,
      skei: v.skei,
      sker: v.sker,
      skpi: v.skpi,
      skpr: v.skpr,
    });
  });

  it("opens charon's IKE_AUTH request and its PSK AUTH verifies (§2.15)", () => {
    const raw = stripNonEspMarker(b(v.authRequest))!;
    const msg = ikeMessage.decode(raw);
    const keys = { enc: b(v.skei), integ: b(v.skai) };
    const inner = unprotectIkeMessage(raw, msg, v.suite, keys);
    const idi = getPayload(inner, IkePayload.IDi)!;
    expect(idi.idType).toBe(IdType.ID_FQDN);
    expect(new TextDecoder().decode(idi.data)).toBe(`${v.name}.charon.example`);
    const auth = getPayload(inner, IkePayload.AUTH)!;
    expect(auth.method).toBe(AuthMethod.PSK);
    const octets = signedOctets(prf, b(v.initRequest), b(v.nr), b(v.skpi), idPayload.encode(idi));
    expect(h(pskAuth(prf, new TextEncoder().encode(`interop secret for ${v.name}`), octets))).toBe(h(auth.data));
    for (const at of [20, 40, raw.length - 40, raw.length - 1]) {
      const bad = raw.slice();
      bad[at]! ^= 1;
      expect(() => unprotectIkeMessage(bad, ikeMessage.decode(bad), v.suite, keys)).toThrow(CryptoError);
    }
  });
});
