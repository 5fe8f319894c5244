import { readFileSync } from 'node:fs';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { DataSource } from 'typeorm';
import { createApp } from '../../apps/gcks/src/bootstrap.js';
import { loadConfig } from '../../apps/gcks/src/config/gcks-config.js';
import { CapturingLogger, type TestGcks } from '../support/gcks-test-app.js';
import { gkmHelpers } from '../support/gcks-gkm.js';
import type { GmClient } from '../support/gm-client.js';
import { tempDir } from '../support/temp-dir.js';

/**
 * A restarted GCKS continues its groups: same key material, same LKH tree and Rekey SA, Message IDs
 * above the last one sent (members accept the next rekey), IKE SAs restored for in-band rekeys.
 */

const dir = tempDir('gcks-restart-gkm-');
const REKEY_ADDR = `239.79.${process.pid % 250}.1`;
const REKEY_PORT = 40_000 + (process.pid % 20_000);
let gcks: TestGcks | undefined;
const h = gkmHelpers(() => gcks!);
const clients: GmClient[] = [];

async function start(): Promise<TestGcks> {
  const config = loadConfig({ GCKS_DATA_DIR: dir.path, GCKS_HTTP_PORT: '0', GCKS_IKE_PORT: '0', GCKS_LOG_JSON: 'false' });
  const logger = new CapturingLogger();
  const app = await createApp(config, { logger });
  const ds = app.app.get(DataSource);
  return {
    ...app,
    config,
    logger,
    ds,
    token: readFileSync(config.adminTokenFile, 'utf8').trim(),
    server: app.app.getHttpServer(),
    counts: async () => ({}),
    close: async () => {
      await app.app.close();
    },
  };
}

afterAll(async () => {
  for (const c of clients) c.close();
  await gcks?.close();
  dir.remove();
});

describe('GCKS restart', () => {
  it('continues the group: the next rekey has a higher Message ID and registered members accept it', async () => {
    gcks = await start();
    const groupId = await h.group('conf', REKEY_ADDR, REKEY_PORT, [{ idType: 'san-dns', pattern: '*.example.com', role: 'both' }]);
    const caPem = h.keys().publicKeys.caCertificatePem;
    const members: GmClient[] = [];
    for (const name of ['x.example.com', 'y.example.com']) {
      const m = await h.member(name);
      clients.push(m);
      const r = await m.register({ gcksPort: h.registration().port, group: 'conf', ca: h.ca(), ownerAnchor: h.ownerAnchor() });
      expect(r.ok, JSON.stringify(r)).toBe(true);
      await m.listenRekeys(REKEY_ADDR, REKEY_PORT, h.ownerAnchor(), 'conf');
      members.push(m);
    }
    const first = await h.api.post(`/api/v1/groups/${groupId}/rekey`);
    const firstId = first.body.messageIds[0] as number;
    for (const m of members) await m.waitFor(() => m.rekeys.some((e) => e.ok && e.messageId === firstId));
    const before = (await h.api.get(`/api/v1/groups/${groupId}/keys`)).body;

    await gcks.close();
    gcks = await start();
    expect(h.keys().publicKeys.caCertificatePem).toBe(caPem);
    const after = (await h.api.get(`/api/v1/groups/${groupId}/keys`)).body;
    expect(after).toEqual(before);

    const second = await h.api.post(`/api/v1/groups/${groupId}/rekey`);
    const secondId = second.body.messageIds[0] as number;
    expect(secondId).toBeGreaterThan(firstId);
    for (const m of members) await m.waitFor(() => m.rekeys.some((e) => e.ok && e.messageId === secondId));
    expect(Buffer.from(members[0]!.teks[0]!.encKey)).toEqual(Buffer.from(members[1]!.teks[0]!.encKey));

    // The IKE SA survived too: an in-band rekey reaches the member over it.
    const list = await request(gcks.server).get(`/api/v1/groups/${groupId}/members`).set({ Authorization: `Bearer ${gcks.token}` });
    const xId = list.body.find((m: { identity: string }) => m.identity === 'x.example.com').id;
    const inband = await h.api.post(`/api/v1/groups/${groupId}/members/${xId}/inband-rekey`);
    expect(inband.status, JSON.stringify(inband.body)).toBe(200);
    await members[0]!.waitFor(() => members[0]!.inband.length > 0);
    expect(members[0]!.inband[0]).toMatchObject({ ok: true });

    // A leave after the restart still reaches the remaining member through the restored LKH tree.
    const yId = list.body.find((m: { identity: string }) => m.identity === 'y.example.com').id;
    const evict = await h.api.delete(`/api/v1/groups/${groupId}/members/${yId}`);
    const ids = evict.body.messageIds as number[];
    expect(ids[0]).toBeGreaterThan(secondId);
    await members[0]!.waitFor(() => ids.every((i) => members[0]!.rekeys.some((e) => e.ok && e.messageId === i)));
  });
});
