/**
 * Sender-ID allocation for counter-mode Data-Security SAs with many senders (RFC 9838 §2.5.1,
 * RFC 6054 §3): a per-group counter starting at zero; every registration of a sender gets fresh
 * values (never reused with the same SAs); when the counter has no values left the GCKS must
 * exclude every GM and start over with new SAs before handing out more (RFC 9838 §2.5.1).
 */

export interface SenderIdPolicy {
  /** GWP_SENDER_ID_BITS: Sender-IDs are below 2^bits (RFC 9838 §4.4.3.1.2). */
  senderIdBits: number;
  /** Most Sender-IDs one registration receives, whatever it asks for. */
  maxPerRegistration: number;
}

export interface SenderIdState {
  /** The next unallocated value. */
  next: number;
}

export type SenderIdAllocation = { ok: true; ids: number[]; state: SenderIdState } | { ok: false; reason: 'EXHAUSTED' };

/** Largest Sender-ID field a 64-bit counter-mode IV leaves room for; more would leave no counter. */
const MAX_SENDER_ID_BITS = 32;

/**
 * Allocates Sender-IDs for one registration. `requested` is the GROUP_SENDER count (0 or absent:
 * one, RFC 9838 §2.5.1); at most `maxPerRegistration`, never more than requested. Gives fewer when
 * the space runs short and `EXHAUSTED` when none is left.
 */
export function allocateSenderIds(state: SenderIdState, policy: SenderIdPolicy, requested = 1): SenderIdAllocation {
  if (!Number.isInteger(policy.senderIdBits) || policy.senderIdBits < 1 || policy.senderIdBits > MAX_SENDER_ID_BITS) {
    throw new RangeError(`senderIdBits ${policy.senderIdBits} outside 1..${MAX_SENDER_ID_BITS}`);
  }
  if (!Number.isInteger(policy.maxPerRegistration) || policy.maxPerRegistration < 1) throw new RangeError('maxPerRegistration must be >= 1');
  const space = 2 ** policy.senderIdBits;
  const want = Math.min(Math.max(1, Number.isInteger(requested) ? requested : 1), policy.maxPerRegistration);
  const give = Math.min(want, space - state.next);
  if (give <= 0) return { ok: false, reason: 'EXHAUSTED' };
  const ids = Array.from({ length: give }, (_, i) => state.next + i);
  return { ok: true, ids, state: { next: state.next + give } };
}

/** The count a GROUP_SENDER notification requests: 4 octets, big-endian (RFC 9838 §4.7.4); undefined if malformed. */
export function groupSenderCount(data: Uint8Array): number | undefined {
  if (data.length !== 4) return undefined;
  return ((data[0]! << 24) >>> 0) + ((data[1]! << 16) | (data[2]! << 8) | data[3]!);
}
