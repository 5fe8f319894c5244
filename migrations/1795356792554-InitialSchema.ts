import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The Group Owner's policy store: groups, ordered GSPD entries, PAD rules and trust anchors
 * (spec/000 §4.1), members, the audit log and the admin credential. Written to match the
 * entities exactly (test/medium/database.test.ts checks there is no drift).
 */
export class InitialSchema1795356792554 implements MigrationInterface {
  name = 'InitialSchema1795356792554';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE "groups" ("id" text PRIMARY KEY NOT NULL, "name" text NOT NULL, "address" text NOT NULL, "addressType" text NOT NULL, "ipVersion" integer NOT NULL, "sourceMode" text NOT NULL, "ssmSources" text NOT NULL, "serviceModel" text NOT NULL, "rekeyTransport" text NOT NULL, "rekeyAddress" text, "rekeyPort" integer, "maxSpeakers" integer NOT NULL, "lkhDegree" integer NOT NULL, "enabled" boolean NOT NULL, "createdAt" text NOT NULL, "updatedAt" text NOT NULL, CONSTRAINT "UQ_groups_name" UNIQUE ("name"), CONSTRAINT "CHK_groups_rekeyTransport" CHECK ("rekeyTransport" IN ('multicast','unicast')), CONSTRAINT "CHK_groups_serviceModel" CHECK ("serviceModel" IN ('unidirectional','per-speaker','any-to-any')), CONSTRAINT "CHK_groups_sourceMode" CHECK ("sourceMode" IN ('asm','ssm')), CONSTRAINT "CHK_groups_ipVersion" CHECK ("ipVersion" IN (4, 6)), CONSTRAINT "CHK_groups_addressType" CHECK ("addressType" IN ('multicast','broadcast','anycast')))`);
    await q.query(`CREATE TABLE "policies" ("id" text PRIMARY KEY NOT NULL, "groupId" text NOT NULL, "position" integer NOT NULL, "name" text NOT NULL, "sourcePrefix" text NOT NULL, "destinationPrefix" text NOT NULL, "protocol" integer, "sourcePort" integer, "destinationPort" integer, "action" text NOT NULL, "direction" text NOT NULL, "mode" text NOT NULL, "addressPreservation" text NOT NULL, "udpEncapsulation" boolean NOT NULL, "espTransform" text NOT NULL, "antiReplay" boolean NOT NULL, "replayWindow" integer NOT NULL, "dataOriginAuth" text NOT NULL, "tekLifetime" integer NOT NULL, "kekLifetime" integer NOT NULL, "rekeyRollover" boolean NOT NULL, "atd" integer NOT NULL, "dtd" integer NOT NULL, "rekeyRetransmissions" integer NOT NULL, "leaveBehaviour" text NOT NULL, "leaveBatchInterval" integer, "createdAt" text NOT NULL, "updatedAt" text NOT NULL, CONSTRAINT "CHK_policies_dtd" CHECK ("dtd" > 0), CONSTRAINT "CHK_policies_atd" CHECK ("atd" > 0), CONSTRAINT "CHK_policies_addressPreservation" CHECK ("addressPreservation" IN ('none','source','destination','both')), CONSTRAINT "CHK_policies_mode" CHECK ("mode" IN ('tunnel','transport')), CONSTRAINT "CHK_policies_direction" CHECK ("direction" IN ('symmetric','sender-only','receiver-only')), CONSTRAINT "CHK_policies_action" CHECK ("action" IN ('protect','bypass','discard')), CONSTRAINT "FK_ba576bb7c2724ad2e5a6890e5ba" FOREIGN KEY ("groupId") REFERENCES "groups" ("id") ON DELETE CASCADE ON UPDATE NO ACTION)`);
    await q.query(`CREATE INDEX "IDX_policies_group_position" ON "policies" ("groupId", "position")`);
    await q.query(`CREATE UNIQUE INDEX "IDX_policies_group_name" ON "policies" ("groupId", "name")`);
    await q.query(`CREATE TABLE "pad_rules" ("id" text PRIMARY KEY NOT NULL, "groupId" text NOT NULL, "kind" text NOT NULL, "idType" text NOT NULL, "pattern" text NOT NULL, "role" text, "pskSealed" text, "createdAt" text NOT NULL, "updatedAt" text NOT NULL, CONSTRAINT "CHK_pad_rules_role" CHECK ("role" IS NULL OR "role" IN ('receiver','speaker','both')), CONSTRAINT "CHK_pad_rules_kind" CHECK ("kind" IN ('member','gcks')), CONSTRAINT "FK_d6ac73f502cbbb1533cd391d123" FOREIGN KEY ("groupId") REFERENCES "groups" ("id") ON DELETE CASCADE ON UPDATE NO ACTION)`);
    await q.query(`CREATE UNIQUE INDEX "IDX_pad_rules_unique" ON "pad_rules" ("groupId", "kind", "idType", "pattern")`);
    await q.query(`CREATE TABLE "trust_anchors" ("id" text PRIMARY KEY NOT NULL, "groupId" text NOT NULL, "name" text NOT NULL, "pem" text NOT NULL, "fingerprint" text NOT NULL, "subject" text NOT NULL, "notAfter" text NOT NULL, "createdAt" text NOT NULL, CONSTRAINT "FK_8c84797ee35293ef93ca06b8e23" FOREIGN KEY ("groupId") REFERENCES "groups" ("id") ON DELETE CASCADE ON UPDATE NO ACTION)`);
    await q.query(`CREATE UNIQUE INDEX "IDX_trust_anchors_unique" ON "trust_anchors" ("groupId", "fingerprint")`);
    await q.query(`CREATE TABLE "members" ("id" text PRIMARY KEY NOT NULL, "groupId" text NOT NULL, "identity" text NOT NULL, "role" text NOT NULL, "state" text NOT NULL, "address" text, "senderId" integer, "joinedAt" text NOT NULL, "lastSeenAt" text, CONSTRAINT "CHK_members_state" CHECK ("state" IN ('registered','left','evicted')), CONSTRAINT "CHK_members_role" CHECK ("role" IN ('receiver','speaker','both')), CONSTRAINT "FK_e79799797e2b44d0fb235eee5ec" FOREIGN KEY ("groupId") REFERENCES "groups" ("id") ON DELETE CASCADE ON UPDATE NO ACTION)`);
    await q.query(`CREATE UNIQUE INDEX "IDX_members_group_identity" ON "members" ("groupId", "identity")`);
    await q.query(`CREATE TABLE "audit_log" ("id" integer PRIMARY KEY AUTOINCREMENT NOT NULL, "at" text NOT NULL, "actor" text NOT NULL, "remoteAddress" text, "action" text NOT NULL, "entityType" text NOT NULL, "entityId" text NOT NULL, "groupId" text, "details" text NOT NULL)`);
    await q.query(`CREATE INDEX "IDX_audit_log_group" ON "audit_log" ("groupId")`);
    await q.query(`CREATE TABLE "admin_credentials" ("id" integer PRIMARY KEY NOT NULL, "tokenHash" text NOT NULL, "createdAt" text NOT NULL, "rotatedAt" text, CONSTRAINT "CHK_admin_credentials_single" CHECK ("id" = 1))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "admin_credentials"`);
    await q.query(`DROP INDEX "IDX_audit_log_group"`);
    await q.query(`DROP TABLE "audit_log"`);
    await q.query(`DROP INDEX "IDX_members_group_identity"`);
    await q.query(`DROP TABLE "members"`);
    await q.query(`DROP INDEX "IDX_trust_anchors_unique"`);
    await q.query(`DROP TABLE "trust_anchors"`);
    await q.query(`DROP INDEX "IDX_pad_rules_unique"`);
    await q.query(`DROP TABLE "pad_rules"`);
    await q.query(`DROP INDEX "IDX_policies_group_position"`);
    await q.query(`DROP INDEX "IDX_policies_group_name"`);
    await q.query(`DROP TABLE "policies"`);
    await q.query(`DROP TABLE "groups"`);
  }
}
