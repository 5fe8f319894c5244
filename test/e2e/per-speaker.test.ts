import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EncrId, IkePayload, NOTIFY_REGISTRATION_FAILED, getPayloads, type DeletePayload } from '@app/codec';
import { openGsaRekey } from '@app/gkm';
import { startTestGcks, type TestGcks } from '../support/gcks-test-app.js';
import { gkmHelpers, refusals } from '../support/gcks-gkm.js';
import type { GmClient } from '../support/gm-client.js';

/**
 * Appendix A.2 with the real GCKS over loopback (G-IKEv2 registration, GSA_REKEY on loopback
 * multicast): a 'per-speaker' group with maxSpeakers 16. A receiver-only member registered first
 * learns the 16 speakers' SAs only from announcements, each carrying SAs it did not have yet; the
 * 17th speaker is refused with the reason audited; a speaker that de-registers has its SA deleted
 * (Delete payload) in the leave rekey, which gives the others fresh SAs for the 15 remaining.
 * On one host every member's address is 127.0.0.1, so every SA's source is that address here;
 * distinct speaker addresses are checked in test/netns/agent-a2.test.ts.
 */

let gcks: TestGcks;
const h = gkmHelpers(() => gcks);
const clients: GmClient[] = [];
const REKEY_ADDR = `239.79.${process.pid % 250}.1`;
const REKEY_PORT = 21_000 + (process.pid % 9_000);
const SUITE = { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 256, integId: 0 };
let groupId: string;
let r: GmClient;
const raw: Uint8Array[] = [];
const speakers: GmClient[] = [];
/** The SPIs each member's registration response carried (later rekeys replace `teks`). */
const atRegistration = new Map<GmClient, number[]>();

async function join(identity: string, speaker: boolean): Promise<GmClient> {
  const m = await h.member(identity);
  clients.push(m);
  const res = await m.register({ gcksPort: h.registration().port, group: 'a2', ca: h.ca(), ownerAnchor: h.ownerAnchor(), speaker });
  expect(res.ok, JSON.stringify(res)).toBe(true);
  atRegistration.set(m, m.teks.map((t) => t.spi));
  await m.listenRekeys(REKEY_ADDR, REKEY_PORT, h.ownerAnchor(), 'a2');
  return m;
}

beforeAll(async () => {
  gcks = await startTestGcks();
  groupId = await h.group('a2', REKEY_ADDR, REKEY_PORT, [{ idType: 'san-dns', pattern: '*.a2.example', role: 'both' }], { serviceModel: 'per-speaker', maxSpeakers: 16 });
  r = await join('r.a2.example', false);
  r['rekeySocket']!.on('message', (msg: Buffer) => raw.push(new Uint8Array(msg)));
});
afterAll(async () => {
  for (const m of clients) m.close();
  await gcks?.close();
});

const announced = (m: GmClient) => m.rekeys.filter((e) => e.ok).reduce((n, e) => n + (e.ok ? e.teks : 0), 0);

describe('A.2 per-speaker SAs with the real GCKS over loopback', () => {
  it('16 speakers joining together: each registration carries the SAs so far, its own included; the receiver gets each SA once, in batched announcements', async () => {
    expect(r.teks).toEqual([]); // no shared TEK in A.2
    speakers.push(...(await Promise.all(Array.from({ length: 16 }, (_, i) => join(`s${i + 1}.a2.example`, true)))));
    for (const s of speakers) {
      expect(s.senderIds).toEqual([]); // one sender per SA: no Sender-IDs
      const spis = atRegistration.get(s)!;
      expect(spis.length).toBeGreaterThanOrEqual(1);
      expect(new Set(spis).size).toBe(spis.length);
    }
    // Each registration added exactly one SA (its speaker's) to those the earlier ones carried.
    const sizes = speakers.map((s) => atRegistration.get(s)!.length).sort((x, y) => x - y);
    expect(sizes).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    const seen = new Set<number>();
    await r.waitFor(() => {
      for (const t of r.teks) seen.add(t.spi);
      return seen.size === 16;
    }, 10_000);
    // Every SA reached the receiver exactly once: the announcements together carried 16 SAs.
    await new Promise((res) => setTimeout(res, 500));
    expect(announced(r)).toBe(16);
    const all = new Set(speakers.flatMap((s) => atRegistration.get(s)!));
    expect(all.size).toBe(16);
    expect([...seen].every((spi) => all.has(spi))).toBe(true);
    const status = await h.api.get(`/api/v1/groups/${groupId}/keys`);
    expect(status.body).toMatchObject({ members: 17, speakers: 16 });
    const messages = r.rekeys.filter((e) => e.ok && e.teks > 0).length;
    console.log(`[e2e] A.2: 16 speakers registered concurrently; the receiver got their 16 SAs in ${messages} announcement(s)`);
  });

  it('the 17th concurrent speaker is refused with REGISTRATION_FAILED, the reason audited, nothing changed', async () => {
    const before = (await h.api.get(`/api/v1/groups/${groupId}/keys`)).body;
    const x = await h.member('s17.a2.example');
    clients.push(x);
    const res = await x.register({ gcksPort: h.registration().port, group: 'a2', ca: h.ca(), ownerAnchor: h.ownerAnchor(), speaker: true });
    expect(res).toMatchObject({ ok: false, notify: NOTIFY_REGISTRATION_FAILED });
    const last = (await refusals(gcks)).pop()!;
    expect(last.entityId).toBe('s17.a2.example');
    expect(JSON.parse(last.details).reason).toBe('per-speaker group a2 has its 16 concurrent speakers (maxSpeakers)');
    const after = (await h.api.get(`/api/v1/groups/${groupId}/keys`)).body;
    expect(after).toMatchObject({ members: before.members, speakers: 16, lastMessageId: before.lastMessageId });
  });

  it('a speaker de-registers: the leave rekey deletes its SA and gives the others a fresh SA for each of the 15 remaining speakers', async () => {
    const leaving = speakers[15]!;
    const gone = atRegistration.get(leaving)!;
    const before = new Set(r.teks.map((t) => t.spi));
    const rawBefore = raw.length;
    await leaving.deregister();
    await r.waitFor(() => r.teks.length === 15 && r.teks.every((t) => !before.has(t.spi)), 10_000);
    // The Delete payload travels with the new SAs, on the new Rekey SA the member now holds.
    const kek = (r as unknown as { kek: { enc: Uint8Array; integ: Uint8Array } }).kek;
    const deleted: number[] = [];
    for (const d of raw.slice(rawBefore)) {
      const o = openGsaRekey(d, { rekeySpi: r.rekeySpi!, suite: SUITE, kek, authKey: r.authKey!, minMessageId: 0 });
      if (!o.ok) continue;
      for (const p of getPayloads(o.payloads, IkePayload.DELETE) as DeletePayload[]) for (const s of p.spis) deleted.push(Buffer.from(s).readUInt32BE(0));
    }
    // The leaving speaker's SA from its own registration response is among the deleted.
    const own = gone.filter((spi) => deleted.includes(spi));
    expect(own.length).toBe(1);
    expect(new Set(deleted)).toEqual(new Set([own[0]]));
    expect((await h.api.get(`/api/v1/groups/${groupId}/keys`)).body).toMatchObject({ members: 16, speakers: 15 });
  });
});
