import { describe, expect, it } from 'vitest';
import { allocateSenderIds, groupSenderCount, groupSenderNotify } from '@app/gkm';

describe('Sender-ID allocation (RFC 9838 §2.5.1)', () => {
  const policy = { senderIdBits: 3, maxPerRegistration: 4 };

  it('hands out fresh values from zero, one by default, never more than asked or allowed', () => {
    const a = allocateSenderIds({ next: 0 }, policy);
    expect(a).toEqual({ ok: true, ids: [0], state: { next: 1 } });
    const b = allocateSenderIds({ next: 1 }, policy, 2);
    expect(b).toEqual({ ok: true, ids: [1, 2], state: { next: 3 } });
    const c = allocateSenderIds({ next: 3 }, policy, 100);
    expect(c).toEqual({ ok: true, ids: [3, 4, 5, 6], state: { next: 7 } });
    expect(allocateSenderIds({ next: 0 }, policy, 0)).toMatchObject({ ids: [0] });
  });

  it('gives fewer near the end of the space, then reports exhaustion (the group must start over)', () => {
    expect(allocateSenderIds({ next: 7 }, policy, 3)).toEqual({ ok: true, ids: [7], state: { next: 8 } });
    expect(allocateSenderIds({ next: 8 }, policy)).toEqual({ ok: false, reason: 'EXHAUSTED' });
  });

  it('values always fit GWP_SENDER_ID_BITS and are never handed out twice', () => {
    let state = { next: 0 };
    const seen = new Set<number>();
    for (let i = 0; i < 100; i++) {
      const r = allocateSenderIds(state, { senderIdBits: 6, maxPerRegistration: 3 }, (i % 5) + 1);
      if (!r.ok) break;
      for (const id of r.ids) {
        expect(id).toBeLessThan(64);
        expect(seen.has(id)).toBe(false);
        seen.add(id);
      }
      state = r.state;
    }
    expect(seen.size).toBe(64);
  });

  it('reads the GROUP_SENDER count and refuses malformed data', () => {
    expect(groupSenderCount((groupSenderNotify(300).body as { data: Uint8Array }).data)).toBe(300);
    expect(groupSenderCount(Uint8Array.from([0, 1]))).toBeUndefined();
    expect(() => allocateSenderIds({ next: 0 }, { senderIdBits: 0, maxPerRegistration: 1 })).toThrow(RangeError);
  });
});
