/**
 * Load generator of `npm run bench:registration` (forked by registration.ts): registers members
 * with the GCKS over loopback UDP (RFC 3948 framing), each with its own ECDSA P-256 certificate
 * from the group CA (given by the parent, made before the timed window), KE group 19, a bounded
 * number in flight. What does not depend on the GCKS (private keys, SPIi, Ni, the KE key pair) is
 * made before the timed window too, as are each member's IkeInitiator and its encoded IKE_SA_INIT
 * request (built from those alone); everything that does (shared secret, keys, the GCKS's
 * certificate chain and AUTH, decrypting and opening the GSA and KD) is done per member inside it.
 * A registration that fails or times out is a failure. Reports its own CPU time.
 */
import { createSocket } from 'node:dgram';
import { createPrivateKey, randomBytes, type KeyObject } from 'node:crypto';
import { IdType, IkeExchange, idgKeyId } from '@app/codec';
import { createKeyExchange, parseCertificate, randomPool, type KeyExchange } from '@app/crypto';
import { IkeInitiator, openRegistrationResponse, registrationRequestPayloads, type IkePath } from '@app/gkm';
import { GM_PROPOSAL, realIkeClock } from '../support/gm-client.js';

interface Job {
  port: number;
  group: string;
  caDer: string;
  members: { identity: string; keyPem: string; certDer: string }[];
  concurrency: number;
}

const rnd = randomPool((n) => new Uint8Array(randomBytes(n)));

process.once('message', (job: Job) => {
  const ca = parseCertificate(new Uint8Array(Buffer.from(job.caDer, 'hex')));
  const creds: { identity: string; key: KeyObject; cert: Uint8Array; spiI: Uint8Array; nonce: Uint8Array; keyExchange: KeyExchange }[] = job.members.map((m) => ({
    identity: m.identity,
    key: createPrivateKey(m.keyPem),
    cert: new Uint8Array(Buffer.from(m.certDer, 'hex')),
    spiI: rnd(8),
    nonce: rnd(32),
    keyExchange: createKeyExchange(GM_PROPOSAL.group, rnd),
  }));
  // 64 answers of ~3-4 KB outgrow the default 208 KB receive buffer whenever this loop is busy;
  // a dropped answer would be charged to the GCKS as a 2 s retransmission timeout.
  const sock = createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
  const byspi = new Map<string, IkeInitiator>();
  sock.bind({ address: '127.0.0.1', port: 0 }, () => {
    const localPort = sock.address().port;
    const path: IkePath = { remoteAddress: '127.0.0.1', remotePort: job.port, localAddress: '127.0.0.1', localPort, marker: true };
    sock.on('message', (msg) => {
      // RFC 3948 non-ESP marker (4 zero octets), then the IKE header: SPIi at 0..8.
      const spi = msg.subarray(4, 12).toString('hex');
      byspi.get(spi)?.receive(msg, path);
    });
    // Each member's initiator with its IKE_SA_INIT request encoded: nothing here depends on the GCKS.
    const initiators: (IkeInitiator | undefined)[] = creds.map((c) => {
      const ini = new IkeInitiator({
        transport: { send: (d, p) => sock.send(d, p.remotePort, p.remoteAddress) },
        clock: realIkeClock,
        random: rnd,
        path,
        proposals: [GM_PROPOSAL],
        spiI: c.spiI,
        nonce: c.nonce,
        keyExchange: c.keyExchange,
        localId: { idType: IdType.ID_FQDN, data: new TextEncoder().encode(c.identity) },
        localAuth: { kind: 'signature', privateKey: c.key, certificates: [c.cert] },
        peer: { trustAnchors: [ca] },
        authExchangeType: IkeExchange.GSA_AUTH,
        authPayloads: registrationRequestPayloads(idgKeyId(job.group)),
        retransmit: { timeoutMs: 2000, tries: 3 },
        initialContact: false,
      });
      ini.prepare();
      return ini;
    });
    process.send!({ ready: true });
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    let next = 0;
    let done = 0;
    let failures = 0;
    const reasons: Record<string, number> = {};
    const finish = () => {
      const cpu = process.cpuUsage(cpu0);
      process.send!({ done: true, completed: done - failures, failures, reasons, seconds: Number(process.hrtime.bigint() - t0) / 1e9, cpuS: (cpu.user + cpu.system) / 1e6 });
      sock.close();
    };
    const launch = () => {
      if (next >= initiators.length) return;
      const ini = initiators[next]!;
      initiators[next++] = undefined;
      const spi = Buffer.from(ini.spiI).toString('hex');
      byspi.set(spi, ini);
      ini
        .start()
        .then(({ sa, authResponse }) => {
          const r = openRegistrationResponse(authResponse, sa.state);
          if (!r.ok) {
            failures++;
            reasons[r.reason] = (reasons[r.reason] ?? 0) + 1;
          }
          sa.close();
        })
        .catch((e: Error) => {
          failures++;
          const k = e.message.split(':')[0]!;
          reasons[k] = (reasons[k] ?? 0) + 1;
        })
        .finally(() => {
          byspi.delete(spi);
          done++;
          if (done === initiators.length) finish();
          else launch();
        });
    };
    for (let i = 0; i < job.concurrency; i++) launch();
  });
});
