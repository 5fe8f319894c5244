/**
 * IKEv2 interop against strongSwan's charon (issue 5), root only, in two network namespaces on a
 * bridge: charon in one, our compiled peer (test/support/ike-peer.ts) in the other.
 * Matrix: {our initiator -> charon responder, charon initiator -> our responder}
 *       x {PSK, ECDSA P-256 certificates (our CA, identity in SAN dNSName)}
 *       x {AES-GCM-16-256/PRF-SHA256/ECP-256, AES-CBC-256/HMAC-SHA-256-128/PRF-SHA256/Curve25519},
 * plus RSA certificates both ways, RFC 4754 ECDSA (method 9, no SIGNATURE_HASH_ALGORITHMS), and
 * charon asking for a CHILD_SA (refused with NO_PROPOSAL_CHOSEN, the IKE SA stays), and charon
 * demanding a COOKIE (RFC 7296 §2.6) that our initiator echoes, and IPv6 both ways (charon must
 * see no NAT, which checks our NAT_DETECTION hashes).
 * Each case asserts: our side reports the SA; `swanctl --list-sas` shows it ESTABLISHED with our
 * SPIs and the proposal; charon's log names the AUTH method it verified for our identity; every
 * SK_* key charon logged (ike = 4) equals ours byte for byte; and charon's Delete reaches our SA.
 * IKE SAs are childless (RFC 6023) unless stated. Ports: charon floats to 4500 (MOBIKE) when it
 * initiates; one of our initiations starts on 4500 with the non-ESP marker.
 */
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EncrId, IntegId, KeGroup, PrfId } from '@app/codec';
import { issueCertificate, parseCertificate, type Certificate } from '@app/crypto';
import type { IkeProposalConfig } from '@app/gkm';
import { PROPOSAL_CBC_X25519, PROPOSAL_GCM_ECP256 } from '../support/ike-fixtures.js';
import type { InitiateCommand, PeerConfig } from '../support/ike-peer.js';
import { assertBuilt, JsonLines, NetnsLab } from '../support/netns.js';
import { Charon, strongswanSkipReason } from '../support/strongswan.js';
import { tempDir } from '../support/temp-dir.js';

const reason = strongswanSkipReason();
if (reason) console.log(`[netns] strongswan.test.ts skipped: ${reason}`);

const PEER = fileURLToPath(new URL('../../dist/test/support/ike-peer.js', import.meta.url));
const CHARON_IP = '10.77.0.1';
const OUR_IP = '10.77.0.2';
const CHARON_IP6 = 'fd77::1';
const OUR_IP6 = 'fd77::2';
const CHARON_ID = 'charon.example';
const GCKS_ID = 'gcks.groupsec.example';

interface Case {
  name: string;
  dir: 'we-initiate' | 'charon-initiates';
  auth: 'psk' | 'cert';
  proposal: IkeProposalConfig;
  swProposal: string;
  addr: string;
  port: number;
  /** Key types for certificate cases (default ECDSA P-256 on both sides). */
  ourKey?: 'ec' | 'rsa';
  charonKey?: 'ec' | 'rsa';
  /** Our initiator announces SIGNATURE_HASH_ALGORITHMS (default true). */
  hashes?: boolean;
  /** Charon initiates with a CHILD_SA request. */
  child?: boolean;
  /** How charon's log says it verified OUR AUTH. */
  ourAuthInLog: string;
  /** Leave a half-open SA at charon first, so it answers with a COOKIE (must be the last case). */
  cookie?: boolean;
}

const GCM = { proposal: PROPOSAL_GCM_ECP256, swProposal: 'aes256gcm16-prfsha256-ecp256' };
const CBC = { proposal: PROPOSAL_CBC_X25519, swProposal: 'aes256-sha256-prfsha256-x25519' };
const PSK_LOG = 'pre-shared key';
const ECDSA14 = 'ECDSA_WITH_SHA256_DER';
const CASES: Case[] = [
  { name: 'we-psk-gcm', dir: 'we-initiate', auth: 'psk', ...GCM, addr: '10.77.0.10', port: 500, ourAuthInLog: PSK_LOG },
  { name: 'we-psk-cbc', dir: 'we-initiate', auth: 'psk', ...CBC, addr: '10.77.0.11', port: 500, ourAuthInLog: PSK_LOG },
  { name: 'we-cert-gcm', dir: 'we-initiate', auth: 'cert', ...GCM, addr: '10.77.0.12', port: 4500, ourAuthInLog: ECDSA14 },
  { name: 'we-cert-cbc', dir: 'we-initiate', auth: 'cert', ...CBC, addr: '10.77.0.13', port: 500, ourAuthInLog: ECDSA14 },
  { name: 'sw-psk-gcm', dir: 'charon-initiates', auth: 'psk', ...GCM, addr: '10.77.0.14', port: 500, ourAuthInLog: PSK_LOG },
  { name: 'sw-psk-cbc', dir: 'charon-initiates', auth: 'psk', ...CBC, addr: '10.77.0.15', port: 500, ourAuthInLog: PSK_LOG },
  { name: 'sw-cert-gcm', dir: 'charon-initiates', auth: 'cert', ...GCM, addr: '10.77.0.16', port: 500, ourAuthInLog: ECDSA14 },
  { name: 'sw-cert-cbc', dir: 'charon-initiates', auth: 'cert', ...CBC, addr: '10.77.0.17', port: 500, ourAuthInLog: ECDSA14 },
  // Beyond the matrix.
  { name: 'we-rfc4754-gcm', dir: 'we-initiate', auth: 'cert', ...GCM, addr: '10.77.0.18', port: 500, hashes: false, ourAuthInLog: 'ECDSA-256 signature' },
  { name: 'we-rsa-cbc', dir: 'we-initiate', auth: 'cert', ...CBC, addr: '10.77.0.19', port: 500, ourKey: 'rsa', charonKey: 'rsa', ourAuthInLog: 'RSA_EMSA_PKCS1_SHA2_256' },
  { name: 'sw-rsa-gcm', dir: 'charon-initiates', auth: 'cert', ...GCM, addr: '10.77.0.20', port: 500, ourKey: 'rsa', charonKey: 'rsa', ourAuthInLog: 'RSA_EMSA_PKCS1_SHA2_256' },
  { name: 'sw-child-psk', dir: 'charon-initiates', auth: 'psk', ...GCM, addr: '10.77.0.21', port: 500, child: true, ourAuthInLog: PSK_LOG },
  {
    name: 'we-psk-prf384',
    dir: 'we-initiate',
    auth: 'psk',
    proposal: { ...PROPOSAL_GCM_ECP256, keyBits: 128, prfId: PrfId.PRF_HMAC_SHA2_384 },
    swProposal: 'aes128gcm16-prfsha384-ecp256',
    addr: '10.77.0.23',
    port: 500,
    ourAuthInLog: PSK_LOG,
  },
  {
    name: 'sw-psk-prf512',
    dir: 'charon-initiates',
    auth: 'psk',
    proposal: { ...PROPOSAL_CBC_X25519, keyBits: 128, prfId: PrfId.PRF_HMAC_SHA2_512 },
    swProposal: 'aes128-sha256-prfsha512-x25519',
    addr: '10.77.0.24',
    port: 500,
    ourAuthInLog: PSK_LOG,
  },
  { name: 'we-psk-v6', dir: 'we-initiate', auth: 'psk', ...GCM, addr: 'fd77::25', port: 500, ourAuthInLog: PSK_LOG },
  { name: 'sw-cert-v6', dir: 'charon-initiates', auth: 'cert', ...CBC, addr: 'fd77::26', port: 500, ourAuthInLog: ECDSA14 },
  { name: 'we-cookie-psk', dir: 'we-initiate', auth: 'psk', ...CBC, addr: '10.77.0.22', port: 500, cookie: true, ourAuthInLog: PSK_LOG },
];
/** How `swanctl --list-sas` names a suite, e.g. AES_GCM_16-256/PRF_HMAC_SHA2_256/ECP_256. */
function charonSuiteName(p: IkeProposalConfig): string {
  const encr = p.encrId === EncrId.ENCR_AES_GCM_16 ? `AES_GCM_16-${p.keyBits}` : `AES_CBC-${p.keyBits}`;
  const integ = p.integId === IntegId.AUTH_HMAC_SHA2_256_128 ? '/HMAC_SHA2_256_128' : '';
  const prf = { [PrfId.PRF_HMAC_SHA2_256]: 'PRF_HMAC_SHA2_256', [PrfId.PRF_HMAC_SHA2_384]: 'PRF_HMAC_SHA2_384', [PrfId.PRF_HMAC_SHA2_512]: 'PRF_HMAC_SHA2_512' }[p.prfId];
  const group = p.group === KeGroup.ECP_256 ? 'ECP_256' : 'CURVE_25519';
  return `${encr}${integ}/${prf}/${group}`;
}

const v6 = (c: Case) => c.addr.includes(':');
const charonAddr = (c: Case) => (v6(c) ? CHARON_IP6 : CHARON_IP);

const ourId = (c: Case) => (c.dir === 'we-initiate' ? `${c.name}.groupsec.example` : GCKS_ID);
const charonId = (c: Case) => (c.auth === 'cert' ? (c.charonKey === 'rsa' ? `rsa.${CHARON_ID}` : CHARON_ID) : `${c.name}.${CHARON_ID}`);
const charonCertFile = (c: Case) => (c.charonKey === 'rsa' ? 'charon-rsa.pem' : 'charon.pem');
const secretOf = (c: Case) => `interop secret for ${c.name}`;

const pem = (label: string, der: Uint8Array) =>
  `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n').trim()}\n-----END ${label}-----\n`;
const keyPem = (k: KeyObject) => k.export({ type: 'pkcs8', format: 'pem' }) as string;

function makeCa(now: Date) {
  const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const der = issueCertificate({
    subject: { cn: 'GroupSec Interop CA', o: 'GroupSec' },
    publicKey: kp.publicKey,
    issuerKey: kp.privateKey,
    serial: new Uint8Array(randomBytes(8)),
    notBefore: new Date(now.getTime() - 86_400_000),
    notAfter: new Date(now.getTime() + 30 * 86_400_000),
    ca: true,
  });
  const ca: Certificate = parseCertificate(der);
  const issue = (name: string, key: 'ec' | 'rsa' = 'ec') => {
    const m = key === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
    const cert = issueCertificate({
      subject: { cn: name, o: 'GroupSec' },
      publicKey: m.publicKey,
      issuerKey: kp.privateKey,
      issuer: ca,
      serial: new Uint8Array(randomBytes(8)),
      notBefore: new Date(now.getTime() - 86_400_000),
      notAfter: new Date(now.getTime() + 30 * 86_400_000),
      ca: false,
      dns: [name],
    });
    return { certPem: pem('CERTIFICATE', cert), keyPem: keyPem(m.privateKey) };
  };
  return { caPem: pem('CERTIFICATE', der), issue };
}

function swanctlConf(): string {
  const conns = CASES.map((c) => {
    const local =
      c.auth === 'psk'
        ? `local { auth = psk\n id = ${charonId(c)} }`
        : `local { auth = pubkey\n certs = ${charonCertFile(c)}\n id = ${charonId(c)} }`;
    const remote =
      c.auth === 'psk'
        ? `remote { auth = psk\n id = ${ourId(c)} }`
        : `remote { auth = pubkey\n id = ${ourId(c)}\n cacerts = ca.pem }`;
    return `${c.name} {
  version = 2
  local_addrs = ${charonAddr(c)}
  remote_addrs = ${c.addr}
  proposals = ${c.swProposal}
  ${local}
  ${remote}
  ${c.child ? 'children { c { esp_proposals = aes128gcm16\n start_action = none } }' : ''}
}`;
  });
  const secrets = CASES.filter((c) => c.auth === 'psk').map(
    (c) => `ike-${c.name} {\n  id-a = ${charonId(c)}\n  id-b = ${ourId(c)}\n  secret = "${secretOf(c)}"\n}`,
  );
  return `connections {\n${conns.join('\n')}\n}\nsecrets {\n${secrets.join('\n')}\n}\n`;
}

describe.skipIf(reason !== undefined)('IKEv2 interop with strongSwan charon', () => {
  const lab = new NetnsLab('sw');
  const dir = tempDir('groupsec-strongswan-');
  let charon: Charon;
  let peer: JsonLines;
  let pki: ReturnType<typeof makeCa>;
  const ourCerts = new Map<string, { certPem: string; keyPem: string }>();

  beforeAll(async () => {
    assertBuilt(PEER);
    const [sw, gs] = await lab.bridge([
      { suffix: 'sw', ipv4: CHARON_IP, ipv6: CHARON_IP6 },
      { suffix: 'gs', ipv4: OUR_IP, ipv6: OUR_IP6 },
    ]);
    for (const c of CASES) {
      await lab.run(gs!.ns, 'ip', v6(c) ? ['-6', 'addr', 'add', `${c.addr}/64`, 'dev', 'eth0', 'nodad'] : ['addr', 'add', `${c.addr}/24`, 'dev', 'eth0']);
    }

    pki = makeCa(new Date());
    const charonCert = pki.issue(CHARON_ID);
    const charonRsa = pki.issue(`rsa.${CHARON_ID}`, 'rsa');
    ourCerts.set(GCKS_ID, pki.issue(GCKS_ID));
    ourCerts.set(`rsa:${GCKS_ID}`, pki.issue(GCKS_ID, 'rsa'));
    for (const c of CASES.filter((x) => x.auth === 'cert' && x.dir === 'we-initiate')) ourCerts.set(ourId(c), pki.issue(ourId(c), c.ourKey));

    // A COOKIE is demanded as soon as one responder SA is half-open (only the cookie case leaves one).
    charon = new Charon(lab, sw!.ns, dir.path, 1);
    charon.writeSwanctl(swanctlConf(), {
      'x509ca/ca.pem': pki.caPem,
      'x509/charon.pem': charonCert.certPem,
      'private/charon.pem': charonCert.keyPem,
      'x509/charon-rsa.pem': charonRsa.certPem,
      'private/charon-rsa.pem': charonRsa.keyPem,
    });
    await charon.start();
    await charon.loadAll();

    const gcksCert = ourCerts.get(GCKS_ID)!;
    const config: PeerConfig = {
      addresses: CASES.map((c) => c.addr),
      responder: {
        localId: GCKS_ID,
        proposals: [PROPOSAL_GCM_ECP256, PROPOSAL_CBC_X25519, ...CASES.filter((c) => c.dir === 'charon-initiates').map((c) => c.proposal)],
        auth: { kind: 'signature', ...gcksCert },
        psks: Object.fromEntries(CASES.filter((c) => c.auth === 'psk' && c.dir === 'charon-initiates').map((c) => [charonId(c), secretOf(c)])),
        trustAnchorsPem: [pki.caPem],
        peerAuth: { [`rsa.${CHARON_ID}`]: { kind: 'signature', ...ourCerts.get(`rsa:${GCKS_ID}`)! } },
      },
    };
    const cfgFile = join(dir.path, 'peer.json');
    writeFileSync(cfgFile, JSON.stringify(config));
    peer = new JsonLines(lab.spawn(gs!.ns, process.execPath, [PEER, cfgFile]));
    await peer.next((l) => l.event === 'ready');
  });

  afterAll(async () => {
    if (process.env.KEEP_PEER_LINES) writeFileSync(process.env.KEEP_PEER_LINES, JSON.stringify(peer?.lines ?? []));
    await lab.cleanup();
    if (process.env.KEEP_SWAN_LOG) writeFileSync(process.env.KEEP_SWAN_LOG, charon?.log() ?? '');
    dir.remove();
  });

  function expectKeysMatchCharon(ours: Record<string, string>, logOffset: number) {
    const logged = charon.loggedKeys(logOffset);
    const pairs: [string, string][] = [
      ['Sk_d secret', 'skd'],
      ['Sk_ei secret', 'skei'],
      ['Sk_er secret', 'sker'],
      ['Sk_pi secret', 'skpi'],
      ['Sk_pr secret', 'skpr'],
    ];
    for (const [label, k] of pairs) {
      expect(logged[label], `charon logged ${label}`).toBeDefined();
      expect(ours[k], label).toBe(logged[label]);
    }
    if (ours.skai) {
      expect(ours.skai).toBe(logged['Sk_ai secret']);
      expect(ours.skar).toBe(logged['Sk_ar secret']);
    }
  }

  for (const c of CASES) {
    it(`${c.name}: ${c.dir === 'we-initiate' ? 'our initiator -> charon' : 'charon -> our responder'}, ${c.auth}, ${c.swProposal}`, async () => {
      const logOffset = charon.log().length;
      const linesBefore = peer.lines.length;
      let spiI: string;
      let spiR: string;
      let keys: Record<string, string>;
      if (c.dir === 'we-initiate') {
        const cert = ourCerts.get(ourId(c));
        const cmd: InitiateCommand = {
          local: c.addr,
          remote: charonAddr(c),
          port: c.port,
          proposals: [c.proposal],
          localId: ourId(c),
          remoteId: charonId(c),
          auth: c.auth === 'psk' ? { kind: 'psk' } : { kind: 'signature', ...cert! },
          ...(c.auth === 'psk' ? { psk: secretOf(c) } : { trustAnchorsPem: [pki.caPem] }),
          ...(c.hashes === false ? { signatureHashes: false } : {}),
        };
        if (c.cookie) await peer.request({ cmd: 'half-open', ...cmd, localId: `ghost.${ourId(c)}` });
        const r = await peer.request({ cmd: 'initiate', ...cmd }, 20_000).catch((e: Error) => {
          throw new Error(`${e.message}\ncharon log:\n${charon.log().slice(logOffset).slice(-4000)}`);
        });
        expect(r.peerId).toBe(charonId(c));
        expect((r.counters as Record<string, number>).cookie ?? 0).toBe(c.cookie ? 1 : 0);
        spiI = r.spiI as string;
        spiR = r.spiR as string;
        keys = r.keys as Record<string, string>;
      } else {
        const before = peer.lines.length;
        if (c.child) {
          // swanctl exits 1 because the CHILD_SA fails (we answer NO_PROPOSAL_CHOSEN); the IKE SA stays.
          await charon.swanctl(['--initiate', '--child', 'c', '--ike', c.name, '--timeout', '10']).then(
            () => expect.unreachable('the CHILD_SA cannot succeed'),
            (e: Error) => expect(e.message).toMatch(/establishing CHILD_SA 'c' failed/),
          );
          expect(charon.log().slice(logOffset)).toContain('received NO_PROPOSAL_CHOSEN notify, no CHILD_SA built');
        } else {
          const init = await charon.initiateIke(c.name).catch((e: Error) => {
            throw new Error(`${e.message}\ncharon log:\n${charon.log().slice(logOffset).slice(-4000)}`);
          });
          expect(init.stdout).toMatch(new RegExp(`IKE_SA ${c.name}\\[\\d+\\] established between`));
        }
        const ev = await peer.next((l) => l.event === 'responder-established' && l.peerId === charonId(c) && peer.lines.indexOf(l) >= before);
        // MOBIKE: charon moves to 4500 with the non-ESP marker for IKE_AUTH.
        expect(ev.localPort).toBe(4500);
        spiI = ev.spiI as string;
        spiR = ev.spiR as string;
        keys = ev.keys as Record<string, string>;
      }
      const sas = await charon.listSas(c.name);
      expect(sas).toMatch(new RegExp(`${c.name}: #\\d+, ESTABLISHED, IKEv2, ${spiI}_i`));
      expect(sas).toContain(charonSuiteName(c.proposal));
      const log = charon.log().slice(logOffset);
      expect(log).toContain(`authentication of '${ourId(c)}' with ${c.ourAuthInLog} successful`);
      // Our NAT_DETECTION hashes (IPv4 and IPv6) match what charon computes: it sees no NAT.
      expect(log).not.toMatch(/behind NAT/);
      expectKeysMatchCharon(keys, logOffset);
      // charon's INFORMATIONAL Delete reaches our SA and is answered.
      await charon.terminateIke(c.name);
      const event = c.dir === 'we-initiate' ? 'initiator-deleted' : 'responder-deleted';
      await peer.next((l) => l.event === event && (l.spiI === spiI || l.spiR === spiR) && peer.lines.indexOf(l) >= linesBefore);
    });
  }
});
