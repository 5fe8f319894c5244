import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { EncrId } from '@app/codec';
import { ownerKeyIdOf } from '@app/crypto';
import { openGsaRekey, splitRekeyKeys } from '@app/gkm';
import { NodeKeySealer } from '@app/lkh';
import { openDatabase } from '../../apps/gcks/src/database/data-source.js';
import { rawDb } from '../../apps/gcks/src/keys/raw-db.js';
import { loadGroupConfig } from '../../apps/gcks/src/registration/group-config.js';
import { GkmStore } from '../../apps/gcks/src/rekey/gkm-store.js';
import { GroupKeyState, REKEY_SHAPE, type GroupKeyDeps } from '../../apps/gcks/src/rekey/group-key-state.js';
import { MasterKeyService } from '../../apps/gcks/src/security/master-key.service.js';
import { SecretBox } from '../../apps/gcks/src/security/secret-box.js';
import { tempDir } from './temp-dir.js';

/** The injected clock's start for GroupKeyState tests. */
export const GKM_T0 = Date.UTC(2026, 10, 22, 12, 0, 0);
/** The data suite the test group's policy row names ('aes-gcm-256'). */
export const GKM_SUITE = { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 256, integId: 0 };

/** The group row's fields the tests vary; the rest is one conference group on 239.1.2.3. */
export interface GkmGroupRow {
  serviceModel?: string;
  maxSpeakers?: number;
  leave?: 'immediate' | 'batched';
}

/** A Rekey SA as a member holds it. */
export interface HeldRekeySa {
  spi: Uint8Array;
  keymat: Uint8Array;
}

/**
 * A GroupKeyState test bed: a fresh SQLite database with the migrations applied, a master key,
 * signing and group-owner keys, and a clock the test sets through `now`. A suite opens it before
 * and closes it after each test (`beforeEach(() => bed.open()); afterEach(() => bed.close());`).
 */
export class GkmStateBed {
  readonly signer = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  readonly owner = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  readonly audit = { actor: 'test', remoteAddress: null, action: 'register', entityType: 'member', details: {} };
  now = GKM_T0;
  ds!: DataSource;
  deps!: GroupKeyDeps;
  sealer!: NodeKeySealer;
  private dir?: ReturnType<typeof tempDir>;

  async open(): Promise<void> {
    this.dir = tempDir();
    this.ds = await openDatabase(join(this.dir.path, 'gcks.sqlite'));
    const master = MasterKeyService.loadOrCreate(join(this.dir.path, 'master.key'), (n) => randomBytes(n));
    this.sealer = new NodeKeySealer(master.key());
    this.now = GKM_T0;
    this.deps = {
      store: new GkmStore(rawDb(this.ds), this.sealer, () => new Date(this.now)),
      secrets: new SecretBox(master, (n) => randomBytes(n)),
      random: (n: number) => randomBytes(n),
      now: () => this.now,
      signingKey: this.signer.privateKey,
      authKey: this.signer.publicKey,
      owner: { signingKey: this.owner.privateKey, ownerKeyId: ownerKeyIdOf(this.owner.publicKey) },
      gcksIdentity: 'gcks.groupsec.local',
    };
  }

  async close(): Promise<void> {
    if (this.ds?.isInitialized) await this.ds.destroy();
    this.dir?.remove();
    this.dir = undefined;
  }

  /** Inserts group 'g1' (default: any-to-any, 64 speakers, batched leaves) with its one data policy. */
  insertGroup(o: GkmGroupRow = {}): void {
    const db = rawDb(this.ds);
    const iso = new Date(GKM_T0).toISOString();
    db.prepare(
      `INSERT INTO "groups" VALUES ('g1', 'conf', '239.1.2.3', 'multicast', 4, 'asm', '[]', ?, 'multicast', '239.9.9.9', 848, ?, 4, 1, ?, ?)`,
    ).run(o.serviceModel ?? 'any-to-any', o.maxSpeakers ?? 64, iso, iso);
    db.prepare(
      `INSERT INTO "policies" VALUES ('p1', 'g1', 1, 'data', '0.0.0.0/0', '239.1.2.3/32', 17, NULL, 5000, 'protect', 'symmetric', 'tunnel', 'both', 0, 'aes-gcm-256', 1, 64, 'none', 600, 3600, 1, 15, 15, 2, ?, 30, ?, ?)`,
    ).run(o.leave ?? 'batched', iso, iso);
  }

  cfg() {
    return loadGroupConfig(rawDb(this.ds), { id: 'g1' })!;
  }

  /** The IKE SA a member registered over (only its identity matters here). */
  ike(spi: string) {
    return { gskW: new Uint8Array(32).fill(1), spi, sealedRecord: 'x' };
  }

  /** A copy of the Rekey SA the state holds now, as a member would keep it. */
  rekeySaOf(sut: GroupKeyState): HeldRekeySa {
    const sa = (sut as unknown as { rekeySa: HeldRekeySa }).rekeySa;
    return { spi: Uint8Array.from(sa.spi), keymat: Uint8Array.from(sa.keymat) };
  }

  /** Opens a GSA_REKEY the way a member does, with the Rekey SA it holds; throws if it does not open. */
  openRekey(bytes: Uint8Array, held: HeldRekeySa, minMessageId = 0) {
    const k = splitRekeyKeys(REKEY_SHAPE, held.keymat);
    const r = openGsaRekey(bytes, { rekeySpi: held.spi, suite: GKM_SUITE, kek: { enc: k.gskE, integ: k.gskA }, authKey: this.signer.publicKey, minMessageId });
    if (!r.ok) throw new Error(`rekey not opened: ${r.reason}`);
    return { ...r, gskW: k.gskW };
  }

  /**
   * Reads group 'g1' back from the database (row, LKH tree, members) and restores its state, with
   * the reader the GCKS's restart uses (GkmStore.loadTree).
   */
  async reload() {
    const row = (await this.ds.query(`SELECT * FROM "gkm_groups" WHERE "groupId" = 'g1'`))[0];
    const tree = this.deps.store.loadTree('g1', { random: (b) => void b.set(randomBytes(b.length)) });
    if (!tree) throw new Error('no LKH tree stored for g1');
    const members = await this.ds.query(`SELECT m."id", m."identity", m."role", m."state", g."leaf", g."ikeSpi" FROM "members" m JOIN "gkm_members" g ON g."memberId" = m."id"`);
    return { row, tree, state: GroupKeyState.restore(this.cfg(), this.deps, row, tree, members) };
  }
}
