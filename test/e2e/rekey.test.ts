import { generateKeyPairSync, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EncrId } from '@app/codec';
import { buildGsaRekey, groupPayloads } from '@app/gkm';
import { startTestGcks, type TestGcks } from '../support/gcks-test-app.js';
import { gkmHelpers } from '../support/gcks-gkm.js';
import type { GmClient } from '../support/gm-client.js';

/**
 * GSA_REKEY from the real GCKS, received by members over loopback multicast (127.0.0.1 interface):
 * forced rekey through REST, eviction with forward access control, replays and forgeries dropped,
 * GSA_INBAND_REKEY over a member's IKE SA, Message IDs that only grow.
 */

let gcks: TestGcks;
const h = gkmHelpers(() => gcks);
const clients: GmClient[] = [];
const REKEY_ADDR = `239.78.${process.pid % 250}.1`;
const REKEY_PORT = 30_000 + (process.pid % 20_000);
let groupId: string;
let a: GmClient;
let b: GmClient;
let c: GmClient;
const raw: Uint8Array[] = [];

async function join(identity: string): Promise<GmClient> {
  const m = await h.member(identity);
  clients.push(m);
  const r = await m.register({ gcksPort: h.registration().port, group: 'live', ca: h.ca(), ownerAnchor: h.ownerAnchor() });
  expect(r.ok, JSON.stringify(r)).toBe(true);
  await m.listenRekeys(REKEY_ADDR, REKEY_PORT, h.ownerAnchor(), 'live');
  return m;
}

beforeAll(async () => {
  gcks = await startTestGcks();
  groupId = await h.group('live', REKEY_ADDR, REKEY_PORT, [{ idType: 'san-dns', pattern: '*.example.net', role: 'both' }]);
  a = await join('a.example.net');
  b = await join('b.example.net');
  c = await join('c.example.net');
  // Keep the raw datagrams A receives, for replays.
  a['rekeySocket']!.on('message', (msg: Buffer) => raw.push(new Uint8Array(msg)));
});
afterAll(async () => {
  for (const m of clients) m.close();
  await gcks?.close();
});

const okIds = (m: GmClient) => m.rekeys.filter((e) => e.ok).map((e) => (e as { messageId: number }).messageId);

describe('GSA_REKEY over loopback multicast', () => {
  it('a forced rekey (REST) reaches every member, signed and under the current KEK; copies are dropped as replays', async () => {
    const tekBefore = Buffer.from(a.teks[0]!.encKey);
    const res = await h.api.post(`/api/v1/groups/${groupId}/rekey`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const [id] = res.body.messageIds as number[];
    for (const m of [a, b, c]) await m.waitFor(() => okIds(m).includes(id!));
    for (const m of [a, b, c]) expect(Buffer.from(m.teks[0]!.encKey)).not.toEqual(tekBefore);
    expect(Buffer.from(a.teks[0]!.encKey)).toEqual(Buffer.from(c.teks[0]!.encKey));
    // The policy's retransmissions arrive too: every copy after the first is refused (new SA / replay).
    await a.waitFor(() => a.rekeys.filter((e) => !e.ok).length >= 1, 4000);
    expect(a.rekeys.filter((e) => !e.ok).every((e) => !e.ok && (e.reason === 'REPLAY' || e.reason === 'WRONG_SPI'))).toBe(true);
    const status = await h.api.get(`/api/v1/groups/${groupId}/keys`);
    expect(status.body).toMatchObject({ members: 3, lastMessageId: id });
  });

  it('forged rekeys are dropped: a flipped octet (INTEGRITY), a valid KEK but a signer the member does not accept (BAD_SIGNATURE), a replay', async () => {
    const res = await h.api.post(`/api/v1/groups/${groupId}/rekey`);
    const [id] = res.body.messageIds as number[];
    await a.waitFor(() => okIds(a).includes(id!));
    const last = raw[raw.length - 1]!;
    const flipped = Uint8Array.from(last);
    flipped[flipped.length - 5]! ^= 0x40;
    const kek = (a as unknown as { kek: { enc: Uint8Array; integ: Uint8Array; gskW: Uint8Array } }).kek;
    const rogue = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const forged = buildGsaRekey({
      rekeySpi: a.rekeySpi!,
      messageId: a.minMessageId + 5,
      payloads: groupPayloads({
        data: [{ spi: 0x1234, source: a.teks[0]!.policy.source, destination: a.teks[0]!.policy.destination, encrId: EncrId.ENCR_AES_GCM_16, keyBits: 256, sn: 2, keyMaterial: new Uint8Array(36) }],
        gskW: kek.gskW,
        registration: false,
      }),
      suite: { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 256, integId: 0 },
      kek: { enc: kek.enc, integ: kek.integ },
      signingKey: rogue.privateKey,
      random: (n) => new Uint8Array(randomBytes(n)),
    });
    const minBefore = a.minMessageId;
    expect(a.onRekey(flipped)).toMatchObject({ ok: false });
    expect(a.onRekey(forged)).toMatchObject({ ok: false, reason: 'BAD_SIGNATURE' });
    expect(a.onRekey(last)).toMatchObject({ ok: false });
    expect(a.minMessageId).toBe(minBefore);
  });

  it('arbitrary and mutated GSA_REKEY datagrams never throw and never move a member (fast-check)', async () => {
    const [id] = (await h.api.post(`/api/v1/groups/${groupId}/rekey`)).body.messageIds as number[];
    await a.waitFor(() => okIds(a).includes(id!));
    // A genuine message on A's current Rekey SA: the next forced rekey, captured before A sees it.
    const probe = await h.member('probe.example.net');
    clients.push(probe);
    expect((await probe.register({ gcksPort: h.registration().port, group: 'live', ca: h.ca() })).ok).toBe(true);
    const before = raw.length;
    const [id2] = (await h.api.post(`/api/v1/groups/${groupId}/rekey`)).body.messageIds as number[];
    await a.waitFor(() => okIds(a).includes(id2!));
    // The probe holds the Rekey SA this message travels on, and has not seen it.
    await a.waitFor(() => raw.slice(before).some((d) => Buffer.from(d).readUInt32BE(20) === id2));
    const genuine = raw.slice(before).find((d) => Buffer.from(d).readUInt32BE(20) === id2)!; // IKE header Message ID
    const state = () => [probe.minMessageId, Buffer.from(probe.rekeySpi!).toString('hex'), Buffer.from(probe.teks[0]!.encKey).toString('hex')].join('/');
    const s0 = state();
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 600 }),
          fc.record({ at: fc.nat(), bits: fc.integer({ min: 1, max: 255 }), cut: fc.nat() }).map(({ at, bits, cut }) => {
            const m = Uint8Array.from(genuine);
            m[at % m.length]! ^= bits;
            return cut % 3 === 0 ? m.subarray(0, cut % m.length) : m;
          }),
        ),
        (bytes) => {
          const r = probe.onRekey(bytes);
          return r.ok === false && state() === s0;
        },
      ),
      { numRuns: 400 },
    );
    // The unmodified message is accepted, so the refusals above were the mutations' doing.
    expect(probe.onRekey(genuine)).toMatchObject({ ok: true, messageId: id2 });
    expect(state()).not.toBe(s0);
  });

  it('GSA_INBAND_REKEY over the member IKE SA delivers the current SAs', async () => {
    const list = await h.api.get(`/api/v1/groups/${groupId}/members`);
    const bId = list.body.find((x: { identity: string }) => x.identity === 'b.example.net').id;
    const res = await h.api.post(`/api/v1/groups/${groupId}/members/${bId}/inband-rekey`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    await b.waitFor(() => b.inband.length > 0);
    expect(b.inband[0]).toMatchObject({ ok: true, teks: 1 });
    expect(Buffer.from(b.teks[0]!.encKey)).toEqual(Buffer.from(a.teks[0]!.encKey));
  });

  it('eviction (REST) rekeys at once: the others follow the new KEK and TEKs; the evicted member cannot', async () => {
    const list = await h.api.get(`/api/v1/groups/${groupId}/members`);
    const cId = list.body.find((x: { identity: string }) => x.identity === 'c.example.net').id;
    // More joiners than one join pool holds: the pool refill's LKH update reaches A, B and C.
    const nA = a.rekeys.length;
    for (let i = 0; i < 10; i++) {
      const m = await h.member(`extra${i}.example.net`);
      clients.push(m);
      expect((await m.register({ gcksPort: h.registration().port, group: 'live', ca: h.ca() })).ok).toBe(true);
    }
    await a.waitFor(() => a.rekeys.slice(nA).some((e) => e.ok));
    const nC = c.rekeys.length;
    const res = await h.api.delete(`/api/v1/groups/${groupId}/members/${cId}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const ids = res.body.messageIds as number[];
    expect(ids).toHaveLength(2); // KEK message, then TEKs under the new Rekey SA (forward access control)
    for (const m of [a, b]) await m.waitFor(() => ids.every((i) => okIds(m).includes(i)));
    expect(Buffer.from(a.teks[0]!.encKey)).toEqual(Buffer.from(b.teks[0]!.encKey));
    await c.waitFor(() => c.rekeys.length > nC);
    expect(c.rekeys.slice(nC).some((e) => e.ok)).toBe(false);
    expect(Buffer.from(c.teks[0]!.encKey)).not.toEqual(Buffer.from(a.teks[0]!.encKey));
    const after = await h.api.get(`/api/v1/groups/${groupId}/members`);
    expect(after.body.find((x: { id: string }) => x.id === cId)).toMatchObject({ state: 'evicted' });
    const audit = await gcks.ds.query(`SELECT "actor" FROM "audit_log" WHERE "action" = 'evict'`);
    expect(audit[0].actor).toMatch(/^admin:/);
  });

  it('a policy change (REST) reaches the members in a rekey with the next token edition', async () => {
    const editionBefore = a.edition!;
    const pol = (await h.api.get(`/api/v1/groups/${groupId}/policies`)).body as { id: string }[];
    const res = await h.api.patch(`/api/v1/groups/${groupId}/policies/${pol[0]!.id}`, { dtd: 20 });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    for (const m of [a, b]) await m.waitFor(() => m.rekeys.some((e) => e.ok && e.edition === editionBefore + 1), 8000);
    expect((await h.api.get(`/api/v1/groups/${groupId}/keys`)).body.tokenEdition).toBe(editionBefore + 1);
  });

  it('a member that missed rekeys registers again with GSA_REGISTRATION on its IKE SA and follows the next one', async () => {
    const late = await h.member('late.example.net');
    clients.push(late);
    expect((await late.register({ gcksPort: h.registration().port, group: 'live', ca: h.ca(), ownerAnchor: h.ownerAnchor() })).ok).toBe(true);
    const spiBefore = Buffer.from(late.rekeySpi!);
    for (let i = 0; i < 2; i++) {
      const [id] = (await h.api.post(`/api/v1/groups/${groupId}/rekey`)).body.messageIds as number[];
      await a.waitFor(() => okIds(a).includes(id!));
    }
    expect(Buffer.from(late.teks[0]!.encKey)).not.toEqual(Buffer.from(a.teks[0]!.encKey)); // it missed them
    const r = await late.registerMore({ group: 'live', ownerAnchor: h.ownerAnchor() });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    expect(Buffer.from(late.rekeySpi!)).not.toEqual(spiBefore);
    expect(Buffer.from(late.teks[0]!.encKey)).toEqual(Buffer.from(a.teks[0]!.encKey));
    await late.listenRekeys(REKEY_ADDR, REKEY_PORT, h.ownerAnchor(), 'live');
    const [id] = (await h.api.post(`/api/v1/groups/${groupId}/rekey`)).body.messageIds as number[];
    await late.waitFor(() => okIds(late).includes(id!));
    expect(Buffer.from(late.teks[0]!.encKey)).toEqual(Buffer.from(a.teks[0]!.encKey));
    const rows = await gcks.ds.query(`SELECT count(*) AS n FROM "members" WHERE "identity" = 'late.example.net'`);
    expect(rows[0].n).toBe(1);
  });

  it('Message IDs only grow across every rekey a member accepted', () => {
    const ids = okIds(a);
    expect(ids.length).toBeGreaterThan(3);
    for (let i = 1; i < ids.length; i++) expect(ids[i]!).toBeGreaterThan(ids[i - 1]!);
  });
});

describe('batched leave behaviour', () => {
  it('an eviction waits for the batch interval; then one leave rekey covers every leave of the batch', async () => {
    const addr = `239.80.${process.pid % 250}.1`;
    const gid = await h.group('batched', addr, REKEY_PORT + 1, [{ idType: 'san-dns', pattern: '*.batch.example.net', role: 'receiver' }], {}, { leaveBehaviour: 'batched', leaveBatchInterval: 1 });
    const ms: GmClient[] = [];
    for (const n of ['p', 'q', 'r', 's']) {
      const m = await h.member(`${n}.batch.example.net`);
      clients.push(m);
      expect((await m.register({ gcksPort: h.registration().port, group: 'batched', ca: h.ca() })).ok).toBe(true);
      await m.listenRekeys(addr, REKEY_PORT + 1);
      ms.push(m);
    }
    const list = (await h.api.get(`/api/v1/groups/${gid}/members`)).body as { id: string; identity: string }[];
    const idOf = (n: string) => list.find((x) => x.identity === `${n}.batch.example.net`)!.id;
    const first = await h.api.delete(`/api/v1/groups/${gid}/members/${idOf('r')}`);
    const second = await h.api.delete(`/api/v1/groups/${gid}/members/${idOf('s')}`);
    expect(first.body.messageIds).toEqual([]);
    expect(second.body.messageIds).toEqual([]);
    expect((await h.api.get(`/api/v1/groups/${gid}/keys`)).body.pendingLeaves).toBe(2);
    const [p, q, r] = ms;
    await p!.waitFor(() => p!.rekeys.some((e) => e.ok && e.teks > 0), 6000);
    await q!.waitFor(() => q!.rekeys.some((e) => e.ok && e.teks > 0), 6000);
    expect(Buffer.from(p!.teks[0]!.encKey)).toEqual(Buffer.from(q!.teks[0]!.encKey));
    expect(Buffer.from(r!.teks[0]!.encKey)).not.toEqual(Buffer.from(p!.teks[0]!.encKey));
    expect((await h.api.get(`/api/v1/groups/${gid}/keys`)).body.pendingLeaves).toBe(0);
    const rekeys = await gcks.ds.query(`SELECT "details" FROM "audit_log" WHERE "action" = 'rekey' AND "groupId" = ?`, [gid]);
    expect(rekeys.map((x: { details: string }) => JSON.parse(x.details)).filter((d: { reason: string }) => d.reason === 'leave')).toMatchObject([{ leaves: 2 }]);
  });
});

