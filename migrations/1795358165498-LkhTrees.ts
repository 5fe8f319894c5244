import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * LKH key trees (libs/lkh, apps/gcks/src/lkh): one row per tree and one per node, node keys sealed
 * under the master key. Written to match LkhTreeEntity and LkhNodeEntity exactly.
 */
export class LkhTrees1795358165498 implements MigrationInterface {
  name = 'LkhTrees1795358165498';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE "lkh_trees" ("id" text PRIMARY KEY NOT NULL, "degree" integer NOT NULL, "keySize" integer NOT NULL, "height" integer NOT NULL, "epoch" integer NOT NULL, "updatedAt" text NOT NULL)`);
    await q.query(`CREATE TABLE "lkh_nodes" ("treeId" text NOT NULL, "node" integer NOT NULL, "version" integer NOT NULL, "sealedKey" blob, CONSTRAINT "FK_8802d53d482d4562aafb9f72c25" FOREIGN KEY ("treeId") REFERENCES "lkh_trees" ("id") ON DELETE CASCADE ON UPDATE NO ACTION, PRIMARY KEY ("treeId", "node"))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "lkh_nodes"`);
    await q.query(`DROP TABLE "lkh_trees"`);
  }
}
