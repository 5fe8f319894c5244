import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  initialRekeyState,
  nextRekeyDue,
  onMemberLeft,
  planRekey,
  validateRekeyPolicy,
  type GroupRekeyPolicy,
  type GroupRekeyState,
} from '@app/gkm';

const policy: GroupRekeyPolicy = {
  atdSeconds: 15,
  dtdSeconds: 30,
  tekLifetimeSeconds: 3600,
  kekLifetimeSeconds: 7200,
  leave: { mode: 'immediate' },
  transmissions: 3,
  retransmitIntervalMs: 2000,
};
const T0 = 1_000_000;

describe('rekey policy validation', () => {
  it('accepts sensible defaults and names every problem of a bad policy at once', () => {
    expect(validateRekeyPolicy(policy)).toEqual([]);
    const errors = validateRekeyPolicy({ ...policy, atdSeconds: 5, tekLifetimeSeconds: 20, kekLifetimeSeconds: 10, transmissions: 0 });
    expect(errors.join('\n')).toMatch(/atdSeconds/);
    expect(errors.join('\n')).toMatch(/tekLifetimeSeconds/);
    expect(errors.join('\n')).toMatch(/kekLifetimeSeconds/);
    expect(errors.join('\n')).toMatch(/transmissions/);
    expect(validateRekeyPolicy({ ...policy, dtdSeconds: 60 })).toEqual(['marginAtds × ATD must cover retransmissions + ATD + DTD']);
  });
});

describe('when to rekey', () => {
  it('rekeys TEKs lifetime − 4×ATD after install, KEKs likewise', () => {
    const s = initialRekeyState(T0);
    expect(nextRekeyDue(s, policy)).toEqual({ at: T0 + (3600 - 60) * 1000, reason: 'tek-expiry' });
    expect(nextRekeyDue({ ...s, tekSince: T0 + 7200_000 }, policy)).toEqual({ at: T0 + (7200 - 60) * 1000, reason: 'kek-expiry' });
  });

  it('rekeys a leave at once, or at the end of the batch that started with the first leave', () => {
    const s = onMemberLeft(initialRekeyState(T0), T0 + 5000);
    expect(nextRekeyDue(s, policy)).toEqual({ at: T0 + 5000, reason: 'leave' });
    const batched = { ...policy, leave: { mode: 'batched' as const, intervalSeconds: 60 } };
    const two = onMemberLeft(s, T0 + 50_000);
    expect(two.pendingLeaves).toBe(2);
    expect(nextRekeyDue(two, batched)).toEqual({ at: T0 + 65_000, reason: 'leave' });
  });
});

describe('one rekey event', () => {
  it('TEK expiry: one message on the current Rekey SA, next Message ID, copies, leading/trailing edge', () => {
    const s: GroupRekeyState = { ...initialRekeyState(T0), lastMessageId: 6 };
    const now = T0 + 3540_000;
    const sut = planRekey(s, policy, now, 'tek-expiry');
    expect(sut.messages).toEqual([{ rekeySa: 'current', messageId: 7, newKek: false, newTeks: true, sendAt: [now, now + 2000, now + 4000] }]);
    expect(sut.speakersSwitchAt).toBe(now + 15_000);
    expect(sut.trailingDeleteAt).toBe(now + 45_000);
    expect(sut.next).toEqual({ tekSince: now, kekSince: T0, lastMessageId: 7, pendingLeaves: 0 });
  });

  it('a leave with forward access control: new KEK first (current SA), then TEKs on the new Rekey SA from Message ID 0', () => {
    const s = onMemberLeft({ ...initialRekeyState(T0), lastMessageId: 3 }, T0 + 10);
    const now = T0 + 10;
    const sut = planRekey(s, policy, now, 'leave');
    expect(sut.messages.map(({ rekeySa, messageId, newKek, newTeks }) => ({ rekeySa, messageId, newKek, newTeks }))).toEqual([
      { rekeySa: 'current', messageId: 4, newKek: true, newTeks: false },
      { rekeySa: 'new', messageId: 0, newKek: false, newTeks: true },
    ]);
    expect(sut.messages[1]!.sendAt[0]).toBeGreaterThan(sut.messages[0]!.sendAt[2]!);
    expect(sut.next).toMatchObject({ kekSince: now, lastMessageId: 0, pendingLeaves: 0 });
    expect(sut.next.firstPendingLeaveAt).toBeUndefined();
  });

  it('a TEK rekey while leaves are pending covers them, so departed members never see the new TEKs', () => {
    const s = onMemberLeft(initialRekeyState(T0), T0 + 1);
    const sut = planRekey(s, { ...policy, leave: { mode: 'batched', intervalSeconds: 600 } }, T0 + 100, 'tek-expiry');
    expect(sut.messages[0]).toMatchObject({ newKek: true, newTeks: false });
    expect(sut.messages[1]).toMatchObject({ rekeySa: 'new', newTeks: true });
  });

  it('KEK expiry alone: new KEK, TEKs untouched, the next Rekey SA starts its IDs at 0', () => {
    const s = { ...initialRekeyState(T0), lastMessageId: 9 };
    const sut = planRekey(s, policy, T0 + 7140_000, 'kek-expiry');
    expect(sut.messages).toHaveLength(1);
    expect(sut.messages[0]).toMatchObject({ messageId: 10, newKek: true, newTeks: false });
    expect(sut.speakersSwitchAt).toBeUndefined();
    expect(sut.next).toMatchObject({ tekSince: T0, lastMessageId: -1 });
  });

  it('refuses to run past 32-bit Message IDs', () => {
    expect(() => planRekey({ ...initialRekeyState(T0), lastMessageId: 0xffff_ffff }, policy, T0, 'forced')).toThrow(RangeError);
  });
});

describe('properties over random valid policies and event sequences', () => {
  const arbPolicy = fc
    .record({
      atdSeconds: fc.integer({ min: 10, max: 120 }),
      dtdSeconds: fc.integer({ min: 0, max: 200 }),
      tekLifetimeSeconds: fc.integer({ min: 1200, max: 20_000 }),
      kekLifetimeSeconds: fc.integer({ min: 1200, max: 86_400 }),
      marginAtds: fc.integer({ min: 4, max: 12 }),
      transmissions: fc.integer({ min: 1, max: 5 }),
      retransmitIntervalMs: fc.integer({ min: 0, max: 3000 }),
      batch: fc.option(fc.integer({ min: 1, max: 600 }), { nil: undefined }),
    })
    .map(({ batch, ...p }) => ({ ...p, leave: batch === undefined ? { mode: 'immediate' as const } : { mode: 'batched' as const, intervalSeconds: batch } }))
    .filter((p) => validateRekeyPolicy(p).length === 0);

  it('the trailing edge is deleted before the old TEK expires, and Message IDs only grow per Rekey SA', () => {
    fc.assert(
      fc.property(arbPolicy, fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 30 }), (p, events) => {
        let s = initialRekeyState(T0);
        let now = T0;
        let sent: number[] = [];
        for (const e of events) {
          if (e === 0) s = onMemberLeft(s, now);
          const due = nextRekeyDue(s, p);
          now = Math.max(now, due.at);
          const oldTekExpiry = s.tekSince + p.tekLifetimeSeconds * 1000;
          const plan = planRekey(s, p, now, e === 3 ? 'forced' : due.reason);
          if (plan.trailingDeleteAt !== undefined && due.reason === 'tek-expiry') expect(plan.trailingDeleteAt).toBeLessThanOrEqual(oldTekExpiry);
          for (const m of plan.messages) {
            if (m.rekeySa === 'new') sent = [];
            if (sent.length > 0) expect(m.messageId).toBeGreaterThan(sent[sent.length - 1]!);
            sent.push(m.messageId);
            if (m.newKek) sent = [];
          }
          // A restart reloads the persisted state: JSON round trip, same next plan.
          const reloaded = JSON.parse(JSON.stringify(plan.next)) as GroupRekeyState;
          expect(nextRekeyDue(reloaded, p)).toEqual(nextRekeyDue(plan.next, p));
          s = plan.next;
          expect(s.pendingLeaves).toBe(0);
        }
      }),
      { numRuns: 300, seed: 20261122 },
    );
  });
});
