/**
 * When the GCKS rekeys a group, and what one rekey event looks like on the wire and in time
 * (RFC 9838 §2.4.1.3, §3.2.1; RFC 5374 §4.2.1 leading/trailing edge rollover). Pure functions over
 * a small serialisable state: the caller injects `now` (ms) and persists the returned state, so a
 * restarted GCKS continues with the same Message IDs.
 *
 * - TEKs and the KEK are rekeyed `marginAtds` ATDs before they expire (REFERENCES: lifetime − 4×ATD).
 * - A leave is rekeyed at once or batched (one rekey per interval covers every leave in it).
 * - With forward access control a membership change is two messages: first the new KEK (LKH
 *   updates, under the current Rekey SA), then the new TEKs under the new Rekey SA (RFC 9838 §3.2.1).
 * - Message IDs grow by one per message on a Rekey SA; the first message on a new Rekey SA has ID 0
 *   (RFC 9838 §2.4.1.3). Every message is sent `transmissions` times, bit-identical, a short
 *   interval apart.
 * - Speakers move to the leading-edge TEK ATD after the rekey; receivers delete the trailing edge DTD
 *   after that (RFC 5374 §4.2.1, RFC 9838 §4.4.3.1.1).
 */

export interface GroupRekeyPolicy {
  atdSeconds: number;
  dtdSeconds: number;
  tekLifetimeSeconds: number;
  kekLifetimeSeconds: number;
  /** Rekey this many ATDs before a TEK/KEK expires (default 4). */
  marginAtds?: number;
  leave: { mode: 'immediate' } | { mode: 'batched'; intervalSeconds: number };
  /** Copies of each GSA_REKEY (>= 1) and the spacing between copies. */
  transmissions: number;
  retransmitIntervalMs: number;
  /** Split a membership rekey into KEK-then-TEK messages (RFC 9838 §3.2.1). Default true. */
  forwardAccessControl?: boolean;
}

export interface GroupRekeyState {
  /** When the current TEKs and the current KEK were installed (ms). */
  tekSince: number;
  kekSince: number;
  /** Last Message ID sent on the current Rekey SA; -1 before the first. */
  lastMessageId: number;
  /** Leaves not yet covered by a rekey, and when the first of them happened. */
  pendingLeaves: number;
  firstPendingLeaveAt?: number;
}

/**
 * Why a rekey is sent. 'speakers' (A.2 per-speaker SAs, RFC 5374 Appendix A.2) announces the SAs of
 * speakers that joined, and deletes those of speakers that left, within a short batching window; it
 * replaces no key the group already holds.
 */
export type RekeyReason = 'tek-expiry' | 'kek-expiry' | 'leave' | 'forced' | 'speakers';

export interface RekeyMessagePlan {
  /** Which Rekey SA carries it: the one members hold now, or the one the previous message installed. */
  rekeySa: 'current' | 'new';
  messageId: number;
  /** The message installs a new KEK (Rekey SA, LKH updates) and/or new TEKs. */
  newKek: boolean;
  newTeks: boolean;
  /** Send times of the bit-identical copies (ms). */
  sendAt: number[];
}

export interface RekeyPlan {
  reason: RekeyReason;
  messages: RekeyMessagePlan[];
  /** Speakers start sending on the new TEKs (leading edge) at this time. */
  speakersSwitchAt?: number;
  /** Receivers delete the old TEKs (trailing edge) at this time. */
  trailingDeleteAt?: number;
  next: GroupRekeyState;
}

const MS = 1000;
const MAX_MESSAGE_ID = 0xffff_ffff;
/** Defaults worth matching (REFERENCES): ATD 10–900 s, KEK lifetime 300–86400 s, lifetimes >= 10×ATD. */
const ATD_MIN = 10;
const ATD_MAX = 900;
const KEK_MIN = 300;
const KEK_MAX = 86_400;
const MAX_TRANSMISSIONS = 10;

const margin = (p: GroupRekeyPolicy) => (p.marginAtds ?? 4) * p.atdSeconds;

/** Every problem with a policy, in one list (empty = valid). */
export function validateRekeyPolicy(p: GroupRekeyPolicy): string[] {
  const errors: string[] = [];
  const int = (v: number) => Number.isInteger(v) && v >= 0;
  if (!int(p.atdSeconds) || p.atdSeconds < ATD_MIN || p.atdSeconds > ATD_MAX) errors.push(`atdSeconds must be ${ATD_MIN}..${ATD_MAX}`);
  if (!int(p.dtdSeconds) || p.dtdSeconds > 0xffff) errors.push('dtdSeconds must be 0..65535 (GWP_DTD is 16 bits)');
  if (!int(p.tekLifetimeSeconds) || p.tekLifetimeSeconds < 10 * p.atdSeconds) errors.push('tekLifetimeSeconds must be at least 10 × ATD');
  if (!int(p.kekLifetimeSeconds) || p.kekLifetimeSeconds < KEK_MIN || p.kekLifetimeSeconds > KEK_MAX) {
    errors.push(`kekLifetimeSeconds must be ${KEK_MIN}..${KEK_MAX}`);
  }
  if (p.marginAtds !== undefined && (!int(p.marginAtds) || p.marginAtds < 1)) errors.push('marginAtds must be a positive integer');
  if (!int(p.transmissions) || p.transmissions < 1 || p.transmissions > MAX_TRANSMISSIONS) errors.push(`transmissions must be 1..${MAX_TRANSMISSIONS}`);
  if (!int(p.retransmitIntervalMs)) errors.push('retransmitIntervalMs must be a non-negative integer');
  if (p.leave.mode === 'batched' && (!int(p.leave.intervalSeconds) || p.leave.intervalSeconds < 1)) errors.push('leave.intervalSeconds must be >= 1');
  // The rollover must finish before the old TEK dies: rekey at expiry − margin, last copy sent,
  // speakers switch ATD later, receivers drop the trailing edge DTD after that.
  const window = (p.transmissions - 1) * p.retransmitIntervalMs + (p.atdSeconds + p.dtdSeconds) * MS;
  if (margin(p) * MS < window) errors.push('marginAtds × ATD must cover retransmissions + ATD + DTD');
  if (margin(p) >= Math.min(p.tekLifetimeSeconds, p.kekLifetimeSeconds)) errors.push('the rekey margin must be shorter than the lifetimes');
  return errors;
}

export function initialRekeyState(now: number, lastMessageId = -1): GroupRekeyState {
  return { tekSince: now, kekSince: now, lastMessageId, pendingLeaves: 0 };
}

/** Records a member leaving (or evicted); the next due time may move earlier. */
export function onMemberLeft(s: GroupRekeyState, now: number): GroupRekeyState {
  return { ...s, pendingLeaves: s.pendingLeaves + 1, firstPendingLeaveAt: s.firstPendingLeaveAt ?? now };
}

/** The next rekey the GCKS owes the group, by time, with its reason (earliest wins; ties: leave, KEK, TEK). */
export function nextRekeyDue(s: GroupRekeyState, p: GroupRekeyPolicy): { at: number; reason: RekeyReason } {
  const candidates: { at: number; reason: RekeyReason }[] = [];
  if (s.pendingLeaves > 0) {
    const first = s.firstPendingLeaveAt ?? s.tekSince;
    candidates.push({ at: p.leave.mode === 'immediate' ? first : first + p.leave.intervalSeconds * MS, reason: 'leave' });
  }
  candidates.push({ at: s.kekSince + (p.kekLifetimeSeconds - margin(p)) * MS, reason: 'kek-expiry' });
  candidates.push({ at: s.tekSince + (p.tekLifetimeSeconds - margin(p)) * MS, reason: 'tek-expiry' });
  return candidates.reduce((a, b) => (b.at < a.at ? b : a));
}

/**
 * Plans one rekey event at `now`. Throws RangeError when the Rekey SA's Message IDs are exhausted
 * (the caller must then start a new Rekey SA through re-registration of the group).
 */
export function planRekey(s: GroupRekeyState, p: GroupRekeyPolicy, now: number, reason: RekeyReason): RekeyPlan {
  // Any rekey while leaves are pending covers them: new TEKs under a KEK a departed member still
  // holds would hand it the new traffic keys.
  const membership = reason === 'leave' || s.pendingLeaves > 0;
  const newKek = membership || reason === 'kek-expiry' || reason === 'forced';
  const newTeks = reason !== 'kek-expiry' || membership;
  const copies = (start: number) => Array.from({ length: p.transmissions }, (_, i) => start + i * p.retransmitIntervalMs);
  const first = s.lastMessageId + 1;
  if (first > MAX_MESSAGE_ID) throw new RangeError('Message IDs of the Rekey SA are exhausted');

  const messages: RekeyMessagePlan[] = [];
  const split = newKek && newTeks && membership && (p.forwardAccessControl ?? true);
  if (split) {
    messages.push({ rekeySa: 'current', messageId: first, newKek: true, newTeks: false, sendAt: copies(now) });
    // The TEK message follows the KEK copies, on the new Rekey SA, whose Message IDs start at 0.
    const after = now + p.transmissions * p.retransmitIntervalMs;
    messages.push({ rekeySa: 'new', messageId: 0, newKek: false, newTeks: true, sendAt: copies(after) });
  } else {
    messages.push({ rekeySa: 'current', messageId: first, newKek, newTeks, sendAt: copies(now) });
  }
  const last = messages[messages.length - 1]!;
  const tekSentAt = last.newTeks ? last.sendAt[0]! : undefined;
  const next: GroupRekeyState = {
    tekSince: tekSentAt ?? s.tekSince,
    kekSince: newKek ? now : s.kekSince,
    lastMessageId: newKek ? (split ? 0 : -1) : first,
    pendingLeaves: membership ? 0 : s.pendingLeaves,
    ...(membership || s.firstPendingLeaveAt === undefined ? {} : { firstPendingLeaveAt: s.firstPendingLeaveAt }),
  };
  return {
    reason,
    messages,
    ...(tekSentAt !== undefined
      ? { speakersSwitchAt: tekSentAt + p.atdSeconds * MS, trailingDeleteAt: tekSentAt + (p.atdSeconds + p.dtdSeconds) * MS }
      : {}),
    next,
  };
}
