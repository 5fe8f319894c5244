import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeCertificate } from '../support/certs.js';
import { startTestGcks, type TestGcks } from '../support/gcks-test-app.js';

let gcks: TestGcks;
const auth = () => ({ Authorization: `Bearer ${gcks.token}` });
const api = {
  get: (path: string) => request(gcks.server).get(path).set(auth()),
  post: (path: string, body: unknown) => request(gcks.server).post(path).set(auth()).send(body as object),
  patch: (path: string, body: unknown) => request(gcks.server).patch(path).set(auth()).send(body as object),
  delete: (path: string) => request(gcks.server).delete(path).set(auth()),
};

let seq = 0;
const uniqueName = (p: string) => `${p}-${++seq}`;

async function createGroup(body: Record<string, unknown> = {}): Promise<Record<string, any>> {
  const res = await api.post('/api/v1/groups', { name: uniqueName('g'), address: '239.1.2.3', ...body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

/** Sends a request that must be refused with a 400 naming `field`, and proves nothing was written. */
async function expectRejected(send: () => request.Test, field: string, status = 400): Promise<Record<string, any>> {
  const before = await gcks.counts();
  const res = await send();
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.body.code).toBe(status === 400 ? 'VALIDATION_FAILED' : 'CONFLICT');
  expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
  expect(res.body.message).toContain(field);
  expect(await gcks.counts()).toEqual(before);
  return res.body;
}

beforeAll(async () => {
  gcks = await startTestGcks();
});
afterAll(async () => {
  await gcks?.close();
});

describe('health, authentication and error shape', () => {
  it('answers /health without a token', async () => {
    const res = await request(gcks.server).get('/health');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('refuses a missing or wrong token with 401, logs it without the token, and writes nothing', async () => {
    const before = await gcks.counts();
    const missing = await request(gcks.server).post('/api/v1/groups').send({ name: 'x', address: '239.1.1.1' });
    expect(missing.status).toBe(401);
    expect(missing.body).toEqual({ message: expect.any(String), code: 'UNAUTHENTICATED' });
    const wrongToken = `${gcks.token.slice(0, -1)}${gcks.token.endsWith('A') ? 'B' : 'A'}`;
    const wrong = await request(gcks.server).get('/api/v1/groups').set('Authorization', `Bearer ${wrongToken}`);
    expect(wrong.status).toBe(401);
    const basic = await request(gcks.server).get('/api/v1/audit').set('Authorization', `Basic ${gcks.token}`);
    expect(basic.status).toBe(401);
    expect(await gcks.counts()).toEqual(before);
    const logged = gcks.logger.lines.filter((l) => l.level === 'warn' && l.message.startsWith('401'));
    expect(logged.map((l) => l.message)).toEqual([
      expect.stringMatching(/401 POST \/api\/v1\/groups .*missing/),
      expect.stringMatching(/401 GET \/api\/v1\/groups .*wrong/),
      expect.stringMatching(/401 GET \/api\/v1\/audit .*wrong/),
    ]);
    expect(JSON.stringify(gcks.logger.lines)).not.toContain(gcks.token);
    expect(JSON.stringify(gcks.logger.lines)).not.toContain(wrongToken);
  });

  it('stores the admin token only as a hash', async () => {
    const rows = await gcks.ds.query('SELECT tokenHash FROM admin_credentials');
    expect(rows).toHaveLength(1);
    expect(rows[0].tokenHash).toMatch(/^[0-9a-f]{64}$/);
    const dump = JSON.stringify(await gcks.ds.query('SELECT * FROM admin_credentials')) + JSON.stringify(await gcks.ds.query('SELECT * FROM audit_log'));
    expect(dump).not.toContain(gcks.token);
  });

  it('answers a malformed JSON body with 400 MALFORMED_BODY and writes nothing', async () => {
    const before = await gcks.counts();
    const res = await request(gcks.server).post('/api/v1/groups').set(auth()).set('Content-Type', 'application/json').send('{"name": "x",');
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ message: 'request body is not valid JSON', code: 'MALFORMED_BODY' });
    expect(await gcks.counts()).toEqual(before);
  });

  it('rejects unknown fields, naming them', async () => {
    await expectRejected(() => api.post('/api/v1/groups', { name: 'x', address: '239.1.1.1', colour: 'red' }), 'colour');
    const g = await createGroup();
    await expectRejected(() => api.post(`/api/v1/groups/${g.id}/policies`, { name: 'p', espTransfrom: 'aes-gcm-128' }), 'espTransfrom');
    await expectRejected(() => api.patch(`/api/v1/groups/${g.id}`, { id: 'forged' }), 'id');
  });

  it('answers bodies of the wrong shape and nulls in non-nullable fields with 400, never 500', async () => {
    const before = await gcks.counts();
    for (const body of ['[]', '"text"', '123', 'null', '[{"name":"x","address":"239.1.1.1"}]']) {
      const res = await request(gcks.server).post('/api/v1/groups').set(auth()).set('Content-Type', 'application/json').send(body);
      expect(res.status, body).toBe(400);
      expect(['VALIDATION_FAILED', 'MALFORMED_BODY']).toContain(res.body.code);
    }
    const g = await createGroup();
    const after = await gcks.counts();
    await expectRejected(() => api.patch(`/api/v1/groups/${g.id}`, { address: null }), 'address');
    await expectRejected(() => api.patch(`/api/v1/groups/${g.id}`, { name: null }), 'name');
    await expectRejected(() => api.post('/api/v1/groups', { name: 'n', address: '239.1.1.1', enabled: null }), 'enabled');
    await expectRejected(() => api.post(`/api/v1/groups/${g.id}/policies`, { name: 'p', atd: null }), 'atd');
    const p = await api.post(`/api/v1/groups/${g.id}/policies`, { name: 'p', protocol: null });
    expect(p.status).toBe(201);
    await expectRejected(() => api.patch(`/api/v1/groups/${g.id}/policies/${p.body.id}`, { mode: null }), 'mode');
    await expectRejected(() => api.post(`/api/v1/groups/${g.id}/pad-rules`, { idType: 'subject', pattern: 'CN=x', kind: null }), 'kind');
    expect((await gcks.counts()).groups).toBe(after.groups);
    expect(before.groups + 1).toBe(after.groups);
  });

  it('refuses oversized bodies with 413 and unknown query parameters with 400', async () => {
    const before = await gcks.counts();
    const huge = await api.post('/api/v1/groups', { name: 'big', address: '239.1.1.1', pad: 'x'.repeat(300_000) });
    expect(huge.status).toBe(413);
    expect(huge.body.code).toBe('PAYLOAD_TOO_LARGE');
    await expectRejected(() => api.get('/api/v1/audit?sort=asc'), 'sort');
    expect(await gcks.counts()).toEqual(before);
  });

  it('answers unknown ids and routes with 404', async () => {
    for (const path of [
      '/api/v1/groups/00000000-0000-0000-0000-000000000000',
      '/api/v1/groups/nope/policies',
      '/api/v1/groups/nope/members',
      '/api/v1/no-such-route',
    ]) {
      const res = await api.get(path);
      expect(res.status, path).toBe(404);
      expect(res.body.code).toBe('NOT_FOUND');
    }
    const g = await createGroup();
    expect((await api.get(`/api/v1/groups/${g.id}/policies/nope`)).status).toBe(404);
    expect((await api.patch(`/api/v1/groups/${g.id}/pad-rules/nope`, { pattern: 'x' })).status).toBe(404);
    expect((await api.delete(`/api/v1/groups/${g.id}/trust-anchors/nope`)).status).toBe(404);
    expect((await api.get(`/api/v1/groups/${g.id}/members/nope`)).status).toBe(404);
  });

  it('serves the OpenAPI document and the console', async () => {
    const doc = await request(gcks.server).get('/api/docs-json');
    expect(doc.status).toBe(200);
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining(['/api/v1/groups', '/api/v1/groups/{groupId}/policies', '/api/v1/groups/{groupId}/pad-rules', '/api/v1/audit']),
    );
    expect(doc.body.components.schemas.ErrorResponse.properties).toHaveProperty('errors');
    expect(doc.body.paths['/api/v1/groups'].post.responses).toHaveProperty('400');
    const page = await request(gcks.server).get('/');
    expect(page.status).toBe(200);
    expect(page.text).toContain('GroupSec');
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    expect(page.headers['x-content-type-options']).toBe('nosniff');
  });
});

describe('groups', () => {
  it('creates with defaults, lists, reads, updates and deletes, auditing each change', async () => {
    const g = await createGroup({ name: 'crud-group' });
    expect(g).toMatchObject({
      addressType: 'multicast', ipVersion: 4, sourceMode: 'asm', ssmSources: [], serviceModel: 'per-speaker',
      rekeyTransport: 'multicast', rekeyAddress: '239.1.2.3', rekeyPort: 4500, maxSpeakers: 16, lkhDegree: 4, enabled: true,
    });
    expect((await api.get('/api/v1/groups')).body.map((x: { id: string }) => x.id)).toContain(g.id);
    expect((await api.get(`/api/v1/groups/${g.id}`)).body).toEqual(g);
    const upd = await api.patch(`/api/v1/groups/${g.id}`, { enabled: false, lkhDegree: 8 });
    expect(upd.status).toBe(200);
    expect(upd.body).toMatchObject({ enabled: false, lkhDegree: 8, name: 'crud-group' });
    expect((await api.delete(`/api/v1/groups/${g.id}`)).status).toBe(204);
    expect((await api.get(`/api/v1/groups/${g.id}`)).status).toBe(404);
    const audit = (await api.get(`/api/v1/audit?groupId=${g.id}`)).body;
    expect(audit.map((a: { action: string }) => a.action)).toEqual(['delete', 'update', 'create']);
    expect(audit[1].details.changes).toEqual({ enabled: { from: true, to: false }, lkhDegree: { from: 4, to: 8 } });
    expect(audit[0].actor).toMatch(/^admin:[0-9a-f]{12}$/);
    expect(audit[0].remoteAddress).toBeTruthy();
  });

  it('refuses a duplicate name with 409 naming the field', async () => {
    const g = await createGroup();
    await expectRejected(() => api.post('/api/v1/groups', { name: g.name, address: '239.9.9.9' }), 'name', 409);
    const other = await createGroup();
    await expectRejected(() => api.patch(`/api/v1/groups/${other.id}`, { name: g.name }), 'name', 409);
  });

  it('requires a multicast group address (or IPv4 broadcast / IPv6 anycast when declared so)', async () => {
    await expectRejected(() => api.post('/api/v1/groups', { name: 'u', address: '10.1.2.3' }), 'address');
    await expectRejected(() => api.post('/api/v1/groups', { name: 'u', address: '2001:db8::1' }), 'address');
    await expectRejected(() => api.post('/api/v1/groups', { name: 'u', address: 'not-an-ip' }), 'address');
    await expectRejected(() => api.post('/api/v1/groups', { name: 'u', address: 'ff02::1', addressType: 'broadcast', rekeyTransport: 'unicast' }), 'address');
    await expectRejected(() => api.post('/api/v1/groups', { name: 'u', address: '192.0.2.1/24', addressType: 'broadcast', rekeyTransport: 'unicast' }), 'address');
    await expectRejected(() => api.post('/api/v1/groups', { name: 'u', address: '2001:db8::5', addressType: 'anycast', rekeyTransport: 'unicast' }), 'address');
    const b = await createGroup({ address: '192.0.2.255/24', addressType: 'broadcast', rekeyTransport: 'unicast' });
    expect(b).toMatchObject({ ipVersion: 4, rekeyAddress: null, rekeyPort: null });
    const a = await createGroup({ address: '2001:db8:0:1::', addressType: 'anycast', rekeyTransport: 'unicast' });
    expect(a.ipVersion).toBe(6);
    const m6 = await createGroup({ address: 'ff0e::1:2' });
    expect(m6).toMatchObject({ ipVersion: 6, rekeyAddress: 'ff0e::1:2' });
  });

  it('checks SSM groups: SSM range, at least one unicast source of the same IP version', async () => {
    await expectRejected(() => api.post('/api/v1/groups', { name: 's', address: '239.1.1.1', sourceMode: 'ssm', ssmSources: ['192.0.2.1'] }), 'address');
    await expectRejected(() => api.post('/api/v1/groups', { name: 's', address: '232.1.1.1', sourceMode: 'ssm' }), 'ssmSources');
    await expectRejected(() => api.post('/api/v1/groups', { name: 's', address: '232.1.1.1', sourceMode: 'ssm', ssmSources: ['2001:db8::1'] }), 'ssmSources.0');
    await expectRejected(() => api.post('/api/v1/groups', { name: 's', address: '232.1.1.1', sourceMode: 'ssm', ssmSources: ['192.0.2.1', '239.1.1.1'] }), 'ssmSources.1');
    await expectRejected(() => api.post('/api/v1/groups', { name: 's', address: '239.1.1.1', ssmSources: ['192.0.2.1'] }), 'ssmSources');
    const g = await createGroup({ address: '232.1.1.1', sourceMode: 'ssm', ssmSources: ['192.0.2.1', '192.0.2.2'] });
    expect(g.ssmSources).toEqual(['192.0.2.1', '192.0.2.2']);
  });

  it('checks service models: A.1 exactly one speaker, A.2 at least 16', async () => {
    await expectRejected(() => api.post('/api/v1/groups', { name: 'a1', address: '239.1.1.1', serviceModel: 'unidirectional', maxSpeakers: 2 }), 'maxSpeakers');
    await expectRejected(() => api.post('/api/v1/groups', { name: 'a2', address: '239.1.1.1', serviceModel: 'per-speaker', maxSpeakers: 8 }), 'maxSpeakers');
    expect((await createGroup({ serviceModel: 'unidirectional' })).maxSpeakers).toBe(1);
    expect((await createGroup({ serviceModel: 'per-speaker', maxSpeakers: 16 })).maxSpeakers).toBe(16);
  });

  it('checks the rekey channel', async () => {
    await expectRejected(() => api.post('/api/v1/groups', { name: 'r', address: '239.1.1.1', rekeyAddress: '10.0.0.1' }), 'rekeyAddress');
    await expectRejected(() => api.post('/api/v1/groups', { name: 'r', address: '239.1.1.1', rekeyAddress: 'ff0e::1' }), 'rekeyAddress');
    await expectRejected(() => api.post('/api/v1/groups', { name: 'r', address: '239.1.1.1', rekeyTransport: 'unicast', rekeyPort: 4500 }), 'rekeyPort');
    await expectRejected(() => api.post('/api/v1/groups', { name: 'r', address: '239.1.1.1', rekeyPort: 70000 }), 'rekeyPort');
    const g = await createGroup({ rekeyAddress: '239.9.9.9', rekeyPort: 8500 });
    expect(g).toMatchObject({ rekeyAddress: '239.9.9.9', rekeyPort: 8500 });
    // A defaulted rekey address follows the group address; switching transport resets what no longer applies.
    const d = await createGroup({ address: '239.4.4.4' });
    expect((await api.patch(`/api/v1/groups/${d.id}`, { address: '239.5.5.5' })).body).toMatchObject({ rekeyAddress: '239.5.5.5', rekeyPort: 4500 });
    expect((await api.patch(`/api/v1/groups/${d.id}`, { rekeyTransport: 'unicast' })).body).toMatchObject({ rekeyAddress: null, rekeyPort: null });
    expect((await api.patch(`/api/v1/groups/${d.id}`, { rekeyTransport: 'multicast' })).body).toMatchObject({ rekeyAddress: '239.5.5.5', rekeyPort: 4500 });
    expect((await api.patch(`/api/v1/groups/${g.id}`, { address: '239.6.6.6' })).body).toMatchObject({ rekeyAddress: '239.9.9.9', rekeyPort: 8500 });
    const docs = await request(gcks.server).get('/api/docs/');
    expect(docs.status).toBe(200);
    expect(docs.text).toContain('swagger');
  });
});

describe('policies (GSPD entries)', () => {
  let g: Record<string, any>;
  beforeEach(async () => {
    g = await createGroup();
  });
  const policies = () => `/api/v1/groups/${g.id}/policies`;

  it('creates an entry with spec defaults and keeps entries ordered', async () => {
    const p1 = await api.post(policies(), { name: 'video' });
    expect(p1.status, JSON.stringify(p1.body)).toBe(201);
    expect(p1.body).toMatchObject({
      position: 1, sourcePrefix: '0.0.0.0/0', destinationPrefix: '239.1.2.3/32', action: 'protect', direction: 'symmetric',
      mode: 'tunnel', addressPreservation: 'both', udpEncapsulation: false, espTransform: 'aes-gcm-256', antiReplay: true,
      replayWindow: 64, dataOriginAuth: 'none', tekLifetime: 3600, kekLifetime: 3600, rekeyRollover: true, atd: 15, dtd: 15,
      rekeyRetransmissions: 2, leaveBehaviour: 'immediate', leaveBatchInterval: null,
    });
    expect(p1.body).not.toHaveProperty('group');
    const p2 = await api.post(policies(), { name: 'audio', protocol: 17, destinationPort: 5004, position: 1, mode: 'transport' });
    expect(p2.status, JSON.stringify(p2.body)).toBe(201);
    expect(p2.body).toMatchObject({ position: 1, addressPreservation: 'none' });
    expect((await api.get(policies())).body.map((p: any) => [p.name, p.position])).toEqual([['audio', 1], ['video', 2]]);
    const moved = await api.patch(`${policies()}/${p2.body.id}`, { position: 2, leaveBehaviour: 'batched', leaveBatchInterval: 30 });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    expect((await api.get(policies())).body.map((p: any) => [p.name, p.position])).toEqual([['video', 1], ['audio', 2]]);
    expect((await api.delete(`${policies()}/${p1.body.id}`)).status).toBe(204);
    expect((await api.get(policies())).body.map((p: any) => [p.name, p.position])).toEqual([['audio', 1]]);
    await expectRejected(() => api.post(policies(), { name: 'x', position: 5 }), 'position');
  });

  it('refuses a duplicate policy name within the group with 409', async () => {
    await api.post(policies(), { name: 'dup' });
    await expectRejected(() => api.post(policies(), { name: 'dup' }), 'name', 409);
  });

  it('keeps selectors inside the group (spec/000 §4.1.3.1) and of its IP version', async () => {
    await expectRejected(() => api.post(policies(), { name: 'p', destinationPrefix: '239.0.0.0/8' }), 'destinationPrefix');
    await expectRejected(() => api.post(policies(), { name: 'p', destinationPrefix: '239.1.2.4/32' }), 'destinationPrefix');
    await expectRejected(() => api.post(policies(), { name: 'p', destinationPrefix: '0.0.0.0/0' }), 'destinationPrefix');
    await expectRejected(() => api.post(policies(), { name: 'p', destinationPrefix: 'ff0e::1/128' }), 'destinationPrefix');
    await expectRejected(() => api.post(policies(), { name: 'p', sourcePrefix: '2001:db8::/32' }), 'sourcePrefix');
    await expectRejected(() => api.post(policies(), { name: 'p', sourcePrefix: '10.0.0.1/8' }), 'sourcePrefix');
    const ssm = await createGroup({ address: '232.1.1.1', sourceMode: 'ssm', ssmSources: ['192.0.2.1', '192.0.2.2'] });
    const ssmPolicies = `/api/v1/groups/${ssm.id}/policies`;
    await expectRejected(() => api.post(ssmPolicies, { name: 'p' }), 'sourcePrefix');
    await expectRejected(() => api.post(ssmPolicies, { name: 'p', sourcePrefix: '192.0.2.0/24' }), 'sourcePrefix');
    expect((await api.post(ssmPolicies, { name: 'p', sourcePrefix: '192.0.2.2/32' })).status).toBe(201);
  });

  it('refuses group changes that would put existing selectors outside the group', async () => {
    await api.post(policies(), { name: 'p' });
    await expectRejected(() => api.patch(`/api/v1/groups/${g.id}`, { address: 'ff0e::5', rekeyAddress: 'ff0e::5' }), 'address');
    await expectRejected(() => api.patch(`/api/v1/groups/${g.id}`, { address: '239.7.7.7' }), 'address');
  });

  it('allows address preservation only in tunnel mode (spec/000 §3.1)', async () => {
    await expectRejected(() => api.post(policies(), { name: 'p', mode: 'transport', addressPreservation: 'source' }), 'addressPreservation');
    const p = await api.post(policies(), { name: 'p', addressPreservation: 'destination' });
    expect(p.status).toBe(201);
    await expectRejected(() => api.patch(`${policies()}/${p.body.id}`, { mode: 'transport', addressPreservation: 'both' }), 'addressPreservation');
  });

  it('requires positive ATD and DTD and a TEK lifetime of at least 10×ATD', async () => {
    await expectRejected(() => api.post(policies(), { name: 'p', atd: 0 }), 'atd');
    await expectRejected(() => api.post(policies(), { name: 'p', atd: -5 }), 'atd');
    await expectRejected(() => api.post(policies(), { name: 'p', dtd: 0 }), 'dtd');
    await expectRejected(() => api.post(policies(), { name: 'p', atd: 1.5 }), 'atd');
    await expectRejected(() => api.post(policies(), { name: 'p', atd: 60, tekLifetime: 599 }), 'tekLifetime');
    expect((await api.post(policies(), { name: 'p', atd: 60, tekLifetime: 600 })).status).toBe(201);
    await expectRejected(() => api.post(policies(), { name: 'q', kekLifetime: 299 }), 'kekLifetime');
  });

  it('forbids anti-replay in an A.3 (any-to-any) group, and switching to A.3 with it on', async () => {
    const a3 = await createGroup({ serviceModel: 'any-to-any' });
    const a3Policies = `/api/v1/groups/${a3.id}/policies`;
    await expectRejected(() => api.post(a3Policies, { name: 'p', antiReplay: true }), 'antiReplay');
    const p = await api.post(a3Policies, { name: 'p' });
    expect(p.body.antiReplay).toBe(false);
    await expectRejected(() => api.patch(`${a3Policies}/${p.body.id}`, { antiReplay: true }), 'antiReplay');
    await api.post(policies(), { name: 'with-replay' });
    await expectRejected(() => api.patch(`/api/v1/groups/${g.id}`, { serviceModel: 'any-to-any', maxSpeakers: 64 }), 'serviceModel');
  });

  it('checks ports, protocol, enums and batched leave', async () => {
    await expectRejected(() => api.post(policies(), { name: 'p', destinationPort: 5004 }), 'destinationPort');
    await expectRejected(() => api.post(policies(), { name: 'p', protocol: 1, sourcePort: 1 }), 'sourcePort');
    await expectRejected(() => api.post(policies(), { name: 'p', protocol: 256 }), 'protocol');
    await expectRejected(() => api.post(policies(), { name: 'p', espTransform: 'des' }), 'espTransform');
    await expectRejected(() => api.post(policies(), { name: 'p', direction: 'sideways' }), 'direction');
    await expectRejected(() => api.post(policies(), { name: 'p', leaveBehaviour: 'batched' }), 'leaveBatchInterval');
    await expectRejected(() => api.post(policies(), { name: 'p', replayWindow: 16 }), 'replayWindow');
  });
});

describe('PAD rules and trust anchors', () => {
  it('stores PSKs sealed and never returns them', async () => {
    const g = await createGroup();
    const psk = 'correct horse battery staple';
    const res = await api.post(`/api/v1/groups/${g.id}/pad-rules`, { idType: 'psk', pattern: 'sensor-17', role: 'both', psk });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ kind: 'member', idType: 'psk', pattern: 'sensor-17', role: 'both', hasPsk: true });
    expect(JSON.stringify(res.body)).not.toContain(psk);
    const dump = JSON.stringify(await gcks.ds.query('SELECT * FROM pad_rules')) + JSON.stringify(await gcks.ds.query('SELECT * FROM audit_log'));
    expect(dump).not.toContain(psk);
    expect(dump).not.toContain(Buffer.from(psk).toString('base64'));
    await expectRejected(() => api.post(`/api/v1/groups/${g.id}/pad-rules`, { idType: 'psk', pattern: 'sensor-18' }), 'psk');
    await expectRejected(() => api.post(`/api/v1/groups/${g.id}/pad-rules`, { idType: 'psk', pattern: 'x', psk: 'short' }), 'psk');
    await expectRejected(() => api.post(`/api/v1/groups/${g.id}/pad-rules`, { idType: 'san-dns', pattern: 'x', psk }), 'psk');
    await expectRejected(() => api.post(`/api/v1/groups/${g.id}/pad-rules`, { idType: 'psk', pattern: 'sensor-17', role: 'receiver', psk }), 'pattern', 409);
  });

  it('checks roles: member rules grant one, GCKS rules none', async () => {
    const g = await createGroup();
    const rules = `/api/v1/groups/${g.id}/pad-rules`;
    expect((await api.post(rules, { idType: 'san-dns', pattern: '*.example.com' })).body.role).toBe('receiver');
    const gk = await api.post(rules, { kind: 'gcks', idType: 'san-dns', pattern: 'gcks.example.com' });
    expect(gk.body.role).toBeNull();
    await expectRejected(() => api.post(rules, { kind: 'gcks', idType: 'subject', pattern: 'CN=gcks', role: 'speaker' }), 'role');
    await expectRejected(() => api.post(rules, { idType: 'passport', pattern: 'x' }), 'idType');
    const upd = await api.patch(`${rules}/${gk.body.id}`, { pattern: 'gcks2.example.com' });
    expect(upd.status).toBe(200);
    expect((await api.delete(`${rules}/${gk.body.id}`)).status).toBe(204);
  });

  it('lets an A.1 group have exactly one speaker identity', async () => {
    const a1 = await createGroup({ serviceModel: 'unidirectional' });
    const rules = `/api/v1/groups/${a1.id}/pad-rules`;
    await expectRejected(() => api.post(rules, { idType: 'san-dns', pattern: '*.cams.example.com', role: 'speaker' }), 'role');
    expect((await api.post(rules, { idType: 'san-dns', pattern: 'cam1.example.com', role: 'speaker' })).status).toBe(201);
    expect((await api.post(rules, { idType: 'san-dns', pattern: '*.viewers.example.com', role: 'receiver' })).status).toBe(201);
    await expectRejected(() => api.post(rules, { idType: 'san-dns', pattern: 'cam2.example.com', role: 'both' }), 'role');
    const a2 = await createGroup();
    await api.post(`/api/v1/groups/${a2.id}/pad-rules`, { idType: 'subject', pattern: 'CN=a', role: 'speaker' });
    await api.post(`/api/v1/groups/${a2.id}/pad-rules`, { idType: 'subject', pattern: 'CN=b', role: 'speaker' });
    await expectRejected(() => api.patch(`/api/v1/groups/${a2.id}`, { serviceModel: 'unidirectional', maxSpeakers: 1 }), 'serviceModel');
  });

  it('accepts CA certificates as trust anchors and refuses others', async () => {
    const g = await createGroup();
    const anchors = `/api/v1/groups/${g.id}/trust-anchors`;
    const caPem = makeCertificate('GroupSec Test Root', true);
    const res = await api.post(anchors, { name: 'root', pem: caPem });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ name: 'root', subject: 'CN=GroupSec Test Root', fingerprint: expect.stringMatching(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/) });
    await expectRejected(() => api.post(anchors, { name: 'again', pem: caPem }), 'pem', 409);
    await expectRejected(() => api.post(anchors, { name: 'leaf', pem: makeCertificate('leaf', false) }), 'pem');
    await expectRejected(() => api.post(anchors, { name: 'junk', pem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }), 'pem');
    expect((await api.get(anchors)).body).toHaveLength(1);
    expect((await api.delete(`${anchors}/${res.body.id}`)).status).toBe(204);
  });
});

describe('members and audit', () => {
  it('lists members (read-only) and removes them with their group', async () => {
    const g = await createGroup();
    expect((await api.get(`/api/v1/groups/${g.id}/members`)).body).toEqual([]);
    await gcks.ds.query(
      `INSERT INTO members (id, groupId, identity, role, state, address, senderId, joinedAt) VALUES ('m-1', ?, 'CN=sensor', 'speaker', 'registered', '192.0.2.9', 3, '2026-01-01T00:00:00.000Z')`,
      [g.id],
    );
    const list = await api.get(`/api/v1/groups/${g.id}/members`);
    expect(list.body).toEqual([expect.objectContaining({ id: 'm-1', identity: 'CN=sensor', role: 'speaker', senderId: 3 })]);
    expect((await api.get(`/api/v1/groups/${g.id}/members/m-1`)).body.identity).toBe('CN=sensor');
    expect((await request(gcks.server).post(`/api/v1/groups/${g.id}/members`).set(auth()).send({})).status).toBe(404);
    await api.delete(`/api/v1/groups/${g.id}`);
    expect(await gcks.ds.query(`SELECT count(*) AS n FROM members WHERE id = 'm-1'`)).toEqual([{ n: 0 }]);
  });

  it('pages the audit log newest first and validates its query', async () => {
    const all = (await api.get('/api/v1/audit?limit=500')).body;
    expect(all.length).toBeGreaterThan(5);
    const page = (await api.get(`/api/v1/audit?limit=2&beforeId=${all[0].id}`)).body;
    expect(page.map((e: { id: number }) => e.id)).toEqual([all[1].id, all[2].id]);
    await expectRejected(() => api.get('/api/v1/audit?limit=0'), 'limit');
    await expectRejected(() => api.get('/api/v1/audit?limit=abc'), 'limit');
  });
});
