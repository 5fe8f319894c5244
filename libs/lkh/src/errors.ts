/** Why the LKH tree or a member's key state refused an operation. Nothing was changed. */
export type LkhErrorCode =
  | 'BAD_CONFIG' // degree, key size or a parameter outside its range
  | 'TREE_FULL' // the join would exceed the Key ID space (layout.ts)
  | 'NOT_A_MEMBER' // a leave names a leaf that holds no member
  | 'DUPLICATE' // the same leaf appears twice in one batch
  | 'STALE_REKEY' // a rekey for an epoch the member already has (replay or reorder)
  | 'MISSED_REKEY' // the member missed a rekey (epoch or version gap): it must re-register
  | 'UNKNOWN_KEY_ID' // a Key ID that is not a node of the tree, or a wrap that fits no path
  | 'BAD_WRAP' // an encrypted key of the wrong length (truncated or padded)
  | 'INTEGRITY' // an unwrap failed RFC 5649's integrity check
  | 'EXCLUDED' // the member cannot derive the new root key: it is no longer in the group
  | 'BAD_SNAPSHOT' // a persisted tree is inconsistent or does not open under the given KEK
  | 'BUSY' // a parallel rekey of this tree is pending: no other rekey until it settles
  | 'WORKER_FAILED' // the wrap worker thread died or failed (wrap-engine.ts; the batch completes here)
  ;

const REREGISTER: ReadonlySet<LkhErrorCode> = new Set<LkhErrorCode>(['MISSED_REKEY', 'EXCLUDED']);

/** Typed error of @app/lkh. Never carries key bytes. */
export class LkhError extends Error {
  override readonly name = 'LkhError';
  /** True when the member's only way forward is to register again (RFC 9838 §2.4.1.2). */
  readonly mustReregister: boolean;
  constructor(
    readonly code: LkhErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.mustReregister = REREGISTER.has(code);
  }
}

export function isLkhError(e: unknown): e is LkhError {
  return e instanceof LkhError;
}
