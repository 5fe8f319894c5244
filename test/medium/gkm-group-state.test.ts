import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DataSource } from 'typeorm';
import { EncrId, IkePayload, getPayload } from '@app/codec';
import { ownerKeyIdOf } from '@app/crypto';
import { openGsaRekey, splitRekeyKeys } from '@app/gkm';
import { LkhTreeStore, NodeKeySealer } from '@app/lkh';
import { openDatabase } from '../../apps/gcks/src/database/data-source.js';
import { rawDb } from '../../apps/gcks/src/keys/raw-db.js';
import { loadGroupConfig } from '../../apps/gcks/src/registration/group-config.js';
import { SqliteLkhTreeRepository } from '../../apps/gcks/src/lkh/sqlite-lkh-tree.repository.js';
import { GkmStore } from '../../apps/gcks/src/rekey/gkm-store.js';
import { GroupKeyState, REKEY_SHAPE, type GroupKeyDeps } from '../../apps/gcks/src/rekey/group-key-state.js';
import { MasterKeyService } from '../../apps/gcks/src/security/master-key.service.js';
import { SecretBox } from '../../apps/gcks/src/security/secret-box.js';
import { tempDir } from '../support/temp-dir.js';

/**
 * One group's key state against a real SQLite database with the migrations applied, under an
 * injected clock: when rekeys fall due (TEK lifetime − 4·ATD, batched leaves), what each rekey
 * sends, and that a state reloaded from the database continues exactly (Message IDs, keys, tree).
 */

const T0 = Date.UTC(2026, 10, 22, 12, 0, 0);
const signer = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const owner = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const SUITE = { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 256, integId: 0 };

describe('GroupKeyState (SQLite, injected clock)', () => {
  let dir: ReturnType<typeof tempDir>;
  let ds: DataSource;
  let now = T0;
  let deps: GroupKeyDeps;
  let sealer: NodeKeySealer;

  beforeEach(async () => {
    dir = tempDir();
    ds = await openDatabase(join(dir.path, 'gcks.sqlite'));
    const master = MasterKeyService.loadOrCreate(join(dir.path, 'master.key'), (n) => randomBytes(n));
    const key = master.key();
    sealer = new NodeKeySealer(key);
    const db = rawDb(ds);
    const iso = new Date(T0).toISOString();
    db.prepare(
      `INSERT INTO "groups" VALUES ('g1', 'conf', '239.1.2.3', 'multicast', 4, 'asm', '[]', 'any-to-any', 'multicast', '239.9.9.9', 848, 64, 4, 1, ?, ?)`,
    ).run(iso, iso);
    db.prepare(
      `INSERT INTO "policies" VALUES ('p1', 'g1', 1, 'data', '0.0.0.0/0', '239.1.2.3/32', 17, NULL, 5000, 'protect', 'symmetric', 'tunnel', 'both', 0, 'aes-gcm-256', 1, 64, 'none', 600, 3600, 1, 15, 15, 2, 'batched', 30, ?, ?)`,
    ).run(iso, iso);
    now = T0;
    deps = {
      store: new GkmStore(db, sealer, () => new Date(now)),
      secrets: new SecretBox(master, (n) => randomBytes(n)),
      random: (n: number) => randomBytes(n),
      now: () => now,
      signingKey: signer.privateKey,
      authKey: signer.publicKey,
      owner: { signingKey: owner.privateKey, ownerKeyId: ownerKeyIdOf(owner.publicKey) },
      gcksIdentity: 'gcks.groupsec.local',
    };
  });
  afterEach(async () => {
    if (ds?.isInitialized) await ds.destroy();
    dir.remove();
  });

  const cfg = () => loadGroupConfig(rawDb(ds), { id: 'g1' })!;
  const ike = (spi: string) => ({ gskW: new Uint8Array(32).fill(1), spi, sealedRecord: 'x' });
  const audit = { actor: 'test', remoteAddress: null, action: 'register', entityType: 'member', details: {} };

  it('TEKs fall due at lifetime − 4·ATD; the TEK rekey is one signed message under the current KEK with new TEKs only', () => {
    const sut = GroupKeyState.create(cfg(), deps);
    sut.admit({ identity: 'a', role: 'receiver', senderIdsRequested: 0, address: null }, ike('01'), audit);
    expect(sut.nextDue()).toEqual({ at: T0 + (600 - 4 * 15) * 1000, reason: 'tek-expiry' });
    now = T0 + 540_000;
    const spi = sut.rekeySpi;
    const keymat = (sut as unknown as { rekeySa: { keymat: Uint8Array } }).rekeySa.keymat;
    const before = sut.lastMessageId;
    const msgs = sut.rekey('tek-expiry');
    expect(msgs.map((m) => m.messageId)).toEqual([before + 1]);
    const k = splitRekeyKeys(REKEY_SHAPE, keymat);
    const r = openGsaRekey(msgs[0]!.bytes, { rekeySpi: spi, suite: SUITE, kek: { enc: k.gskE, integ: k.gskA }, authKey: signer.publicKey, minMessageId: before + 1 });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const gsa = getPayload(r.payloads, IkePayload.GSA)!;
    expect(gsa.policies.filter((p) => p.kind === 'sa').map((p) => (p as { protocol: number }).protocol)).toEqual([3]); // ESP only, no new KEK
    expect(Buffer.from(sut.rekeySpi)).toEqual(Buffer.from(spi));
    expect(sut.nextDue().at).toBe(now + 540_000);
  });

  it('batched leaves wait for the interval, then one rekey covers them; a reloaded state continues above the last Message ID', async () => {
    const sut = GroupKeyState.create(cfg(), deps);
    for (const n of ['a', 'b', 'c', 'd']) sut.admit({ identity: n, role: 'receiver', senderIdsRequested: 0, address: null }, ike(n), audit);
    now = T0 + 1000;
    expect(sut.leave('c', 'left', { ...audit, action: 'leave' }).messages).toEqual([]);
    now = T0 + 5000;
    expect(sut.leave('d', 'evicted', { ...audit, action: 'evict' }).messages).toEqual([]);
    expect(sut.nextDue()).toEqual({ at: T0 + 1000 + 30_000, reason: 'leave' });
    now = T0 + 31_000;
    const msgs = sut.rekey('leave');
    expect(msgs).toHaveLength(2); // new KEK under the new LKH root, then TEKs on the new Rekey SA
    expect(sut.schedule.pendingLeaves).toEqual([]);
    expect(sut.registeredCount()).toBe(2);

    const row = (await ds.query(`SELECT * FROM "gkm_groups" WHERE "groupId" = 'g1'`))[0];
    expect(row.lastMessageId).toBe(sut.lastMessageId);
    expect(row.sealed).not.toContain(Buffer.from(sut.rekeySpi).toString('hex'));
    const tree = await new LkhTreeStore(new SqliteLkhTreeRepository(ds), sealer).load('g1');
    expect(tree!.rootKey()).toEqual(sut.tree.rootKey());
    const members = await ds.query(`SELECT m."id", m."identity", m."role", m."state", g."leaf", g."ikeSpi" FROM "members" m JOIN "gkm_members" g ON g."memberId" = m."id"`);
    const again = GroupKeyState.restore(cfg(), deps, row, tree!, members);
    expect(Buffer.from(again.rekeySpi)).toEqual(Buffer.from(sut.rekeySpi));
    expect(again.registeredCount()).toBe(2);
    now = T0 + 40_000;
    const next = again.rekey('forced');
    expect(next[0]!.messageId).toBe(sut.lastMessageId + 1);
  });
});
