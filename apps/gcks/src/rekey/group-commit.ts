import type { RawDb } from '../keys/raw-db.js';

/** What a GroupCommit has done (counters for the bench and the tests). */
export interface GroupCommitStats {
  /** Batches committed. */
  commits: number;
  /** Batches whose COMMIT failed and were rolled back. */
  rollbacks: number;
  /** Held actions (datagrams) released after a commit. */
  released: number;
  /** Held actions dropped because their batch did not commit. */
  dropped: number;
}

export interface GroupCommitOptions {
  /** Runs the flush after the current turn of the event loop; default setImmediate. */
  defer?: (fn: () => void) => void;
  /** Called after a failed COMMIT was rolled back (the caller restores its in-memory state). */
  onRollback?: (error: unknown) => void;
}

/**
 * Group commit for the registration path. The first registration of a turn of the event loop
 * opens one SQLite transaction (`begin`); every write of that turn runs inside it in a SAVEPOINT of
 * its own (better-sqlite3 nests `db.transaction` that way), so a failing registration rolls back only
 * itself. Everything that reveals keys — the IKE responses and the GSA_REKEY multicasts — is held
 * (`afterCommit`) until the batch's COMMIT succeeds and only then sent (`flush`, after the turn).
 * When COMMIT fails, the transaction is rolled back, the held datagrams are dropped (members and
 * IKE retransmit) and `onRollback` lets the owner read its state back from the database.
 *
 * So a member never receives keys that are not persisted, and one fsync-free WAL commit serves
 * every registration of the turn instead of one each.
 */
export class GroupCommit {
  readonly stats: GroupCommitStats = { commits: 0, rollbacks: 0, released: 0, dropped: 0 };
  private open = false;
  private held: (() => void)[] = [];
  /** Writes made once per batch, just before its COMMIT (the last one per key wins). */
  private readonly pending = new Map<string, () => void>();
  private readonly defer: (fn: () => void) => void;

  constructor(
    private readonly db: RawDb,
    private readonly opts: GroupCommitOptions = {},
  ) {
    this.defer = opts.defer ?? ((fn) => void setImmediate(fn));
  }

  /** A batch transaction is open. */
  get isOpen(): boolean {
    return this.open;
  }

  /**
   * Opens the batch unless one is open. False (nothing opened) when the connection is already in
   * somebody else's transaction: then the writes join that one and nothing is held, as before.
   */
  begin(): boolean {
    // SQLite rolls a transaction back by itself on some errors (SQLITE_FULL, IOERR, ...): that batch
    // is lost, so it is ended as a failed one before a new one starts.
    if (this.open && !this.db.inTransaction) this.flush();
    if (this.open) return true;
    if (this.db.inTransaction) return false;
    this.db.exec('BEGIN');
    this.open = true;
    this.defer(() => this.flush());
    return true;
  }

  /** Runs `fn` once the open batch has committed (at once when none is open); dropped on rollback. */
  afterCommit(fn: () => void): void {
    if (this.open) this.held.push(fn);
    else fn();
  }

  /**
   * A write whose latest value is all that must be stored (a group's counter row): with a batch
   * open it runs once, inside the transaction just before COMMIT, reading the state then; with
   * none, at once. Dropped with the batch on rollback.
   */
  writeOnce(key: string, write: () => void): void {
    if (this.open) this.pending.set(key, write);
    else write();
  }

  /** Commits the open batch and releases what it held. False when the commit failed. */
  flush(): boolean {
    if (!this.open) return true;
    const held = this.held;
    this.held = [];
    try {
      if (!this.db.inTransaction) throw new Error('the batch transaction was rolled back by SQLite');
      for (const write of this.pending.values()) write();
      this.pending.clear();
      this.open = false;
      this.commit();
    } catch (e) {
      this.open = false;
      this.pending.clear();
      try {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
      } catch {
        // SQLite may have rolled back already (I/O errors do); nothing more to undo.
      }
      this.stats.rollbacks++;
      this.stats.dropped += held.length;
      this.opts.onRollback?.(e);
      return false;
    }
    this.stats.commits++;
    this.stats.released += held.length;
    for (const fn of held) fn();
    return true;
  }

  /** The COMMIT itself (one method, so a test can make it fail). */
  protected commit(): void {
    this.db.exec('COMMIT');
  }
}
