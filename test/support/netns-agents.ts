/**
 * The compiled GCKS and compiled member agents inside a NetnsLab (root only): start and stop the
 * GCKS in its namespace, call its REST API from there, start agents from a config object, and
 * read an agent's status endpoint from inside its namespace.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PYTHON } from './netns-apps.js';
import { JsonLines, stopChild, type LabHost, type NetnsLab } from './netns.js';

export const GCKS_MAIN = fileURLToPath(new URL('../../dist/apps/gcks/src/main.js', import.meta.url));
export const AGENT_MAIN = fileURLToPath(new URL('../../dist/apps/member-agent/src/main.js', import.meta.url));

const HTTP_PORT = 8080;

const API_JS = `const [m, p, b, t] = process.argv.slice(1);
fetch('http://127.0.0.1:${HTTP_PORT}/api/v1' + p, { method: m, headers: { authorization: 'Bearer ' + t, 'content-type': 'application/json' }, ...(b ? { body: b } : {}) })
  .then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() })), (e) => process.stdout.write(JSON.stringify({ status: 0, body: String(e) })));`;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every 100 ms until it holds; rejects after `ms` with `what`. */
export async function waitFor(what: string, cond: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** What the tests read from GET /status (a subset of AgentStatus). */
export interface AgentStatusView {
  groups: { name: string; state: string; sas: { spi: string; edge: string; packetsIn: number; packetsOut: number }[]; counters: Record<string, number> }[];
  datapath: { sent: number; bypassed: number; delivered: number; held: number; drops: Record<string, number> };
  network: Record<string, Record<string, number> | number>;
}

export class NetnsGcks {
  child: ReturnType<NetnsLab['spawn']> | undefined;
  token = '';

  constructor(
    private readonly lab: NetnsLab,
    readonly host: LabHost,
    private readonly dataDir: string,
  ) {}

  async start(): Promise<void> {
    this.child = this.lab.spawn(this.host.ns, process.execPath, [GCKS_MAIN], {
      ...process.env,
      GCKS_DATA_DIR: this.dataDir,
      GCKS_HTTP_PORT: String(HTTP_PORT),
      GCKS_IKE_HOST: this.host.ipv4,
      GCKS_IKE_PORT: '4500',
      GCKS_LOG_LEVEL: 'warn',
    });
    this.child.stdout?.resume();
    this.child.stderr?.resume();
    await waitFor('the GCKS', async () => (await this.api('GET', '/keys').catch(() => ({ status: 0 }))).status === 200);
    this.token = readFileSync(join(this.dataDir, 'admin-token'), 'utf8').trim();
  }

  async stop(): Promise<void> {
    if (this.child) await stopChild(this.child);
    this.child = undefined;
  }

  async api(method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
    const r = await this.lab.run(this.host.ns, process.execPath, ['-e', API_JS, method, path, body === undefined ? '' : JSON.stringify(body), this.token]);
    return JSON.parse(r.stdout) as { status: number; body: string };
  }

  /** A 2xx call's parsed body; throws with the status and body otherwise. */
  async ok<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await this.api(method, path, body);
    if (r.status < 200 || r.status > 299) throw new Error(`${method} ${path}: ${r.status} ${r.body}`);
    return (r.body ? JSON.parse(r.body) : undefined) as T;
  }

  /** Writes the Group Owner's public key (the agents' trust anchor) to `path`. */
  async saveAnchor(path: string): Promise<void> {
    writeFileSync(path, (await this.api('GET', '/keys/group-owner.pem')).body);
  }
}

/** Starts the compiled agent in `ns` with `config` (written to `path`) and waits for its ready line. */
export async function startAgent(lab: NetnsLab, ns: string, path: string, config: object): Promise<JsonLines> {
  writeFileSync(path, JSON.stringify(config));
  const agent = new JsonLines(lab.spawn(ns, process.execPath, [AGENT_MAIN, 'run', '--config', path]));
  await agent.next((l) => l['ready'] === true, 20_000);
  return agent;
}

/** Sysctls of every host in the agent scenarios: no reverse-path filter (the TUN hands back packets
 * whose source is another host), IPv4 only unless a test enables IPv6 itself. */
export const AGENT_HOST_SYSCTLS: Readonly<Record<string, string>> = {
  'net.ipv4.conf.all.rp_filter': '0',
  'net.ipv4.conf.default.rp_filter': '0',
  'net.ipv6.conf.all.disable_ipv6': '1',
};

/** GET /status from inside a namespace (Python starts faster than a second Node). */
const PY_STATUS = `import sys, urllib.request
sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:%s/status' % sys.argv[1], timeout=5).read().decode())`;

/** GET /status of the agent listening on `port` inside `ns` (`T`: the view of it a test reads). */
export async function agentStatus<T = AgentStatusView>(lab: NetnsLab, ns: string, port: number): Promise<T> {
  const r = await lab.run(ns, PYTHON, ['-c', PY_STATUS, String(port)]);
  return JSON.parse(r.stdout) as T;
}
