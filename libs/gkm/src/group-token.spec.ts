import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createGroupOwner, exportGroupOwnerPublic, ownerKeyIdOf, signPolicyToken, type PolicyTokenContent } from '@app/crypto';
import { acceptGroupPolicyToken, type AcceptTokenOptions } from '@app/gkm';

const NOW = new Date('2026-11-22T12:00:00Z');
const rnd = (n: number) => new Uint8Array(randomBytes(n));
const owner = createGroupOwner({ groupName: 'video', now: NOW, randomBytes: rnd });
const other = createGroupOwner({ groupName: 'video', now: NOW, randomBytes: rnd });
const anchor = exportGroupOwnerPublic(owner).signingKeyPem;

function token(edition: number, signer = owner, over: Partial<PolicyTokenContent> = {}): Uint8Array {
  return signPolicyToken(
    {
      groupName: 'video',
      edition,
      notBefore: new Date('2026-11-01T00:00:00Z'),
      notAfter: new Date('2026-12-01T00:00:00Z'),
      ownerKeyId: ownerKeyIdOf(signer.signing.publicKey),
      gcks: [{ idType: 2, pattern: 'gcks.example.org' }],
      members: [{ identity: { idType: 2, pattern: '*.rx.example.org' }, maySpeak: false, mayReceive: true }],
      groupPolicy: { rekeyAddress: '239.0.0.1', rekeyPort: 848, atd: 15, dtd: 30, kekLifetime: 3600, rekeyAuth: 2 },
      dataPolicy: [],
      ...over,
    },
    signer.signing.privateKey,
  );
}

const base: AcceptTokenOptions = { anchor, now: NOW, groupName: 'video', gcksIdentity: { idType: 2, value: 'gcks.example.org' } };

describe('acceptGroupPolicyToken', () => {
  it('accepts a token from the Group Owner naming this GCKS and lets a receiver in', () => {
    const r = acceptGroupPolicyToken({ policyToken: token(2) }, { ...base, heldEdition: 2, self: { identity: { idType: 2, value: 'tv1.rx.example.org' }, role: 'receiver' } });
    expect(r.ok && r.token.edition).toBe(2);
  });

  it.each([
    ['no token', {}, base, 'NO_TOKEN'],
    ['another owner', { policyToken: token(2, other) }, base, 'WRONG_ANCHOR'],
    ['a GCKS the token does not name', { policyToken: token(2) }, { ...base, gcksIdentity: { idType: 2, value: 'rogue.example.org' } }, 'GCKS_NOT_AUTHORIZED'],
    ['an older edition (replayed policy)', { policyToken: token(1) }, { ...base, heldEdition: 2 }, 'STALE_EDITION'],
    ['another group', { policyToken: token(2, owner, { groupName: 'audio' }) }, base, 'WRONG_GROUP'],
    ['an expired token', { policyToken: token(2) }, { ...base, now: new Date('2026-12-02T00:00:00Z') }, 'EXPIRED'],
    ['a role the token does not allow', { policyToken: token(2) }, { ...base, self: { identity: { idType: 2, value: 'tv1.rx.example.org' }, role: 'speaker' as const } }, 'ROLE_NOT_ALLOWED'],
  ])('refuses %s', (_name, gw, opts, reason) => {
    const r = acceptGroupPolicyToken(gw, opts as AcceptTokenOptions);
    expect(!r.ok && r.reason).toBe(reason);
  });

  it('refuses a token whose Group Owner signature was tampered with', () => {
    const t = token(2);
    t[t.length - 5] = t[t.length - 5]! ^ 0xff;
    const r = acceptGroupPolicyToken({ policyToken: t }, base);
    expect(!r.ok && r.reason).toBe('BAD_SIGNATURE');
  });
});
