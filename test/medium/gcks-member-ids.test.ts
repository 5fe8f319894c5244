import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GroupKeyState } from '../../apps/gcks/src/rekey/group-key-state.js';
import { GkmStateBed } from '../support/gkm-state-bed.js';

/**
 * Member row ids are time-ordered UUIDs (RFC 9562 version 7), so the members' primary-key indexes
 * grow at their end: every id is a valid version-7 UUID, unique, and ids sort in admission order,
 * also many within one millisecond of the injected clock and across a clock that stands still.
 */
describe('member ids (SQLite, injected clock)', () => {
  const bed = new GkmStateBed();
  beforeEach(() => bed.open());
  afterEach(() => bed.close());

  it('are version-7 UUIDs in admission order, within one millisecond and after it', async () => {
    bed.insertGroup();
    const sut = GroupKeyState.create(bed.cfg(), bed.deps);
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      if (i === 30) bed.now += 1;
      const r = sut.admit({ identity: `m${i}`, role: 'receiver', senderIdsRequested: 0, address: null }, bed.ike(`s${i}`), bed.audit);
      if (!r || 'refused' in r) throw new Error('not admitted');
      ids.push(r.member.id);
    }
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    expect(parseInt(ids[0]!.replace(/-/g, '').slice(0, 12), 16)).toBe(bed.now - 1);
    const rows = await bed.ds.query(`SELECT "id" FROM "members" ORDER BY rowid`);
    expect(rows.map((r: { id: string }) => r.id)).toEqual(ids);
  });
});
