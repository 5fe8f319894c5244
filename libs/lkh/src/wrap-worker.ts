import type { createCipheriv as CreateCipheriv } from 'node:crypto';
import type { MessagePort } from 'node:worker_threads';

/**
 * The body of the wrap worker thread that ParallelWrapEngine (wrap-engine.ts) keeps alive.
 *
 * It is one self-contained function - it refers to nothing outside its own body, only to what it is
 * given - so that the engine can start it with `new Worker(wrapWorkerSource(), { eval: true })`.
 * That runs the same code whether this library is loaded from its TypeScript source (vitest, where
 * a worker could not load a .ts file) or from the compiled `dist/` JavaScript, with no file to
 * resolve next to either. Keep it so: no imports used at run time, no helpers outside it.
 *
 * Protocol: the engine posts `WrapWorkerRequest`s. Each names a SharedArrayBuffer laid out as in
 * wrap-engine.ts (a claim counter, then `count` jobs of KWK || key, then the outputs). The worker
 * claims chunks of jobs with Atomics.add on the counter - the calling thread claims from the same
 * counter, so the faster thread does more - wraps each job with node:crypto's RFC 5649 cipher,
 * writes the wrapped key in place, zeroes the job's key bytes at once, and answers
 * `WrapWorkerReply` with the number of jobs it did. It keeps nothing between requests.
 */
export interface WrapWorkerRequest {
  readonly id: number;
  readonly sab: SharedArrayBuffer;
  readonly count: number;
  readonly keySize: number;
  /** Offset of the first job's KWK, and of the first output, in the SharedArrayBuffer. */
  readonly inputOffset: number;
  readonly outputOffset: number;
  readonly chunk: number;
  /** node:crypto cipher name and IV (RFC 5649 AIV constant) from @app/crypto. */
  readonly cipher: string;
  readonly iv: readonly number[];
}

export type WrapWorkerReply =
  | { readonly id: number; readonly ok: true; readonly done: number }
  | { readonly id: number; readonly ok: false; readonly message: string };

export interface WrapWorkerDeps {
  readonly port: MessagePort;
  readonly createCipheriv: typeof CreateCipheriv;
}

export function wrapWorkerMain(deps: WrapWorkerDeps): void {
  const port = deps.port;
  const createCipheriv = deps.createCipheriv;
  port.on('message', (req: WrapWorkerRequest) => {
    let done = 0;
    try {
      const u8 = new Uint8Array(req.sab);
      const ctl = new Int32Array(req.sab, 0, 1);
      const ks = req.keySize;
      const jobBytes = 2 * ks;
      const outBytes = ks + 8;
      const iv = Buffer.from(req.iv);
      for (;;) {
        const start = Atomics.add(ctl, 0, req.chunk);
        if (start >= req.count) break;
        const end = Math.min(req.count, start + req.chunk);
        for (let i = start; i < end; i++) {
          const at = req.inputOffset + i * jobBytes;
          const out = createCipheriv(req.cipher, u8.subarray(at, at + ks), iv).update(u8.subarray(at + ks, at + jobBytes));
          if (out.length !== outBytes) throw new Error(`wrap produced ${out.length} octets`);
          u8.set(out, req.outputOffset + i * outBytes);
          u8.fill(0, at, at + jobBytes);
          done++;
        }
      }
      port.postMessage({ id: req.id, ok: true, done } satisfies WrapWorkerReply);
    } catch (e) {
      // Never echo key bytes: the message is node:crypto's or ours, neither carries any.
      port.postMessage({ id: req.id, ok: false, message: e instanceof Error ? e.message : 'wrap failed' } satisfies WrapWorkerReply);
    }
  });
}

/** The script a worker thread runs (eval mode, CommonJS `require`): wrapWorkerMain on its parentPort. */
export function wrapWorkerSource(): string {
  return [
    "'use strict';",
    "const { parentPort } = require('node:worker_threads');",
    "const { createCipheriv } = require('node:crypto');",
    `(${wrapWorkerMain.toString()})({ port: parentPort, createCipheriv });`,
  ].join('\n');
}
