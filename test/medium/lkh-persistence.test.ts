import { join } from 'node:path';
import { LkhError, LkhTree, LkhTreeStore, MemberKeys, NodeKeySealer, type LkhNodeRecord, type LkhTreeMeta, type LkhTreeRepository, type RandomFill } from '@app/lkh';
import type { DataSource } from 'typeorm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../apps/gcks/src/database/data-source.js';
import { SqliteLkhTreeRepository } from '../../apps/gcks/src/lkh/sqlite-lkh-tree.repository.js';
import { Prng } from '../../libs/lkh/src/testing/seeded-random.js';
import { tempDir } from '../support/temp-dir.js';

const KEK = Buffer.alloc(32, 7);
const TREE = 'group-1';

/** Counts what each write hands to SQLite, to check a rekey writes only the nodes it changed. */
class CountingRepository implements LkhTreeRepository {
  writes: number[] = [];
  constructor(private readonly inner: LkhTreeRepository) {}
  load(id: string) {
    return this.inner.load(id);
  }
  write(id: string, meta: LkhTreeMeta, nodes: readonly LkhNodeRecord[], o: { replace: boolean }) {
    this.writes.push(nodes.length);
    return this.inner.write(id, meta, nodes, o);
  }
  delete(id: string) {
    return this.inner.delete(id);
  }
}

type Row = { node: number; version: number; sealedKey: Buffer | null };
const rows = async (ds: DataSource): Promise<Row[]> =>
  ds.query(`SELECT node, version, sealedKey FROM lkh_nodes WHERE treeId = ? ORDER BY node`, [TREE]);

describe('LKH tree persistence (real SQLite file, migrations applied)', () => {
  let dir: ReturnType<typeof tempDir>;
  let file: string;
  let ds: DataSource;

  beforeEach(async () => {
    dir = tempDir();
    file = join(dir.path, 'gcks.sqlite');
    ds = await openDatabase(file);
  });
  afterEach(async () => {
    if (ds?.isInitialized) await ds.destroy();
    dir.remove();
  });

  it('survives a restart exactly and writes only the changed nodes per rekey', async () => {
    // The tree's randomness can be switched, so the original and the reloaded tree can be fed the same bytes.
    let source: RandomFill = new Prng(1).fill;
    const random: RandomFill = (b) => source(b);
    const tree = new LkhTree({ degree: 3, keySize: 32, random });
    const repo = new CountingRepository(new SqliteLkhTreeRepository(ds));
    const store = new LkhTreeStore(repo, new NodeKeySealer(KEK, new Prng(2).fill));
    const first = tree.rekey({ joins: 40 });
    await store.saveAll(TREE, tree);
    const members = new Map<number, MemberKeys>();
    for (const j of first.joined) {
      const m = MemberKeys.forJoiner({ degree: 3, keySize: 32, epoch: first.rekey.epoch, leafKeyId: j.leafKeyId, leafKey: j.leafKey });
      m.apply(first.rekey);
      members.set(j.leaf, m);
    }
    const rng = new Prng(3);
    for (let step = 0; step < 25; step++) {
      const leaves = [...members.keys()].filter(() => rng.int(8) === 0);
      const before = await rows(ds);
      const r = tree.rekey({ leaves, joins: rng.int(4) });
      await store.saveChanges(TREE, tree, r.changes);
      expect(repo.writes.at(-1)).toBe(r.changes.nodes.length);
      const after = await rows(ds);
      const changed = new Set(r.changes.nodes);
      const old = new Map(before.map((x) => [x.node, x]));
      for (const row of after) {
        if (changed.has(row.node)) continue;
        expect(row).toEqual(old.get(row.node)); // untouched rows are byte-identical
      }
      for (const leaf of leaves) members.delete(leaf);
      for (const m of members.values()) m.apply(r.rekey);
      for (const j of r.joined) {
        const m = MemberKeys.forJoiner({ degree: 3, keySize: 32, epoch: r.rekey.epoch, leafKeyId: j.leafKeyId, leafKey: j.leafKey });
        m.apply(r.rekey);
        members.set(j.leaf, m);
      }
    }

    // No clear key in any row.
    const keys = [...tree.allNodes()].filter((n) => n.key).map((n) => n.key!);
    for (const row of await rows(ds)) for (const k of keys) expect(row.sealedKey?.includes(k) ?? false).toBe(false);

    // Restart: close the database, open the file again (migrations already applied), load.
    await ds.destroy();
    ds = await openDatabase(file);
    const store2 = new LkhTreeStore(new SqliteLkhTreeRepository(ds), new NodeKeySealer(KEK));
    const loaded = (await store2.load(TREE, { random: new Prng(99).fill }))!;
    expect(loaded.meta()).toEqual(tree.meta());
    expect([...loaded.allNodes()]).toEqual([...tree.allNodes()]);
    expect([...loaded.memberLeaves()]).toEqual([...tree.memberLeaves()]);
    expect(loaded.rootKey()!.equals(tree.rootKey()!)).toBe(true);

    // Same input and randomness after the restart: byte-identical rekeys, and members follow.
    source = new Prng(99).fill;
    const leaf = [...members.keys()][0]!;
    const a = tree.rekey({ leaves: [leaf], joins: 2 });
    const b = loaded.rekey({ leaves: [leaf], joins: 2 });
    expect(b.rekey).toEqual(a.rekey);
    members.delete(leaf);
    for (const m of members.values()) expect(m.apply(b.rekey).rootKey.equals(loaded.rootKey()!)).toBe(true);
  });

  it('refuses a wrong KEK, a tampered row and a key moved to another node (BAD_SNAPSHOT)', async () => {
    const tree = LkhTree.build({ degree: 4, random: new Prng(4).fill }, 30);
    const repo = new SqliteLkhTreeRepository(ds);
    await new LkhTreeStore(repo, new NodeKeySealer(KEK)).saveAll(TREE, tree);
    const code = async (p: Promise<unknown>) => {
      try {
        await p;
      } catch (e) {
        return (e as LkhError).code;
      }
      return 'none';
    };
    expect(await code(new LkhTreeStore(repo, new NodeKeySealer(Buffer.alloc(32, 8))).load(TREE))).toBe('BAD_SNAPSHOT');
    const [r0, r1] = await rows(ds);
    await ds.query(`UPDATE lkh_nodes SET sealedKey = ? WHERE treeId = ? AND node = ?`, [r1!.sealedKey, TREE, r0!.node]);
    expect(await code(new LkhTreeStore(repo, new NodeKeySealer(KEK)).load(TREE))).toBe('BAD_SNAPSHOT');
    const bad = Buffer.from(r0!.sealedKey!);
    bad[20]! ^= 1;
    await ds.query(`UPDATE lkh_nodes SET sealedKey = ? WHERE treeId = ? AND node = ?`, [bad, TREE, r0!.node]);
    expect(await code(new LkhTreeStore(repo, new NodeKeySealer(KEK)).load(TREE))).toBe('BAD_SNAPSHOT');
    // A deleted internal node (a member left without its path) is an inconsistent tree.
    await ds.query(`UPDATE lkh_nodes SET sealedKey = ? WHERE treeId = ? AND node = ?`, [r0!.sealedKey, TREE, r0!.node]);
    const root = tree.rootNode;
    await ds.query(`UPDATE lkh_nodes SET sealedKey = NULL WHERE treeId = ? AND node = ?`, [TREE, root]);
    expect(await code(new LkhTreeStore(repo, new NodeKeySealer(KEK)).load(TREE))).toBe('BAD_SNAPSHOT');
    expect(await new LkhTreeStore(repo, new NodeKeySealer(KEK)).load('no-such-tree')).toBeNull();
  });

  it('cascades a tree delete to its nodes and migrates down cleanly', async () => {
    const tree = LkhTree.build({ degree: 2 }, 5);
    const repo = new SqliteLkhTreeRepository(ds);
    await new LkhTreeStore(repo, new NodeKeySealer(KEK)).saveAll(TREE, tree);
    expect((await rows(ds)).length).toBeGreaterThan(0);
    await repo.delete(TREE);
    expect(await rows(ds)).toEqual([]);
    // Undo migrations (later ones first) until ours is reverted.
    const ours = async () => ((await ds.query(`SELECT name FROM migrations WHERE name LIKE 'LkhTrees%'`)) as unknown[]).length > 0;
    while (await ours()) await ds.undoLastMigration({ transaction: 'each' });
    const tables: { name: string }[] = await ds.query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'lkh_%'`);
    expect(tables).toEqual([]);
  });
});
