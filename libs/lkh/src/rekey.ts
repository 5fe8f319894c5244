import type { WrappedKey } from '@app/codec';

/**
 * One LKH rekey as the GCKS multicasts it: every replaced key, each wrapped (RFC 5649) under a key
 * that the receivers who need it already hold or obtain earlier in the same rekey. Wraps are in
 * dependency order (children before parents), though members do not rely on it.
 *
 * On the wire each wrap is an RFC 9838 §4.5.4 Wrapped Key (SA_KEY / WRAP_KEY attribute value);
 * `epoch` maps to the GSA_REKEY message ordering and `rootKeyId` names the new group KEK.
 */
export interface LkhRekey {
  /** The tree's epoch after this rekey; each rekey increments it by one. */
  readonly epoch: number;
  /** Key ID of the new root key (the group KEK) this rekey delivers. */
  readonly rootKeyId: number;
  readonly wraps: readonly WrappedKey[];
}

/** A member admitted by a rekey. `leafKey` goes to it over the registration's unicast SA. */
export interface JoinedMember {
  readonly leaf: number;
  readonly leafKeyId: number;
  readonly leafKey: Buffer;
  /** The wraps of the rekey that carry its path keys (for the registration's member key bag). */
  readonly pathWraps: readonly WrappedKey[];
}

/** Nodes whose key or version a rekey changed, for persistence (store.ts). */
export interface LkhChangeSet {
  readonly epoch: number;
  readonly height: number;
  readonly nodes: readonly number[];
}

export interface RekeyResult {
  readonly rekey: LkhRekey;
  /** In the order the joins were requested. */
  readonly joined: readonly JoinedMember[];
  readonly left: readonly number[];
  readonly changes: LkhChangeSet;
}

/** A batch collected over a rekey interval: leaves by leaf index, and a number of joins. */
export interface RekeyBatch {
  readonly leaves?: readonly number[];
  readonly joins?: number;
}
