import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const GCKS_MAIN = 'dist/apps/gcks/src/main.js';
export const GCKS_CLI = 'dist/apps/gcks/src/cli.js';

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface GcksProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  output(): string;
  /** Resolves with the exit code once the process has ended. */
  readonly exited: Promise<number | null>;
}

/** Starts the compiled GCKS (`node dist/apps/gcks/src/main.js`) with the given GCKS_* variables. */
export function spawnGcks(env: Record<string, string>, script = GCKS_MAIN, args: string[] = []): GcksProcess {
  const child = spawn(process.execPath, [script, ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  if (child.pid === undefined) throw new Error('failed to start the GCKS');
  return { child, pid: child.pid, output: () => out, exited };
}

/** Polls `url` until it answers 200, the process exits, or `timeoutMs` passes (bounded). */
export async function waitForHealth(url: string, proc: GcksProcess, timeoutMs = 30_000): Promise<void> {
  let ended = false;
  void proc.exited.then(() => (ended = true));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (ended) throw new Error(`GCKS exited before answering:\n${proc.output()}`);
    try {
      const res = await fetch(url);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`GCKS did not answer ${url} within ${timeoutMs} ms:\n${proc.output()}`);
}

/** Kills a process we started, by its pid, and waits for it to end. */
export async function killGcks(proc: GcksProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  process.kill(proc.pid, signal);
  await proc.exited;
}
