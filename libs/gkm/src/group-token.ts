import {
  isAuthorizedGcks,
  mayAct,
  verifyPolicyToken,
  type MemberRole,
  type PolicyTokenContent,
  type PolicyTokenErrorCode,
  type TokenIdentity,
  type TrustAnchor,
} from '@app/crypto';
import type { GwAttributes } from '@app/codec';

/**
 * The GM's check of the Group Owner's policy token that arrives in the GSA payload's GW policy
 * (private attribute 16384, see README): RFC 5374 §4.1.3.1 — the member trusts the group policy
 * only as the Group Owner signed it, and only from a GCKS the token names.
 *
 * Order: verify the signature against the configured Group Owner anchor (and validity at `now`),
 * refuse an older edition than one already accepted (a replayed old policy), refuse a GCKS the
 * token does not authorize, then (optionally) check that the member's own role is allowed.
 */

export type GroupTokenRefusal =
  | 'NO_TOKEN' // the GW policy carries no token
  | PolicyTokenErrorCode // the token itself is refused
  | 'WRONG_GROUP' // the token is for another group
  | 'STALE_EDITION' // older than the edition this member already holds
  | 'GCKS_NOT_AUTHORIZED' // the GCKS's IKE identity is not among the token's GCKS rules
  | 'ROLE_NOT_ALLOWED'; // the token does not let this member act in the role it asked for

export type GroupTokenResult = { ok: true; token: PolicyTokenContent } | { ok: false; reason: GroupTokenRefusal; detail: string };

export interface AcceptTokenOptions {
  anchor: TrustAnchor;
  now: Date;
  /** The group the member registered for (the token's groupName must match). */
  groupName: string;
  /** The GCKS's authenticated IKE identity (IDr of GSA_AUTH). */
  gcksIdentity: TokenIdentity;
  /** Edition of the token the member already holds for this group, if any. */
  heldEdition?: number;
  /** The member's own identity and role, to refuse a policy that does not let it act. */
  self?: { identity: TokenIdentity; role: MemberRole };
}

export function acceptGroupPolicyToken(groupWide: GwAttributes, o: AcceptTokenOptions): GroupTokenResult {
  if (!groupWide.policyToken) return { ok: false, reason: 'NO_TOKEN', detail: 'GW policy without a policy token' };
  const v = verifyPolicyToken(groupWide.policyToken, o.anchor, o.now);
  if (!v.ok) return { ok: false, reason: v.error.code, detail: v.error.message };
  const t = v.token;
  if (t.groupName !== o.groupName) return { ok: false, reason: 'WRONG_GROUP', detail: `token for ${t.groupName}` };
  if (o.heldEdition !== undefined && t.edition < o.heldEdition) {
    return { ok: false, reason: 'STALE_EDITION', detail: `edition ${t.edition} < held ${o.heldEdition}` };
  }
  if (!isAuthorizedGcks(t, o.gcksIdentity)) return { ok: false, reason: 'GCKS_NOT_AUTHORIZED', detail: o.gcksIdentity.value };
  if (o.self && !mayAct(t, o.self.identity, o.self.role)) {
    return { ok: false, reason: 'ROLE_NOT_ALLOWED', detail: `${o.self.identity.value} as ${o.self.role}` };
  }
  return { ok: true, token: t };
}
