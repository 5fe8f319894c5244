import { LkhTree, type LkhKeySize, type LkhTreeOptions, type NodeKeySealer } from '@app/lkh';
import type { RawDb, RawStatement } from '../keys/raw-db.js';
import type { GroupCommit } from './group-commit.js';

/** One audit row written in the same transaction as the change it records. */
export interface GkmAudit {
  actor: string;
  remoteAddress: string | null;
  action: string;
  entityType: string;
  entityId: string;
  groupId: string | null;
  details: Record<string, unknown>;
}

/**
 * Synchronous writes of the G-IKEv2 state (better-sqlite3 under TypeORM): group SAs and counters
 * (`gkm_groups`), members and their LKH leaves, IKE SAs, LKH node rows (sealed exactly as
 * libs/lkh's LkhTreeStore seals them, so `LkhTreeStore.load` reads them back) and audit rows.
 * Callers group the writes of one event in `tx` so they commit together or not at all.
 */
export class GkmStore {
  private readonly s: Record<string, RawStatement>;
  /** The registration path's group commit, when there is one (RegistrationService sets it). */
  commits?: GroupCommit;

  constructor(
    private readonly db: RawDb,
    private readonly sealer: NodeKeySealer,
    private readonly now: () => Date,
  ) {
    this.runTx = db.transaction((fn: () => unknown) => fn());
    const p = (sql: string) => db.prepare(sql);
    this.s = {
      group: p(
        `INSERT INTO "gkm_groups" ("groupId", "sealed", "lastMessageId", "tokenEdition", "stateJson", "updatedAt") VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT ("groupId") DO UPDATE SET "sealed" = excluded."sealed", "lastMessageId" = excluded."lastMessageId", "tokenEdition" = excluded."tokenEdition", "stateJson" = excluded."stateJson", "updatedAt" = excluded."updatedAt"`,
      ),
      counter: p(`UPDATE "gkm_groups" SET "lastMessageId" = ?, "stateJson" = ?, "updatedAt" = ? WHERE "groupId" = ?`),
      tree: p(
        `INSERT INTO "lkh_trees" ("id", "degree", "keySize", "height", "epoch", "updatedAt") VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT ("id") DO UPDATE SET "degree" = excluded."degree", "keySize" = excluded."keySize", "height" = excluded."height", "epoch" = excluded."epoch", "updatedAt" = excluded."updatedAt"`,
      ),
      node: p(
        `INSERT INTO "lkh_nodes" ("treeId", "node", "version", "sealedKey") VALUES (?, ?, ?, ?)
         ON CONFLICT ("treeId", "node") DO UPDATE SET "version" = excluded."version", "sealedKey" = excluded."sealedKey"`,
      ),
      member: p(
        `INSERT INTO "members" ("id", "groupId", "identity", "role", "state", "address", "senderId", "joinedAt", "lastSeenAt") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT ("id") DO UPDATE SET "role" = excluded."role", "state" = excluded."state", "address" = excluded."address", "senderId" = excluded."senderId", "joinedAt" = excluded."joinedAt", "lastSeenAt" = excluded."lastSeenAt"`,
      ),
      memberState: p(`UPDATE "members" SET "state" = ?, "lastSeenAt" = ? WHERE "id" = ?`),
      gkmMember: p(
        `INSERT INTO "gkm_members" ("memberId", "groupId", "leaf", "ikeSpi") VALUES (?, ?, ?, ?)
         ON CONFLICT ("memberId") DO UPDATE SET "leaf" = excluded."leaf", "ikeSpi" = excluded."ikeSpi"`,
      ),
      ikeSa: p(
        `INSERT INTO "gkm_ike_sas" ("spi", "sealed", "updatedAt") VALUES (?, ?, ?) ON CONFLICT ("spi") DO UPDATE SET "sealed" = excluded."sealed", "updatedAt" = excluded."updatedAt"`,
      ),
      ikeSaDelete: p(`DELETE FROM "gkm_ike_sas" WHERE "spi" = ?`),
      audit: p(
        `INSERT INTO "audit_log" ("at", "actor", "remoteAddress", "action", "entityType", "entityId", "groupId", "details") VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
    };
  }

  /**
   * A tree read back synchronously (LkhTreeStore.load's format: meta row, node rows sealed by the
   * same sealer), for the restart and for restoring the state after a failed group commit.
   */
  loadTree(treeId: string, options: Pick<LkhTreeOptions, 'random'>): LkhTree | undefined {
    this.s.loadTree ??= this.db.prepare(`SELECT "degree", "keySize", "height", "epoch" FROM "lkh_trees" WHERE "id" = ?`);
    this.s.loadNodes ??= this.db.prepare(`SELECT "node", "version", "sealedKey" FROM "lkh_nodes" WHERE "treeId" = ? ORDER BY "node"`);
    const meta = this.s.loadTree.get(treeId) as { degree: number; keySize: number; height: number; epoch: number } | undefined;
    if (!meta) return undefined;
    const rows = this.s.loadNodes.all(treeId) as { node: number; version: number; sealedKey: Uint8Array | null }[];
    const states = rows.map((r) => ({ node: r.node, version: r.version, key: r.sealedKey ? this.sealer.open(treeId, r.node, r.version, r.sealedKey) : null }));
    return LkhTree.restore(options, { degree: meta.degree, keySize: meta.keySize as LkhKeySize, height: meta.height, epoch: meta.epoch }, states);
  }

  /** Runs `fn` in one SQLite transaction (nested calls join the outer one). */
  tx<T>(fn: () => T): T {
    return this.runTx(fn) as T;
  }
  /** One transaction function for every call (better-sqlite3 builds four wrappers per `transaction`). */
  private readonly runTx: (fn: () => unknown) => unknown;

  saveGroup(groupId: string, sealed: string, lastMessageId: number, tokenEdition: number, state: unknown): void {
    this.s.group!.run(groupId, sealed, lastMessageId, tokenEdition, JSON.stringify(state), this.now().toISOString());
  }

  saveCounter(groupId: string, lastMessageId: number, state: unknown): void {
    this.s.counter!.run(lastMessageId, JSON.stringify(state), this.now().toISOString(), groupId);
  }

  /**
   * The counter row as `read` gives it when the open group commit (if any) commits: one write per
   * group and batch instead of one per registration; at once without a batch.
   */
  saveCounterAtCommit(groupId: string, read: () => { lastMessageId: number; state: unknown }): void {
    const write = () => {
      const v = read();
      this.saveCounter(groupId, v.lastMessageId, v.state);
    };
    if (this.commits) this.commits.writeOnce(`counter:${groupId}`, write);
    else write();
  }

  /** The tree's meta and the given nodes (all when `nodes` is omitted). */
  saveTree(treeId: string, tree: LkhTree, nodes?: readonly number[]): void {
    const m = tree.meta();
    this.s.tree!.run(treeId, m.degree, m.keySize, m.height, m.epoch, this.now().toISOString());
    const states = nodes ? nodes.map((n) => tree.nodeState(n)) : [...tree.allNodes()];
    for (const n of states) {
      this.s.node!.run(treeId, n.node, n.version, n.key ? this.sealer.seal(treeId, n.node, n.version, n.key) : null);
    }
  }

  saveMember(m: { id: string; groupId: string; identity: string; role: string; state: string; address: string | null; senderId: number | null; joinedAt: string; leaf: number | null; ikeSpi: string | null }): void {
    this.s.member!.run(m.id, m.groupId, m.identity, m.role, m.state, m.address, m.senderId, m.joinedAt, m.joinedAt);
    this.s.gkmMember!.run(m.id, m.groupId, m.leaf, m.ikeSpi);
  }

  setMemberState(memberId: string, groupId: string, state: string, leaf: number | null, ikeSpi: string | null): void {
    this.s.memberState!.run(state, this.now().toISOString(), memberId);
    this.s.gkmMember!.run(memberId, groupId, leaf, ikeSpi);
  }

  saveIkeSa(spi: string, sealed: string): void {
    this.s.ikeSa!.run(spi, sealed, this.now().toISOString());
  }

  deleteIkeSa(spi: string): void {
    this.s.ikeSaDelete!.run(spi);
  }

  audit(a: GkmAudit): void {
    this.s.audit!.run(this.now().toISOString(), a.actor, a.remoteAddress, a.action, a.entityType, a.entityId, a.groupId, JSON.stringify(a.details));
  }
}
