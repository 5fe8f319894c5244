import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * G-IKEv2 state of the GCKS (apps/gcks/src/{keys,registration,rekey}): its key material (Group
 * Owner signing key, group CA, the GCKS's IKE identity), each group's SAs and Message ID counter,
 * each member's LKH leaf, and the IKE SAs kept for in-band rekeys. Secret values are sealed under
 * the master key (SecretBox); the clear columns hold only public or non-secret data.
 */
export class GroupKeyManagement1795400000000 implements MigrationInterface {
  name = 'GroupKeyManagement1795400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE "gkm_keys" ("name" text PRIMARY KEY NOT NULL, "sealed" text NOT NULL, "publicJson" text NOT NULL, "createdAt" text NOT NULL)`);
    await q.query(
      `CREATE TABLE "gkm_groups" ("groupId" text PRIMARY KEY NOT NULL, "sealed" text NOT NULL, "lastMessageId" integer NOT NULL, "tokenEdition" integer NOT NULL, "stateJson" text NOT NULL, "updatedAt" text NOT NULL, CONSTRAINT "FK_gkm_groups_group" FOREIGN KEY ("groupId") REFERENCES "groups" ("id") ON DELETE CASCADE ON UPDATE NO ACTION)`,
    );
    await q.query(
      `CREATE TABLE "gkm_members" ("memberId" text PRIMARY KEY NOT NULL, "groupId" text NOT NULL, "leaf" integer, "ikeSpi" text, CONSTRAINT "FK_gkm_members_member" FOREIGN KEY ("memberId") REFERENCES "members" ("id") ON DELETE CASCADE ON UPDATE NO ACTION)`,
    );
    await q.query(`CREATE INDEX "IDX_gkm_members_group" ON "gkm_members" ("groupId")`);
    await q.query(`CREATE TABLE "gkm_ike_sas" ("spi" text PRIMARY KEY NOT NULL, "sealed" text NOT NULL, "updatedAt" text NOT NULL)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "gkm_ike_sas"`);
    await q.query(`DROP INDEX "IDX_gkm_members_group"`);
    await q.query(`DROP TABLE "gkm_members"`);
    await q.query(`DROP TABLE "gkm_groups"`);
    await q.query(`DROP TABLE "gkm_keys"`);
  }
}
