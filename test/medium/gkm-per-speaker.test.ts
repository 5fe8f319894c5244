import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DataSource } from 'typeorm';
import { EncrId, IkePayload, formatIpAddress, getPayloads, type DeletePayload } from '@app/codec';
import { ownerKeyIdOf } from '@app/crypto';
import { openGroupPayloads, openGsaRekey, splitRekeyKeys, type DataSaParams } from '@app/gkm';
import { LkhTreeStore, NodeKeySealer } from '@app/lkh';
import { openDatabase } from '../../apps/gcks/src/database/data-source.js';
import { rawDb } from '../../apps/gcks/src/keys/raw-db.js';
import { loadGroupConfig } from '../../apps/gcks/src/registration/group-config.js';
import { SqliteLkhTreeRepository } from '../../apps/gcks/src/lkh/sqlite-lkh-tree.repository.js';
import { GkmStore } from '../../apps/gcks/src/rekey/gkm-store.js';
import { GroupKeyState, REKEY_SHAPE, SPEAKER_BATCH_MS, type GroupKeyDeps, type OutgoingRekey } from '../../apps/gcks/src/rekey/group-key-state.js';
import { MasterKeyService } from '../../apps/gcks/src/security/master-key.service.js';
import { SecretBox } from '../../apps/gcks/src/security/secret-box.js';
import { tempDir } from '../support/temp-dir.js';

/**
 * Appendix A.2 at the GCKS (RFC 5374 App. A.2, §4.1.2): in a 'per-speaker' group every speaker gets
 * SAs of its own, their source selector its address, against a real SQLite database under an
 * injected clock: allocation and the batched announcement of joins, the maxSpeakers refusal, reload,
 * TEK rollover, removal when a speaker leaves (immediate and batched leave policies), and A.3 kept
 * as it was (one shared TEK, Sender-IDs).
 */

const T0 = Date.UTC(2026, 10, 22, 12, 0, 0);
const signer = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const owner = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const SUITE = { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 256, integId: 0 };

describe('GroupKeyState, per-speaker SAs (A.2)', () => {
  let dir: ReturnType<typeof tempDir>;
  let ds: DataSource;
  let now = T0;
  let deps: GroupKeyDeps;
  let sealer: NodeKeySealer;

  const insertGroup = (o: { serviceModel: string; maxSpeakers: number; leave: 'immediate' | 'batched' }) => {
    const db = rawDb(ds);
    const iso = new Date(T0).toISOString();
    db.prepare(
      `INSERT INTO "groups" VALUES ('g1', 'conf', '239.1.2.3', 'multicast', 4, 'asm', '[]', ?, 'multicast', '239.9.9.9', 848, ?, 4, 1, ?, ?)`,
    ).run(o.serviceModel, o.maxSpeakers, iso, iso);
    db.prepare(
      `INSERT INTO "policies" VALUES ('p1', 'g1', 1, 'data', '0.0.0.0/0', '239.1.2.3/32', 17, NULL, 5000, 'protect', 'symmetric', 'tunnel', 'both', 0, 'aes-gcm-256', 1, 64, 'none', 600, 3600, 1, 15, 15, 2, ?, 30, ?, ?)`,
    ).run(o.leave, iso, iso);
  };

  beforeEach(async () => {
    dir = tempDir();
    ds = await openDatabase(join(dir.path, 'gcks.sqlite'));
    const master = MasterKeyService.loadOrCreate(join(dir.path, 'master.key'), (n) => randomBytes(n));
    const key = master.key();
    sealer = new NodeKeySealer(key);
    now = T0;
    deps = {
      store: new GkmStore(rawDb(ds), sealer, () => new Date(now)),
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
  const speaker = (n: number) => ({ identity: `s${n}`, role: 'speaker' as const, senderIdsRequested: 1, address: `10.0.0.${n}` });
  const receiver = (name: string) => ({ identity: name, role: 'receiver' as const, senderIdsRequested: 0, address: '10.0.1.1' });
  const admitted = (r: ReturnType<GroupKeyState['admit']>) => {
    if (!r || 'refused' in r) throw new Error(`not admitted: ${r ? r.refused : 'undefined'}`);
    return r;
  };
  const sourceOf = (d: Pick<DataSaParams, 'source'>) => `${formatIpAddress(d.source.startAddress)}-${formatIpAddress(d.source.endAddress)}`;

  /** Opens a GSA_REKEY the way a member does, with the Rekey SA it holds. */
  const open = (sut: GroupKeyState, m: OutgoingRekey, rekey: { spi: Uint8Array; keymat: Uint8Array }) => {
    const k = splitRekeyKeys(REKEY_SHAPE, rekey.keymat);
    const r = openGsaRekey(m.bytes, { rekeySpi: rekey.spi, suite: SUITE, kek: { enc: k.gskE, integ: k.gskA }, authKey: signer.publicKey, minMessageId: 0 });
    if (!r.ok) throw new Error(`rekey not opened: ${r.reason}`);
    const g = openGroupPayloads(r.payloads, { gskW: k.gskW, registration: false });
    const deletes = (getPayloads(r.payloads, IkePayload.DELETE) as DeletePayload[]).flatMap((d) => d.spis.map((s) => Buffer.from(s).readUInt32BE(0)));
    return { g, deletes, messageId: r.messageId };
  };
  const rekeySaOf = (sut: GroupKeyState) => {
    const sa = (sut as unknown as { rekeySa: { spi: Uint8Array; keymat: Uint8Array } }).rekeySa;
    return { spi: Uint8Array.from(sa.spi), keymat: Uint8Array.from(sa.keymat) };
  };

  it('gives each speaker its own SA (source = its address, sequential numbers, no Sender-IDs) and announces 16 joins in one GSA_REKEY', () => {
    insertGroup({ serviceModel: 'per-speaker', maxSpeakers: 16, leave: 'immediate' });
    const sut = GroupKeyState.create(cfg(), deps);
    const r0 = admitted(sut.admit(receiver('r1'), ike('r1'), audit));
    expect(r0.admission.data).toEqual([]); // no shared TEK in A.2
    expect(r0.admission.groupWide?.senderIdBits).toBeUndefined();

    let last;
    for (let n = 1; n <= 16; n++) {
      now = T0 + n; // all within the batching window
      last = admitted(sut.admit(speaker(n), ike(`s${n}`), audit));
      expect(last.speakerJoined).toBe(true);
      expect(last.admission.member?.senderIds).toEqual([]);
    }
    // The 16th speaker's registration carries all 16 SAs, each with its speaker's address.
    const data = last!.admission.data;
    expect(data).toHaveLength(16);
    expect(data.map(sourceOf).sort()).toEqual(Array.from({ length: 16 }, (_, i) => `10.0.0.${i + 1}-10.0.0.${i + 1}`).sort());
    expect(new Set(data.map((d) => d.spi)).size).toBe(16);
    expect(data.every((d) => d.sn === 0)).toBe(true);

    expect(sut.nextDue()).toEqual({ at: T0 + 1 + SPEAKER_BATCH_MS, reason: 'speakers' });
    const held = rekeySaOf(sut);
    now = T0 + 1 + SPEAKER_BATCH_MS;
    const msgs = sut.rekey('speakers');
    expect(msgs).toHaveLength(1); // not 16 rekeys
    const o = open(sut, msgs[0]!, held);
    expect(o.g.rekey).toBeUndefined(); // no key the group holds is replaced
    expect(o.g.data.map((d) => d.spi).sort()).toEqual(data.map((d) => d.spi).sort());
    expect(o.deletes).toEqual([]);
    expect(Buffer.from(sut.rekeySpi)).toEqual(Buffer.from(held.spi));
    expect(sut.nextDue().reason).not.toBe('speakers');
    expect(sut.speakers()).toHaveLength(16);
    // A speaker registering again from the same address keeps its SA; nothing to announce.
    const s3 = [...sut.speakers().find((s) => s.identity === 's3')!.spis];
    const again = admitted(sut.admit(speaker(3), ike('s3b'), audit));
    expect(again.speakerJoined).toBe(false);
    expect(sut.speakers().find((s) => s.identity === 's3')!.spis).toEqual(s3);
    expect(sut.nextDue().reason).not.toBe('speakers');
  });

  it('refuses a speaker beyond maxSpeakers with the reason, and changes nothing', () => {
    insertGroup({ serviceModel: 'per-speaker', maxSpeakers: 16, leave: 'immediate' });
    const sut = GroupKeyState.create(cfg(), deps);
    for (let n = 1; n <= 16; n++) admitted(sut.admit(speaker(n), ike(`s${n}`), audit));
    const before = sut.speakers();
    const members = sut.registeredCount();
    const r = sut.admit(speaker(17), ike('s17'), audit);
    expect(r).toEqual({ refused: 'per-speaker group conf has its 16 concurrent speakers (maxSpeakers)' });
    expect(sut.speakers()).toEqual(before);
    expect(sut.registeredCount()).toBe(members);
    // A receiver still joins; and once a speaker leaves, another may speak.
    admitted(sut.admit(receiver('r1'), ike('r1'), audit));
    sut.leave('s5', 'left', { ...audit, action: 'leave' });
    expect(admitted(sut.admit(speaker(17), ike('s17'), audit)).speakerJoined).toBe(true);
    expect(sut.speakers().map((s) => s.identity)).not.toContain('s5');
    expect(sut.speakers()).toHaveLength(16);
  });

  it('persists the speakers’ SAs: a reloaded state gives a new member the same SAs and keys and continues the announcement', async () => {
    insertGroup({ serviceModel: 'per-speaker', maxSpeakers: 16, leave: 'immediate' });
    const sut = GroupKeyState.create(cfg(), deps);
    admitted(sut.admit(receiver('r1'), ike('r1'), audit));
    for (let n = 1; n <= 3; n++) admitted(sut.admit(speaker(n), ike(`s${n}`), audit));
    const reference = admitted(sut.admit(receiver('r2'), ike('r2'), audit)).admission.data;
    expect(reference).toHaveLength(3);

    const row = (await ds.query(`SELECT * FROM "gkm_groups" WHERE "groupId" = 'g1'`))[0];
    // Keys are sealed, not in clear.
    expect(row.sealed).not.toContain(Buffer.from(reference[0]!.keyMaterial).toString('hex'));
    const tree = await new LkhTreeStore(new SqliteLkhTreeRepository(ds), sealer).load('g1');
    const members = await ds.query(`SELECT m."id", m."identity", m."role", m."state", g."leaf", g."ikeSpi" FROM "members" m JOIN "gkm_members" g ON g."memberId" = m."id"`);
    const again = GroupKeyState.restore(cfg(), deps, row, tree!, members);
    expect(again.speakers()).toEqual(sut.speakers());
    const after = admitted(again.admit(receiver('r3'), ike('r3'), audit)).admission.data;
    const view = (d: readonly DataSaParams[]) => d.map((x) => [x.spi, sourceOf(x), Buffer.from(x.keyMaterial).toString('hex')]).sort();
    expect(view(after)).toEqual(view(reference));
    // The pending announcement of the three joins survived too.
    expect(again.nextDue().reason).toBe('speakers');
    const msgs = again.rekey('speakers');
    expect(msgs[0]!.messageId).toBe(sut.lastMessageId + 1);
  });

  it('rolls every speaker’s SA over with the TEK schedule: new SPIs and keys, same sources, one message', () => {
    insertGroup({ serviceModel: 'per-speaker', maxSpeakers: 16, leave: 'immediate' });
    const sut = GroupKeyState.create(cfg(), deps);
    admitted(sut.admit(receiver('r1'), ike('r1'), audit));
    for (let n = 1; n <= 4; n++) admitted(sut.admit(speaker(n), ike(`s${n}`), audit));
    sut.rekey('speakers');
    const old = admitted(sut.admit(receiver('r2'), ike('r2'), audit)).admission.data;
    expect(sut.nextDue()).toEqual({ at: T0 + (600 - 4 * 15) * 1000, reason: 'tek-expiry' });
    now = T0 + 540_000;
    const held = rekeySaOf(sut);
    const msgs = sut.rekey('tek-expiry');
    expect(msgs).toHaveLength(1);
    const o = open(sut, msgs[0]!, held);
    expect(o.g.data).toHaveLength(4);
    expect(o.g.data.map((d) => `${formatIpAddress(d.policy.source.startAddress)}`).sort()).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']);
    const oldSpis = new Set(old.map((d) => d.spi));
    expect(o.g.data.some((d) => oldSpis.has(d.spi))).toBe(false);
    expect(o.deletes).toEqual([]); // the old ones are the trailing edge, retired by entry + source
    const fresh = admitted(sut.admit(receiver('r3'), ike('r3'), audit)).admission.data;
    expect(fresh.map((d) => d.spi).sort()).toEqual(o.g.data.map((d) => d.spi).sort());
    expect(sut.nextDue()).toEqual({ at: now + 540_000, reason: 'tek-expiry' });
  });

  it('removes a leaving speaker’s SA: immediate leave rekeys everyone else’s SAs and deletes its own', () => {
    insertGroup({ serviceModel: 'per-speaker', maxSpeakers: 16, leave: 'immediate' });
    const sut = GroupKeyState.create(cfg(), deps);
    admitted(sut.admit(receiver('r1'), ike('r1'), audit));
    for (let n = 1; n <= 3; n++) admitted(sut.admit(speaker(n), ike(`s${n}`), audit));
    sut.rekey('speakers');
    const s2 = sut.speakers().find((s) => s.identity === 's2')!.spis;
    const oldSpis = new Set(sut.speakers().flatMap((s) => s.spis));
    const held = rekeySaOf(sut);
    const r = sut.leave('s2', 'left', { ...audit, action: 'leave' });
    expect(r.messages).toHaveLength(2); // new KEK under the new LKH root, then the SAs on it
    expect(sut.speakers().map((s) => s.identity)).toEqual(['s1', 's3']);
    expect(Buffer.from(sut.rekeySpi)).not.toEqual(Buffer.from(held.spi)); // the first message's KEK is under the new LKH root
    const next = rekeySaOf(sut);
    const second = open(sut, r.messages[1]!, next);
    expect(second.deletes).toEqual(s2);
    expect(second.g.data.map((d) => formatIpAddress(d.policy.source.startAddress)).sort()).toEqual(['10.0.0.1', '10.0.0.3']);
    expect(second.g.data.some((d) => oldSpis.has(d.spi))).toBe(false);
  });

  it('removes a leaving speaker’s SA at once with batched leaves: a Delete in the next announcement, the leave rekey later', () => {
    insertGroup({ serviceModel: 'per-speaker', maxSpeakers: 16, leave: 'batched' });
    const sut = GroupKeyState.create(cfg(), deps);
    admitted(sut.admit(receiver('r1'), ike('r1'), audit));
    for (let n = 1; n <= 2; n++) admitted(sut.admit(speaker(n), ike(`s${n}`), audit));
    now = T0 + SPEAKER_BATCH_MS;
    sut.rekey('speakers');
    const s1 = sut.speakers().find((s) => s.identity === 's1')!.spis;
    now = T0 + 10_000;
    expect(sut.leave('s1', 'evicted', { ...audit, action: 'evict' }).messages).toEqual([]);
    expect(sut.nextDue()).toEqual({ at: T0 + 10_000 + SPEAKER_BATCH_MS, reason: 'speakers' });
    const held = rekeySaOf(sut);
    now += SPEAKER_BATCH_MS;
    const msgs = sut.rekey('speakers');
    expect(msgs).toHaveLength(1);
    const o = open(sut, msgs[0]!, held);
    expect(o.deletes).toEqual(s1);
    expect(o.g.data).toEqual([]);
    expect(o.g.rekey && Buffer.from(o.g.rekey.spi)).toEqual(Buffer.from(held.spi)); // restated, not replaced
    expect(sut.nextDue()).toEqual({ at: T0 + 10_000 + 30_000, reason: 'leave' });
  });

  it('keeps A.3 as it was: one shared TEK for all speakers with Sender-IDs, no per-speaker SAs', () => {
    insertGroup({ serviceModel: 'any-to-any', maxSpeakers: 64, leave: 'immediate' });
    const sut = GroupKeyState.create(cfg(), deps);
    const a = admitted(sut.admit(speaker(1), ike('s1'), audit));
    const b = admitted(sut.admit(speaker(2), ike('s2'), audit));
    expect(a.speakerJoined).toBe(false);
    expect(a.admission.data).toHaveLength(1);
    expect(b.admission.data.map((d) => d.spi)).toEqual(a.admission.data.map((d) => d.spi));
    expect(sourceOf(a.admission.data[0]!)).toBe('0.0.0.0-255.255.255.255');
    expect(a.admission.data[0]!.sn).toBe(2);
    expect(a.admission.member?.senderIds).toHaveLength(1);
    expect(b.admission.member?.senderIds).not.toEqual(a.admission.member?.senderIds);
    expect(sut.speakers()).toEqual([]);
    expect(sut.nextDue().reason).toBe('tek-expiry');
  });
});
