import { once } from 'node:events';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { Injectable, Logger, Module, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { rawDb, type RawDb } from '../keys/raw-db.js';

/** SQLite's own default for `wal_autocheckpoint` (pages), restored whenever the worker is not running. */
export const SQLITE_DEFAULT_AUTOCHECKPOINT = 1000;

/** What the checkpoint thread has done (its last report). */
export interface WalCheckpointStats {
  /** PASSIVE checkpoints run. */
  runs: number;
  /**
   * WAL frames copied into the database file, from SQLite's per-WAL counts (a WAL restarted and
   * refilled past its previous count between two runs is under-counted: a figure, not a ledger).
   */
  frames: number;
  /** Checkpoints that could not copy every frame (a reader or the writer was in the way). */
  busy: number;
  /** Checkpoints that failed (the error is logged). */
  errors: number;
}

export interface WalCheckpointerOptions {
  /** How often the thread checkpoints. Default 250 ms. */
  intervalMs?: number;
  /** Where a failed checkpoint or a dead thread is reported (never key material: SQLite's message). */
  warn?: (message: string) => void;
}

/**
 * The body of the checkpoint thread. Self-contained (it is passed as source text to
 * `new Worker(..., { eval: true })`): it opens its own better-sqlite3 connection to the database
 * file and runs `PRAGMA wal_checkpoint(PASSIVE)` on a timer. A PASSIVE checkpoint never blocks the
 * writer and never waits for one; frames it cannot copy yet are copied by a later run.
 */
function checkpointThread(): void {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { parentPort, workerData } = require('node:worker_threads') as typeof import('node:worker_threads');
  const Database = require(workerData.driver as string) as new (file: string, o: object) => {
    pragma(sql: string): unknown;
    close(): void;
  };
  const db = new Database(workerData.file as string, { fileMustExist: true });
  const stats = { runs: 0, frames: 0, busy: 0, errors: 0 };
  // `checkpointed` counts every frame of the current WAL copied so far; it starts again from 0 when
  // the writer restarts the WAL (after a complete checkpoint). Only the growth is new work.
  let done = 0;
  const timer = setInterval(() => run(), workerData.intervalMs as number);
  const end = () => {
    clearInterval(timer);
    db.close();
    parentPort!.close();
  };
  const run = () => {
    try {
      const [r] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
      stats.runs++;
      if (!r) return;
      const fresh = r.checkpointed >= done ? r.checkpointed - done : r.checkpointed;
      done = r.checkpointed;
      const partial = r.busy !== 0 || r.checkpointed < r.log;
      if (partial) stats.busy++;
      stats.frames += fresh;
      // Only news crosses to the event loop.
      if (fresh > 0 || partial) parentPort!.postMessage({ stats });
    } catch (e) {
      // PASSIVE never waits for locks, so an error is the file's (I/O, corruption): this thread
      // ends, and the exit gives checkpoints back to the main connection.
      stats.errors++;
      parentPort!.postMessage({ stats, error: e instanceof Error ? e.message : String(e) });
      end();
    }
  };
  parentPort!.on('message', (m: unknown) => {
    if (m !== 'stop') return;
    run();
    end();
  });
}

/**
 * Moves SQLite's WAL checkpoints off the event loop. In WAL mode with `synchronous = NORMAL` a
 * commit only appends to the WAL; the fsyncs come with checkpoints, which SQLite runs by default
 * inside whichever commit pushes the WAL past 1,000 pages: on the GCKS's one connection, that is
 * a registration's group commit, and every member in flight waits for two fsyncs.
 *
 * Here the main connection's automatic checkpoints are switched off (`wal_autocheckpoint = 0`)
 * while a worker thread with a connection of its own checkpoints every `intervalMs`. If the
 * thread dies, automatic checkpoints come back at once, so the WAL never grows without bound.
 */
export class WalCheckpointer {
  private worker?: Worker;
  private stopping = false;
  private last: WalCheckpointStats = { runs: 0, frames: 0, busy: 0, errors: 0 };

  constructor(
    private readonly db: RawDb,
    private readonly opts: WalCheckpointerOptions = {},
  ) {}

  /** The thread's last report. */
  get stats(): WalCheckpointStats {
    return this.last;
  }

  /** The thread is running (automatic checkpoints are off). */
  get running(): boolean {
    return this.worker !== undefined;
  }

  /** Starts the thread; nothing for a database not in WAL mode (in-memory ones never are). */
  start(): void {
    if (this.worker) return;
    const mode = this.db.pragma('journal_mode') as { journal_mode: string }[];
    if (mode[0]?.journal_mode !== 'wal') return;
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(`(${checkpointThread.toString()})()`, {
      eval: true,
      workerData: { driver, file: this.db.name, intervalMs: this.opts.intervalMs ?? 250 },
    });
    // The thread must not keep a process alive that is otherwise done.
    worker.unref();
    worker.on('message', (m: { stats?: WalCheckpointStats; error?: string }) => {
      if (m.stats) this.last = { ...m.stats };
      if (m.error) this.opts.warn?.(`WAL checkpoint failed: ${m.error}`);
    });
    worker.on('error', (e) => this.opts.warn?.(`WAL checkpoint thread failed: ${e.message}`));
    worker.on('exit', () => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      if (!this.stopping) this.opts.warn?.('WAL checkpoint thread ended; the database checkpoints itself again');
      this.restoreAutocheckpoint();
    });
    this.worker = worker;
    this.stopping = false;
    this.db.pragma('wal_autocheckpoint = 0');
  }

  /** Runs a last checkpoint in the thread, ends it and gives checkpoints back to the connection. */
  async stop(timeoutMs = 5000): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    this.stopping = true;
    // The 'exit' listener of `start` forgets the thread and restores automatic checkpoints.
    const exited = once(worker, 'exit');
    worker.postMessage('stop');
    const timer = setTimeout(() => void worker.terminate(), timeoutMs);
    await exited;
    clearTimeout(timer);
  }

  private restoreAutocheckpoint(): void {
    try {
      this.db.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_AUTOCHECKPOINT}`);
    } catch {
      // The connection is already closed: nothing left to checkpoint on it.
    }
  }
}

/**
 * The GCKS's checkpoint thread for its database file, from bootstrap until shutdown (stopped in
 * `beforeApplicationShutdown`, before TypeORM closes the main connection).
 */
@Injectable()
export class WalCheckpointService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Database');
  readonly checkpointer: WalCheckpointer;

  constructor(ds: DataSource) {
    this.checkpointer = new WalCheckpointer(rawDb(ds), { warn: (m) => this.logger.warn(m) });
  }

  onApplicationBootstrap(): void {
    this.checkpointer.start();
  }

  beforeApplicationShutdown(): Promise<void> {
    return this.checkpointer.stop();
  }
}

@Module({ providers: [WalCheckpointService], exports: [WalCheckpointService] })
export class DatabaseMaintenanceModule {}
