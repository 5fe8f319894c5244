import { X509Certificate, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import forge from 'node-forge';
import { describe, expect, it } from 'vitest';
import { IdType } from '@app/codec';
import { derChildren, derRead, seq, oid, octetString, boolTrue, tlv } from './der.js';
import { CryptoError } from './errors.js';
import { certReqHash, identityMatchesCertificate, issueCertificate, issuedBy, parseCertificate, validateChain, type Certificate } from './x509.js';

/*
 * The DER walk behind parseCertificate, against certificates made by three implementations
 * (ours, node-forge, strongSwan's pki), cross-checked with OpenSSL's reading (node:crypto
 * X509Certificate), and against truncated / mutated DER.
 *
 * strongSwan certificates below (pki, 2026-11-22, ten years):
 *   pki --self --type ecdsa --dn "C=CH, O=strongSwan Test, CN=sw ec root" --ca              -> ca
 *   pki --issue --cacert ca --san gm1.sw.example --san gm1@sw.example --san 192.0.2.44
 *       --flag serverAuth                                                                   -> leaf
 *   pki --issue --cacert ca --ca --pathlen 0 (CN=sw ec intermediate)                        -> int
 *   pki --issue --cacert int --san gm2.sw.example                                           -> leaf2
 *   pki --issue --cacert int --ca (CN=sw ec sub-intermediate)                               -> sub
 *   pki --issue --cacert sub --san gm3.sw.example                                           -> leaf3 (beyond int's pathlen 0)
 *   pki --self --type rsa --size 2048 (CN=sw rsa root) --ca                                 -> rsaca
 *   pki --issue --cacert rsaca --rsa-padding pss --san pss.sw.example                       -> pss
 */
const SW = {
  ca: `MIIBsTCCAVagAwIBAgIIVA2Hi966uFgwCgYIKoZIzj0EAwIwPDELMAkGA1UEBhMCQ0gxGDAWBgNVBAoTD3N0cm9uZ1N3YW4gVGVzdDETMBEGA1UEAxMKc3cgZWMgcm9vdDAeFw0yNjExMjIyMTMzMzNaFw0zNjExMTkyMTMzMzNaMDwxCzAJBgNVBAYTAkNIMRgwFgYDVQQKEw9zdHJvbmdTd2FuIFRlc3QxEzARBgNVBAMTCnN3IGVjIHJvb3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQK6B0V5JfLDZHAbEXsCfcXTnMq87ks9NcdsF4XPzMBx6RNkrQD93UvNi2eE6aYrafRFhaZSWVPYe2TDHTFjrmPo0IwQDAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQUd2lcuiSCqV2Nsy3o3+fD/BzEcf4wCgYIKoZIzj0EAwIDSQAwRgIhALe9EBxAXo3X+Gn7OZO+ziK8XS0+OR1R7UWHMeWo82EKAiEA5bTxTOew0n4nrnYHPE2ThGYfTdBDtGVPgiOC63w10w4=`,
  leaf: `MIIB2zCCAYGgAwIBAgIIKIrDdKp6K40wCgYIKoZIzj0EAwIwPDELMAkGA1UEBhMCQ0gxGDAWBgNVBAoTD3N0cm9uZ1N3YW4gVGVzdDETMBEGA1UEAxMKc3cgZWMgcm9vdDAeFw0yNjExMjIyMTMzMzNaFw0zNjExMTkyMTMzMzNaMEAxCzAJBgNVBAYTAkNIMRgwFgYDVQQKEw9zdHJvbmdTd2FuIFRlc3QxFzAVBgNVBAMTDmdtMS5zdy5leGFtcGxlMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEem5f92WiUvYprPks0MqHuuQtsgQj5qM9VpOe8XBW7DEyJINKKcxpBapRNGazskXdIR8kIgzX5ZH7WRYR6Q+nAaNpMGcwHwYDVR0jBBgwFoAUd2lcuiSCqV2Nsy3o3+fD/BzEcf4wLwYDVR0RBCgwJoIOZ20xLnN3LmV4YW1wbGWBDmdtMUBzdy5leGFtcGxlhwTAAAIsMBMGA1UdJQQMMAoGCCsGAQUFBwMBMAoGCCqGSM49BAMCA0gAMEUCIQDT4MqAt944uwm4+I6YbQj6Ix4O8wYQmnxDhTWRSzfx7wIgPIRE818fKWHeD7JtLeq84m1XRRin3V2C9qq396L5Dug=`,
  int: `MIIB2zCCAYKgAwIBAgIIEYhDIP6VYikwCgYIKoZIzj0EAwIwPDELMAkGA1UEBhMCQ0gxGDAWBgNVBAoTD3N0cm9uZ1N3YW4gVGVzdDETMBEGA1UEAxMKc3cgZWMgcm9vdDAeFw0yNjExMjIyMTMzNDJaFw0zNjExMTkyMTMzNDJaMEQxCzAJBgNVBAYTAkNIMRgwFgYDVQQKEw9zdHJvbmdTd2FuIFRlc3QxGzAZBgNVBAMTEnN3IGVjIGludGVybWVkaWF0ZTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABLZMdUB9jEa0HBmCQHkowIQpX9FDQcP+1hSk1abB//Dnoa1MGO/u6Sy1O9opkMHAGeAb6b6DgzksxsoQ1MVe19OjZjBkMBIGA1UdEwEB/wQIMAYBAf8CAQAwDgYDVR0PAQH/BAQDAgEGMB0GA1UdDgQWBBSm9H5M45t8VGM1JwNmrbBU5Su0wzAfBgNVHSMEGDAWgBR3aVy6JIKpXY2zLejf58P8HMRx/jAKBggqhkjOPQQDAgNHADBEAiAzhpCLV1025CYHwFK5tiDbnXiZ2qQYRp1R1Kg/qxCzAgIgIB1olwmHp43BNcaY1B5lMbv6/llAmw3gpgKD59CZk7s=`,
  leaf2: `MIIBuDCCAV6gAwIBAgIIbwhiE5JLFF4wCgYIKoZIzj0EAwIwRDELMAkGA1UEBhMCQ0gxGDAWBgNVBAoTD3N0cm9uZ1N3YW4gVGVzdDEbMBkGA1UEAxMSc3cgZWMgaW50ZXJtZWRpYXRlMB4XDTI2MTEyMjIxMzM0MloXDTM2MTExOTIxMzM0MlowQDELMAkGA1UEBhMCQ0gxGDAWBgNVBAoTD3N0cm9uZ1N3YW4gVGVzdDEXMBUGA1UEAxMOZ20yLnN3LmV4YW1wbGUwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQ7Pb8ZmbuE2WsAoB1qjFeddj0m8/j9nrbWPw7oP9D1IZHkfCFzZAQXUx862n7FfwmmH/mTLtGII0wZMuGs1tSuoz4wPDAfBgNVHSMEGDAWgBSm9H5M45t8VGM1JwNmrbBU5Su0wzAZBgNVHREEEjAQgg5nbTIuc3cuZXhhbXBsZTAKBggqhkjOPQQDAgNIADBFAiBouLqawSINaj64sAz1G5iuFng6Q1skb/m1TPsZmx+iyAIhAPfw68hOxZoRV48zoTXhkdvGRd00jJac0DzZylHTmjLW`,
  sub: `MIIB5jCCAYugAwIBAgIIQ2CH+aRuem0wCgYIKoZIzj0EAwIwRDELMAkGA1UEBhMCQ0gxGDAWBgNVBAoTD3N0cm9uZ1N3YW4gVGVzdDEbMBkGA1UEAxMSc3cgZWMgaW50ZXJtZWRpYXRlMB4XDTI2MTEyMjIxMzM0MloXDTM2MTExOTIxMzM0MlowSDELMAkGA1UEBhMCQ0gxGDAWBgNVBAoTD3N0cm9uZ1N3YW4gVGVzdDEfMB0GA1UEAxMWc3cgZWMgc3ViLWludGVybWVkaWF0ZTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABHWomDcGsJc41kFgZS5vqi7TWRm604sYUDlbJ5DUGBHYDt2JLKn4xaSBB2D8X761EQJEWi2p5VpjffJ3GYcG7YujYzBhMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMB0GA1UdDgQWBBTPhqnr78w3e+imn5ZGyiXNyefP2zAfBgNVHSMEGDAWgBSm9H5M45t8VGM1JwNmrbBU5Su0wzAKBggqhkjOPQQDAgNJADBGAiEAleMpetpy3n+sUdekdBzZM3ofdgWW3YTcBT3iHfzUrzQCIQCq6MtSpYS23rYN1MtLeqCUYwklmQFAqwfwrTd7qhDhng==`,
  leaf3: `MIIBvDCCAWKgAwIBAgIIaCJjk+6tZvgwCgYIKoZIzj0EAwIwSDELMAkGA1UEBhMCQ0gxGDAWBgNVBAoTD3N0cm9uZ1N3YW4gVGVzdDEfMB0GA1UEAxMWc3cgZWMgc3ViLWludGVybWVkaWF0ZTAeFw0yNjExMjIyMTMzNDJaFw0zNjExMTkyMTMzNDJaMEAxCzAJBgNVBAYTAkNIMRgwFgYDVQQKEw9zdHJvbmdTd2FuIFRlc3QxFzAVBgNVBAMTDmdtMy5zdy5leGFtcGxlMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEhnpNawzqDbNTPqsWuAHal2AQcD6pJsTHqZXZ6pPQ3eNuVwvpTphNPwfOgF+I3WCWz5zF8UDemgqCaYeDaj+23qM+MDwwHwYDVR0jBBgwFoAUz4ap6+/MN3vopp+WRsolzcnnz9swGQYDVR0RBBIwEIIOZ20zLnN3LmV4YW1wbGUwCgYIKoZIzj0EAwIDSAAwRQIhANkUJfLGMzSMY0OLhoxf5WAsnHAiyd9oimvSiuntkyGvAiBQ2/Zj8QwaEnZR0gvo2mFDXmEQq9lQjI2jaGgzrmjcVA==`,
  rsaca: `MIIDPjCCAiagAwIBAgIIBem+8I9HDZkwDQYJKoZIhvcNAQELBQAwPTELMAkGA1UEBhMCQ0gxGDAWBgNVBAoTD3N0cm9uZ1N3YW4gVGVzdDEUMBIGA1UEAxMLc3cgcnNhIHJvb3QwHhcNMjYxMTIyMjEzMzQwWhcNMzYxMTE5MjEzMzQwWjA9MQswCQYDVQQGEwJDSDEYMBYGA1UEChMPc3Ryb25nU3dhbiBUZXN0MRQwEgYDVQQDEwtzdyByc2Egcm9vdDCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAJhmWsD/kiTin+7c83ZM77p/lfjSzaHRJm+3X8vZLGn9F2OxY5tZN5+MG5YPzlZtiD9AszKRVw+F9CTg3JmO4qYA3Lw/AXVF/OkGDXQVWFuG/4HR4qpG8QvfPmIk40JOxxGyB3jkcl695NmpyTo+SXuELGITjEBZ3EQyLBQVIZ9e4bXJMTKOPzbB7aB9/7C86AC47LeSGLcmGjrooASVRxTrDyPSzGiF2FguZ3jBMzFMRbcvyq+20/fdgoOoysErWW1z3wRUqPlHPkusu6LUZDZgTfRnAu4Ti+TfbicnHddeC6qb8m/a3BpKZQqPliNLbHxVH7GifaAWRvS2xCd7qp0CAwEAAaNCMEAwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYwHQYDVR0OBBYEFMYa4m2QfNRxN/jD5qs5w280u5I+MA0GCSqGSIb3DQEBCwUAA4IBAQAg8dvRmnTnS6gxG0OozdBLw1d2g1Yz+IhxFQb6ut1d7bHAeUHVlO2rsYHwd2EnAFBNmDGxFYpBGn6iS1UddvSS3XE00ysi2nmtwlUmLzAx9mM3e3XN+dGFqJo/EXTtbsMVD2Rx6FnpFuHcEfnemqTvYG5nrYYS3wM8sKGejuNnDPWcbbIxQpn3+Ioh2h3rfXiTQw+gkzwha7n6UtkwySxtWHgWOTPEVW3TEfYmgPcf9UuAhJ7g2AuUnz59+kQGhroaCKvGaqYWNWguK0JJkJKSGyRc5fTH2Mlistp0zUa4YygfpU88Uuk2H2pyyzAkew5XCcZNUEnHNfZOVLbSh9Er`,
  pss: `MIIDpTCCAlmgAwIBAgIIdCs0Hi97bNkwQQYJKoZIhvcNAQEKMDSgDzANBglghkgBZQMEAgEFAKEcMBoGCSqGSIb3DQEBCDANBglghkgBZQMEAgEFAKIDAgEgMD0xCzAJBgNVBAYTAkNIMRgwFgYDVQQKEw9zdHJvbmdTd2FuIFRlc3QxFDASBgNVBAMTC3N3IHJzYSByb290MB4XDTI2MTEyMjIxMzM0MVoXDTM2MTExOTIxMzM0MVowQDELMAkGA1UEBhMCQ0gxGDAWBgNVBAoTD3N0cm9uZ1N3YW4gVGVzdDEXMBUGA1UEAxMOcHNzLnN3LmV4YW1wbGUwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQC9NMwctwFwhhvxmblEvLuXPRv+dPRUxA5Z+03wsuue4TV0XqOIzhOpDlppclDBzeSKEZKx8PwLOl6ayDEPqCLt9vMbGVU+EctEETSYEMuBBtV8ldT2b+9VoNUYYnF3ixqDErAg+8B+a8nyKAQKbVydHqcE9e4x0c3rgyL8VTe6KMpZsnX9r9XjVlQy9NVoLHW9JChelYmIkq5DXa8DsN2FodT2CLZcNVv/+b9m2wSP5AvfT5k6NujXQsRPm+45zua+qt0RTWMvqedlosQzSF6HOqtullJb/v+0rozXTwHf14bgXJ5/vOgZaKwBQGtRQY9ufGDg6Sh7pTKTDbSEf/5/AgMBAAGjPjA8MB8GA1UdIwQYMBaAFMYa4m2QfNRxN/jD5qs5w280u5I+MBkGA1UdEQQSMBCCDnBzcy5zdy5leGFtcGxlMEEGCSqGSIb3DQEBCjA0oA8wDQYJYIZIAWUDBAIBBQChHDAaBgkqhkiG9w0BAQgwDQYJYIZIAWUDBAIBBQCiAwIBIAOCAQEAjFZHMT1H2Y4e0leAnRnMph+rczFKeSWphM0YgyTtbxYB9g7Tn72zHRH0r2hpF12bNoZQhepH9k/AME7nHXPiaiLGMymAqKtVpJE+r01DSvtxKpM62nTYEDkaiO6R5vzOTCMelQK/pBeZ6WZzTj6J8jVZIE5sOUPoKtsKmvUfvBqN0KbpKM4ReERmiEC62Of0S7yNaeqIEz/WX5u+NbgRtH1tUmMA1K32Vej7vqHkwQbHaZimk0ohnHPmOnrFax7IoOJ0CZG4gTb3G8BuIPYpzUKB40qq5eki5M2HOCL3HeUCEaUHBKvjAH6Qa79TC40oc9PdTAopuRH6YzjFShljaA==`,
};

const SW_NOW = new Date('2027-01-01T00:00:00Z');
const sw = (k: keyof typeof SW): Certificate => parseCertificate(new Uint8Array(Buffer.from(SW[k], 'base64')));
const enc = new TextEncoder();
const fqdn = (s: string) => ({ idType: IdType.ID_FQDN, data: enc.encode(s) });

/** parseCertificate's outcome for hostile input: a certificate or a CryptoError BAD_CERTIFICATE, nothing else. */
function parseOrCode(der: Uint8Array): Certificate | string {
  try {
    return parseCertificate(der);
  } catch (e) {
    if (e instanceof CryptoError) return e.code;
    throw e;
  }
}

describe('parseCertificate (DER walk)', () => {
  it('reads strongSwan pki certificates as OpenSSL does: names, validity, CA flags, SAN, key', () => {
    for (const k of Object.keys(SW) as (keyof typeof SW)[]) {
      const sut = sw(k);
      const x = new X509Certificate(sut.der);
      expect(sut.notBefore).toBe(Date.parse(x.validFrom));
      expect(sut.notAfter).toBe(Date.parse(x.validTo));
      expect(sut.ca).toBe(x.ca);
      expect(Buffer.from(sut.spki)).toEqual(x.publicKey.export({ type: 'spki', format: 'der' }));
      expect(sut.publicKey.equals(x.publicKey)).toBe(true);
      expect(Buffer.from(sut.tbs).length).toBeLessThan(sut.der.length);
      expect(sut.x509.subject).toBe(x.subject);
    }
    const leaf = sw('leaf');
    expect(identityMatchesCertificate(fqdn('gm1.sw.example'), leaf)).toBe(true);
    expect(identityMatchesCertificate(fqdn('GM1.SW.Example'), leaf)).toBe(true);
    expect(identityMatchesCertificate(fqdn('gm2.sw.example'), leaf)).toBe(false);
    expect(identityMatchesCertificate({ idType: IdType.ID_RFC822_ADDR, data: enc.encode('gm1@SW.example') }, leaf)).toBe(true);
    expect(identityMatchesCertificate({ idType: IdType.ID_RFC822_ADDR, data: enc.encode('GM1@sw.example') }, leaf)).toBe(false);
    expect(identityMatchesCertificate({ idType: IdType.ID_IPV4_ADDR, data: Uint8Array.of(192, 0, 2, 44) }, leaf)).toBe(true);
    expect(identityMatchesCertificate({ idType: IdType.ID_IPV4_ADDR, data: Uint8Array.of(192, 0, 2, 45) }, leaf)).toBe(false);
    expect(identityMatchesCertificate({ idType: IdType.ID_DER_ASN1_DN, data: leaf.subjectDer }, leaf)).toBe(true);
    // SHA-1 of the CA's SubjectPublicKeyInfo (RFC 7296 §3.7), as OpenSSL exports it.
    const x = new X509Certificate(sw('ca').der);
    expect(Buffer.from(certReqHash(sw('ca')))).toEqual(Buffer.from(forge.md.sha1.create().update(x.publicKey.export({ type: 'spki', format: 'der' }).toString('binary')).digest().bytes(), 'binary'));
  });

  it('validates strongSwan chains (ECDSA, an intermediate, RSA-PSS) and honours pathLenConstraint', () => {
    expect(validateChain(sw('leaf'), [], [sw('ca')], SW_NOW)).toHaveLength(2);
    expect(validateChain(sw('leaf2'), [sw('int')], [sw('ca')], SW_NOW)).toHaveLength(3);
    expect(validateChain(sw('pss'), [], [sw('rsaca')], SW_NOW)).toHaveLength(2);
    expect(() => validateChain(sw('pss'), [], [sw('ca')], SW_NOW)).toThrow(/no chain/);
    // int has pathlen 0: sub (a CA) may not sit below it, so leaf3 has no valid path.
    expect(issuedBy(sw('sub'), sw('int'))).toBe(true);
    expect(issuedBy(sw('leaf3'), sw('sub'))).toBe(true);
    expect(() => validateChain(sw('leaf3'), [sw('sub'), sw('int')], [sw('ca')], SW_NOW)).toThrow(/no chain/);
    // … but sub as the anchor is fine.
    expect(validateChain(sw('leaf3'), [], [sw('sub')], SW_NOW)).toHaveLength(2);
    expect(() => validateChain(sw('leaf'), [], [sw('ca')], new Date('2026-11-01T00:00:00Z'))).toThrow(/validity/);
    // A leaf is no issuer.
    expect(issuedBy(sw('leaf2'), sw('leaf'))).toBe(false);
  });

  it('reads and validates node-forge certificates (RSA CA, RSA member with SAN)', () => {
    const mk = (cn: string, ca: boolean, issuer?: { cert: forge.pki.Certificate; key: forge.pki.rsa.PrivateKey }) => {
      const keys = forge.pki.rsa.generateKeyPair({ bits: 1024, e: 0x10001 });
      const cert = forge.pki.createCertificate();
      cert.publicKey = keys.publicKey;
      cert.serialNumber = '0' + randomBytes(8).toString('hex');
      cert.validity.notBefore = new Date('2026-01-01T00:00:00Z');
      cert.validity.notAfter = new Date('2028-01-01T00:00:00Z');
      cert.setSubject([{ name: 'organizationName', value: 'forge' }, { name: 'commonName', value: cn }]);
      cert.setIssuer(issuer ? issuer.cert.subject.attributes : cert.subject.attributes);
      cert.setExtensions([
        { name: 'basicConstraints', cA: ca, critical: true },
        { name: 'keyUsage', keyCertSign: ca, cRLSign: ca, digitalSignature: !ca, critical: true },
        { name: 'subjectKeyIdentifier' },
        ...(ca ? [] : [{ name: 'subjectAltName', altNames: [{ type: 2, value: cn }, { type: 7, ip: '198.51.100.9' }] }]),
      ]);
      cert.sign(issuer?.key ?? keys.privateKey, forge.md.sha256.create());
      const der = new Uint8Array(Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary'));
      return { cert, key: keys.privateKey, der };
    };
    const root = mk('forge root', true);
    const member = mk('gm.forge.example', false, root);
    const sut = parseCertificate(member.der);
    const anchor = parseCertificate(root.der);
    expect(anchor.ca).toBe(true);
    expect(sut.ca).toBe(false);
    expect(sut.notBefore).toBe(Date.parse('2026-01-01T00:00:00Z'));
    expect(validateChain(sut, [], [anchor], new Date('2027-01-01T00:00:00Z'))).toEqual([sut, anchor]);
    expect(identityMatchesCertificate(fqdn('gm.forge.example'), sut)).toBe(true);
    expect(identityMatchesCertificate({ idType: IdType.ID_IPV4_ADDR, data: Uint8Array.of(198, 51, 100, 9) }, sut)).toBe(true);
    expect(sut.publicKey.equals(new X509Certificate(member.der).publicKey)).toBe(true);
    expect(() => validateChain(sut, [], [sw('rsaca')], new Date('2027-01-01T00:00:00Z'))).toThrow(/no chain/);
  });
});

// ---- our own certificates, changed in one place each ------------------------------------------

const NOW = new Date('2026-06-01T00:00:00Z');
const DAY = 86_400_000;

function ecCa(cn: string): { key: KeyObject; cert: Certificate } {
  const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const der = issueCertificate({ subject: { cn }, publicKey: kp.publicKey, issuerKey: kp.privateKey, serial: randomBytes(8), notBefore: new Date(NOW.getTime() - DAY), notAfter: new Date(NOW.getTime() + DAY), ca: true });
  return { key: kp.privateKey, cert: parseCertificate(der) };
}

/** Re-signs a TBS (as DER) with the CA's key: a certificate the CA really issued, with the fields we chose. */
function signTbs(tbs: Uint8Array, caKey: KeyObject): Uint8Array {
  const alg = seq(oid('1.2.840.10045.4.3.2'));
  return seq(tbs, alg, tlv(0x03, Uint8Array.of(0), new Uint8Array(sign('sha256', tbs, caKey))));
}

/** The member's TBS fields with its extensions replaced. */
function tbsWithExtensions(member: Certificate, exts: Uint8Array[]): Uint8Array {
  const d = member.der;
  const tbs = derRead(d, derRead(d, 0).contentStart);
  const fields = derChildren(d, tbs);
  const keep = fields.filter((f) => f.tag !== 0xa3).map((f) => d.subarray(f.start, f.end));
  return seq(...keep, tlv(0xa3, seq(...exts)));
}

const ext = (id: string, critical: boolean, value: Uint8Array) =>
  critical ? seq(oid(id), boolTrue(), octetString(value)) : seq(oid(id), octetString(value));
const BC_LEAF = ext('2.5.29.19', true, seq());

function member(ca: { key: KeyObject; cert: Certificate }, dns = 'gm.example'): Certificate {
  const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return parseCertificate(
    issueCertificate({ subject: { cn: dns }, publicKey: kp.publicKey, issuerKey: ca.key, issuer: ca.cert, serial: randomBytes(8), notBefore: new Date(NOW.getTime() - DAY), notAfter: new Date(NOW.getTime() + DAY), ca: false, dns: [dns] }),
  );
}

const code = (f: () => unknown): string => {
  try {
    f();
    return 'ok';
  } catch (e) {
    return e instanceof CryptoError ? e.code : `not a CryptoError: ${String(e)}`;
  }
};

describe('certificate semantics kept from OpenSSL (X509_check_ca / check_issued / verify)', () => {
  it('refuses an unrecognized critical extension, accepts a non-critical one and a critical extKeyUsage', () => {
    const ca = ecCa('root');
    const m = member(ca);
    const unknownCritical = signTbs(tbsWithExtensions(m, [BC_LEAF, ext('1.3.6.1.4.1.99999.1', true, seq())]), ca.key);
    expect(code(() => parseCertificate(unknownCritical))).toBe('BAD_CERTIFICATE');
    const unknownPlain = parseCertificate(signTbs(tbsWithExtensions(m, [BC_LEAF, ext('1.3.6.1.4.1.99999.1', false, seq())]), ca.key));
    expect(validateChain(unknownPlain, [], [ca.cert], NOW)).toHaveLength(2);
    const eku = parseCertificate(signTbs(tbsWithExtensions(m, [BC_LEAF, ext('2.5.29.37', true, seq(oid('1.3.6.1.5.5.7.3.2')))]), ca.key));
    expect(validateChain(eku, [], [ca.cert], NOW)).toHaveLength(2);
    // Extensions as the real thing: the same one twice is refused.
    expect(code(() => parseCertificate(signTbs(tbsWithExtensions(m, [BC_LEAF, BC_LEAF]), ca.key)))).toBe('BAD_CERTIFICATE');
  });

  it('an issuer needs cA and, with keyUsage, keyCertSign; its subject must be the issuer Name; AKID must match its SKID', () => {
    const ca = ecCa('root');
    const m = member(ca);
    expect(issuedBy(m, ca.cert)).toBe(true);
    // The same CA name and key, re-issued (self-signed) with keyUsage digitalSignature only.
    const noCertSign = parseCertificate(
      signTbs(tbsWithExtensions(ca.cert, [ext('2.5.29.19', true, seq(boolTrue())), ext('2.5.29.15', true, tlv(0x03, Uint8Array.of(7, 0x80)))]), ca.key),
    );
    expect(noCertSign.ca).toBe(true);
    expect(issuedBy(m, noCertSign)).toBe(false);
    expect(() => validateChain(m, [], [noCertSign], NOW)).toThrow(/no chain/);
    // … and with cA false.
    const notCa = parseCertificate(signTbs(tbsWithExtensions(ca.cert, [ext('2.5.29.19', true, seq())]), ca.key));
    expect(issuedBy(m, notCa)).toBe(false);
    // The same CA key under another name: the issuer Name does not match.
    const renamed = parseCertificate(
      issueCertificate({ subject: { cn: 'other name' }, publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey, issuerKey: ca.key, serial: randomBytes(8), notBefore: new Date(NOW.getTime() - DAY), notAfter: new Date(NOW.getTime() + DAY), ca: true }),
    );
    expect(issuedBy(m, renamed)).toBe(false);
    // A member whose authorityKeyIdentifier names another key, though the CA's key signed it.
    const akid = parseCertificate(signTbs(tbsWithExtensions(m, [BC_LEAF, ext('2.5.29.35', false, seq(tlv(0x80, randomBytes(20))))]), ca.key));
    expect(issuedBy(akid, ca.cert)).toBe(false);
    const akidOk = parseCertificate(signTbs(tbsWithExtensions(m, [BC_LEAF, ext('2.5.29.35', false, seq(tlv(0x80, ca.cert.subjectKeyId!)))]), ca.key));
    expect(issuedBy(akidOk, ca.cert)).toBe(true);
  });

  it('refuses a signatureAlgorithm that differs from the signed one, extensions before v3, octets after the certificate', () => {
    const ca = ecCa('root');
    const m = member(ca);
    const d = m.der;
    const top = derChildren(d, derRead(d, 0));
    const [tbs, , sig] = top.map((n) => d.subarray(n.start, n.end));
    expect(code(() => parseCertificate(seq(tbs!, seq(oid('1.2.840.10045.4.3.3')), sig!)))).toBe('BAD_CERTIFICATE');
    expect(code(() => parseCertificate(Uint8Array.from([...d, 0])))).toBe('BAD_CERTIFICATE');
    const fields = derChildren(d, derRead(d, top[0]!.start));
    const v1 = seq(...fields.slice(1).map((f) => d.subarray(f.start, f.end)));
    expect(code(() => parseCertificate(signTbs(v1, ca.key)))).toBe('BAD_CERTIFICATE');
    // Without the extensions a v1 certificate parses: no CA flag, no SAN.
    const v1Plain = parseCertificate(signTbs(seq(...fields.slice(1, -1).map((f) => d.subarray(f.start, f.end))), ca.key));
    expect(v1Plain.ca).toBe(false);
    expect(validateChain(v1Plain, [], [ca.cert], NOW)).toHaveLength(2);
    expect(identityMatchesCertificate(fqdn('gm.example'), v1Plain)).toBe(false);
  });
});

describe('parseCertificate on hostile input', () => {
  const ca = ecCa('fuzz root');
  const m = member(ca, 'fuzz.example');
  const sources = [m.der, sw('leaf').der, sw('pss').der, sw('int').der];

  it('every truncation of a real certificate is BAD_CERTIFICATE', () => {
    for (const der of sources) {
      for (let n = 0; n < der.length; n++) expect(parseOrCode(der.subarray(0, n))).toBe('BAD_CERTIFICATE');
    }
  });

  it('mutated certificates parse to a certificate that does not validate, or are BAD_CERTIFICATE; nothing throws otherwise', () => {
    const anchors = [ca.cert, sw('ca'), sw('rsaca')];
    const swNowOr = (der: Uint8Array) => (der === m.der ? NOW : SW_NOW);
    fc.assert(
      fc.property(
        fc.constantFrom(...sources),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'insert', 'delete')), { minLength: 1, maxLength: 4 }),
        (der, edits) => {
          const b = Array.from(der);
          for (const [pos, v, op] of edits) {
            const i = pos % (b.length + 1);
            if (op === 'set' && i < b.length) b[i] = v;
            else if (op === 'insert') b.splice(i, 0, v);
            else if (op === 'delete' && i < b.length) b.splice(i, 1);
          }
          const mutated = Uint8Array.from(b);
          if (Buffer.from(mutated).equals(Buffer.from(der))) return;
          const r = parseOrCode(mutated);
          if (typeof r === 'string') {
            expect(r).toBe('BAD_CERTIFICATE');
            return;
          }
          expect(code(() => validateChain(r, [], anchors, swNowOr(der)))).toBe('BAD_CERTIFICATE');
          expect(['ok', 'BAD_KEY']).toContain(code(() => r.publicKey));
          expect(['ok', 'BAD_CERTIFICATE']).toContain(code(() => r.x509.subject));
          expect(typeof identityMatchesCertificate(fqdn('fuzz.example'), r)).toBe('boolean');
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('arbitrary octets and DER-shaped garbage are BAD_CERTIFICATE', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        expect(parseOrCode(bytes)).toBe('BAD_CERTIFICATE');
        expect(parseOrCode(seq(bytes))).toBe('BAD_CERTIFICATE');
        expect(parseOrCode(seq(seq(bytes), seq(oid('1.2.840.10045.4.3.2')), tlv(0x03, Uint8Array.of(0), bytes)))).toBe('BAD_CERTIFICATE');
      }),
      { numRuns: 500 },
    );
    // Lengths that claim more than there is, long-form and indefinite lengths, a multi-octet tag.
    for (const h of ['30', '3084ffffffff', '3080', '1f8101', '308200', '30820001']) {
      expect(parseOrCode(new Uint8Array(Buffer.from(h, 'hex')))).toBe('BAD_CERTIFICATE');
    }
  });
});
