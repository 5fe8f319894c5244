import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IkePayload, getPayload } from '@app/codec';
import { GroupKeyState } from '../../apps/gcks/src/rekey/group-key-state.js';
import { GKM_T0 as T0, GkmStateBed } from '../support/gkm-state-bed.js';

/**
 * One group's key state against a real SQLite database with the migrations applied, under an
 * injected clock: when rekeys fall due (TEK lifetime − 4·ATD, batched leaves), what each rekey
 * sends, and that a state reloaded from the database continues exactly (Message IDs, keys, tree).
 */

describe('GroupKeyState (SQLite, injected clock)', () => {
  const bed = new GkmStateBed();
  beforeEach(async () => {
    await bed.open();
    bed.insertGroup();
  });
  afterEach(() => bed.close());
  const { audit } = bed;

  it('TEKs fall due at lifetime − 4·ATD; the TEK rekey is one signed message under the current KEK with new TEKs only', () => {
    const sut = GroupKeyState.create(bed.cfg(), bed.deps);
    sut.admit({ identity: 'a', role: 'receiver', senderIdsRequested: 0, address: null }, bed.ike('01'), audit);
    expect(sut.nextDue()).toEqual({ at: T0 + (600 - 4 * 15) * 1000, reason: 'tek-expiry' });
    bed.now = T0 + 540_000;
    const held = bed.rekeySaOf(sut);
    const before = sut.lastMessageId;
    const msgs = sut.rekey('tek-expiry');
    expect(msgs.map((m) => m.messageId)).toEqual([before + 1]);
    const r = bed.openRekey(msgs[0]!.bytes, held, before + 1);
    const gsa = getPayload(r.payloads, IkePayload.GSA)!;
    expect(gsa.policies.filter((p) => p.kind === 'sa').map((p) => (p as { protocol: number }).protocol)).toEqual([3]); // ESP only, no new KEK
    expect(Buffer.from(sut.rekeySpi)).toEqual(Buffer.from(held.spi));
    expect(sut.nextDue().at).toBe(bed.now + 540_000);
  });

  it('batched leaves wait for the interval, then one rekey covers them; a reloaded state continues above the last Message ID', async () => {
    const sut = GroupKeyState.create(bed.cfg(), bed.deps);
    for (const n of ['a', 'b', 'c', 'd']) sut.admit({ identity: n, role: 'receiver', senderIdsRequested: 0, address: null }, bed.ike(n), audit);
    bed.now = T0 + 1000;
    expect(sut.leave('c', 'left', { ...audit, action: 'leave' }).messages).toEqual([]);
    bed.now = T0 + 5000;
    expect(sut.leave('d', 'evicted', { ...audit, action: 'evict' }).messages).toEqual([]);
    expect(sut.nextDue()).toEqual({ at: T0 + 1000 + 30_000, reason: 'leave' });
    bed.now = T0 + 31_000;
    const msgs = sut.rekey('leave');
    expect(msgs).toHaveLength(2); // new KEK under the new LKH root, then TEKs on the new Rekey SA
    expect(sut.schedule.pendingLeaves).toEqual([]);
    expect(sut.registeredCount()).toBe(2);

    const { row, tree, state: again } = await bed.reload();
    expect(row.lastMessageId).toBe(sut.lastMessageId);
    expect(row.sealed).not.toContain(Buffer.from(sut.rekeySpi).toString('hex'));
    expect(tree.rootKey()).toEqual(sut.tree.rootKey());
    expect(Buffer.from(again.rekeySpi)).toEqual(Buffer.from(sut.rekeySpi));
    expect(again.registeredCount()).toBe(2);
    bed.now = T0 + 40_000;
    const next = again.rekey('forced');
    expect(next[0]!.messageId).toBe(sut.lastMessageId + 1);
  });
});
