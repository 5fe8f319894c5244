import { statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../../../test/support/temp-dir.js';
import { SQLITE_DEFAULT_AUTOCHECKPOINT, WalCheckpointer } from './wal-checkpointer.js';

/** The checkpoint thread on a real database file in WAL mode, written by this (main) connection. */
describe('WalCheckpointer', () => {
  const dirs: { remove(): void }[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) d.remove();
  });

  function open() {
    const dir = tempDir('wal-ckpt-');
    dirs.push(dir);
    const file = join(dir.path, 'db.sqlite');
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)');
    return { db, file };
  }

  const autocheckpoint = (db: Database.Database) => (db.pragma('wal_autocheckpoint') as { wal_autocheckpoint: number }[])[0]!.wal_autocheckpoint;
  const until = async (what: () => boolean, ms = 10_000) => {
    const end = Date.now() + ms;
    while (!what()) {
      if (Date.now() > end) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  it('checkpoints from its own thread while the main connection only appends to the WAL, and hands checkpoints back on stop', async () => {
    const { db, file } = open();
    const warnings: string[] = [];
    const c = new WalCheckpointer(db, { intervalMs: 20, warn: (m) => warnings.push(m) });
    c.start();
    expect(c.running).toBe(true);
    expect(autocheckpoint(db)).toBe(0);
    // 2,000 pages' worth of commits: past SQLite's own 1,000-page checkpoint point.
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    for (let i = 0; i < 400; i++) db.transaction(() => insert.run(Buffer.alloc(20_000, i & 0xff)))();
    // Only the thread checkpoints (the main connection's automatic checkpoints are off), so the
    // rows reaching the database file is its work.
    await until(() => statSync(file).size > 400 * 20_000);
    await until(() => c.stats.frames >= 2000);
    await c.stop();
    expect(c.running).toBe(false);
    expect(autocheckpoint(db)).toBe(SQLITE_DEFAULT_AUTOCHECKPOINT);
    expect(c.stats.errors).toBe(0);
    expect(warnings).toEqual([]);
    db.close();
    const again = new Database(file, { readonly: true });
    expect((again.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n).toBe(400);
    again.close();
  });

  it('a thread that cannot open the database gives checkpoints back to the connection and says so', async () => {
    const { db, file } = open();
    // The thread opens the file by name (it must exist): gone from the directory, it cannot.
    unlinkSync(file);
    const warnings: string[] = [];
    const c = new WalCheckpointer(db, { intervalMs: 20, warn: (m) => warnings.push(m) });
    c.start();
    await until(() => !c.running);
    expect(autocheckpoint(db)).toBe(SQLITE_DEFAULT_AUTOCHECKPOINT);
    expect(warnings.some((w) => w.startsWith('WAL checkpoint thread failed'))).toBe(true);
    expect(warnings.some((w) => w.includes('checkpoints itself again'))).toBe(true);
    db.close();
  });

  it('does nothing for an in-memory database or one not in WAL mode', () => {
    const mem = new Database(':memory:');
    const a = new WalCheckpointer(mem);
    a.start();
    expect(a.running).toBe(false);
    mem.close();
    const { db } = open();
    db.pragma('journal_mode = DELETE');
    const b = new WalCheckpointer(db);
    b.start();
    expect(b.running).toBe(false);
    expect(autocheckpoint(db)).toBe(SQLITE_DEFAULT_AUTOCHECKPOINT);
    db.close();
  });
});
