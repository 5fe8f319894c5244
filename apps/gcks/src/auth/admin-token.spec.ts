import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../../../test/support/temp-dir.js';
import { openDatabase } from '../database/data-source.js';
import { ensureAdminToken, hashToken, rotateAdminToken, verifyAdminToken } from './admin-token.js';

const clock = { now: () => new Date('2026-01-02T03:04:05.000Z') };
let counter = 0;
const random = (n: number) => Buffer.alloc(n, ++counter);

describe('admin token', () => {
  let dir: ReturnType<typeof tempDir>;
  let ds: DataSource;
  beforeEach(async () => {
    dir = tempDir();
    ds = await openDatabase(join(dir.path, 'db.sqlite'));
  });
  afterEach(async () => {
    await ds.destroy();
    dir.remove();
  });

  it('is generated once, written 0600, stored only as its SHA-256', async () => {
    const file = join(dir.path, 'admin-token');
    const sut = await ensureAdminToken(ds, file, clock, random);
    expect(sut.issued).toBe(true);
    const token = readFileSync(file, 'utf8').trim();
    expect(Buffer.from(token, 'base64url')).toHaveLength(32);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const rows = await ds.query('SELECT tokenHash FROM admin_credentials');
    expect(rows).toEqual([{ tokenHash: hashToken(token) }]);
    expect(await verifyAdminToken(ds, token)).toBe(sut.tokenId);
    expect(await verifyAdminToken(ds, `${token}x`)).toBeNull();
    expect(await verifyAdminToken(ds, '')).toBeNull();
    const again = await ensureAdminToken(ds, file, clock, random);
    expect(again.issued).toBe(false);
    expect(readFileSync(file, 'utf8').trim()).toBe(token);
  });

  it('rotation replaces the token and records who did it', async () => {
    const file = join(dir.path, 'admin-token');
    await ensureAdminToken(ds, file, clock, random);
    const old = readFileSync(file, 'utf8').trim();
    await rotateAdminToken(ds, file, clock, random);
    const fresh = readFileSync(file, 'utf8').trim();
    expect(fresh).not.toBe(old);
    expect(await verifyAdminToken(ds, old)).toBeNull();
    expect(await verifyAdminToken(ds, fresh)).not.toBeNull();
    const audit = await ds.query(`SELECT actor, action, details FROM audit_log ORDER BY id`);
    expect(audit.map((a: { actor: string; action: string }) => [a.actor, a.action])).toEqual([['system', 'create'], ['cli', 'rotate']]);
    expect(JSON.stringify(audit)).not.toContain(fresh);
  });
});
