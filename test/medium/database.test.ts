import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DataSource } from 'typeorm';
import { openDatabase } from '../../apps/gcks/src/database/data-source.js';
import { ENTITIES } from '../../apps/gcks/src/database/entities.js';
import { MIGRATIONS } from '../../migrations/index.js';
import { tempDir } from '../support/temp-dir.js';

const TABLES = ['groups', 'policies', 'pad_rules', 'trust_anchors', 'members', 'audit_log', 'admin_credentials'];

async function tableNames(ds: DataSource): Promise<string[]> {
  const rows: { name: string }[] = await ds.query(
    `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`,
  );
  return rows.map((r) => r.name);
}

describe('GCKS database (real SQLite file, migrations applied)', () => {
  let dir: ReturnType<typeof tempDir>;
  let ds: DataSource;

  beforeEach(async () => {
    dir = tempDir();
    ds = await openDatabase(join(dir.path, 'sub', 'gcks.sqlite'));
  });
  afterEach(async () => {
    if (ds?.isInitialized) await ds.destroy();
    dir.remove();
  });

  it('creates the file and its directory, and applies every migration', async () => {
    expect(statSync(join(dir.path, 'sub', 'gcks.sqlite')).isFile()).toBe(true);
    const applied: { name: string }[] = await ds.query(`SELECT name FROM migrations ORDER BY id`);
    expect(applied.map((m) => m.name)).toEqual(MIGRATIONS.map((m) => new m().name));
    expect(await tableNames(ds)).toEqual(expect.arrayContaining([...TABLES, 'migrations']));
  });

  it('runs in WAL mode with foreign keys enforced', async () => {
    expect(await ds.query('PRAGMA journal_mode')).toEqual([{ journal_mode: 'wal' }]);
    expect(await ds.query('PRAGMA foreign_keys')).toEqual([{ foreign_keys: 1 }]);
    expect(statSync(join(dir.path, 'sub', 'gcks.sqlite-wal')).isFile()).toBe(true);
    const now = new Date(0).toISOString();
    await expect(
      ds.query(
        `INSERT INTO members (id, groupId, identity, role, state, joinedAt) VALUES ('m1', 'no-such-group', 'x', 'receiver', 'registered', ?)`,
        [now],
      ),
    ).rejects.toThrow(/FOREIGN KEY constraint failed/);
  });

  it('cascades a group delete to its policies, PAD rules, trust anchors and members', async () => {
    const now = new Date(0).toISOString();
    await ds.query(
      `INSERT INTO groups (id, name, address, addressType, ipVersion, sourceMode, ssmSources, serviceModel, rekeyTransport, maxSpeakers, lkhDegree, enabled, createdAt, updatedAt)
       VALUES ('g1', 'g', '239.1.1.1', 'multicast', 4, 'asm', '[]', 'per-speaker', 'unicast', 16, 4, 1, ?, ?)`,
      [now, now],
    );
    await ds.query(
      `INSERT INTO members (id, groupId, identity, role, state, joinedAt) VALUES ('m1', 'g1', 'x', 'receiver', 'registered', ?)`,
      [now],
    );
    await ds.query(`DELETE FROM groups WHERE id = 'g1'`);
    expect(await ds.query(`SELECT count(*) AS n FROM members`)).toEqual([{ n: 0 }]);
  });

  it('maps every entity onto the migrated schema (no drift between entities and migrations)', async () => {
    expect(ds.entityMetadatas.map((m) => m.target)).toEqual(expect.arrayContaining(ENTITIES));
    const log = await ds.driver.createSchemaBuilder().log();
    expect(log.upQueries.map((q) => q.query)).toEqual([]);
  });

  it('reverts every migration with down() and applies them again', async () => {
    for (let i = 0; i < MIGRATIONS.length; i++) await ds.undoLastMigration({ transaction: 'each' });
    expect(await tableNames(ds)).toEqual(['migrations']);
    expect(await ds.query(`SELECT count(*) AS n FROM migrations`)).toEqual([{ n: 0 }]);
    await ds.runMigrations({ transaction: 'each' });
    expect(await tableNames(ds)).toEqual(expect.arrayContaining(TABLES));
    expect(await ds.query(`SELECT count(*) AS n FROM migrations`)).toEqual([{ n: MIGRATIONS.length }]);
  });
});
