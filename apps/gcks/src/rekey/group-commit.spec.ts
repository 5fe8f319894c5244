import Database from 'better-sqlite3';
import { beforeEach, describe, expect, it } from 'vitest';
import type { RawDb } from '../keys/raw-db.js';
import { GroupCommit } from './group-commit.js';

/** GroupCommit on a real (in-memory) better-sqlite3 connection; the flush is run by the test. */
describe('GroupCommit', () => {
  let db: Database.Database;
  let raw: RawDb;
  let deferred: (() => void)[];
  let rolledBack: unknown[];
  let sut: GroupCommit;
  const rows = () => (db.prepare('SELECT v FROM t ORDER BY v').all() as { v: string }[]).map((r) => r.v);
  const insert = (v: string) => db.prepare('INSERT INTO t (v) VALUES (?)').run(v);

  beforeEach(() => {
    db = new Database(':memory:');
    db.exec('CREATE TABLE t (v TEXT NOT NULL UNIQUE)');
    raw = db as unknown as RawDb;
    deferred = [];
    rolledBack = [];
    sut = new GroupCommit(raw, { defer: (fn) => deferred.push(fn), onRollback: (e) => rolledBack.push(e) });
  });

  it('holds what is sent during a batch until its COMMIT, then releases it in order', () => {
    const sent: string[] = [];
    expect(sut.begin()).toBe(true);
    expect(sut.begin()).toBe(true); // joins the open batch
    expect(deferred).toHaveLength(1);
    insert('a');
    sut.afterCommit(() => sent.push('answer a'));
    insert('b');
    sut.afterCommit(() => sent.push('answer b'));
    expect(sent).toEqual([]);
    expect(db.inTransaction).toBe(true);
    deferred[0]!();
    expect(db.inTransaction).toBe(false);
    expect(sent).toEqual(['answer a', 'answer b']);
    expect(rows()).toEqual(['a', 'b']);
    expect(sut.stats).toMatchObject({ commits: 1, rollbacks: 0, released: 2, dropped: 0 });
    sut.afterCommit(() => sent.push('no batch: at once'));
    expect(sent).toHaveLength(3);
  });

  it('a failing write in its own savepoint rolls back only itself; the batch commits the rest', () => {
    sut.begin();
    db.transaction(() => insert('a'))();
    expect(() => db.transaction(() => {
      insert('b');
      insert('a'); // UNIQUE violation: 'b' goes with it
    })()).toThrow();
    db.transaction(() => insert('c'))();
    expect(sut.flush()).toBe(true);
    expect(rows()).toEqual(['a', 'c']);
  });

  it('a failed COMMIT rolls the whole batch back, drops the held actions and the once-writes, and reports it', () => {
    const sent: string[] = [];
    const once: string[] = [];
    sut.begin();
    insert('a');
    sut.afterCommit(() => sent.push('answer a'));
    sut.writeOnce('k', () => once.push('k'));
    (sut as unknown as { commit(): void }).commit = () => {
      throw new Error('disk says no');
    };
    expect(sut.flush()).toBe(false);
    expect(db.inTransaction).toBe(false);
    expect(rows()).toEqual([]);
    expect(sent).toEqual([]);
    expect(rolledBack.map((e) => (e as Error).message)).toEqual(['disk says no']);
    expect(sut.stats).toMatchObject({ commits: 0, rollbacks: 1, dropped: 1 });
    expect(sut.isOpen).toBe(false);
    deferred[0]!(); // the scheduled flush finds nothing open
    expect(sut.stats.rollbacks).toBe(1);
  });

  it('writeOnce runs once per key just before COMMIT with the value then; at once without a batch', () => {
    db.exec('CREATE TABLE c (k TEXT PRIMARY KEY, n INTEGER)');
    const put = (n: number) => db.prepare('INSERT INTO c VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET n = excluded.n').run('g', n);
    let counter = 0;
    let writes = 0;
    sut.begin();
    for (let i = 0; i < 5; i++) {
      counter++;
      sut.writeOnce('g', () => {
        writes++;
        put(counter);
      });
    }
    counter = 7;
    expect(writes).toBe(0);
    sut.flush();
    expect(writes).toBe(1);
    expect(db.prepare('SELECT n FROM c').get()).toEqual({ n: 7 });
    sut.writeOnce('g', () => put(9));
    expect(db.prepare('SELECT n FROM c').get()).toEqual({ n: 9 });
  });

  it('a batch SQLite rolled back by itself is ended as a failed one: held answers dropped, the next batch starts clean', () => {
    const sent: string[] = [];
    sut.begin();
    insert('a');
    sut.afterCommit(() => sent.push('answer a'));
    sut.writeOnce('k', () => insert('written-late'));
    db.exec('ROLLBACK'); // what SQLite does on SQLITE_FULL or an I/O error
    expect(sut.begin()).toBe(true);
    expect(rolledBack).toHaveLength(1);
    expect(sent).toEqual([]);
    insert('b');
    sut.afterCommit(() => sent.push('answer b'));
    expect(sut.flush()).toBe(true);
    expect(rows()).toEqual(['b']);
    expect(sent).toEqual(['answer b']);
  });

  it('inside somebody else\'s transaction it opens nothing and holds nothing', () => {
    db.exec('BEGIN');
    const sent: string[] = [];
    expect(sut.begin()).toBe(false);
    sut.afterCommit(() => sent.push('x'));
    expect(sent).toEqual(['x']);
    expect(deferred).toHaveLength(0);
    db.exec('COMMIT');
  });
});
