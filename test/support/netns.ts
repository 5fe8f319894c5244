/**
 * Network-namespace lab for the root-only tests in test/netns: namespaces, a bridge living in its
 * own namespace (so the host's interfaces are never touched), veths, and processes started inside
 * namespaces and tracked by pid. Every name carries the test process's pid; `cleanup()` kills the
 * processes it started (by pid) and deletes the namespaces it made, which removes their veths,
 * bridges and TUN devices with them.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

/**
 * Why namespace tests cannot run here, or undefined when they can. In CI as root (where `.ci/run`
 * installed every tool) a reason is a broken environment, not a skip: it throws instead.
 */
export function netnsSkipReason(): string | undefined {
  const reason = netnsSkipReasonUnchecked();
  failInCiAsRoot(reason);
  return reason;
}

/**
 * Throws when a test would skip for `reason` in CI as root: CI installs every tool the tests need,
 * so a missing one there means the tests would silently check nothing.
 */
export function failInCiAsRoot(reason: string | undefined): void {
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (reason && root && process.env.CI && process.env.GROUPSEC_SKIP_NETNS !== '1') {
    throw new Error(`CI runs as root and must not skip: ${reason}`);
  }
}

function netnsSkipReasonUnchecked(): string | undefined {
  if (process.env.GROUPSEC_SKIP_NETNS === '1') return 'GROUPSEC_SKIP_NETNS=1';
  if (process.platform !== 'linux') return `network-namespace tests need Linux (this is ${process.platform})`;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'network-namespace tests need root';
  for (const tool of ['ip', 'sysctl']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `network-namespace tests need \`${tool}\` (iproute2/procps)`;
    }
  }
  try {
    accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
  } catch {
    return 'network-namespace tests need /dev/net/tun';
  }
  // Root is not always enough (a container without CAP_SYS_ADMIN): try once per process.
  probed ??= probeNamespaces();
  return probed === '' ? undefined : probed;
}

let probed: string | undefined;

function probeNamespaces(): string {
  const ns = `gs${process.pid}probe`;
  try {
    execFileSync('ip', ['netns', 'add', ns], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? '').trim();
    return `cannot create a network namespace here: ${stderr || (err as Error).message}`;
  }
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    // left for the next cleanup; nothing runs in it
  }
  return '';
}

/**
 * Fails early, with the reason, when a compiled helper the namespaces run is missing or was
 * emitted without its path aliases rewritten (`npm run build` stops before tsc-alias when tsc
 * reports an error anywhere in the tree).
 */
export function assertBuilt(file: string): void {
  if (!existsSync(file)) throw new Error(`${file} is missing: run npm run build (the vitest globalSetup does)`);
  if (/from ['"]@app\//.test(readFileSync(file, 'utf8'))) {
    throw new Error(`${file} still imports @app/* aliases: npm run build failed before tsc-alias; fix the type errors it printed`);
  }
}

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
}

export interface LabHost {
  /** The namespace name. */
  readonly ns: string;
  /** Interface name inside the namespace. */
  readonly ifname: string;
  readonly ipv4: string;
  readonly ipv6?: string;
}

export class NetnsLab {
  readonly prefix: string;
  private readonly namespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();
  private bridgeNs: string | undefined;

  constructor(tag: string) {
    // Namespace names are files under /run/netns; keep them short and unique per test process.
    this.prefix = `gs${process.pid}${tag}`;
  }

  /** Creates a namespace with its loopback up. */
  async addNamespace(suffix: string): Promise<string> {
    const ns = `${this.prefix}-${suffix}`;
    await this.host('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    await this.run(ns, 'ip', ['link', 'set', 'lo', 'up']);
    return ns;
  }

  /**
   * Builds hosts on one bridge: each host namespace gets `eth0` with the given addresses, the
   * bridge and the host-side veth ends live in a namespace of their own (`<prefix>-br`, device
   * `br0`), so a capture there sees every frame. Multicast snooping is off so the bridge floods.
   */
  async bridge(hosts: readonly { suffix: string; ipv4: string; ipv6?: string }[]): Promise<LabHost[]> {
    const br = await this.addNamespace('br');
    this.bridgeNs = br;
    await this.run(br, 'ip', ['link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0']);
    await this.run(br, 'ip', ['link', 'set', 'br0', 'up']);
    const made: LabHost[] = [];
    for (const [i, h] of hosts.entries()) {
      const ns = await this.addNamespace(h.suffix);
      const port = `p${i}`;
      await this.run(br, 'ip', ['link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      await this.run(br, 'ip', ['link', 'set', port, 'master', 'br0', 'up']);
      await this.run(ns, 'ip', ['addr', 'add', `${h.ipv4}/24`, 'dev', 'eth0']);
      if (h.ipv6) await this.run(ns, 'ip', ['-6', 'addr', 'add', `${h.ipv6}/64`, 'dev', 'eth0', 'nodad']);
      await this.run(ns, 'ip', ['link', 'set', 'eth0', 'up']);
      made.push({ ns, ifname: 'eth0', ipv4: h.ipv4, ...(h.ipv6 ? { ipv6: h.ipv6 } : {}) });
    }
    return made;
  }

  /** The namespace holding the bridge `br0` (after `bridge()`). */
  get bridgeNamespace(): string {
    if (!this.bridgeNs) throw new Error('no bridge yet');
    return this.bridgeNs;
  }

  /** Sets sysctls inside a namespace, e.g. `{ 'net.ipv4.conf.all.rp_filter': '0' }`. */
  async sysctl(ns: string, values: Record<string, string>): Promise<void> {
    for (const [key, value] of Object.entries(values)) await this.run(ns, 'sysctl', ['-q', '-w', `${key}=${value}`]);
  }

  /** Runs a command inside a namespace to completion (bounded at 30 s). Rejects on failure. */
  run(ns: string, cmd: string, args: readonly string[]): Promise<RunResult> {
    return this.host('ip', ['netns', 'exec', ns, cmd, ...args]);
  }

  /** Starts a long-running command inside a namespace; it is killed by pid in cleanup(). */
  spawn(ns: string, cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
    // `ip netns exec` execs the command after entering the namespace, so the pid is the command's.
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  private host(cmd: string, args: readonly string[]): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      execFile(cmd, args as string[], { timeout: 30_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`));
        else resolve({ stdout, stderr });
      });
    });
  }

  /** Kills our processes (SIGTERM, then SIGKILL after 2 s) and deletes our namespaces. */
  async cleanup(): Promise<void> {
    const alive = [...this.children];
    await Promise.all(alive.map((c) => stopChild(c)));
    for (const ns of this.namespaces.splice(0).reverse()) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore', timeout: 10_000 });
      } catch {
        // already gone
      }
      if (existsSync(`/run/netns/${ns}`)) execFileSync('rm', ['-f', `/run/netns/${ns}`]);
    }
  }
}

/** SIGTERM, then SIGKILL if the process has not exited within `graceMs`. Always by pid. */
export function stopChild(child: ChildProcess, graceMs = 2000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
    }, graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    try {
      process.kill(child.pid!, 'SIGTERM');
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}

/**
 * A child that speaks JSON lines: one object per line each way. `next(pred)` resolves with the
 * first line (already received or future) that matches; it rejects on timeout or exit.
 */
export class JsonLines {
  readonly lines: Record<string, unknown>[] = [];
  readonly stderr: string[] = [];
  private waiters: Waiter[] = [];
  private closed = false;
  private seq = 0;

  constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (text) => {
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        line = { text };
      }
      this.lines.push(line);
      for (const w of [...this.waiters]) if (w.pred(line)) w.settle(line);
    });
    createInterface({ input: child.stderr! }).on('line', (text) => this.stderr.push(text));
    // 'close' comes after stdout is drained, so every line has been seen by then.
    child.once('close', (code, signal) => {
      this.closed = true;
      for (const w of [...this.waiters]) w.settle(new Error(`process exited (${code ?? signal})`));
    });
  }

  send(message: object): void {
    this.child.stdin!.write(`${JSON.stringify(message)}\n`);
  }

  next(pred: (line: Record<string, unknown>) => boolean, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    const seen = this.lines.find(pred);
    if (seen) return Promise.resolve(seen);
    if (this.closed) return Promise.reject(new Error(`process already exited; stderr: ${this.stderr.slice(-20).join('\n')}`));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        pred,
        settle: (result) => {
          clearTimeout(timer);
          this.waiters = this.waiters.filter((w) => w !== waiter);
          if (result instanceof Error) reject(new Error(`${result.message}; stderr: ${this.stderr.slice(-20).join('\n')}`));
          else resolve(result);
        },
      };
      const timer = setTimeout(() => waiter.settle(new Error(`no matching line within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Sends a request `{ id, ...message }` and waits for the reply line carrying the same id. */
  async request(message: object, timeoutMs?: number): Promise<Record<string, unknown>> {
    const id = ++this.seq;
    this.send({ id, ...message });
    const reply = await this.next((l) => l.id === id, timeoutMs);
    if (typeof reply.error === 'string') throw new Error(`request ${JSON.stringify(message)} failed: ${reply.error}`);
    return reply;
  }
}

interface Waiter {
  pred: (line: Record<string, unknown>) => boolean;
  settle: (result: Record<string, unknown> | Error) => void;
}
