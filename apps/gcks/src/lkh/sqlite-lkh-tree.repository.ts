import type { LkhKeySize, LkhNodeRecord, LkhTreeMeta, LkhTreeRecord, LkhTreeRepository } from '@app/lkh';
import type { DataSource, EntityManager } from 'typeorm';
import { LkhNodeEntity } from './lkh-node.entity.js';
import { LkhTreeEntity } from './lkh-tree.entity.js';

/** Rows per multi-row upsert: 4 parameters each, well under SQLite's 32,766-parameter limit. */
const UPSERT_ROWS = 2000;

/**
 * The SQLite (TypeORM, better-sqlite3) implementation of libs/lkh's LkhTreeRepository. Every write
 * is one transaction: the meta row and the given node rows (upserted in chunks) commit together,
 * so a crash never leaves a tree between two rekeys. Keys arrive sealed; nothing here sees a key.
 */
export class SqliteLkhTreeRepository implements LkhTreeRepository {
  constructor(
    private readonly dataSource: DataSource,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async load(treeId: string): Promise<LkhTreeRecord | null> {
    const tree = await this.dataSource.getRepository(LkhTreeEntity).findOneBy({ id: treeId });
    if (!tree) return null;
    const rows = await this.dataSource
      .getRepository(LkhNodeEntity)
      .find({ where: { treeId }, order: { node: 'ASC' }, select: { node: true, version: true, sealedKey: true } });
    const meta: LkhTreeMeta = { degree: tree.degree, keySize: tree.keySize as LkhKeySize, height: tree.height, epoch: tree.epoch };
    return {
      meta,
      nodes: rows.map((r) => ({ node: r.node, version: r.version, sealedKey: r.sealedKey ? Buffer.from(r.sealedKey) : null })),
    };
  }

  async write(treeId: string, meta: LkhTreeMeta, nodes: readonly LkhNodeRecord[], options: { replace: boolean }): Promise<void> {
    await this.dataSource.transaction(async (m: EntityManager) => {
      const row: LkhTreeEntity = { id: treeId, ...meta, updatedAt: this.clock().toISOString() };
      await m.getRepository(LkhTreeEntity).save(row);
      if (options.replace) await m.query(`DELETE FROM "lkh_nodes" WHERE "treeId" = ?`, [treeId]);
      for (let i = 0; i < nodes.length; i += UPSERT_ROWS) {
        const chunk = nodes.slice(i, i + UPSERT_ROWS);
        const params: unknown[] = [];
        for (const n of chunk) params.push(treeId, n.node, n.version, n.sealedKey ? Buffer.from(n.sealedKey) : null);
        await m.query(
          `INSERT INTO "lkh_nodes" ("treeId", "node", "version", "sealedKey") VALUES ${chunk.map(() => '(?, ?, ?, ?)').join(', ')}
           ON CONFLICT ("treeId", "node") DO UPDATE SET "version" = excluded."version", "sealedKey" = excluded."sealedKey"`,
          params,
        );
      }
    });
  }

  async delete(treeId: string): Promise<void> {
    await this.dataSource.getRepository(LkhTreeEntity).delete({ id: treeId });
  }
}
