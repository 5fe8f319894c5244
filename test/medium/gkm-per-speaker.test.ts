import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IkePayload, formatIpAddress, getPayloads, type DeletePayload } from '@app/codec';
import { openGroupPayloads, type DataSaParams } from '@app/gkm';
import { GroupKeyState, SPEAKER_BATCH_MS, type OutgoingRekey } from '../../apps/gcks/src/rekey/group-key-state.js';
import { GKM_T0 as T0, GkmStateBed, type HeldRekeySa } from '../support/gkm-state-bed.js';

/**
 * Appendix A.2 at the GCKS (RFC 5374 App. A.2, §4.1.2): in a 'per-speaker' group every speaker gets
 * SAs of its own, their source selector its address, against a real SQLite database under an
 * injected clock: allocation and the batched announcement of joins, the maxSpeakers refusal, reload,
 * TEK rollover, removal when a speaker leaves (immediate and batched leave policies), and A.3 kept
 * as it was (one shared TEK, Sender-IDs).
 */

describe('GroupKeyState, per-speaker SAs (A.2)', () => {
  const bed = new GkmStateBed();
  beforeEach(() => bed.open());
  afterEach(() => bed.close());
  const { audit } = bed;
  const speaker = (n: number) => ({ identity: `s${n}`, role: 'speaker' as const, senderIdsRequested: 1, address: `10.0.0.${n}` });
  const receiver = (name: string) => ({ identity: name, role: 'receiver' as const, senderIdsRequested: 0, address: '10.0.1.1' });
  const admitted = (r: ReturnType<GroupKeyState['admit']>) => {
    if (!r || 'refused' in r) throw new Error(`not admitted: ${r ? r.refused : 'undefined'}`);
    return r;
  };
  const sourceOf = (d: Pick<DataSaParams, 'source'>) => `${formatIpAddress(d.source.startAddress)}-${formatIpAddress(d.source.endAddress)}`;

  /** Opens a GSA_REKEY the way a member does, with the Rekey SA it holds. */
  const open = (sut: GroupKeyState, m: OutgoingRekey, rekey: HeldRekeySa) => {
    const r = bed.openRekey(m.bytes, rekey);
    const g = openGroupPayloads(r.payloads, { gskW: r.gskW, registration: false });
    const deletes = (getPayloads(r.payloads, IkePayload.DELETE) as DeletePayload[]).flatMap((d) => d.spis.map((s) => Buffer.from(s).readUInt32BE(0)));
    return { g, deletes, messageId: r.messageId };
  };

  it('gives each speaker its own SA (source = its address, sequential numbers, no Sender-IDs) and announces 16 joins in one GSA_REKEY', () => {
    bed.insertGroup({ serviceModel: 'per-speaker', maxSpeakers: 16, leave: 'immediate' });
    const sut = GroupKeyState.create(bed.cfg(), bed.deps);
    const r0 = admitted(sut.admit(receiver('r1'), bed.ike('r1'), audit));
    expect(r0.admission.data).toEqual([]); // no shared TEK in A.2
    expect(r0.admission.groupWide?.senderIdBits).toBeUndefined();

    let last;
    for (let n = 1; n <= 16; n++) {
      bed.now = T0 + n; // all within the batching window
      last = admitted(sut.admit(speaker(n), bed.ike(`s${n}`), audit));
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
    const held = bed.rekeySaOf(sut);
    bed.now = T0 + 1 + SPEAKER_BATCH_MS;
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
    const again = admitted(sut.admit(speaker(3), bed.ike('s3b'), audit));
    expect(again.speakerJoined).toBe(false);
    expect(sut.speakers().find((s) => s.identity === 's3')!.spis).toEqual(s3);
    expect(sut.nextDue().reason).not.toBe('speakers');
  });

  it('refuses a speaker beyond maxSpeakers with the reason, and changes nothing', () => {
    bed.insertGroup({ serviceModel: 'per-speaker', maxSpeakers: 16, leave: 'immediate' });
    const sut = GroupKeyState.create(bed.cfg(), bed.deps);
    for (let n = 1; n <= 16; n++) admitted(sut.admit(speaker(n), bed.ike(`s${n}`), audit));
    const before = sut.speakers();
    const members = sut.registeredCount();
    const r = sut.admit(speaker(17), bed.ike('s17'), audit);
    expect(r).toEqual({ refused: 'per-speaker group conf has its 16 concurrent speakers (maxSpeakers)' });
    expect(sut.speakers()).toEqual(before);
    expect(sut.registeredCount()).toBe(members);
    // A receiver still joins; and once a speaker leaves, another may speak.
    admitted(sut.admit(receiver('r1'), bed.ike('r1'), audit));
    sut.leave('s5', 'left', { ...audit, action: 'leave' });
    expect(admitted(sut.admit(speaker(17), bed.ike('s17'), audit)).speakerJoined).toBe(true);
    expect(sut.speakers().map((s) => s.identity)).not.toContain('s5');
    expect(sut.speakers()).toHaveLength(16);
  });

  it('persists the speakers’ SAs: a reloaded state gives a new member the same SAs and keys and continues the announcement', async () => {
    bed.insertGroup({ serviceModel: 'per-speaker', maxSpeakers: 16, leave: 'immediate' });
    const sut = GroupKeyState.create(bed.cfg(), bed.deps);
    admitted(sut.admit(receiver('r1'), bed.ike('r1'), audit));
    for (let n = 1; n <= 3; n++) admitted(sut.admit(speaker(n), bed.ike(`s${n}`), audit));
    const reference = admitted(sut.admit(receiver('r2'), bed.ike('r2'), audit)).admission.data;
    expect(reference).toHaveLength(3);

    const { row, state: again } = await bed.reload();
    // Keys are sealed, not in clear.
    expect(row.sealed).not.toContain(Buffer.from(reference[0]!.keyMaterial).toString('hex'));
    expect(again.speakers()).toEqual(sut.speakers());
    const after = admitted(again.admit(receiver('r3'), bed.ike('r3'), audit)).admission.data;
    const view = (d: readonly DataSaParams[]) => d.map((x) => [x.spi, sourceOf(x), Buffer.from(x.keyMaterial).toString('hex')]).sort();
    expect(view(after)).toEqual(view(reference));
    // The pending announcement of the three joins survived too.
    expect(again.nextDue().reason).toBe('speakers');
    const msgs = again.rekey('speakers');
    expect(msgs[0]!.messageId).toBe(sut.lastMessageId + 1);
  });

  it('rolls every speaker’s SA over with the TEK schedule: new SPIs and keys, same sources, one message', () => {
    bed.insertGroup({ serviceModel: 'per-speaker', maxSpeakers: 16, leave: 'immediate' });
    const sut = GroupKeyState.create(bed.cfg(), bed.deps);
    admitted(sut.admit(receiver('r1'), bed.ike('r1'), audit));
    for (let n = 1; n <= 4; n++) admitted(sut.admit(speaker(n), bed.ike(`s${n}`), audit));
    sut.rekey('speakers');
    const old = admitted(sut.admit(receiver('r2'), bed.ike('r2'), audit)).admission.data;
    expect(sut.nextDue()).toEqual({ at: T0 + (600 - 4 * 15) * 1000, reason: 'tek-expiry' });
    bed.now = T0 + 540_000;
    const held = bed.rekeySaOf(sut);
    const msgs = sut.rekey('tek-expiry');
    expect(msgs).toHaveLength(1);
    const o = open(sut, msgs[0]!, held);
    expect(o.g.data).toHaveLength(4);
    expect(o.g.data.map((d) => `${formatIpAddress(d.policy.source.startAddress)}`).sort()).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']);
    const oldSpis = new Set(old.map((d) => d.spi));
    expect(o.g.data.some((d) => oldSpis.has(d.spi))).toBe(false);
    expect(o.deletes).toEqual([]); // the old ones are the trailing edge, retired by entry + source
    const fresh = admitted(sut.admit(receiver('r3'), bed.ike('r3'), audit)).admission.data;
    expect(fresh.map((d) => d.spi).sort()).toEqual(o.g.data.map((d) => d.spi).sort());
    expect(sut.nextDue()).toEqual({ at: bed.now + 540_000, reason: 'tek-expiry' });
  });

  it('removes a leaving speaker’s SA: immediate leave rekeys everyone else’s SAs and deletes its own', () => {
    bed.insertGroup({ serviceModel: 'per-speaker', maxSpeakers: 16, leave: 'immediate' });
    const sut = GroupKeyState.create(bed.cfg(), bed.deps);
    admitted(sut.admit(receiver('r1'), bed.ike('r1'), audit));
    for (let n = 1; n <= 3; n++) admitted(sut.admit(speaker(n), bed.ike(`s${n}`), audit));
    sut.rekey('speakers');
    const s2 = sut.speakers().find((s) => s.identity === 's2')!.spis;
    const oldSpis = new Set(sut.speakers().flatMap((s) => s.spis));
    const held = bed.rekeySaOf(sut);
    const r = sut.leave('s2', 'left', { ...audit, action: 'leave' });
    expect(r.messages).toHaveLength(2); // new KEK under the new LKH root, then the SAs on it
    expect(sut.speakers().map((s) => s.identity)).toEqual(['s1', 's3']);
    expect(Buffer.from(sut.rekeySpi)).not.toEqual(Buffer.from(held.spi)); // the first message's KEK is under the new LKH root
    const next = bed.rekeySaOf(sut);
    const second = open(sut, r.messages[1]!, next);
    expect(second.deletes).toEqual(s2);
    expect(second.g.data.map((d) => formatIpAddress(d.policy.source.startAddress)).sort()).toEqual(['10.0.0.1', '10.0.0.3']);
    expect(second.g.data.some((d) => oldSpis.has(d.spi))).toBe(false);
  });

  it('removes a leaving speaker’s SA at once with batched leaves: a Delete in the next announcement, the leave rekey later', () => {
    bed.insertGroup({ serviceModel: 'per-speaker', maxSpeakers: 16, leave: 'batched' });
    const sut = GroupKeyState.create(bed.cfg(), bed.deps);
    admitted(sut.admit(receiver('r1'), bed.ike('r1'), audit));
    for (let n = 1; n <= 2; n++) admitted(sut.admit(speaker(n), bed.ike(`s${n}`), audit));
    bed.now = T0 + SPEAKER_BATCH_MS;
    sut.rekey('speakers');
    const s1 = sut.speakers().find((s) => s.identity === 's1')!.spis;
    bed.now = T0 + 10_000;
    expect(sut.leave('s1', 'evicted', { ...audit, action: 'evict' }).messages).toEqual([]);
    expect(sut.nextDue()).toEqual({ at: T0 + 10_000 + SPEAKER_BATCH_MS, reason: 'speakers' });
    const held = bed.rekeySaOf(sut);
    bed.now += SPEAKER_BATCH_MS;
    const msgs = sut.rekey('speakers');
    expect(msgs).toHaveLength(1);
    const o = open(sut, msgs[0]!, held);
    expect(o.deletes).toEqual(s1);
    expect(o.g.data).toEqual([]);
    expect(o.g.rekey && Buffer.from(o.g.rekey.spi)).toEqual(Buffer.from(held.spi)); // restated, not replaced
    expect(sut.nextDue()).toEqual({ at: T0 + 10_000 + 30_000, reason: 'leave' });
  });

  it('keeps A.3 as it was: one shared TEK for all speakers with Sender-IDs, no per-speaker SAs', () => {
    bed.insertGroup({ serviceModel: 'any-to-any', maxSpeakers: 64, leave: 'immediate' });
    const sut = GroupKeyState.create(bed.cfg(), bed.deps);
    const a = admitted(sut.admit(speaker(1), bed.ike('s1'), audit));
    const b = admitted(sut.admit(speaker(2), bed.ike('s2'), audit));
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
