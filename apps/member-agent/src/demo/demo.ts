/**
 * `npm run demo`: GroupSec end to end on one machine, no root. Starts a GCKS (SQLite in a temp
 * directory) and three member agents in socket mode on loopback as child processes; creates a
 * group through the REST API (admin token read from the GCKS data directory); streams numbered
 * messages from alice to bob and carol; forces a rekey; evicts carol; then prints what each member
 * received and each agent's SA timeline (installed, activated, retired, deleted).
 *
 * Exit 0 when every message reached every member that was entitled to it exactly once and carol
 * decrypted nothing sent after the speaker switched to the post-eviction SA; otherwise non-zero
 * with the reason. Options: --keep (leave the temp directory), --gcks-only is not offered: the
 * demo is the whole system.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AgentStatus } from '../status/agent-status.js';

const here = dirname(fileURLToPath(import.meta.url));
const DIST_APPS = resolve(here, '../../..'); // dist/apps
const GCKS_MAIN = join(DIST_APPS, 'gcks/src/main.js');
const AGENT_MAIN = join(DIST_APPS, 'member-agent/src/main.js');

const rnd = (n: number) => Math.floor(Math.random() * n);
const GROUP_ADDRESS = `239.192.${1 + rnd(250)}.${1 + rnd(250)}`;
const REKEY_ADDRESS = `239.193.${1 + rnd(250)}.${1 + rnd(250)}`;
const DATA_PORT = 5000;
const ATD = 2;
const DTD = 2;
const SEND_INTERVAL_MS = 20;
const MEMBERS = [
  { name: 'alice', role: 'speaker' as const },
  { name: 'bob', role: 'receiver' as const },
  { name: 'carol', role: 'receiver' as const },
];
const EVICTED = 'carol';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (s: string) => process.stdout.write(`${s}\n`);

class DemoError extends Error {}

async function freePort(type: 'udp4' | 'tcp'): Promise<number> {
  if (type === 'udp4') {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const p = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    return p;
  }
  const { createServer } = await import('node:net');
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const p = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return p;
}

interface Child {
  name: string;
  proc: ChildProcess;
  out: string[];
  err: string[];
}

function start(name: string, args: string[], env: Record<string, string>): Child {
  const proc = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const c: Child = { name, proc, out: [], err: [] };
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => c.out.push(d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => c.err.push(d));
  return c;
}

async function waitFor<T>(what: string, f: () => T | undefined | Promise<T | undefined>, ms = 20_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new DemoError(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function stop(c: Child): Promise<number | null> {
  if (c.proc.exitCode !== null) return c.proc.exitCode;
  const done = new Promise<number | null>((r) => c.proc.once('exit', (code) => r(code)));
  c.proc.kill('SIGTERM');
  const t = setTimeout(() => c.proc.kill('SIGKILL'), 8000);
  const code = await done;
  clearTimeout(t);
  return code;
}

async function main(): Promise<number> {
  const keep = process.argv.includes('--keep');
  const dir = mkdtempSync(join(tmpdir(), 'groupsec-demo-'));
  const children: Child[] = [];
  const apps: dgram.Socket[] = [];
  try {
    // 1. The GCKS.
    const ikePort = await freePort('udp4');
    const httpPort = await freePort('tcp');
    const gcks = start('gcks', [GCKS_MAIN], {
      GCKS_DATA_DIR: join(dir, 'gcks'),
      GCKS_HTTP_PORT: String(httpPort),
      GCKS_IKE_PORT: String(ikePort),
      GCKS_LOG_LEVEL: 'warn',
    });
    children.push(gcks);
    const base = `http://127.0.0.1:${httpPort}`;
    await waitFor('the GCKS', async () => {
      if (gcks.proc.exitCode !== null) throw new DemoError(`GCKS exited: ${gcks.err.join('')}`);
      try {
        return (await fetch(`${base}/api/v1/keys`)).ok || undefined;
      } catch {
        return undefined;
      }
    });
    const token = readFileSync(join(dir, 'gcks', 'admin-token'), 'utf8').trim();
    const api = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${base}/api/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      if (!res.ok) throw new DemoError(`${method} ${path}: HTTP ${res.status} ${text}`);
      return text ? (JSON.parse(text) as Record<string, unknown> & unknown[]) : ({} as never);
    };
    say(`GCKS up: REST ${base}, G-IKEv2 on 127.0.0.1:${ikePort}, data in ${dir}`);

    // 2. The group, its policy and PAD rules (PSK identities), through the REST API.
    const group = await api('POST', '/groups', { name: 'demo', address: GROUP_ADDRESS, serviceModel: 'any-to-any', rekeyAddress: REKEY_ADDRESS, rekeyPort: await freePort('udp4') });
    const groupId = group['id'] as string;
    await api('POST', `/groups/${groupId}/policies`, { name: 'demo-data', protocol: 17, destinationPort: DATA_PORT, udpEncapsulation: true, espTransform: 'aes-gcm-256', atd: ATD, dtd: DTD, tekLifetime: 3600 });
    const secrets = new Map<string, string>();
    for (const m of MEMBERS) {
      const psk = `demo-psk-${m.name}-${Math.random().toString(36).slice(2)}-0123456789`;
      secrets.set(m.name, psk);
      await api('POST', `/groups/${groupId}/pad-rules`, { kind: 'member', idType: 'psk', pattern: `${m.name}.demo`, role: m.role, psk });
    }
    const anchor = await (await fetch(`${base}/api/v1/keys/group-owner.pem`)).text();
    writeFileSync(join(dir, 'group-owner.pem'), anchor);
    say(`group "demo" ${GROUP_ADDRESS}:${DATA_PORT} (rekeys to ${REKEY_ADDRESS}), ATD ${ATD}s, DTD ${DTD}s; members ${MEMBERS.map((m) => `${m.name} (${m.role})`).join(', ')}`);

    // 3. Three agents in socket mode.
    const agents = new Map<string, { child: Child; statusPort: number; appPort: number }>();
    for (const m of MEMBERS) {
      const appPort = await freePort('udp4');
      const cfg = {
        identity: { kind: 'psk', id: `${m.name}.demo`, secret: secrets.get(m.name) },
        trustAnchor: join(dir, 'group-owner.pem'),
        gcks: [{ address: '127.0.0.1', port: ikePort }],
        groups: [{ name: 'demo', role: m.role, registration: 'at-start', applicationPort: appPort, address: GROUP_ADDRESS, dataPort: DATA_PORT }],
        datapath: { mode: 'socket' },
        status: { port: 0 },
        logLevel: 'warn',
      };
      const path = join(dir, `${m.name}.json`);
      writeFileSync(path, JSON.stringify(cfg, null, 2), { mode: 0o600 });
      const child = start(m.name, [AGENT_MAIN, 'run', '--config', path], {});
      children.push(child);
      const ready = await waitFor(`agent ${m.name}`, () => {
        if (child.proc.exitCode !== null) throw new DemoError(`agent ${m.name} exited: ${child.err.join('')}`);
        const line = child.out.join('').split('\n').find((l) => l.includes('"ready"'));
        return line ? (JSON.parse(line) as { statusPort: number }) : undefined;
      });
      agents.set(m.name, { child, statusPort: ready.statusPort, appPort });
    }
    const status = async (name: string): Promise<AgentStatus> => (await fetch(`http://127.0.0.1:${agents.get(name)!.statusPort}/status`)).json() as Promise<AgentStatus>;
    for (const m of MEMBERS) await waitFor(`${m.name} registered`, async () => (await status(m.name)).groups[0]?.state === 'registered' || undefined);
    say('all three agents registered (policy token verified against the Group Owner key)');

    // 4. Applications: bob and carol subscribe; alice's application streams numbered messages.
    const received = new Map<string, number[]>();
    for (const m of MEMBERS.filter((x) => x.role === 'receiver')) {
      const s = dgram.createSocket('udp4');
      apps.push(s);
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
      const got: number[] = [];
      received.set(m.name, got);
      s.on('message', (msg) => got.push(msg.readUInt32BE(0)));
      s.send(Buffer.alloc(0), agents.get(m.name)!.appPort, '127.0.0.1');
    }
    const speaker = dgram.createSocket('udp4');
    apps.push(speaker);
    await new Promise<void>((r) => speaker.bind(0, '127.0.0.1', () => r()));
    await sleep(300);
    const sentAt: number[] = [];
    let streaming = true;
    const stream = (async () => {
      while (streaming) {
        const n = sentAt.length;
        const b = Buffer.alloc(32);
        b.writeUInt32BE(n, 0);
        b.write(`message ${n}`, 4);
        sentAt.push(Date.now());
        speaker.send(b, agents.get('alice')!.appPort, '127.0.0.1');
        await sleep(SEND_INTERVAL_MS);
      }
    })();
    await sleep(2000);
    const rekey = await api('POST', `/groups/${groupId}/rekey`);
    say(`forced rekey (REST): GSA_REKEY message ${JSON.stringify(rekey['messageIds'])}`);
    await sleep((ATD + DTD) * 1000 + 1000);
    const memberList = (await api('GET', `/groups/${groupId}/members`)) as unknown as { id: string; identity: string }[];
    const evictee = memberList.find((x) => x.identity === `${EVICTED}.demo`);
    if (!evictee) throw new DemoError(`${EVICTED} is not listed as a member`);
    const evictedAt = Date.now();
    const ev = await api('DELETE', `/groups/${groupId}/members/${evictee.id}`);
    say(`evicted ${EVICTED} (REST): LKH rekey messages ${JSON.stringify(ev['messageIds'])}`);
    await sleep((ATD + DTD) * 1000 + 1500);
    streaming = false;
    await stream;
    await sleep(500);

    // 5. Results.
    const statuses = new Map<string, AgentStatus>();
    for (const m of MEMBERS) statuses.set(m.name, await status(m.name));
    const alice = statuses.get('alice')!.groups[0]!;
    // The speaker's switch to the post-eviction SA: the first activation after the eviction.
    const switchAt = alice.timeline.filter((e) => e.event === 'activated' && Date.parse(e.at) >= evictedAt).map((e) => Date.parse(e.at))[0];
    const failures: string[] = [];
    if (switchAt === undefined) failures.push('alice never switched to a post-eviction SA');
    const total = sentAt.length;
    say('');
    say(`sent ${total} messages from alice (every ${SEND_INTERVAL_MS} ms)`);
    for (const [name, got] of received) {
      const counts = new Map<number, number>();
      for (const n of got) counts.set(n, (counts.get(n) ?? 0) + 1);
      const dup = [...counts.values()].filter((c) => c > 1).length;
      const entitled = (n: number) => name !== EVICTED || sentAt[n]! < evictedAt;
      const forbidden = (n: number) => name === EVICTED && switchAt !== undefined && sentAt[n]! > switchAt;
      const lost = [...Array(total).keys()].filter((n) => entitled(n) && !counts.has(n));
      const after = got.filter(forbidden);
      say(`${name.padEnd(6)} received ${String(got.length).padStart(5)}  unique ${String(counts.size).padStart(5)}  duplicates ${dup}  lost ${lost.length}${name === EVICTED ? `  after eviction+switch ${after.length} (state: ${statuses.get(name)!.groups[0]!.state})` : ''}`);
      if (dup > 0) failures.push(`${name} received ${dup} messages more than once`);
      if (lost.length > 0) failures.push(`${name} lost ${lost.length} messages (first: ${lost.slice(0, 5).join(', ')})`);
      if (after.length > 0) failures.push(`${name} decrypted ${after.length} messages sent after its eviction took effect`);
    }
    say('');
    say('SA timeline (per agent; times relative to the first event):');
    const t0 = Math.min(...[...statuses.values()].flatMap((s) => s.groups[0]!.timeline.map((e) => Date.parse(e.at))));
    for (const [name, s] of statuses) {
      const g = s.groups[0]!;
      say(`  ${name} (${g.role}, ${g.state}; rekeys accepted ${g.counters['rekeysAccepted']}, re-registrations ${g.counters['reRegistrations']})`);
      for (const e of g.timeline) say(`    +${((Date.parse(e.at) - t0) / 1000).toFixed(2).padStart(6)}s  SA ${e.spi}  ${e.event.padEnd(9)} (${e.cause})`);
    }
    const cli = spawnSync(process.execPath, [AGENT_MAIN, 'status', '--port', String(agents.get('alice')!.statusPort)], { encoding: 'utf8', timeout: 10_000 });
    say('');
    say(`member-agent status (alice):`);
    say(cli.stdout.trimEnd().split('\n').filter((l) => !l.startsWith('    ')).map((l) => `  ${l}`).join('\n'));
    if (cli.status !== 0) failures.push(`member-agent status exited ${cli.status}: ${cli.stderr}`);
    // De-registration on shutdown: bob's agent gets SIGTERM and the GCKS must list him as left.
    const bobChild = agents.get('bob')!.child;
    const bobExit = await stop(bobChild);
    const afterStop = (await api('GET', `/groups/${groupId}/members`)) as unknown as { identity: string; state: string }[];
    const bobState = afterStop.find((x) => x.identity === 'bob.demo')?.state;
    say('');
    say(`bob's agent stopped (SIGTERM, exit ${bobExit}); the GCKS lists bob as "${bobState}"`);
    if (bobExit !== 0) failures.push(`bob's agent exited ${bobExit}`);
    if (bobState !== 'left') failures.push(`bob did not de-register (GCKS state ${bobState})`);
    const metricsRes = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    const metrics = metricsRes.ok ? await metricsRes.text() : '';
    const members = (state: string) => new RegExp(`^groupsec_gcks_members\\{state="${state}"\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? '0';
    say('');
    say(`GCKS /metrics: members registered ${members('registered')}, left ${members('left')}, evicted ${members('evicted')}`);
    if (members('evicted') !== '1') failures.push(`GCKS /metrics does not show the eviction (HTTP ${metricsRes.status})`);
    say('');
    if (failures.length > 0) {
      for (const f of failures) say(`FAIL: ${f}`);
      return 1;
    }
    say(`OK: no message lost or duplicated; ${EVICTED} decrypted nothing after its eviction took effect`);
    return 0;
  } finally {
    for (const s of apps) s.close();
    for (const c of children.reverse()) {
      const code = await stop(c);
      if (code !== 0 && code !== null) say(`(${c.name} exited with ${code}: ${c.err.join('').slice(-400)})`);
    }
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`demo failed: ${e instanceof DemoError ? e.message : (e.stack ?? e.message)}\n`);
    process.exit(1);
  },
);
