import { generateKeyPairSync } from 'node:crypto';
import request from 'supertest';
import { IdType } from '@app/codec';
import { parseCertificate, type Certificate } from '@app/crypto';
import { GcksKeysService } from '../../apps/gcks/src/keys/gcks-keys.service.js';
import { RegistrationService } from '../../apps/gcks/src/registration/registration.service.js';
import type { TestGcks } from './gcks-test-app.js';
import { GmClient } from './gm-client.js';

/** Helpers shared by the registration and rekey tests: REST setup, credentials, members. */
export function gkmHelpers(g: () => TestGcks) {
  const auth = () => ({ Authorization: `Bearer ${g().token}` });
  const api = {
    get: (path: string) => request(g().server).get(path).set(auth()),
    post: (path: string, body: unknown = {}) => request(g().server).post(path).set(auth()).send(body as object),
    patch: (path: string, body: unknown) => request(g().server).patch(path).set(auth()).send(body as object),
    delete: (path: string) => request(g().server).delete(path).set(auth()),
  };
  const keys = () => g().app.get(GcksKeysService);
  const registration = () => g().app.get(RegistrationService);
  const ca = (): Certificate => keys().owner.ca.certificate;
  const ownerAnchor = () => keys().publicKeys.groupOwnerKeyPem;

  async function group(name: string, rekeyAddress: string, rekeyPort: number, rules: Record<string, unknown>[], extra: Record<string, unknown> = {}, policy: Record<string, unknown> = {}) {
    const res = await api.post('/api/v1/groups', { name, address: '239.1.2.3', serviceModel: 'any-to-any', rekeyAddress, rekeyPort, ...extra });
    if (res.status !== 201) throw new Error(`group: ${res.status} ${JSON.stringify(res.body)}`);
    const id = res.body.id as string;
    const pol = await api.post(`/api/v1/groups/${id}/policies`, { name: `${name}-data`, destinationPort: 5000, protocol: 17, ...policy });
    if (pol.status !== 201) throw new Error(`policy: ${pol.status} ${JSON.stringify(pol.body)}`);
    for (const r of rules) {
      const pr = await api.post(`/api/v1/groups/${id}/pad-rules`, r);
      if (pr.status !== 201) throw new Error(`pad rule: ${pr.status} ${JSON.stringify(pr.body)}`);
    }
    return id;
  }

  /** A member with an ECDSA P-256 certificate from the group CA (or from `issuer` when given). */
  async function member(identity: string, o: { psk?: string } = {}): Promise<GmClient> {
    let c: GmClient;
    if (o.psk) c = new GmClient({ identity, psk: new TextEncoder().encode(o.psk) });
    else {
      const kp = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const der = keys().issueMemberCertificate({ idType: IdType.ID_FQDN, value: identity }, kp.publicKey);
      c = new GmClient({ identity, key: kp.privateKey, certificates: [der] });
    }
    await c.open();
    return c;
  }

  return { api, keys, registration, ca, ownerAnchor, group, member, parseCertificate };
}

/** Audit rows of the refusals so far. */
export async function refusals(g: TestGcks): Promise<{ entityId: string; details: string }[]> {
  return g.ds.query(`SELECT "entityId", "details" FROM "audit_log" WHERE "action" = 'refuse' ORDER BY "id"`);
}
