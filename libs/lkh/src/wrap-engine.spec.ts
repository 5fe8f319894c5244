import { randomBytes } from 'node:crypto';
import { createCipheriv } from 'node:crypto';
import { MessageChannel } from 'node:worker_threads';
import { KEY_WRAP_AIV_CONSTANT, aesKeyUnwrapPad, aesKeyWrapPad, keyWrapCipherName } from '@app/crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { LkhError } from './errors.js';
import { ParallelWrapEngine, SYNC_WRAP_ENGINE, wrapBatchSync, wrappedLength, type WrapBatch } from './wrap-engine.js';
import { wrapWorkerMain, wrapWorkerSource, type WrapWorkerReply, type WrapWorkerRequest } from './wrap-worker.js';

function batchOf(count: number, keySize: number): WrapBatch {
  return { count, keySize, material: randomBytes(count * 2 * keySize) };
}

/** Each job's output, checked against an independent unwrap of the same job. */
function expectWrapsOpen(batch: WrapBatch, out: Uint8Array): void {
  const ks = batch.keySize;
  const w = wrappedLength(ks);
  expect(out.length).toBe(batch.count * w);
  for (let i = 0; i < batch.count; i++) {
    const kwk = batch.material.subarray(2 * ks * i, 2 * ks * i + ks);
    const key = batch.material.subarray(2 * ks * i + ks, 2 * ks * (i + 1));
    expect(aesKeyUnwrapPad(kwk, out.subarray(w * i, w * (i + 1))).equals(Buffer.from(key))).toBe(true);
  }
}

describe('wrapBatchSync', () => {
  it.each([16, 24, 32])('wraps every job of %i-octet keys under its own KWK, as aesKeyWrapPad does', (ks) => {
    const batch = batchOf(40, ks);
    const sut = wrapBatchSync(batch);
    expectWrapsOpen(batch, sut);
    const kwk = batch.material.subarray(2 * ks * 7, 2 * ks * 7 + ks);
    const key = batch.material.subarray(2 * ks * 7 + ks, 2 * ks * 8);
    expect(sut.subarray(7 * (ks + 8), 8 * (ks + 8)).equals(aesKeyWrapPad(kwk, key))).toBe(true);
    expect(Buffer.from(SYNC_WRAP_ENGINE.wrap(batch) as Buffer).equals(sut)).toBe(true);
  });
});

describe('wrapWorkerMain (the worker body, run here on a MessageChannel)', () => {
  it('does every unclaimed job in place, zeroes their key bytes and reports how many it did', async () => {
    const { port1, port2 } = new MessageChannel();
    wrapWorkerMain({ port: port2, createCipheriv });
    const ks = 16;
    const count = 50;
    const batch = batchOf(count, ks);
    const inputOffset = 64;
    const outputOffset = inputOffset + count * 2 * ks;
    const sab = new SharedArrayBuffer(outputOffset + count * (ks + 8));
    const u8 = Buffer.from(sab);
    u8.set(batch.material, inputOffset);
    // Jobs 0..9 are already claimed (as if by the calling thread): the worker starts at 10.
    new Int32Array(sab, 0, 1)[0] = 10;
    const req: WrapWorkerRequest = { id: 7, sab, count, keySize: ks, inputOffset, outputOffset, chunk: 4, cipher: keyWrapCipherName(ks), iv: KEY_WRAP_AIV_CONSTANT };
    const reply = new Promise<WrapWorkerReply>((resolve) => port1.once('message', resolve));
    port1.postMessage(req);
    const sut = await reply;
    port1.close();
    expect(sut).toEqual({ id: 7, ok: true, done: 40 });
    const expected = wrapBatchSync(batch);
    const w = ks + 8;
    expect(u8.subarray(outputOffset + 10 * w, outputOffset + count * w).equals(expected.subarray(10 * w))).toBe(true);
    expect(u8.subarray(outputOffset, outputOffset + 10 * w).every((b) => b === 0)).toBe(true);
    expect(u8.subarray(inputOffset + 10 * 2 * ks, outputOffset).every((b) => b === 0)).toBe(true);
    expect(u8.subarray(inputOffset, inputOffset + 10 * 2 * ks).equals(batch.material.subarray(0, 10 * 2 * ks))).toBe(true);
  });

  it('answers an error (without key bytes) for a cipher that does not exist', async () => {
    const { port1, port2 } = new MessageChannel();
    wrapWorkerMain({ port: port2, createCipheriv });
    const sab = new SharedArrayBuffer(64 + 2 * 16 + 24);
    const req: WrapWorkerRequest = { id: 1, sab, count: 1, keySize: 16, inputOffset: 64, outputOffset: 96, chunk: 1, cipher: 'no-such-cipher', iv: KEY_WRAP_AIV_CONSTANT };
    const reply = new Promise<WrapWorkerReply>((resolve) => port1.once('message', resolve));
    port1.postMessage(req);
    const sut = await reply;
    port1.close();
    expect(sut.ok).toBe(false);
  });

  it('is self-contained source a worker can evaluate', () => {
    const sut = wrapWorkerSource();
    expect(sut).toContain("require('node:crypto')");
    expect(() => new Function('require', sut)).not.toThrow();
  });
});

describe('ParallelWrapEngine', () => {
  const engines: ParallelWrapEngine[] = [];
  const make = (o: ConstructorParameters<typeof ParallelWrapEngine>[0]) => {
    const e = new ParallelWrapEngine(o);
    engines.push(e);
    return e;
  };
  afterAll(async () => {
    for (const e of engines) await e.close();
  });

  it('gives the same bytes as the calling thread alone, when the worker does every job', async () => {
    const sut = make({ threshold: 1, callerShare: false, chunk: 8 });
    for (const ks of [16, 24, 32]) {
      const batch = batchOf(300, ks);
      const out = await sut.wrap(batch);
      expect(out.equals(wrapBatchSync(batch))).toBe(true);
    }
    expect(sut.stats).toEqual({ parallelBatches: 3, workerJobs: 900, workerFailures: 0 });
  });

  it('gives the same bytes when both threads claim jobs, and wipes its shared copy of the keys', async () => {
    const sut = make({ threshold: 100, chunk: 4 });
    await sut.start();
    await sut.start(); // already online: resolves at once
    for (let r = 0; r < 5; r++) {
      const batch = batchOf(2000, 16);
      const copy = Buffer.from(batch.material);
      const out = await sut.wrap(batch);
      expect(out.equals(wrapBatchSync(batch))).toBe(true);
      expect(Buffer.from(batch.material).equals(copy)).toBe(true); // the caller's material is the caller's
      expect(sut.sharedBufferIsClear()).toBe(true);
    }
    expect(sut.stats.parallelBatches).toBe(5);
    expect(sut.stats.workerFailures).toBe(0);
  });

  it('does batches under its threshold on the calling thread, synchronously', () => {
    const sut = make({ threshold: 100 });
    const batch = batchOf(99, 16);
    const out = sut.wrap(batch);
    expect(Buffer.isBuffer(out)).toBe(true);
    expectWrapsOpen(batch, out as Buffer);
    expect(sut.stats.parallelBatches).toBe(0);
  });

  it('completes a batch on the calling thread when the worker dies, reports WORKER_FAILED, then starts a new worker', async () => {
    const errors: LkhError[] = [];
    const sut = make({ threshold: 1, callerShare: false, onWorkerError: (e) => errors.push(e) });
    await sut.start();
    const batch = batchOf(500, 16);
    void sut.terminateWorker();
    const out = await sut.wrap(batch);
    expect(out.equals(wrapBatchSync(batch))).toBe(true);
    expect(errors.map((e) => e.code)).toEqual(['WORKER_FAILED']);
    expect(sut.sharedBufferIsClear()).toBe(true);
    expect(sut.stats).toEqual({ parallelBatches: 0, workerJobs: 0, workerFailures: 1 });
    const next = batchOf(200, 16);
    expect((await sut.wrap(next)).equals(wrapBatchSync(next))).toBe(true);
    expect(sut.stats).toEqual({ parallelBatches: 1, workerJobs: 200, workerFailures: 1 });
  });

  it('keeps to the calling thread after maxConsecutiveFailures worker failures in a row', async () => {
    const errors: LkhError[] = [];
    const sut = make({ threshold: 1, maxConsecutiveFailures: 2, onWorkerError: (e) => errors.push(e) });
    for (let i = 0; i < 2; i++) {
      expect(sut.workerDisabled).toBe(false);
      await sut.start();
      void sut.terminateWorker();
      const batch = batchOf(300, 16);
      expect((await sut.wrap(batch)).equals(wrapBatchSync(batch))).toBe(true);
    }
    expect(sut.workerDisabled).toBe(true);
    const batch = batchOf(300, 16);
    const out = sut.wrap(batch);
    expect(Buffer.isBuffer(out)).toBe(true); // synchronous: no worker involved
    expectWrapsOpen(batch, out as Buffer);
    expect(errors).toHaveLength(2);
    expect(sut.stats).toEqual({ parallelBatches: 0, workerJobs: 0, workerFailures: 2 });
  });

  it('queues concurrent batches and answers each with its own wraps', async () => {
    const sut = make({ threshold: 1, chunk: 16 });
    const batches = [batchOf(400, 16), batchOf(300, 32), batchOf(500, 24)];
    const outs = await Promise.all(batches.map((b) => sut.wrap(b)));
    outs.forEach((o, i) => expect(o.equals(wrapBatchSync(batches[i]!))).toBe(true));
  });

  it('refuses a bad configuration with a typed error', () => {
    expect(() => new ParallelWrapEngine({ threshold: -1 })).toThrow(LkhError);
    expect(() => new ParallelWrapEngine({ chunk: 0 })).toThrow(LkhError);
    expect(() => new ParallelWrapEngine({ maxConsecutiveFailures: 0 })).toThrow(LkhError);
  });

  it('runs on the calling thread after close()', async () => {
    const sut = make({ threshold: 1 });
    await sut.start();
    await sut.close();
    const batch = batchOf(100, 16);
    const out = sut.wrap(batch);
    expect(Buffer.isBuffer(out)).toBe(true);
    expectWrapsOpen(batch, out as Buffer);
  });
});
