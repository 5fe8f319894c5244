/**
 * LKH benchmark (issue 4): at n = 1,000,000 members and degrees 2, 8 and 4, the time to build the
 * tree, single-leave and single-join rekeys (1,000 each), a batch of 1,000 leaves + 1,000 joins,
 * the size of a single-leave rekey, and resident memory per member. The batch is timed with the
 * parallel wrap engine (calling thread + one worker thread: batch_ms) and on the calling thread
 * alone (batch_ms_sync), alternating in the same process. Each degree runs in its own
 * child process so that memory figures do not mix. The last line is the d = 4 JSON object.
 *
 *   npm run bench:lkh            (LKH_BENCH_N=100000 npm run bench:lkh for a quick run)
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { wrappedKey } from '@app/codec';
import { aesKeyWrapPad } from '@app/crypto';
import { LkhTree, ParallelWrapEngine } from '@app/lkh';

const N = Number(process.env.LKH_BENCH_N ?? 1_000_000);
const SAMPLES = 1000;
const BATCH = 1000;
/** RFC 7296 §3.3.5 attribute header (type + length) around each Wrapped Key in a KD key bag. */
const KD_ATTRIBUTE_HEADER = 4;

const gc = (globalThis as { gc?: () => void }).gc;
function collect(): void {
  if (!gc) throw new Error('run with node --expose-gc');
  for (let i = 0; i < 3; i++) gc();
}

const now = () => process.hrtime.bigint();
const ms = (a: bigint, b: bigint) => Number(b - a) / 1e6;
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};
const round = (x: number, digits = 3) => Number(x.toFixed(digits));

/** xorshift32 for choosing leaves (keys come from the CSPRNG). */
let seed = 0x2545f491;
const pick = (n: number) => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
};

/** Wraps of an optimal single leave, from the member layout alone (members occupy 0..n-1). */
function optimalLeaveWraps(d: number, height: number, n: number, leaf: number): number {
  let wraps = 0;
  for (let level = 1; level <= height; level++) {
    const span = d ** level;
    const childSpan = d ** (level - 1);
    const base = Math.floor(leaf / span) * span;
    for (let j = 0; j < d; j++) {
      const first = base + j * childSpan;
      const last = Math.min(n - 1, first + childSpan - 1);
      if (first > n - 1) continue;
      const members = last - first + 1 - (leaf >= first && leaf <= last ? 1 : 0);
      if (members > 0) wraps++;
    }
  }
  return wraps;
}

async function runDegree(d: number): Promise<Record<string, number | boolean>> {
  collect();
  const base = process.memoryUsage();
  const engine = new ParallelWrapEngine();
  let t = now();
  const tree = LkhTree.build({ degree: d, wrapEngine: engine }, N);
  const buildS = ms(t, now()) / 1000;
  collect();
  const after = process.memoryUsage();
  const bytesPerMember = (after.rss - base.rss) / N;
  const dataBytesPerMember = (after.heapUsed + after.arrayBuffers - base.heapUsed - base.arrayBuffers) / N;

  // warm up the code paths
  for (let i = 0; i < 50; i++) {
    tree.leave(pick(N));
    tree.join();
  }

  const leaveMs: number[] = [];
  const joinMs: number[] = [];
  let leaveWraps = 0;
  let leaveOptimal = 0;
  let leaveBytes = 0;
  let leaveKdBytes = 0;
  let joinWraps = 0;
  let allOptimal = true;
  for (let i = 0; i < SAMPLES; i++) {
    const leaf = pick(N);
    t = now();
    const r = tree.leave(leaf);
    leaveMs.push(ms(t, now()));
    const opt = optimalLeaveWraps(d, tree.height, N, leaf);
    if (r.rekey.wraps.length !== opt) allOptimal = false;
    if (r.rekey.wraps.length > leaveWraps) {
      leaveWraps = r.rekey.wraps.length;
      leaveOptimal = opt;
      leaveBytes = r.rekey.wraps.reduce((s, w) => s + wrappedKey.encodingLength(w), 0);
      leaveKdBytes = leaveBytes + KD_ATTRIBUTE_HEADER * r.rekey.wraps.length;
    }
    t = now();
    const j = tree.join();
    joinMs.push(ms(t, now()));
    if (j.joined[0]!.leaf !== leaf) throw new Error('join did not reuse the vacated leaf');
    joinWraps = Math.max(joinWraps, j.rekey.wraps.length);
  }

  // The batch: 1,000 leaves + 1,000 joins, with the parallel engine (calling thread + one worker
  // thread) and on the calling thread alone, alternating; the median of five runs each after a
  // warm-up of each.
  await engine.start();
  const pickLeaves = () => {
    const leaves = new Set<number>();
    while (leaves.size < BATCH) leaves.add(pick(N));
    return [...leaves];
  };
  const batchSync = () => {
    const leaves = pickLeaves();
    const t0 = now();
    const r = tree.rekey({ leaves, joins: BATCH });
    return { ms: ms(t0, now()), wraps: r.rekey.wraps.length };
  };
  const batchParallel = async () => {
    const leaves = pickLeaves();
    const jobs0 = engine.stats.workerJobs;
    const t0 = now();
    const r = await tree.rekeyParallel({ leaves, joins: BATCH });
    return { ms: ms(t0, now()), wraps: r.rekey.wraps.length, workerShare: (engine.stats.workerJobs - jobs0) / r.rekey.wraps.length };
  };
  batchSync();
  await batchParallel();
  const syncRuns: { ms: number; wraps: number }[] = [];
  const parRuns: { ms: number; wraps: number; workerShare: number }[] = [];
  for (let i = 0; i < 5; i++) {
    syncRuns.push(batchSync());
    parRuns.push(await batchParallel());
  }
  const byMs = <T extends { ms: number }>(xs: T[]) => [...xs].sort((a, b) => a.ms - b.ms);
  const batch = byMs(parRuns)[2]!;
  const batchBest = byMs(parRuns)[0]!;
  const batchSyncMedian = byMs(syncRuns)[2]!;
  const batchSyncBest = byMs(syncRuns)[0]!;
  const workerShare = parRuns.reduce((a, r) => a + r.workerShare, 0) / parRuns.length;
  if (engine.workerFailures !== 0) throw new Error('the wrap worker failed during the benchmark');
  if (engine.stats.workerJobs === 0) throw new Error('the wrap worker did no wraps: the batch was not parallel');
  await engine.close();
  // The floor set by node:crypto: the same number of RFC 5649 wraps and nothing else.
  const kwks = randomBytes(16 * batch.wraps);
  const plains = randomBytes(16 * batch.wraps);
  t = now();
  for (let i = 0; i < batch.wraps; i++) aesKeyWrapPad(kwks.subarray(16 * i, 16 * i + 16), plains.subarray(16 * i, 16 * i + 16));
  const wrapFloorMs = ms(t, now());
  const batchBound = BATCH * d * (Math.log(N / BATCH) / Math.log(d));

  return {
    n: N,
    degree: d,
    height: tree.height,
    build_s: round(buildS),
    leave_ms_p50: round(quantile(leaveMs, 0.5), 4),
    leave_ms_p99: round(quantile(leaveMs, 0.99), 4),
    join_ms_p50: round(quantile(joinMs, 0.5), 4),
    join_ms_p99: round(quantile(joinMs, 0.99), 4),
    batch_ms: round(batch.ms, 2),
    batch_ms_best: round(batchBest.ms, 2),
    batch_ms_sync: round(batchSyncMedian.ms, 2),
    batch_ms_sync_best: round(batchSyncBest.ms, 2),
    batch_parallel_ratio: round(batch.ms / batchSyncMedian.ms, 3),
    batch_worker_share: round(workerShare, 3),
    batch_wrap_floor_ms: round(wrapFloorMs, 2),
    batch_wraps: batch.wraps,
    batch_bound: Math.round(batchBound),
    leave_wraps: leaveWraps,
    leave_wraps_optimal: leaveOptimal,
    leave_wraps_all_optimal: allOptimal,
    join_wraps: joinWraps,
    join_wraps_optimal: 2 * tree.height,
    leave_bytes: leaveBytes,
    leave_kd_bytes: leaveKdBytes,
    bytes_per_member: round(bytesPerMember, 1),
    data_bytes_per_member: round(dataBytesPerMember, 1),
  };
}

const arg = process.argv.find((a) => a.startsWith('--degree='));
if (arg) {
  const out = await runDegree(Number(arg.slice('--degree='.length)));
  process.send!(out);
} else {
  const self = fileURLToPath(import.meta.url);
  const results: Record<string, number | boolean>[] = [];
  for (const d of [2, 8, 4]) {
    const r = await new Promise<Record<string, number | boolean>>((resolve, reject) => {
      const child = fork(self, [`--degree=${d}`], { execArgv: ['--expose-gc'], stdio: 'inherit' });
      child.once('message', (m) => resolve(m as Record<string, number | boolean>));
      child.once('error', reject);
      child.once('exit', (code) => {
        if (code !== 0) reject(new Error(`degree ${d} run exited ${code}`));
      });
    });
    results.push(r);
    console.log(
      `d=${d}: build ${r.build_s}s, leave p50 ${r.leave_ms_p50} ms p99 ${r.leave_ms_p99} ms (${r.leave_wraps} wraps, optimal ${r.leave_wraps_optimal}, ${r.leave_bytes} B),` +
        ` join p50 ${r.join_ms_p50} ms (${r.join_wraps} wraps), batch ${r.batch_ms} ms parallel (best ${r.batch_ms_best} ms; worker did ${r.batch_worker_share} of the wraps) vs ${r.batch_ms_sync} ms on one thread (best ${r.batch_ms_sync_best} ms; the wraps alone ${r.batch_wrap_floor_ms} ms) ${r.batch_wraps} wraps (bound ${r.batch_bound}), ${r.bytes_per_member} B/member RSS`,
    );
    if (d !== 4) console.log(JSON.stringify(r));
  }
  console.log(JSON.stringify(results.find((r) => r.degree === 4)));
}
