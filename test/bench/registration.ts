/**
 * Registration benchmark (issue 5): the GCKS (this process: the real Nest app, SQLite file, G-IKEv2
 * responder on loopback UDP) and a load generator in a separate process (registration-loadgen.ts)
 * registering BENCH_MEMBERS members (default 10,000) with ECDSA P-256 certificates from the group CA
 * and KE group 19. Keys and certificates are made before the timed window. Prints registrations
 * completed per second at the GCKS, each process's CPU seconds, the two-core ceiling they imply and
 * the public-key floor (publicKeyFloor); the last line is one JSON object.
 *
 *   npm run bench:registration        (BENCH_MEMBERS=2000 for a quick run)
 */
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createECDH, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { IdType } from '@app/codec';
import { publicKeyFromSpki } from '@app/crypto';
import { createApp } from '../../apps/gcks/src/bootstrap.js';
import { loadConfig } from '../../apps/gcks/src/config/gcks-config.js';
import { WalCheckpointService } from '../../apps/gcks/src/database/wal-checkpointer.js';
import { GcksKeysService } from '../../apps/gcks/src/keys/gcks-keys.service.js';
import { RegistrationService } from '../../apps/gcks/src/registration/registration.service.js';
import { tempDir } from '../support/temp-dir.js';

const N = Number(process.env.BENCH_MEMBERS ?? 10_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);

/**
 * CPU seconds of this process's main thread (the event loop), from /proc (Linux; clock ticks of
 * 10 ms): the rest of `process.cpuUsage()` is V8's GC helpers, the libuv pool and workers.
 */
function mainThreadCpuS(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/**
 * What the public-key cryptography of one registration costs through node:crypto alone, in this
 * process before the run (µs, median of 5 rounds): the floor under the CPU per registration that
 * no protocol code can go below. GCKS: an ECDH P-256 key pair and shared secret, the AUTH
 * signature, the member's key imported from its certificate, two verifies (certificate by the CA,
 * AUTH). Member: the shared secret, its AUTH signature, one verify (the GCKS's AUTH; the GCKS's
 * certificate chain is checked once and remembered). Symmetric work (prf+, SK, key wraps) is extra.
 */
function publicKeyFloor(): { gcksUs: number; memberUs: number; parts: Record<string, number> } {
  const ROUNDS = 5;
  const N = 200;
  const time = (f: () => void): number => {
    const runs: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < N; i++) f();
      runs.push(Number(process.hrtime.bigint() - t0) / N / 1e3);
    }
    return runs.sort((a, b) => a - b)[ROUNDS >> 1]!;
  };
  const peer = createECDH('prime256v1');
  const peerPublic = peer.generateKeys();
  const ours = createECDH('prime256v1');
  ours.generateKeys();
  const kp = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = new Uint8Array(kp.publicKey.export({ type: 'spki', format: 'der' }));
  const octets = randomBytes(600);
  const signature = sign('sha256', octets, kp.privateKey);
  const parts = {
    ecdh_key_pair: time(() => createECDH('prime256v1').generateKeys()),
    ecdh_secret: time(() => ours.computeSecret(peerPublic)),
    ecdsa_sign: time(() => sign('sha256', octets, kp.privateKey)),
    ecdsa_verify: time(() => verify('sha256', octets, kp.publicKey, signature)),
    key_import: time(() => publicKeyFromSpki(spki)),
  };
  const gcksUs = parts.ecdh_key_pair + parts.ecdh_secret + parts.ecdsa_sign + parts.key_import + 2 * parts.ecdsa_verify;
  const memberUs = parts.ecdh_secret + parts.ecdsa_sign + parts.ecdsa_verify;
  return { gcksUs, memberUs, parts };
}

async function main(): Promise<void> {
  const floor = publicKeyFloor();
  const dir = tempDir('gcks-bench-');
  const config = loadConfig({ GCKS_DATA_DIR: dir.path, GCKS_HTTP_PORT: '0', GCKS_IKE_PORT: '0', GCKS_LOG_LEVEL: 'error' });
  const gcks = await createApp(config, { logger: false });
  await gcks.app.listen(0, '127.0.0.1');
  const token = readFileSync(config.adminTokenFile, 'utf8').trim();
  const base = `http://127.0.0.1:${(gcks.app.getHttpServer().address() as { port: number }).port}`;
  const post = async (path: string, body: unknown) => {
    const r = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
    if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
    return (await r.json()) as { id: string };
  };
  const g = await post('/api/v1/groups', { name: 'bench', address: '239.1.2.3', serviceModel: 'any-to-any', rekeyAddress: '239.255.90.1', rekeyPort: 48_848 });
  await post(`/api/v1/groups/${g.id}/policies`, { name: 'bench-data', protocol: 17, destinationPort: 5000 });
  await post(`/api/v1/groups/${g.id}/pad-rules`, { idType: 'san-dns', pattern: '*.bench.example.org', role: 'receiver' });

  // Credentials, outside the timed window.
  const keys = gcks.app.get(GcksKeysService);
  const reg = gcks.app.get(RegistrationService);
  const t0 = Date.now();
  const members = Array.from({ length: N }, (_, i) => {
    const kp = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const identity = `m${i}.bench.example.org`;
    const der = keys.issueMemberCertificate({ idType: IdType.ID_FQDN, value: identity }, kp.publicKey);
    return { identity, keyPem: kp.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, certDer: Buffer.from(der).toString('hex') };
  });
  process.stdout.write(`credentials for ${N} members made in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);

  const child = fork(fileURLToPath(new URL('./registration-loadgen.js', import.meta.url)));
  const result = await new Promise<{ completed: number; failures: number; reasons: Record<string, number>; seconds: number; cpuS: number; gcksCpuS: number; gcksMainCpuS: number; gcksEstablished: number; wall: number }>((resolve, reject) => {
    let cpu0 = process.cpuUsage();
    let main0 = mainThreadCpuS();
    let est0 = 0;
    let start = 0n;
    child.on('message', (m: { ready?: boolean; done?: boolean; completed: number; failures: number; reasons: Record<string, number>; seconds: number; cpuS: number }) => {
      if (m.ready) {
        cpu0 = process.cpuUsage();
        main0 = mainThreadCpuS();
        est0 = reg.counters.established ?? 0;
        start = process.hrtime.bigint();
        return;
      }
      if (m.done) {
        const wall = Number(process.hrtime.bigint() - start) / 1e9;
        const cpu = process.cpuUsage(cpu0);
        const mainS = mainThreadCpuS() - main0;
        resolve({ ...m, gcksMainCpuS: mainS, gcksCpuS: (cpu.user + cpu.system) / 1e6, gcksEstablished: (reg.counters.established ?? 0) - est0, wall });
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => code !== 0 && reject(new Error(`load generator exited ${code}`)));
    child.send({ port: reg.port, group: 'bench', caDer: Buffer.from(keys.owner.ca.certificate.der).toString('hex'), members, concurrency: CONCURRENCY });
  });
  const status = reg.groupStatus(g.id)!;
  const rows = (await gcks.app.get((await import('typeorm')).DataSource).query(`SELECT count(*) AS n FROM "members" WHERE "groupId" = ?`, [g.id]))[0].n as number;
  const perS = result.gcksEstablished / result.wall;
  // Seconds of CPU (both processes) per registration, and what two fully used cores would allow.
  const cpuPerReg = (result.gcksCpuS + result.cpuS) / Math.max(1, result.gcksEstablished);
  const ceiling = 2 / cpuPerReg;
  process.stdout.write(
    [
      `members registered at the GCKS: ${result.gcksEstablished} of ${N} in ${result.wall.toFixed(2)} s (${rows} member rows, LKH epoch ${status.epoch}, last GSA_REKEY Message ID ${status.lastMessageId})`,
      `registrations per second at the GCKS: ${perS.toFixed(0)}`,
      `CPU: GCKS ${result.gcksCpuS.toFixed(2)} s (${((result.gcksCpuS / Math.max(1, result.gcksEstablished)) * 1e3).toFixed(3)} ms per registration; main thread ${result.gcksMainCpuS.toFixed(2)} s, other threads ${(result.gcksCpuS - result.gcksMainCpuS).toFixed(2)} s), load generator ${result.cpuS.toFixed(2)} s (${((result.cpuS / Math.max(1, result.gcksEstablished)) * 1e3).toFixed(3)} ms per registration)`,
      `failures: ${result.failures} ${JSON.stringify(result.reasons)}; concurrency ${CONCURRENCY}`,
      `public-key cryptography of one registration, node:crypto alone (µs): GCKS ${floor.gcksUs.toFixed(0)}, member ${floor.memberUs.toFixed(0)} ${JSON.stringify(Object.fromEntries(Object.entries(floor.parts).map(([k, v]) => [k, Number(v.toFixed(1))])))}`,
      `both processes' CPU per registration ${(cpuPerReg * 1e3).toFixed(3)} ms: with both cores fully busy the ceiling would be ${ceiling.toFixed(0)}/s`,
      `GCKS counters: ${JSON.stringify(reg.counters)}`,
      `WAL checkpoints (off the event loop): ${JSON.stringify(gcks.app.get(WalCheckpointService).checkpointer.stats)}`,
      '',
    ].join('\n'),
  );
  await gcks.app.close();
  dir.remove();
  process.stdout.write(
    `${JSON.stringify({
      members: N,
      seconds: Number(result.wall.toFixed(3)),
      registrations_per_s: Number(perS.toFixed(1)),
      gcks_cpu_s: Number(result.gcksCpuS.toFixed(3)),
      gcks_main_thread_cpu_s: Number(result.gcksMainCpuS.toFixed(2)),
      loadgen_cpu_s: Number(result.cpuS.toFixed(3)),
      cpu_ms_per_registration: Number((cpuPerReg * 1e3).toFixed(3)),
      two_core_ceiling_per_s: Number(ceiling.toFixed(0)),
      public_key_floor_ms: Number(((floor.gcksUs + floor.memberUs) / 1e3).toFixed(3)),
      failures: result.failures,
      concurrency: CONCURRENCY,
    })}\n`,
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
