import type { WrappedKey } from '@app/codec';
import { LKH_DEFAULT_DEGREE, LKH_DEFAULT_KEY_SIZE, LKH_KEY_SIZES, LKH_MIN_HEIGHT, type LkhKeySize } from './constants.js';
import { LkhError } from './errors.js';
import { TreeLayout } from './layout.js';
import { cryptoRandomFill, type RandomFill } from './random.js';
import type { JoinedMember, LkhChangeSet, RekeyBatch, RekeyResult } from './rekey.js';
import { SYNC_WRAP_ENGINE, wrapBatchSync, wrappedLength, type WrapBatch, type WrapEngine } from './wrap-engine.js';

export interface LkhTreeOptions {
  /** Tree degree d, 2..16 (default 4). */
  degree?: number;
  /** Node key size in octets: 16, 24 or 32 (AES-128/192/256; default 16). */
  keySize?: LkhKeySize;
  /** Source of fresh keys (default: node:crypto's CSPRNG). */
  random?: RandomFill;
  /**
   * Who performs the wraps of `rekeyParallel` (default: the calling thread, SYNC_WRAP_ENGINE).
   * A ParallelWrapEngine splits large batches with a worker thread. `rekey()` is always synchronous.
   */
  wrapEngine?: WrapEngine;
}

/** One node as persisted: its version and key (null while its subtree holds no member). */
export interface LkhNodeState {
  readonly node: number;
  readonly version: number;
  readonly key: Buffer | null;
}

export interface LkhTreeMeta {
  readonly degree: number;
  readonly keySize: LkhKeySize;
  readonly height: number;
  readonly epoch: number;
}

/** A key on a member's path: its Key ID (node and version) and the key itself. */
export interface PathKey {
  readonly keyId: number;
  readonly key: Buffer;
}

// Flags of a node touched by a batch.
const HAD_KEY = 1; // held a key before the batch (someone may hold the old key)
const TAINT = 2; // a member that held the old key left: the old key must not be used
const JOIN = 4; // a member joined below: it needs the new key through a new child key
const EMPTY_KEY = Buffer.alloc(0);

/** A batch worked out by LkhTree.plan, waiting for its wraps (see LkhTree.commit). */
interface RekeyPlan {
  /** The tree's epoch when planned: commit refuses a plan made for another state. */
  readonly epoch: number;
  readonly leaves: number[];
  readonly joinedLeaves: readonly number[];
  /** Touched nodes (slot i): node index, level, position, member count after the batch. */
  readonly mNode: readonly number[];
  readonly mLevel: readonly number[];
  readonly mPos: readonly number[];
  readonly mCount1: readonly number[];
  /** Slots bottom-up. */
  readonly order: readonly number[];
  /** New key of slot i at i * keySize (zeroed by commit). */
  readonly fresh: Buffer;
  readonly newHeight: number;
  readonly newMembers: number;
  readonly chain: ReadonlyMap<number, number>;
  /** Wrap k delivers keyIds[k] under kwkIds[k]; its key and KWK are job k of `jobs`. */
  readonly keyIds: readonly number[];
  readonly kwkIds: readonly number[];
  readonly jobs: WrapBatch;
}

/**
 * The GCKS's Logical Key Hierarchy (RFC 2627 §5.4; Wong, Gouda and Lam's key graphs) with batched
 * rekeying after Zhang, Lam, Lee and Yang (2003): all joins and leaves of an interval produce one
 * rekey in which each replaced key is wrapped once per child subtree that needs it.
 *
 * Storage is compact: per level one Buffer of keys, a Uint32Array of versions and a member count
 * per node (Uint8Array occupancy on the leaf level); no object per node. Leaves are members; the
 * root key is the group KEK. Node indices and Key IDs follow layout.ts and constants.ts.
 *
 * Balance: all leaves are on one level; a join takes the lowest free leaf, which is always a
 * vacated one when any exists, so the tree stays as shallow as its peak membership allows
 * (height = ceil(log_d(peak members))). When every leaf is taken the tree grows a new root.
 *
 * Rules for a node v whose subtree changed in a batch (v' its new key):
 * - v's subtree is empty afterwards: its key is erased (the version is kept so a Key ID is
 *   never reused for another key).
 * - a member that held v left, or v had no key: v' is wrapped under the key of every non-empty
 *   child (the child's new key if it changed) - forward secrecy;
 * - otherwise (only joins below): v' is wrapped once under the old v, which every previous member
 *   below holds, plus under the new key of each child with a joiner below - backward secrecy
 *   (a joiner never receives an old key) - unless wrapping under every child is fewer wraps.
 * For one leave in a full tree of height h that is d*h - 1 wraps; for one join, 2*h.
 */
export class LkhTree {
  readonly layout: TreeLayout;
  readonly degree: number;
  readonly keySize: LkhKeySize;
  private readonly random: RandomFill;
  private readonly engine: WrapEngine;
  private busy = false;

  private heightValue = LKH_MIN_HEIGHT;
  private epochValue = 0;
  private members = 0;
  /** Per level: allocated positions, keys, versions, member counts (occupancy on level 0). */
  private caps: number[] = [];
  private keys: Buffer[] = [];
  private versions: Uint32Array[] = [];
  private counts: (Uint8Array | Uint32Array)[] = [];

  constructor(options: LkhTreeOptions = {}) {
    this.layout = new TreeLayout(options.degree ?? LKH_DEFAULT_DEGREE);
    this.degree = this.layout.degree;
    const ks = options.keySize ?? LKH_DEFAULT_KEY_SIZE;
    if (!(LKH_KEY_SIZES as readonly number[]).includes(ks)) {
      throw new LkhError('BAD_CONFIG', `key size ${ks}; expected 16, 24 or 32`);
    }
    this.keySize = ks;
    this.random = options.random ?? cryptoRandomFill;
    this.engine = options.wrapEngine ?? SYNC_WRAP_ENGINE;
    for (let l = 0; l <= this.layout.maxHeight; l++) {
      this.caps.push(0);
      this.keys.push(EMPTY_KEY);
      this.versions.push(new Uint32Array(0));
      this.counts.push(l === 0 ? new Uint8Array(0) : new Uint32Array(0));
    }
  }

  /**
   * A tree holding `members` members at leaves 0..members-1, every node at version 1, built
   * without a rekey message (a group created with its initial roster: each member receives its
   * path from `memberPath` at registration).
   */
  static build(options: LkhTreeOptions, members: number): LkhTree {
    const t = new LkhTree(options);
    if (!Number.isInteger(members) || members < 0 || members > t.layout.maxLeaves) {
      throw new LkhError('BAD_CONFIG', `cannot build a tree of ${members} members`);
    }
    const d = t.degree;
    let h = LKH_MIN_HEIGHT;
    while (d ** h < members) h++;
    t.heightValue = h;
    t.members = members;
    if (members === 0) return t;
    for (let l = 0; l <= h; l++) {
      const n = Math.ceil(members / d ** l);
      t.caps[l] = n;
      const keys = Buffer.alloc(n * t.keySize);
      t.random(keys);
      t.keys[l] = keys;
      t.versions[l] = new Uint32Array(n).fill(1);
      if (l === 0) {
        t.counts[0] = new Uint8Array(n).fill(1);
      } else {
        const c = new Uint32Array(n);
        const below = t.counts[l - 1]!;
        for (let p = 0; p < below.length; p++) c[Math.floor(p / d)]! += below[p]!;
        t.counts[l] = c;
      }
    }
    return t;
  }

  get height(): number {
    return this.heightValue;
  }
  get epoch(): number {
    return this.epochValue;
  }
  get memberCount(): number {
    return this.members;
  }
  get rootNode(): number {
    return this.layout.node(this.heightValue, 0);
  }
  get rootKeyId(): number {
    return this.layout.keyId(this.rootNode, this.versionAt(this.heightValue, 0));
  }
  /** A copy of the group KEK, or null while the group is empty. */
  rootKey(): Buffer | null {
    return this.members === 0 ? null : Buffer.from(this.keyView(this.heightValue, 0));
  }

  meta(): LkhTreeMeta {
    return { degree: this.degree, keySize: this.keySize, height: this.heightValue, epoch: this.epochValue };
  }

  isMember(leaf: number): boolean {
    return Number.isInteger(leaf) && leaf >= 0 && leaf < this.caps[0]! && this.counts[0]![leaf] === 1;
  }

  /** Occupied leaves in ascending order. */
  *memberLeaves(): IterableIterator<number> {
    const occ = this.counts[0]!;
    for (let p = 0; p < this.caps[0]!; p++) if (occ[p] === 1) yield p;
  }

  /** The keys a member at `leaf` holds, leaf first, root last (copies). */
  memberPath(leaf: number): PathKey[] {
    if (!this.isMember(leaf)) throw new LkhError('NOT_A_MEMBER', `leaf ${leaf} holds no member`);
    const out: PathKey[] = [];
    let p = leaf;
    for (let l = 0; l <= this.heightValue; l++) {
      out.push({ keyId: this.layout.keyId(this.layout.node(l, p), this.versions[l]![p]!), key: Buffer.from(this.keyView(l, p)) });
      p = Math.floor(p / this.degree);
    }
    return out;
  }

  /** State of one node (key copied), for persistence. */
  nodeState(node: number): LkhNodeState {
    const l = this.layout.levelOf(node);
    if (l < 0) throw new LkhError('UNKNOWN_KEY_ID', `node ${node} is not in the layout`);
    const p = node - this.layout.levelOffset[l]!;
    const version = this.versionAt(l, p);
    const has = l <= this.heightValue && this.countAt(l, p) > 0;
    return { node, version, key: has ? Buffer.from(this.keyView(l, p)) : null };
  }

  /** Every node that ever had a key (version > 0), for a full save. */
  *allNodes(): IterableIterator<LkhNodeState> {
    for (let l = 0; l <= this.heightValue; l++) {
      const v = this.versions[l]!;
      for (let p = 0; p < this.caps[l]!; p++) if (v[p]! > 0) yield this.nodeState(this.layout.node(l, p));
    }
  }

  /** A member joins alone (one rekey). */
  join(): RekeyResult {
    return this.rekey({ joins: 1 });
  }

  /** A member leaves alone (one rekey). */
  leave(leaf: number): RekeyResult {
    return this.rekey({ leaves: [leaf] });
  }

  /**
   * Applies a batch of leaves and joins and returns the one rekey that delivers the new keys.
   * Leaves are applied first, so joins reuse the leaves they vacate. Throws LkhError (and changes
   * nothing) for a leave of an empty or repeated leaf, or when the tree would be over capacity.
   * The wraps run on the calling thread (see rekeyParallel for large batches).
   */
  rekey(batch: RekeyBatch): RekeyResult {
    this.assertIdle();
    const plan = this.plan(batch);
    try {
      return this.commit(plan, wrapBatchSync(plan.jobs));
    } finally {
      plan.jobs.material.fill(0);
    }
  }

  /**
   * The same rekey as `rekey(batch)` - byte for byte, for the same randomness - with its wraps done
   * by the tree's wrap engine (`options.wrapEngine`, e.g. a ParallelWrapEngine, which splits a large
   * batch with a worker thread and does small ones on the calling thread). While it is pending the
   * tree reads as before the batch and every other rekey, join or leave is refused with
   * LkhError('BUSY'); if it rejects, nothing changed.
   */
  async rekeyParallel(batch: RekeyBatch): Promise<RekeyResult> {
    this.assertIdle();
    const plan = this.plan(batch);
    this.busy = true;
    try {
      const out = await this.engine.wrap(plan.jobs);
      if (out.length !== plan.jobs.count * wrappedLength(this.keySize)) {
        throw new LkhError('BAD_WRAP', `the wrap engine returned ${out.length} octets for ${plan.jobs.count} wraps`);
      }
      return this.commit(plan, out);
    } finally {
      this.busy = false;
      plan.jobs.material.fill(0);
    }
  }

  /** True while a rekeyParallel is pending. */
  get isBusy(): boolean {
    return this.busy;
  }

  private assertIdle(): void {
    if (this.busy) throw new LkhError('BUSY', 'a parallel rekey of this tree is pending');
  }

  /**
   * Works out a batch: which nodes change, their fresh keys and versions, and which wraps (key,
   * KWK) the rekey needs, in dependency order. Member counts, height and membership are moved to
   * the post-batch state while it decides, then put back: the tree is unchanged until commit().
   */
  private plan(batch: RekeyBatch): RekeyPlan {
    const leaves = batch.leaves ?? [];
    const joins = batch.joins ?? 0;
    this.checkBatch(leaves, joins);
    const d = this.degree;
    const ks = this.keySize;
    const layout = this.layout;
    const oldHeight = this.heightValue;
    const oldMembers = this.members;

    // --- mark: every node on the path of a changed leaf -------------------------------------
    const index = new Map<number, number>(); // node -> slot in the arrays below
    const mNode: number[] = [];
    const mLevel: number[] = [];
    const mPos: number[] = [];
    const mFlags: number[] = [];
    const mCount0: number[] = []; // member count before the batch
    const touch = (l: number, p: number, flag: number): void => {
      const node = layout.node(l, p);
      let i = index.get(node);
      if (i === undefined) {
        i = mNode.length;
        index.set(node, i);
        mNode.push(node);
        mLevel.push(l);
        mPos.push(p);
        const count = this.countAt(l, p);
        mCount0.push(count);
        mFlags.push(count > 0 && (l > 0 || this.versionAt(l, p) > 0) ? HAD_KEY : 0);
      }
      mFlags[i] = mFlags[i]! | flag;
    };

    const mCount1: number[] = [];
    const joinedLeaves: number[] = [];
    const keyIds: number[] = [];
    const kwkIds: number[] = [];
    const chain = new Map<number, number>(); // new KWK with a joiner below -> wrap it opens
    let order: number[] = [];
    let fresh = EMPTY_KEY;
    let material = EMPTY_KEY;
    let newHeight = oldHeight;
    let newMembers = oldMembers;
    let planned = false;
    try {
      for (const leaf of leaves) {
        let p = leaf;
        for (let l = 0; l <= this.heightValue; l++) {
          touch(l, p, TAINT);
          this.counts[l]![p]! -= 1;
          p = Math.floor(p / d);
        }
        this.members--;
      }

      for (let j = 0; j < joins; j++) {
        if (this.members === d ** this.heightValue) this.grow(touch);
        const leaf = this.lowestFreeLeaf();
        joinedLeaves.push(leaf);
        let p = leaf;
        for (let l = 0; l <= this.heightValue; l++) {
          this.ensure(l, p);
          touch(l, p, JOIN);
          this.counts[l]![p]! += 1;
          p = Math.floor(p / d);
        }
        this.members++;
      }

      // --- fresh keys for every touched node that is not empty afterwards ----------------------
      // Bottom-up: bucket the touched nodes by level (node order within a level does not matter).
      const byLevel: number[][] = [];
      for (let l = 0; l <= this.heightValue; l++) byLevel.push([]);
      for (let i = 0; i < mNode.length; i++) byLevel[mLevel[i]!]!.push(i);
      order = byLevel.flat();
      fresh = Buffer.allocUnsafe(mNode.length * ks);
      this.random(fresh);
      const newVersion = (i: number) => this.versions[mLevel[i]!]![mPos[i]!]! + 1;

      // --- wraps, bottom-up: a touched internal node has at most d + 1 -------------------------
      let internal = 0;
      for (let i = 0; i < mNode.length; i++) if (mLevel[i]! > 0) internal++;
      material = Buffer.alloc(internal * (d + 1) * 2 * ks);
      // job: wrap the key at src[srcAt..] under the KWK at kwkSrc[kwkAt..] (copied: ks octets each;
      // a byte loop, as views and Buffer.copy cost more than the copy for 16-32 octets).
      const job = (keyId: number, src: Uint8Array, srcAt: number, kwkId: number, kwkSrc: Uint8Array, kwkAt: number): void => {
        const at = keyIds.length * 2 * ks;
        for (let b = 0; b < ks; b++) {
          material[at + b] = kwkSrc[kwkAt + b]!;
          material[at + ks + b] = src[srcAt + b]!;
        }
        keyIds.push(keyId);
        kwkIds.push(kwkId);
      };
      const kids = new Int32Array(d); // per child: its slot, -1 untouched, -2 empty
      for (const i of order) {
        const l = mLevel[i]!;
        const p = mPos[i]!;
        if (l === 0 || this.countAt(l, p) === 0) continue;
        const vAt = i * ks;
        const vKeyId = layout.keyId(mNode[i]!, newVersion(i));
        const flags = mFlags[i]!;
        let nonEmpty = 0;
        let withJoin = 0;
        for (let j = 0; j < d; j++) {
          const c = p * d + j;
          if (this.countAt(l - 1, c) === 0) {
            kids[j] = -2;
            continue;
          }
          nonEmpty++;
          const ci = index.get(layout.node(l - 1, c));
          kids[j] = ci ?? -1;
          if (ci !== undefined && (mFlags[ci]! & JOIN) !== 0) withJoin++;
        }
        const oldUsable = (flags & HAD_KEY) !== 0 && (flags & TAINT) === 0;
        const underOld = oldUsable && 1 + withJoin < nonEmpty;
        if (underOld) job(vKeyId, fresh, vAt, layout.keyId(mNode[i]!, this.versions[l]![p]!), this.keys[l]!, p * ks);
        for (let j = 0; j < d; j++) {
          const ci = kids[j]!;
          if (ci === -2) continue;
          const c = p * d + j;
          if (ci === -1) {
            if (underOld) continue; // its members hold the old v
            job(vKeyId, fresh, vAt, layout.keyId(layout.node(l - 1, c), this.versions[l - 1]![c]!), this.keys[l - 1]!, c * ks);
          } else {
            if (underOld && (mFlags[ci]! & JOIN) === 0) continue;
            const kwkId = layout.keyId(mNode[ci]!, newVersion(ci));
            if ((mFlags[ci]! & JOIN) !== 0) chain.set(kwkId, keyIds.length); // a joiner's path goes up here
            job(vKeyId, fresh, vAt, kwkId, fresh, ci * ks);
          }
        }
      }
      planned = true;
    } finally {
      if (!planned) {
        fresh.fill(0);
        material.fill(0);
      }
      // --- put the counts back: nothing is visible until commit() ----------------------------
      for (let i = 0; i < mNode.length; i++) {
        const l = mLevel[i]!;
        const p = mPos[i]!;
        mCount1[i] = this.counts[l]![p]!;
        this.counts[l]![p] = mCount0[i]!;
      }
      newHeight = this.heightValue;
      newMembers = this.members;
      this.heightValue = oldHeight;
      this.members = oldMembers;
    }

    return {
      epoch: this.epochValue,
      leaves: [...leaves],
      joinedLeaves,
      mNode,
      mLevel,
      mPos,
      mCount1,
      order,
      fresh,
      newHeight,
      newMembers,
      chain,
      keyIds,
      kwkIds,
      jobs: { count: keyIds.length, keySize: ks, material },
    };
  }

  /** Makes a planned batch the tree's state and builds its rekey from the engine's output. */
  private commit(plan: RekeyPlan, wrapped: Buffer): RekeyResult {
    if (plan.epoch !== this.epochValue) throw new LkhError('BUSY', 'the tree changed while the rekey was computed');
    const ks = this.keySize;
    const w = wrappedLength(ks);
    const wraps: WrappedKey[] = new Array<WrappedKey>(plan.keyIds.length);
    for (let k = 0; k < wraps.length; k++) {
      wraps[k] = { keyId: plan.keyIds[k]!, kwkId: plan.kwkIds[k]!, encryptedKey: wrapped.subarray(k * w, (k + 1) * w) };
    }
    this.heightValue = plan.newHeight;
    this.members = plan.newMembers;
    const { mLevel, mPos, mCount1, fresh } = plan;
    for (const i of plan.order) {
      const l = mLevel[i]!;
      const p = mPos[i]!;
      this.counts[l]![p] = mCount1[i]!;
      const dst = this.keys[l]!;
      if (mCount1[i] === 0) {
        dst.fill(0, p * ks, (p + 1) * ks);
      } else {
        this.versions[l]![p]! += 1;
        for (let b = 0, to = p * ks, from = i * ks; b < ks; b++) dst[to + b] = fresh[from + b]!;
      }
    }
    fresh.fill(0);
    this.epochValue++;

    const rekey = { epoch: this.epochValue, rootKeyId: this.rootKeyId, wraps };
    const joined = plan.joinedLeaves.map((leaf) => this.joinedMember(leaf, wraps, plan.chain));
    const changes: LkhChangeSet = { epoch: this.epochValue, height: this.heightValue, nodes: plan.order.map((i) => plan.mNode[i]!) };
    return { rekey, joined, left: plan.leaves, changes };
  }

  private joinedMember(leaf: number, wraps: readonly WrappedKey[], chain: ReadonlyMap<number, number>): JoinedMember {
    const leafKeyId = this.layout.keyId(this.layout.node(0, leaf), this.versions[0]![leaf]!);
    const pathWraps: WrappedKey[] = [];
    let kwk = leafKeyId;
    let p = leaf;
    for (let l = 1; l <= this.heightValue; l++) {
      p = Math.floor(p / this.degree);
      const target = this.layout.keyId(this.layout.node(l, p), this.versions[l]![p]!);
      const at = chain.get(kwk);
      const w = at === undefined ? undefined : wraps[at];
      if (!w || w.keyId !== target) break;
      pathWraps.push(w);
      kwk = target;
    }
    return { leaf, leafKeyId, leafKey: Buffer.from(this.keyView(0, leaf)), pathWraps };
  }

  private checkBatch(leaves: readonly number[], joins: number): void {
    if (!Number.isInteger(joins) || joins < 0) throw new LkhError('BAD_CONFIG', `joins ${joins}`);
    const seen = new Set<number>();
    for (const leaf of leaves) {
      if (!this.isMember(leaf)) throw new LkhError('NOT_A_MEMBER', `leaf ${leaf} holds no member`);
      if (seen.has(leaf)) throw new LkhError('DUPLICATE', `leaf ${leaf} leaves twice`);
      seen.add(leaf);
    }
    if (this.members - leaves.length + joins > this.layout.maxLeaves) {
      throw new LkhError('TREE_FULL', `the layout holds at most ${this.layout.maxLeaves} members`);
    }
    if (this.epochValue >= 0xffff_ffff) throw new LkhError('TREE_FULL', 'epoch space exhausted');
  }

  /** Adds a root above the current one (which becomes its child 0). */
  private grow(touch: (l: number, p: number, flag: number) => void): void {
    const h = this.heightValue + 1;
    this.ensure(h, 0);
    // The new root has never had a key: touch it before its count is set so it is not HAD_KEY.
    touch(h, 0, 0);
    this.counts[h]![0] = this.members;
    this.heightValue = h;
  }

  private lowestFreeLeaf(): number {
    const d = this.degree;
    let p = 0;
    for (let l = this.heightValue; l >= 1; l--) {
      const childLevel = l - 1;
      const full = childLevel === 0 ? 1 : d ** childLevel;
      let next = -1;
      for (let j = 0; j < d; j++) {
        if (this.countAt(childLevel, p * d + j) < full) {
          next = p * d + j;
          break;
        }
      }
      if (next < 0) throw new LkhError('TREE_FULL', 'no free leaf below the root');
      p = next;
    }
    return p;
  }

  private countAt(l: number, p: number): number {
    return p < this.caps[l]! ? this.counts[l]![p]! : 0;
  }

  private versionAt(l: number, p: number): number {
    return p < this.caps[l]! ? this.versions[l]![p]! : 0;
  }

  private keyView(l: number, p: number): Buffer {
    return this.keys[l]!.subarray(p * this.keySize, (p + 1) * this.keySize);
  }

  /** Grows the level-l arrays (doubling, up to the layout's size) so that position p exists. */
  private ensure(l: number, p: number): void {
    const cap = this.caps[l]!;
    if (p < cap) return;
    const max = this.layout.levelSize[l]!;
    const next = Math.min(max, Math.max(p + 1, cap * 2, 16));
    const keys = Buffer.alloc(next * this.keySize);
    this.keys[l]!.copy(keys);
    this.keys[l]!.fill(0);
    this.keys[l] = keys;
    const v = new Uint32Array(next);
    v.set(this.versions[l]!);
    this.versions[l] = v;
    const c = l === 0 ? new Uint8Array(next) : new Uint32Array(next);
    c.set(this.counts[l]!);
    this.counts[l] = c;
    this.caps[l] = next;
  }

  /**
   * Rebuilds a tree from persisted nodes (store.ts). Member counts are recomputed from the leaves;
   * any inconsistency (a key where no member is, or a member's path without a key) is BAD_SNAPSHOT.
   */
  static restore(options: LkhTreeOptions, meta: LkhTreeMeta, nodes: Iterable<LkhNodeState>): LkhTree {
    const t = new LkhTree({ ...options, degree: meta.degree, keySize: meta.keySize });
    if (!Number.isInteger(meta.height) || meta.height < LKH_MIN_HEIGHT || meta.height > t.layout.maxHeight) {
      throw new LkhError('BAD_SNAPSHOT', `height ${meta.height}`);
    }
    if (!Number.isInteger(meta.epoch) || meta.epoch < 0 || meta.epoch > 0xffff_ffff) {
      throw new LkhError('BAD_SNAPSHOT', `epoch ${meta.epoch}`);
    }
    t.heightValue = meta.height;
    t.epochValue = meta.epoch;
    const hasKey: boolean[][] = [];
    for (let l = 0; l <= meta.height; l++) hasKey.push([]);
    for (const n of nodes) {
      const l = t.layout.levelOf(n.node);
      if (l < 0 || l > meta.height) throw new LkhError('BAD_SNAPSHOT', `node ${n.node} outside the tree`);
      if (!Number.isInteger(n.version) || n.version < 1 || n.version > 0xffff_ffff) {
        throw new LkhError('BAD_SNAPSHOT', `node ${n.node} version ${n.version}`);
      }
      const p = n.node - t.layout.levelOffset[l]!;
      t.ensure(l, p);
      t.versions[l]![p] = n.version;
      if (n.key) {
        if (n.key.length !== t.keySize) throw new LkhError('BAD_SNAPSHOT', `node ${n.node} key length`);
        n.key.copy(t.keys[l]!, p * t.keySize);
        hasKey[l]![p] = true;
        if (l === 0) t.counts[0]![p] = 1;
      }
    }
    const d = t.degree;
    for (let p = 0; p < t.caps[0]!; p++) {
      if (t.counts[0]![p] !== 1) continue;
      t.members++;
      let q = p;
      for (let l = 1; l <= meta.height; l++) {
        q = Math.floor(q / d);
        if (!hasKey[l]![q]) throw new LkhError('BAD_SNAPSHOT', `member at leaf ${p} has no key on level ${l}`);
        t.counts[l]![q]! += 1;
      }
    }
    for (let l = 1; l <= meta.height; l++) {
      for (let p = 0; p < t.caps[l]!; p++) {
        if (hasKey[l]![p] && t.counts[l]![p] === 0) throw new LkhError('BAD_SNAPSHOT', `key without members at level ${l}`);
      }
    }
    if (t.members > d ** meta.height) throw new LkhError('BAD_SNAPSHOT', 'more members than leaves');
    return t;
  }
}
