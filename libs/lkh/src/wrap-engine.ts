import { Worker } from 'node:worker_threads';
import { KEY_WRAP_AIV_CONSTANT, aesKeyWrapPad, keyWrapCipherName } from '@app/crypto';
import { LkhError } from './errors.js';
import { wrapWorkerSource, type WrapWorkerReply, type WrapWorkerRequest } from './wrap-worker.js';

/**
 * The RFC 5649 wraps one rekey needs, as LkhTree hands them to a wrap engine: the tree decides
 * WHICH keys are wrapped under WHICH KWKs; the engine only performs the wraps.
 *
 * Job i is `material[i*2k .. i*2k+k)` (the KWK) and `material[i*2k+k .. (i+1)*2k)` (the key to wrap),
 * k = keySize (every node key of a tree has the same size). Its wrapped form is k + 8 octets
 * (RFC 5649 §4.1 for a multiple of 8) at `i*(k+8)` of the engine's output. The material is key bytes:
 * the tree zeroes it after the rekey; an engine that copies it elsewhere zeroes its copy.
 */
export interface WrapBatch {
  readonly count: number;
  readonly keySize: number;
  readonly material: Uint8Array;
}

/** Performs a rekey's wraps: returns count * (keySize + 8) octets, job i at i * (keySize + 8). */
export interface WrapEngine {
  wrap(batch: WrapBatch): Buffer | Promise<Buffer>;
}

/** Octets of one wrapped key of `keySize` octets (a multiple of 8: RFC 5649 adds one semiblock). */
export const wrappedLength = (keySize: number): number => keySize + 8;

/** Wraps jobs [from, to) of `batch` on the calling thread into `out`. */
function wrapRangeSync(batch: WrapBatch, out: Uint8Array, from: number, to: number): void {
  const ks = batch.keySize;
  const m = batch.material;
  const w = wrappedLength(ks);
  for (let i = from; i < to; i++) {
    const at = 2 * ks * i;
    out.set(aesKeyWrapPad(m.subarray(at, at + ks), m.subarray(at + ks, at + 2 * ks)), w * i);
  }
}

/** Every wrap on the calling thread, one after another (the default engine). */
export function wrapBatchSync(batch: WrapBatch): Buffer {
  const out = Buffer.allocUnsafe(batch.count * wrappedLength(batch.keySize));
  wrapRangeSync(batch, out, 0, batch.count);
  return out;
}

export const SYNC_WRAP_ENGINE: WrapEngine = { wrap: wrapBatchSync };

export interface ParallelWrapEngineOptions {
  /**
   * Batches of fewer wraps than this run on the calling thread alone (default 512): a single leave
   * or join (a few dozen wraps) costs less than a round trip to the worker, and its latency counts.
   */
  threshold?: number;
  /** Jobs claimed at a time by each thread (default 32). */
  chunk?: number;
  /**
   * Whether the calling thread wraps too (default true: both threads claim jobs, the batch takes
   * about half as long). With false the worker does every job and the calling thread's event loop
   * stays free while it waits.
   */
  callerShare?: boolean;
  /**
   * Told when the worker failed (exited, errored or answered an error). The batch in progress is then
   * completed on the calling thread - the rekey goes out, byte-identical - and the next large batch
   * starts a new worker. Default: nothing.
   */
  onWorkerError?: (error: LkhError) => void;
  /**
   * After this many failures in a row (default 3) the engine stops starting workers and does every
   * batch on the calling thread (`workerDisabled`), so a worker that cannot run costs nothing more.
   */
  maxConsecutiveFailures?: number;
}

/** Bytes before the first job in the shared buffer: the claim counter (Int32), padded. */
const CONTROL_BYTES = 64;

interface Pending {
  readonly id: number;
  resolve(reply: WrapWorkerReply): void;
  reject(error: LkhError): void;
}

/**
 * Splits a large batch's wraps between the calling thread and one `node:worker_threads` worker
 * (wrap-worker.ts), started on first use and kept alive (unref'd while idle, so it never holds a
 * process open). The job material goes to the worker in a SharedArrayBuffer that both threads claim
 * chunks from (Atomics.add on one counter), so the split follows whichever thread is faster at the
 * moment; results are written back in place and the shared key bytes are zeroed as each job is done
 * and again, all of them, when the batch ends. One batch at a time: concurrent calls queue.
 *
 * Failure: if the worker dies or reports an error during a batch, the engine redoes the batch on
 * the calling thread (RFC 5649 wraps are deterministic, so the output is the same), reports an
 * LkhError('WORKER_FAILED') to `onWorkerError`, and counts it in `workerFailures`; after
 * `maxConsecutiveFailures` in a row it keeps to the calling thread.
 */
export class ParallelWrapEngine implements WrapEngine {
  readonly threshold: number;
  readonly chunk: number;
  readonly callerShare: boolean;
  private readonly onWorkerError: (error: LkhError) => void;
  private worker: Worker | undefined;
  /** Settles when the current worker is online (rejects if it exits first). */
  private online: Promise<void> = Promise.resolve();
  private sab: SharedArrayBuffer | undefined;
  private pending: Pending | undefined;
  private nextId = 1;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private failures = 0;
  private consecutiveFailures = 0;
  private readonly maxConsecutiveFailures: number;
  private workerJobs = 0;
  private parallelBatches = 0;

  constructor(options: ParallelWrapEngineOptions = {}) {
    const threshold = options.threshold ?? 512;
    const chunk = options.chunk ?? 32;
    if (!Number.isInteger(threshold) || threshold < 0) throw new LkhError('BAD_CONFIG', `threshold ${threshold}`);
    if (!Number.isInteger(chunk) || chunk < 1) throw new LkhError('BAD_CONFIG', `chunk ${chunk}`);
    this.threshold = threshold;
    this.chunk = chunk;
    this.callerShare = options.callerShare ?? true;
    this.onWorkerError = options.onWorkerError ?? (() => undefined);
    const maxFailures = options.maxConsecutiveFailures ?? 3;
    if (!Number.isInteger(maxFailures) || maxFailures < 1) throw new LkhError('BAD_CONFIG', `maxConsecutiveFailures ${maxFailures}`);
    this.maxConsecutiveFailures = maxFailures;
  }

  /** True once the worker failed `maxConsecutiveFailures` times in a row: all batches run here. */
  get workerDisabled(): boolean {
    return this.consecutiveFailures >= this.maxConsecutiveFailures;
  }

  /** Worker failures seen so far (each batch affected was completed on the calling thread). */
  get workerFailures(): number {
    return this.failures;
  }

  /** Batches split with the worker, and how many jobs the worker did in them. */
  get stats(): { readonly parallelBatches: number; readonly workerJobs: number; readonly workerFailures: number } {
    return { parallelBatches: this.parallelBatches, workerJobs: this.workerJobs, workerFailures: this.failures };
  }

  /** True when the shared buffer holds no non-zero byte (always so between batches). */
  sharedBufferIsClear(): boolean {
    return this.sab === undefined || new Uint8Array(this.sab).every((b) => b === 0);
  }

  /** Starts the worker now (otherwise the first large batch does) and waits until it runs. */
  async start(): Promise<void> {
    if (this.closed) throw new LkhError('BAD_CONFIG', 'the wrap engine is closed');
    const w = this.ensureWorker();
    w.ref(); // keep the process alive until it is online
    try {
      await this.online;
    } finally {
      if (!this.pending) w.unref();
    }
  }

  /** Stops the worker and wipes the shared buffer. Later batches run on the calling thread. */
  async close(): Promise<void> {
    this.closed = true;
    await this.queue.catch(() => undefined);
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
    if (this.sab) new Uint8Array(this.sab).fill(0);
    this.sab = undefined;
  }

  wrap(batch: WrapBatch): Buffer | Promise<Buffer> {
    if (batch.count < this.threshold || this.closed || this.workerDisabled) return wrapBatchSync(batch);
    const run = this.queue.then(() => this.wrapParallel(batch));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Testing aid and operations hook: ends the worker (as a crash would). A batch in progress then
   * completes on the calling thread; the next large batch starts a new worker.
   */
  async terminateWorker(): Promise<void> {
    const w = this.worker;
    if (w) await w.terminate();
  }

  private async wrapParallel(batch: WrapBatch): Promise<Buffer> {
    if (this.closed || this.workerDisabled) return wrapBatchSync(batch);
    const ks = batch.keySize;
    const w = wrappedLength(ks);
    const inputOffset = CONTROL_BYTES;
    const inputBytes = batch.count * 2 * ks;
    const outputOffset = inputOffset + inputBytes;
    const used = outputOffset + batch.count * w;
    if (!this.sab || this.sab.byteLength < used) {
      if (this.sab) new Uint8Array(this.sab).fill(0);
      this.sab = new SharedArrayBuffer(Math.max(used, 2 * (this.sab?.byteLength ?? 0)));
    }
    const sab = this.sab;
    const u8 = new Uint8Array(sab);
    const ctl = new Int32Array(sab, 0, 1);
    const cipher = keyWrapCipherName(ks);
    try {
      u8.set(batch.material.subarray(0, inputBytes), inputOffset);
      Atomics.store(ctl, 0, 0);
      const worker = this.ensureWorker();
      const id = this.nextId++;
      const reply = new Promise<WrapWorkerReply>((resolve, reject) => {
        this.pending = { id, resolve, reject };
      });
      reply.catch(() => undefined); // handled below; avoids an unhandled rejection while we work
      worker.ref();
      const req: WrapWorkerRequest = {
        id,
        sab,
        count: batch.count,
        keySize: ks,
        inputOffset,
        outputOffset,
        chunk: this.chunk,
        cipher,
        iv: KEY_WRAP_AIV_CONSTANT,
      };
      worker.postMessage(req);

      // The calling thread's share, claimed from the same counter as the worker's.
      const chunk = this.chunk;
      while (this.callerShare) {
        const start = Atomics.add(ctl, 0, chunk);
        if (start >= batch.count) break;
        const end = Math.min(batch.count, start + chunk);
        for (let i = start; i < end; i++) {
          const at = inputOffset + i * 2 * ks;
          u8.set(aesKeyWrapPad(u8.subarray(at, at + ks), u8.subarray(at + ks, at + 2 * ks)), outputOffset + i * w);
          u8.fill(0, at, at + 2 * ks);
        }
      }

      let done: number;
      try {
        const r = await reply;
        if (!r.ok) throw new LkhError('WORKER_FAILED', `the wrap worker reported: ${r.message}`);
        done = r.done;
      } catch (e) {
        const err = e instanceof LkhError ? e : new LkhError('WORKER_FAILED', 'the wrap worker failed');
        this.failures++;
        this.consecutiveFailures++;
        this.dropWorker();
        this.onWorkerError(err);
        // Redo everything here: the shared inputs may already be zeroed, the tree's material is not.
        return wrapBatchSync(batch);
      } finally {
        this.pending = undefined;
        this.worker?.unref();
      }
      this.parallelBatches++;
      this.consecutiveFailures = 0;
      this.workerJobs += done;
      return Buffer.from(u8.subarray(outputOffset, used));
    } finally {
      u8.fill(0, 0, used);
    }
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(wrapWorkerSource(), { eval: true });
    w.unref();
    this.online = new Promise<void>((resolve, reject) => {
      w.once('online', () => resolve());
      w.once('exit', () => reject(new LkhError('WORKER_FAILED', 'the wrap worker exited while starting')));
    });
    this.online.catch(() => undefined);
    const fail = (why: string) => {
      if (this.worker === w) this.worker = undefined;
      const p = this.pending;
      if (p) {
        this.pending = undefined;
        p.reject(new LkhError('WORKER_FAILED', why));
      }
    };
    w.on('message', (r: WrapWorkerReply) => {
      const p = this.pending;
      if (p && r.id === p.id) {
        this.pending = undefined;
        p.resolve(r);
      }
    });
    w.on('error', () => fail('the wrap worker threw'));
    w.on('messageerror', () => fail('a message from the wrap worker could not be read'));
    w.on('exit', (code) => fail(`the wrap worker exited (code ${code})`));
    this.worker = w;
    return w;
  }

  private dropWorker(): void {
    const w = this.worker;
    this.worker = undefined;
    if (w) void w.terminate();
  }
}
