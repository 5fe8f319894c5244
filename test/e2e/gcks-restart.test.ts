import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, GCKS_CLI, killGcks, spawnGcks, waitForHealth, type GcksProcess } from '../support/gcks-process.js';
import { tempDir } from '../support/temp-dir.js';

/**
 * The compiled GCKS as the README starts it: first start creates and migrates the database, the
 * master key and the admin token; data survives a kill and restart; the CLI rotates the token.
 */
describe('compiled GCKS process: first start, restart, token rotation', () => {
  const dir = tempDir('gcks-restart-');
  const running: GcksProcess[] = [];
  let port: number;
  let env: Record<string, string>;
  let base: string;

  async function start(): Promise<GcksProcess> {
    const proc = spawnGcks(env);
    running.push(proc);
    await waitForHealth(`${base}/health`, proc);
    // The banner is written right after listen; wait for it (bounded) before reading it.
    for (let i = 0; i < 50 && !proc.output().includes('Admin token'); i++) await new Promise((r) => setTimeout(r, 100));
    return proc;
  }

  const call = (token: string, method: string, path: string, body?: unknown) =>
    fetch(`${base}${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });

  beforeAll(async () => {
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    env = { GCKS_DATA_DIR: join(dir.path, 'data'), GCKS_HTTP_PORT: String(port), GCKS_IKE_PORT: '0', GCKS_LOG_LEVEL: 'warn' };
  });

  afterAll(async () => {
    for (const p of running) await killGcks(p);
    dir.remove();
  });

  it('creates its files on first start and prints the console URL and the token file', async () => {
    const first = await start();
    const tokenFile = join(dir.path, 'data', 'admin-token');
    expect(first.output()).toContain(`GroupSec GCKS console: ${base}/`);
    expect(first.output()).toContain(`written to ${tokenFile}`);
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir.path, 'data', 'master.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir.path, 'data', 'master.key')).size).toBe(32);
    const token = readFileSync(tokenFile, 'utf8').trim();
    expect(first.output()).not.toContain(token);

    const g = await call(token, 'POST', '/api/v1/groups', { name: 'durable', address: 'ff3e::8000:7', sourceMode: 'ssm', ssmSources: ['2001:db8::7'] });
    expect(g.status).toBe(201);
    const group = (await g.json()) as { id: string };
    const p = await call(token, 'POST', `/api/v1/groups/${group.id}/policies`, { name: 'p1', atd: 30, tekLifetime: 900 });
    expect(p.status).toBe(201);

    // Killed hard: whatever was acknowledged must be on disk.
    await killGcks(first, 'SIGKILL');

    const second = await start();
    expect(second.output()).toContain('unchanged');
    expect(readFileSync(tokenFile, 'utf8').trim()).toBe(token);
    const groups = (await (await call(token, 'GET', '/api/v1/groups')).json()) as { name: string; address: string; ssmSources: string[] }[];
    expect(groups).toEqual([expect.objectContaining({ name: 'durable', address: 'ff3e::8000:7', ssmSources: ['2001:db8::7'] })]);
    const policies = (await (await call(token, 'GET', `/api/v1/groups/${group.id}/policies`)).json()) as object[];
    expect(policies).toEqual([expect.objectContaining({ name: 'p1', atd: 30, tekLifetime: 900, sourcePrefix: '2001:db8::7/128' })]);

    // Rotation from the CLI takes effect in the running GCKS at once.
    const cli = spawnGcks(env, GCKS_CLI, ['rotate-token']);
    expect(await cli.exited).toBe(0);
    expect(cli.output()).toContain(`written to ${tokenFile}`);
    const rotated = readFileSync(tokenFile, 'utf8').trim();
    expect(rotated).not.toBe(token);
    expect((await call(token, 'GET', '/api/v1/groups')).status).toBe(401);
    expect((await call(rotated, 'GET', '/api/v1/groups')).status).toBe(200);
    const audit = (await (await call(rotated, 'GET', '/api/v1/audit')).json()) as { actor: string; action: string }[];
    expect(audit[0]).toMatchObject({ actor: 'cli', action: 'rotate' });
    await killGcks(second, 'SIGTERM');
  });

  it('refuses an invalid configuration, listing every problem, before touching anything', async () => {
    const bad = spawnGcks({ GCKS_DATA_DIR: join(dir.path, 'never'), GCKS_HTTP_PORT: 'eighty', GCKS_LOG_LEVEL: 'loud' });
    running.push(bad);
    expect(await bad.exited).toBe(2);
    expect(bad.output()).toContain('GCKS_HTTP_PORT');
    expect(bad.output()).toContain('GCKS_LOG_LEVEL');
    expect(() => statSync(join(dir.path, 'never'))).toThrow();
  });
});
