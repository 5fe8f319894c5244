import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IdType, NotifyType } from '@app/codec';
import { acceptGroupPolicyToken } from '@app/gkm';
import { createGroupOwner, issueEntityCertificate, exportGroupOwnerPublic } from '@app/crypto';
import { startTestGcks, type TestGcks } from '../support/gcks-test-app.js';
import { gkmHelpers, refusals } from '../support/gcks-gkm.js';
import { GmClient } from '../support/gm-client.js';

/**
 * G-IKEv2 registration against the real GCKS app over loopback UDP (RFC 3948 framing): GSA_AUTH
 * with certificates from the group CA and with a PSK, GSA_REGISTRATION for a second group on the
 * same IKE SA, de-registration, and every refusal (each audited, none changing any state).
 */

let gcks: TestGcks;
const h = gkmHelpers(() => gcks);
const clients: GmClient[] = [];
const REKEY_ADDR = `239.77.${process.pid % 250}.1`;
const REKEY_PORT = 20_000 + (process.pid % 20_000);
const PSK = 'a-long-enough-shared-secret-1234';
let videoId: string;
let audioId: string;
let rogueId: string;

async function mk(identity: string, o: { psk?: string } = {}) {
  const c = await h.member(identity, o);
  clients.push(c);
  return c;
}
const port = () => h.registration().port;

/** What a refusal must leave untouched: members, LKH epochs, group counters. */
async function snapshot() {
  const members = await gcks.ds.query(`SELECT count(*) AS n FROM "members"`);
  const groups = await gcks.ds.query(`SELECT "groupId", "lastMessageId", "stateJson" FROM "gkm_groups" ORDER BY "groupId"`);
  const trees = await gcks.ds.query(`SELECT "id", "epoch" FROM "lkh_trees" ORDER BY "id"`);
  return { members: members[0].n, groups, trees };
}

beforeAll(async () => {
  gcks = await startTestGcks();
  videoId = await h.group('video', REKEY_ADDR, REKEY_PORT, [
    { idType: 'san-dns', pattern: '*.rx.example.org', role: 'receiver' },
    { idType: 'san-dns', pattern: '*.speakers.example.org', role: 'both' },
    { idType: 'psk', pattern: 'psk-member.example.org', role: 'receiver', psk: PSK },
  ]);
  audioId = await h.group('audio', REKEY_ADDR, REKEY_PORT + 1, [{ idType: 'san-dns', pattern: '*.rx.example.org', role: 'receiver' }]);
  rogueId = await h.group('rogue', REKEY_ADDR, REKEY_PORT + 2, [
    { idType: 'san-dns', pattern: '*.rx.example.org', role: 'receiver' },
    { kind: 'gcks', idType: 'san-dns', pattern: 'other-gcks.example.org', role: null },
  ]);
});
afterAll(async () => {
  for (const c of clients) c.close();
  await gcks?.close();
});

describe('GCKS key material', () => {
  it('creates the Group Owner key, the CA and its own certificate once, sealed; public parts downloadable without a token', async () => {
    const rows = await gcks.ds.query(`SELECT "sealed", "publicJson" FROM "gkm_keys"`);
    expect(rows).toHaveLength(1);
    expect(rows[0].sealed).toMatch(/^v1\./);
    expect(rows[0].sealed).not.toContain('PRIVATE');
    expect(rows[0].publicJson).not.toContain('PRIVATE');
    const request = (await import('supertest')).default;
    const all = await request(gcks.server).get('/api/v1/keys');
    expect(all.status).toBe(200);
    expect(all.body.caCertificatePem).toContain('BEGIN CERTIFICATE');
    expect(all.body.groupOwnerKeyPem).toContain('BEGIN PUBLIC KEY');
    const ca = await request(gcks.server).get('/api/v1/keys/ca.pem');
    expect(ca.text).toBe(all.body.caCertificatePem);
    expect(JSON.stringify(all.body)).not.toContain('PRIVATE');
  });
});

describe('registration (GSA_AUTH) over loopback UDP', () => {
  it('a receiver with a CA certificate joins: token verified, GCKS authorized, TEK and Rekey SA delivered, member listed', async () => {
    const before = await snapshot();
    const c0 = h.registration().counters;
    const m = await mk('tv1.rx.example.org');
    const r = await m.register({ gcksPort: port(), group: 'video', ca: h.ca(), ownerAnchor: h.ownerAnchor() });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    // Its chain and AUTH were checked on the GCKS's signature worker thread, in one batch.
    const c1 = h.registration().counters;
    expect([c1.signature_batches! - c0.signature_batches!, c1.signature_inline]).toEqual([1, 0]);
    expect(m.teks).toHaveLength(1);
    expect(m.teks[0]!.encKey.length).toBe(36); // AES-GCM-256 key + salt
    expect(m.edition).toBe(1);
    expect(m.known.size).toBeGreaterThan(1); // leaf and path keys
    const list = await h.api.get(`/api/v1/groups/${videoId}/members`);
    expect(list.body).toMatchObject([{ identity: 'tv1.rx.example.org', role: 'receiver', state: 'registered', address: '127.0.0.1' }]);
    const after = await snapshot();
    expect(after.members).toBe(before.members + 1);
    const audit = await gcks.ds.query(`SELECT "action", "entityType" FROM "audit_log" WHERE "action" = 'register'`);
    expect(audit).toHaveLength(1);
  });

  it('a speaker gets Sender-IDs (counter mode, many speakers) with GWP_SENDER_ID_BITS', async () => {
    const m = await mk('cam1.speakers.example.org');
    const r = await m.register({ gcksPort: port(), group: 'video', ca: h.ca(), ownerAnchor: h.ownerAnchor(), speaker: true });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    expect(m.senderIds).toEqual([0]);
    expect(r.ok && r.group.groupWide.senderIdBits).toBe(16);
    const list = await h.api.get(`/api/v1/groups/${videoId}/members`);
    expect(list.body.find((x: { identity: string }) => x.identity === 'cam1.speakers.example.org')).toMatchObject({ role: 'speaker', senderId: 0 });
  });

  it('a PSK member joins', async () => {
    const m = await mk('psk-member.example.org', { psk: PSK });
    const r = await m.register({ gcksPort: port(), group: 'video', ca: h.ca(), ownerAnchor: h.ownerAnchor() });
    expect(r.ok, JSON.stringify(r)).toBe(true);
  });

  it('GSA_REGISTRATION registers the same IKE SA for a second group', async () => {
    const m = await mk('tv2.rx.example.org');
    expect((await m.register({ gcksPort: port(), group: 'video', ca: h.ca(), ownerAnchor: h.ownerAnchor() })).ok).toBe(true);
    const r = await m.registerMore({ group: 'audio', ownerAnchor: h.ownerAnchor() });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    const list = await h.api.get(`/api/v1/groups/${audioId}/members`);
    expect(list.body.map((x: { identity: string }) => x.identity)).toEqual(['tv2.rx.example.org']);
  });

  it('de-registration (INFORMATIONAL Delete) marks the member left and rekeys the group at once', async () => {
    const stay = await mk('stay.rx.example.org');
    expect((await stay.register({ gcksPort: port(), group: 'audio', ca: h.ca(), ownerAnchor: h.ownerAnchor() })).ok).toBe(true);
    await stay.listenRekeys(REKEY_ADDR, REKEY_PORT + 1, h.ownerAnchor(), 'audio');
    const leaver = await mk('leaver.rx.example.org');
    expect((await leaver.register({ gcksPort: port(), group: 'audio', ca: h.ca(), ownerAnchor: h.ownerAnchor() })).ok).toBe(true);
    const n = stay.rekeys.length;
    await leaver.deregister();
    await stay.waitFor(() => stay.rekeys.slice(n).filter((e) => e.ok && e.teks > 0).length > 0);
    expect(stay.rekeys.slice(n).filter((e) => !e.ok)).toEqual([]);
    const list = await h.api.get(`/api/v1/groups/${audioId}/members`);
    expect(list.body.find((x: { identity: string }) => x.identity === 'leaver.rx.example.org')).toMatchObject({ state: 'left' });
  });
});

describe('refusals: audited, no state changed', () => {
  async function refused(run: () => Promise<unknown>, expectReason: RegExp) {
    const before = await snapshot();
    const n = (await refusals(gcks)).length;
    const r = (await run()) as { ok: boolean };
    expect(r.ok).toBe(false);
    const rows = (await refusals(gcks)).slice(n);
    expect(rows.length, 'one audit record').toBe(1);
    expect(rows[0]!.details).toMatch(expectReason);
    expect(await snapshot()).toEqual(before);
    return r;
  }

  it('unknown group: INVALID_GROUP_ID', async () => {
    const m = await mk('tv3.rx.example.org');
    const r = await refused(() => m.register({ gcksPort: port(), group: 'nope', ca: h.ca() }), /unknown group/);
    expect(r).toMatchObject({ reason: 'IKE', notify: NotifyType.INVALID_GROUP_ID });
  });

  it('identity the PAD does not allow: AUTHORIZATION_FAILED', async () => {
    const m = await mk('eve.example.org');
    const r = await refused(() => m.register({ gcksPort: port(), group: 'video', ca: h.ca() }), /not allowed/);
    expect(r).toMatchObject({ notify: NotifyType.AUTHORIZATION_FAILED });
  });

  it('role not allowed (receiver-only identity asking to speak): AUTHORIZATION_FAILED', async () => {
    const m = await mk('tv4.rx.example.org');
    const r = await refused(() => m.register({ gcksPort: port(), group: 'video', ca: h.ca(), speaker: true }), /speaker/);
    expect(r).toMatchObject({ notify: NotifyType.AUTHORIZATION_FAILED });
  });

  it('bad certificate chain (another CA): AUTHENTICATION_FAILED', async () => {
    const other = createGroupOwner({ groupName: 'x', now: new Date(Date.now() - 60_000), randomBytes: (n) => randomBytes(n) });
    const kp = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const der = issueEntityCertificate(other, { identity: { idType: IdType.ID_FQDN, value: 'tv5.rx.example.org' }, publicKey: kp.publicKey, now: new Date(Date.now() - 60_000), randomBytes: (n) => randomBytes(n) });
    const m = new GmClient({ identity: 'tv5.rx.example.org', key: kp.privateKey, certificates: [der] });
    await m.open();
    clients.push(m);
    const r = await refused(() => m.register({ gcksPort: port(), group: 'video', ca: h.ca() }), /no chain|auth/);
    expect(r).toMatchObject({ notify: NotifyType.AUTHENTICATION_FAILED });
  });

  it('bad AUTH (wrong PSK): AUTHENTICATION_FAILED', async () => {
    const m = await mk('psk-member.example.org', { psk: 'not-the-right-secret-at-all!!' });
    const r = await refused(() => m.register({ gcksPort: port(), group: 'video', ca: h.ca() }), /PSK AUTH/);
    expect(r).toMatchObject({ notify: NotifyType.AUTHENTICATION_FAILED });
  });

  it('the member refuses a GCKS the token does not authorize, a token for another Group Owner, and a bad Group Owner signature', async () => {
    const m = await mk('tv6.rx.example.org');
    const r = await m.register({ gcksPort: port(), group: 'rogue', ca: h.ca(), ownerAnchor: h.ownerAnchor() });
    expect(r).toMatchObject({ ok: false, reason: 'GCKS_NOT_AUTHORIZED' });
    const fake = createGroupOwner({ groupName: 'x', now: new Date(), randomBytes: (n) => randomBytes(n) });
    const m2 = await mk('tv7.rx.example.org');
    const r2 = await m2.register({ gcksPort: port(), group: 'video', ca: h.ca(), ownerAnchor: exportGroupOwnerPublic(fake).signingKeyPem });
    expect(r2).toMatchObject({ ok: false, reason: 'WRONG_ANCHOR' });
    // The genuine token with one octet of the Group Owner's signature changed.
    const m3 = await mk('tv8.rx.example.org');
    const good = await m3.register({ gcksPort: port(), group: 'video', ca: h.ca() });
    expect(good.ok).toBe(true);
    if (!good.ok) return;
    const token = Uint8Array.from(good.group.groupWide.policyToken!);
    token[token.length - 1]! ^= 0x01;
    const t = acceptGroupPolicyToken({ ...good.group.groupWide, policyToken: token }, {
      anchor: h.ownerAnchor(),
      now: new Date(),
      groupName: 'video',
      gcksIdentity: { idType: IdType.ID_FQDN, value: 'gcks.groupsec.local' },
    });
    expect(t).toMatchObject({ ok: false, reason: 'BAD_SIGNATURE' });
    expect(acceptGroupPolicyToken(good.group.groupWide, { anchor: h.ownerAnchor(), now: new Date(), groupName: 'video', gcksIdentity: { idType: IdType.ID_FQDN, value: 'gcks.groupsec.local' } }).ok).toBe(true);
    expect(rogueId).toBeTruthy();
  });
});

describe('a registration that cannot be persisted', () => {
  it('is answered REGISTRATION_FAILED and audited; no keys leave, nothing is kept, the next member joins', async () => {
    await gcks.ds.query(`CREATE TRIGGER "test_no_doomed" BEFORE INSERT ON "members" WHEN NEW."identity" = 'doomed.rx.example.org' BEGIN SELECT RAISE(ABORT, 'disk says no'); END`);
    try {
      const before = await snapshot();
      const n = (await refusals(gcks)).length;
      const m = await mk('doomed.rx.example.org');
      const r = await m.register({ gcksPort: port(), group: 'video', ca: h.ca() });
      expect(r).toMatchObject({ ok: false, notify: 49 });
      expect(m.teks).toEqual([]);
      const rows = (await refusals(gcks)).slice(n);
      expect(rows).toHaveLength(1);
      expect(rows[0]!.details).toMatch(/refused the member/);
      const after = await snapshot();
      expect(after.members).toBe(before.members);
      const ok = await mk('fine.rx.example.org');
      expect((await ok.register({ gcksPort: port(), group: 'video', ca: h.ca(), ownerAnchor: h.ownerAnchor() })).ok).toBe(true);
    } finally {
      await gcks.ds.query(`DROP TRIGGER "test_no_doomed"`);
    }
  });
});

describe('a group commit whose COMMIT fails', () => {
  it('drops the held answer, keeps nothing, reads the group back; the member registers again and earlier members follow the next rekey', async () => {
    const id = await h.group('commitfail', REKEY_ADDR, REKEY_PORT + 3, [{ idType: 'san-dns', pattern: '*.rx.example.org', role: 'receiver' }]);
    const early = await mk('early.rx.example.org');
    expect((await early.register({ gcksPort: port(), group: 'commitfail', ca: h.ca(), ownerAnchor: h.ownerAnchor() })).ok).toBe(true);
    await early.listenRekeys(REKEY_ADDR, REKEY_PORT + 3, h.ownerAnchor(), 'commitfail');
    const reg = h.registration();
    const rows = async () => ({
      members: (await gcks.ds.query(`SELECT "identity" FROM "members" WHERE "groupId" = ? ORDER BY "identity"`, [id])).map((r: { identity: string }) => r.identity),
      group: (await gcks.ds.query(`SELECT "lastMessageId", "stateJson" FROM "gkm_groups" WHERE "groupId" = ?`, [id]))[0],
      epoch: (await gcks.ds.query(`SELECT "epoch" FROM "lkh_trees" WHERE "id" = ?`, [id]))[0].epoch,
    });
    const before = await rows();
    const c0 = reg.counters;
    // The next COMMIT fails (after the batch's statements ran): SQLite rolls the batch back.
    const gc = reg.commits as unknown as { commit(): void };
    const real = gc.commit;
    gc.commit = () => {
      gc.commit = real;
      throw new Error('injected: COMMIT fails');
    };
    const lost = await mk('lost.rx.example.org');
    const r = await lost.register({ gcksPort: port(), group: 'commitfail', ca: h.ca(), ownerAnchor: h.ownerAnchor() });
    expect(r).toMatchObject({ ok: false, reason: 'IKE' });
    expect(lost.teks).toEqual([]);
    const c1 = reg.counters;
    expect((c1.group_commit_rollbacks ?? 0) - (c0.group_commit_rollbacks ?? 0)).toBe(1);
    // The retransmitted GSA_AUTH found no SA (its cached answer carried keys that were not kept).
    expect((c1.drop_unknown_spi ?? 0) - (c0.drop_unknown_spi ?? 0)).toBeGreaterThan(0);
    expect(await rows()).toEqual(before);
    expect(reg.groupStatus(id)).toMatchObject({ members: 1, lastMessageId: before.group.lastMessageId, epoch: before.epoch });

    const again = await mk('lost.rx.example.org');
    expect((await again.register({ gcksPort: port(), group: 'commitfail', ca: h.ca(), ownerAnchor: h.ownerAnchor() })).ok).toBe(true);
    await again.listenRekeys(REKEY_ADDR, REKEY_PORT + 3, h.ownerAnchor(), 'commitfail');
    expect((await rows()).members).toEqual(['early.rx.example.org', 'lost.rx.example.org']);
    const nE = early.rekeys.length;
    const nA = again.rekeys.length;
    const forced = await h.api.post(`/api/v1/groups/${id}/rekey`);
    expect(forced.status).toBeLessThan(300);
    await early.waitFor(() => early.rekeys.length > nE);
    await again.waitFor(() => again.rekeys.length > nA);
    expect(early.rekeys.slice(nE).filter((e) => !e.ok)).toEqual([]);
    expect(again.rekeys.slice(nA).filter((e) => !e.ok)).toEqual([]);
    expect(early.rekeys.slice(nE).some((e) => e.ok && e.teks > 0)).toBe(true);
  });
});

describe('hostile datagrams at the registration port', () => {
  it('arbitrary and mutated datagrams are each answered or dropped and counted; nothing changes; registration still works', async () => {
    const before = await snapshot();
    const c0 = h.registration().counters;
    const sock = (await import('node:dgram')).createSocket('udp4');
    await new Promise<void>((res) => sock.bind({ address: '127.0.0.1', port: 0 }, () => res()));
    const seed = Number(process.env.GROUPSEC_SEED ?? Date.now() % 1_000_000);
    let x = seed;
    const next = () => (x = (x * 1103515245 + 12345) & 0x7fffffff);
    // A genuine IKE_SA_INIT to mutate: what our initiator sends first.
    // An IKE_SA_INIT request (RFC 3948 marker, header, SA with one proposal, start of a KE) to mutate.
    const template = Buffer.concat([
      Buffer.alloc(4),
      Buffer.from('0102030405060708000000000000000021202208000000000000004c220000300000002c010100040300000c0100000c800e0100030000080200000503000008040000130000000804000013', 'hex'),
    ]);
    const N = 300;
    for (let i = 0; i < N; i++) {
      let d: Buffer;
      if (i % 3 === 0) d = randomBytes(1 + (next() % 200));
      else {
        d = Buffer.from(template);
        for (let k = 0; k < 1 + (next() % 4); k++) d[next() % d.length] = next() & 0xff;
        if (i % 3 === 2) d = d.subarray(0, 1 + (next() % (d.length - 1)));
      }
      sock.send(d, port(), '127.0.0.1');
      // Paced, so the kernel's receive buffer (~256 small datagrams) never drops any.
      if (i % 50 === 49) await new Promise((r) => setTimeout(r, 50));
    }
    const received = () => h.registration().counters.received ?? 0;
    for (let t = 0; t < 100 && received() - (c0.received ?? 0) < N; t++) await new Promise((r) => setTimeout(r, 20));
    sock.close();
    const c1 = h.registration().counters;
    const delta = (k: string) => (c1[k] ?? 0) - (c0[k] ?? 0);
    expect(delta('received'), `seed ${seed}`).toBe(N);
    expect(delta('outcome_answered') + delta('outcome_dropped') + delta('outcome_accepted'), `seed ${seed}`).toBe(N);
    expect(delta('established')).toBe(0);
    expect(await snapshot()).toEqual(before);
    const m = await mk('after-fuzz.rx.example.org');
    expect((await m.register({ gcksPort: port(), group: 'video', ca: h.ca() })).ok).toBe(true);
  });
});

