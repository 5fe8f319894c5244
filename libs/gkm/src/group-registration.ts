import {
  GIKE_MAX_IDG_LENGTH,
  IdType,
  IkeExchange,
  IkePayload,
  KwaId,
  NOTIFY_REGISTRATION_FAILED,
  NotifyType,
  getNotify,
  getPayload,
  payload,
  type IdPayload,
  type IdgPayload,
  type IkePayloadEntry,
} from '@app/codec';
import type { Certificate, MemberRole, PolicyTokenContent, TokenIdentity, TrustAnchor } from '@app/crypto';
import { groupPayloads, groupSenderNotify, registrationRefusal, type GroupPayloadsOptions } from './gsa-builder.js';
import { deriveGskW } from './gsa-keys.js';
import { openGroupPayloads, type OpenedGroupPayloads } from './gsa-member.js';
import { groupSenderCount } from './group-sender-id.js';
import { acceptGroupPolicyToken, type GroupTokenRefusal } from './group-token.js';
import type { IkeAuthContext, IkeAuthDecision } from './ike-responder.js';
import type { IkeSa } from './ike-sa.js';
import type { IkeSaState } from './ike-types.js';

/**
 * G-IKEv2 registration on top of the IKE SA state machines (RFC 9838 §2.3): the GCKS side plugs
 * into IkeResponder (`authorize` for GSA_AUTH, `onRequest` for GSA_REGISTRATION and the GM's
 * leave notification), the GM side turns a GSA_AUTH response into SAs and a checked policy token.
 *
 * GCKS order (RFC 9838 §2.3.4): the IKE layer has authenticated the peer; the IDg names a group or
 * the answer is INVALID_GROUP_ID; the group's PAD rules and the requested role decide, or the answer
 * is AUTHORIZATION_FAILED; only then does the group admit the member (LKH leaf, Sender-IDs), which
 * may still refuse with REGISTRATION_FAILED (e.g. capacity). Refusals never reach `admit`, so they
 * change no group state; every outcome goes to `onOutcome` for the audit log.
 *
 * Key wrapping: RFC 9838 §4.5.4 wants the KWA negotiated in IKE_SA_INIT; the IKE proposals here carry
 * no KWA transform, so both sides use the configured `kwaId` (default KW_5649_256) for GSK_w.
 */

export interface GroupJoinRequest {
  group: IdgPayload;
  /** The authenticated IKE identity of the GM (IDi) and its certificate, if any. */
  id: IdPayload;
  identity: TokenIdentity;
  certificate?: Certificate;
  role: MemberRole;
  /** Sender-IDs asked for in GROUP_SENDER (0 when the GM is no sender). */
  senderIdsRequested: number;
}

/** Everything of GroupPayloadsOptions but the carrying SA's GSK_w and the registration flag. */
export type GroupAdmission = Omit<GroupPayloadsOptions, 'gskW' | 'registration'>;

/** A group's own reason to refuse a member (REGISTRATION_FAILED, with the reason in the audit). */
export interface GroupRefusal {
  refused: string;
}

export interface RegistrarGroup {
  readonly name: string;
  /** PAD rules and roles (RFC 5374 §4.1.3): may this member join in this role? */
  authorize(req: GroupJoinRequest): boolean;
  /** Joins the member and returns its policy and keys; undefined or a GroupRefusal refuses with REGISTRATION_FAILED. */
  admit(req: GroupJoinRequest): GroupAdmission | GroupRefusal | undefined;
  /** The GM left (GSA_REGISTRATION with NO_PROPOSAL_CHOSEN / REGISTRATION_FAILED, RFC 9838 §2.3.2). */
  leave?(req: Pick<GroupJoinRequest, 'group' | 'id' | 'identity'>): void;
}

export type RegistrationOutcome =
  | { admitted: true; exchangeType: number; group: string; identity: TokenIdentity; role: MemberRole }
  | { admitted: false; exchangeType: number; group?: string; identity: TokenIdentity; notify: number; reason: string }
  | { left: true; group: string; identity: TokenIdentity };

export interface RegistrarOptions {
  findGroup(idg: IdgPayload): RegistrarGroup | undefined;
  kwaId?: number;
  onOutcome?(o: RegistrationOutcome): void;
}

const DEFAULT_KWA = KwaId.KW_5649_256;

/** An IKE identity as text, for PAD rules and policy tokens. */
export function tokenIdentityOf(id: IdPayload, certificate?: Certificate): TokenIdentity {
  const d = id.data;
  switch (id.idType) {
    case IdType.ID_IPV4_ADDR:
      return { idType: id.idType, value: Array.from(d).join('.') };
    case IdType.ID_IPV6_ADDR: {
      const groups: string[] = [];
      for (let i = 0; i + 1 < d.length; i += 2) groups.push(((d[i]! << 8) | d[i + 1]!).toString(16));
      return { idType: id.idType, value: groups.join(':') };
    }
    case IdType.ID_DER_ASN1_DN:
      return { idType: id.idType, value: certificate?.x509.subject.replace(/\n/g, ', ') ?? Buffer.from(d).toString('hex') };
    default:
      return { idType: id.idType, value: new TextDecoder().decode(d) };
  }
}

/**
 * The GCKS's registration logic, to wire as `IkeResponder({ authExchangeTypes: [GSA_AUTH],
 * authorize: r.authorize, onEstablished: (sa) => { sa.onRequest = r.onRequest } })`.
 */
export function groupRegistrar(opts: RegistrarOptions): {
  authorize(ctx: IkeAuthContext): IkeAuthDecision;
  onRequest(exchangeType: number, request: IkePayloadEntry[], sa: IkeSa): IkePayloadEntry[] | undefined;
} {
  const kwaId = opts.kwaId ?? DEFAULT_KWA;

  const register = (exchangeType: number, request: IkePayloadEntry[], state: IkeSaState): { payloads: IkePayloadEntry[]; admitted: boolean } => {
    const identity = tokenIdentityOf(state.peerId, state.peerCertificate);
    const refuse = (notify: number, reason: string, group?: string) => {
      opts.onOutcome?.({ admitted: false, exchangeType, ...(group ? { group } : {}), identity, notify, reason });
      return { payloads: [registrationRefusal(notify)], admitted: false };
    };
    const idg = getPayload(request, IkePayload.IDg);
    if (!idg || idg.data.length === 0 || idg.data.length > GIKE_MAX_IDG_LENGTH) return refuse(NotifyType.INVALID_GROUP_ID, 'no IDg');
    const group = opts.findGroup(idg);
    if (!group) return refuse(NotifyType.INVALID_GROUP_ID, 'unknown group');
    const sender = getNotify(request, NotifyType.GROUP_SENDER);
    const senderIdsRequested = sender ? (groupSenderCount(sender.data) ?? -1) : 0;
    if (senderIdsRequested < 0) return refuse(NotifyType.INVALID_SYNTAX, 'malformed GROUP_SENDER', group.name);
    const req: GroupJoinRequest = {
      group: idg,
      id: state.peerId,
      identity,
      ...(state.peerCertificate ? { certificate: state.peerCertificate } : {}),
      role: sender ? 'speaker' : 'receiver',
      senderIdsRequested,
    };
    if (!group.authorize(req)) return refuse(NotifyType.AUTHORIZATION_FAILED, `not allowed as ${req.role}`, group.name);
    const admission = group.admit(req);
    if (!admission || 'refused' in admission) return refuse(NOTIFY_REGISTRATION_FAILED, admission?.refused ?? 'group refused the member', group.name);
    const gskW = deriveGskW(state.suite.prf, state.keys.skd, kwaId);
    const payloads = groupPayloads({ ...admission, gskW, registration: true });
    opts.onOutcome?.({ admitted: true, exchangeType, group: group.name, identity, role: req.role });
    return { payloads, admitted: true };
  };

  return {
    authorize(ctx) {
      if (ctx.exchangeType !== IkeExchange.GSA_AUTH) {
        return { payloads: [registrationRefusal(NotifyType.AUTHORIZATION_FAILED)], establish: false };
      }
      const r = register(ctx.exchangeType, ctx.request, ctx.sa.state);
      // A refused GM keeps no IKE SA: it has nothing to use it for (RFC 9838 §2.3.4).
      return { payloads: r.payloads, establish: r.admitted };
    },
    onRequest(exchangeType, request, sa) {
      if (exchangeType !== IkeExchange.GSA_REGISTRATION) return undefined;
      const leaving =
        getNotify(request, NotifyType.NO_PROPOSAL_CHOSEN) !== undefined || getNotify(request, NOTIFY_REGISTRATION_FAILED) !== undefined;
      if (leaving) {
        const idg = getPayload(request, IkePayload.IDg);
        const group = idg ? opts.findGroup(idg) : undefined;
        if (idg && group) {
          const identity = tokenIdentityOf(sa.state.peerId, sa.state.peerCertificate);
          group.leave?.({ group: idg, id: sa.state.peerId, identity });
          opts.onOutcome?.({ left: true, group: group.name, identity });
        }
        return []; // HDR, SK{} (RFC 9838 §2.3.2)
      }
      return register(exchangeType, request, sa.state).payloads;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// GM side
// ---------------------------------------------------------------------------------------------

/** The G-IKEv2 payloads a GM adds to its GSA_AUTH / GSA_REGISTRATION request (RFC 9838 §2.3.1). */
export function registrationRequestPayloads(group: IdgPayload, opts: { speaker?: boolean; senderIds?: number } = {}): IkePayloadEntry[] {
  const out: IkePayloadEntry[] = [payload(IkePayload.IDg, group)];
  if (opts.speaker) out.push(groupSenderNotify(opts.senderIds ?? 1));
  return out;
}

export interface OpenRegistrationOptions {
  kwaId?: number;
  /** GSA_AUTH / GSA_REGISTRATION (true) or GSA_INBAND_REKEY (false). */
  registration?: boolean;
  knownKeys?: ReadonlyMap<number, Uint8Array>;
  /** With a Group Owner anchor the token is required and checked (group-token.ts). */
  token?: {
    anchor: TrustAnchor;
    now: Date;
    groupName: string;
    heldEdition?: number;
    self?: { identity: TokenIdentity; role: MemberRole };
  };
}

export type RegistrationResult =
  | { ok: true; group: OpenedGroupPayloads; token?: PolicyTokenContent }
  | { ok: false; reason: 'REFUSED'; notify: number }
  | { ok: false; reason: 'BAD_PAYLOADS'; detail: string }
  | { ok: false; reason: GroupTokenRefusal; detail: string };

/**
 * Opens a GSA_AUTH (or GSA_REGISTRATION) response on the GM: a refusal notification, or the GSA and
 * KD opened with this IKE SA's GSK_w, and the policy token checked against the Group Owner anchor
 * with the GCKS's authenticated identity. Never throws for what the peer sent.
 */
export function openRegistrationResponse(response: IkePayloadEntry[], sa: IkeSaState, o: OpenRegistrationOptions = {}): RegistrationResult {
  for (const n of [NotifyType.INVALID_GROUP_ID, NotifyType.AUTHORIZATION_FAILED, NOTIFY_REGISTRATION_FAILED, NotifyType.NO_PROPOSAL_CHOSEN]) {
    if (getNotify(response, n)) return { ok: false, reason: 'REFUSED', notify: n };
  }
  let group: OpenedGroupPayloads;
  try {
    const gskW = deriveGskW(sa.suite.prf, sa.keys.skd, o.kwaId ?? DEFAULT_KWA);
    group = openGroupPayloads(response, { gskW, registration: o.registration ?? true, ...(o.knownKeys ? { knownKeys: o.knownKeys } : {}) });
  } catch (e) {
    return { ok: false, reason: 'BAD_PAYLOADS', detail: e instanceof Error ? e.message : 'unreadable' };
  }
  if (!o.token) return { ok: true, group };
  const t = acceptGroupPolicyToken(group.groupWide, { ...o.token, gcksIdentity: tokenIdentityOf(sa.peerId, sa.peerCertificate) });
  if (!t.ok) return { ok: false, reason: t.reason, detail: t.detail };
  return { ok: true, group, token: t.token };
}
