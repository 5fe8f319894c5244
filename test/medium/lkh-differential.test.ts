/**
 * Differential test of the LKH tree and member side (libs/lkh) against a deliberately naive model
 * (STYLE.md, after wireguard-go's allowedips_rand_test), over seeded random sequences of joins,
 * leaves and batches. The seed is printed on failure; LKH_DIFF_SEED=<n> replays one.
 *
 * The model knows nothing of trees. It reads each rekey as "key X wrapped under key Y" and gives
 * every key it sees a fresh identity (uid): a wrap's KWK is the key of that Key ID issued in the same
 * rekey, or else the key its node was last given - anything else (a wrap under a superseded or
 * never-issued key) fails the test. For each member it keeps the set of keys it may know: its leaf
 * key from registration, closed under every wrap of every rekey it sees. Because KWKs are always
 * current keys, keys a member knew that have since been superseded can never open anything again and
 * are dropped; an evicted member stops being tracked once everything it knew is superseded.
 *
 * After every rekey: every current member's real MemberKeys derives the tree's root key (real
 * RFC 5649 unwraps) and the model agrees it may know the root; every evicted member's MemberKeys
 * fails and the model says it cannot know the root; every new member knows only keys issued in its
 * join rekey (so no earlier wrap opens for it), its keys fail to unwrap the previous rekeys' root
 * wraps (all its keys for two joiners per rekey, its root key for 14 more), and its root key
 * differs from every earlier one.
 */
import { LkhError, LkhTree, MemberKeys, type LkhKeySize, type LkhRekey } from '@app/lkh';
import { aesKeyUnwrapPad } from '@app/crypto';
import { describe, expect, it } from 'vitest';
import { Prng } from '../../libs/lkh/src/testing/seeded-random.js';

const nodeOf = (keyId: number) => Math.floor(keyId / 256) - 1;

class NaiveModel {
  private nextUid = 1;
  /** node -> uid of the key the node was last given, and that key's Key ID. */
  private readonly current = new Map<number, { uid: number; keyId: number }>();
  /** uid -> epoch the key was issued in. */
  readonly issued = new Map<number, number>();
  /** member -> node -> uid of the keys it may know. */
  readonly knows = new Map<number, Map<number, number>>();
  readonly evicted = new Set<number>();
  rootUid = 0;

  private issue(keyId: number, epoch: number): number {
    const uid = this.nextUid++;
    this.issued.set(uid, epoch);
    this.current.set(nodeOf(keyId), { uid, keyId });
    return uid;
  }

  register(member: number, leafKeyId: number, epoch: number): void {
    this.knows.set(member, new Map([[nodeOf(leafKeyId), this.issue(leafKeyId, epoch)]]));
  }

  evict(member: number): void {
    this.evicted.add(member);
  }

  /** Applies one rekey (joiners already registered) and updates the root key's uid. */
  rekey(rekey: LkhRekey): void {
    const targets = new Map<number, number>(); // Key ID -> uid issued in this rekey
    const edges = new Map<number, number[]>(); // kwk uid -> target uids
    const kwkUids: number[] = [];
    const targetIds = new Set(rekey.wraps.map((w) => w.keyId));
    for (const w of rekey.wraps) {
      let kwk: number;
      if (targets.has(w.kwkId)) kwk = targets.get(w.kwkId)!;
      else if (targetIds.has(w.kwkId)) {
        // wrapped under a key issued later in this rekey: resolve after all targets exist
        kwk = -1;
      } else {
        const cur = this.current.get(nodeOf(w.kwkId));
        if (!cur || cur.keyId !== w.kwkId) throw new Error(`wrap under Key ID ${w.kwkId}, which is not a current key`);
        kwk = cur.uid;
      }
      kwkUids.push(kwk);
      if (!targets.has(w.keyId)) targets.set(w.keyId, this.nextUid++);
    }
    rekey.wraps.forEach((w, i) => {
      const kwk = kwkUids[i]! === -1 ? targets.get(w.kwkId)! : kwkUids[i]!;
      const t = targets.get(w.keyId)!;
      const list = edges.get(kwk);
      if (list) list.push(t);
      else edges.set(kwk, [t]);
    });
    const uidNode = new Map<number, number>();
    for (const [keyId, uid] of targets) {
      uidNode.set(uid, nodeOf(keyId));
      this.issued.set(uid, rekey.epoch);
    }
    for (const [member, known] of this.knows) {
      const all = new Set(known.values());
      const queue = [...all];
      while (queue.length > 0) {
        for (const t of edges.get(queue.pop()!) ?? []) {
          if (!all.has(t)) {
            all.add(t);
            queue.push(t);
            known.set(uidNode.get(t)!, t);
          }
        }
      }
    }
    for (const [keyId, uid] of targets) this.current.set(nodeOf(keyId), { uid, keyId });
    const root = this.current.get(nodeOf(rekey.rootKeyId));
    if (!root || root.keyId !== rekey.rootKeyId) throw new Error('the rekey names a root key the model never saw');
    this.rootUid = root.uid;
    // Drop superseded knowledge; stop tracking evicted members that know nothing current.
    for (const [member, known] of this.knows) {
      for (const [node, uid] of known) if (this.current.get(node)?.uid !== uid) known.delete(node);
      if (known.size === 0 && this.evicted.has(member)) this.knows.delete(member);
    }
  }

  mayKnowRoot(member: number): boolean {
    return [...(this.knows.get(member)?.values() ?? [])].includes(this.rootUid);
  }
}

interface Scenario {
  seed: number;
  degree: number;
  keySize: LkhKeySize;
  target: number; // membership the random walk hovers around
  operations: number;
  batch: () => number; // operations in the next rekey
}

function run(s: Scenario): { rekeys: number; maxMembers: number } {
  const rng = new Prng(s.seed);
  const tree = new LkhTree({ degree: s.degree, keySize: s.keySize, random: rng.fill });
  const model = new NaiveModel();
  const live = new Map<number, MemberKeys>(); // member id -> keys
  const leafOf = new Map<number, number>();
  const evictedKeys = new Map<number, MemberKeys>();
  const rootKeys = new Set<string>();
  const recentRootWraps: Buffer[][] = [];
  let nextMember = 1;
  let done = 0;
  let rekeys = 0;
  let maxMembers = 0;

  while (done < s.operations) {
    const size = Math.min(s.batch(), s.operations - done);
    const leaving = new Set<number>();
    let joins = 0;
    const ids = [...live.keys()];
    for (let k = 0; k < size; k++) {
      const pJoin = Math.min(0.95, Math.max(0.05, 0.5 + (s.target - live.size) / (2 * s.target)));
      if (ids.length - leaving.size > 0 && rng.next() / 2 ** 32 > pJoin) {
        let m: number;
        do m = ids[rng.int(ids.length)]!;
        while (leaving.has(m));
        leaving.add(m);
      } else joins++;
    }
    done += size;
    const r = tree.rekey({ leaves: [...leaving].map((m) => leafOf.get(m)!), joins });
    rekeys++;
    const root = tree.rootKey();

    for (const m of leaving) {
      evictedKeys.set(m, live.get(m)!);
      live.delete(m);
      leafOf.delete(m);
      model.evict(m);
    }
    const joined: [number, MemberKeys][] = [];
    for (const j of r.joined) {
      const id = nextMember++;
      model.register(id, j.leafKeyId, r.rekey.epoch);
      joined.push([id, MemberKeys.forJoiner({ degree: s.degree, keySize: s.keySize, epoch: r.rekey.epoch, leafKeyId: j.leafKeyId, leafKey: j.leafKey })]);
      leafOf.set(id, j.leaf);
    }
    model.rekey(r.rekey);

    // current members (old and new) derive the root with real unwraps; the model agrees
    for (const [id, m] of [...live, ...joined]) {
      const out = m.apply(r.rekey);
      if (!root || !out.rootKey.equals(root)) throw new Error(`member ${id} derived a wrong root key at epoch ${r.rekey.epoch}`);
      if (!model.mayKnowRoot(id)) throw new Error(`model: member ${id} cannot know the root at epoch ${r.rekey.epoch}`);
    }
    // evicted members: real keys fail, the model agrees, as long as the model still tracks them
    for (const [id, m] of evictedKeys) {
      if (model.mayKnowRoot(id)) throw new Error(`model: evicted member ${id} may know the root at epoch ${r.rekey.epoch}`);
      let failed = false;
      try {
        m.apply(r.rekey);
      } catch (e) {
        failed = e instanceof LkhError;
      }
      if (!failed) throw new Error(`evicted member ${id} derived the root at epoch ${r.rekey.epoch}`);
      if (!model.knows.has(id)) evictedKeys.delete(id);
    }
    // new members: only keys of this epoch; their keys open none of the previous root wraps
    for (const [n, [id, m]] of joined.entries()) {
      for (const uid of model.knows.get(id)!.values()) {
        if (model.issued.get(uid) !== r.rekey.epoch) throw new Error(`new member ${id} may know a key from before it joined`);
      }
      if (rootKeys.has(m.rootKey().toString('hex'))) throw new Error(`new member ${id} holds an earlier root key`);
      // Failed unwraps are slow (exceptions): every key of the first two joiners of a rekey, and
      // the root key of the next 14, against the root wraps of the last rekeys.
      if (n >= 16) {
        live.set(id, m);
        continue;
      }
      const keys = n < 2 ? m.path().map((p) => p.key) : [m.rootKey()];
      for (const wraps of n < 2 ? recentRootWraps : recentRootWraps.slice(-1)) {
        for (const w of wraps) {
          for (const k of keys) {
            let opened = true;
            try {
              aesKeyUnwrapPad(k, w);
            } catch {
              opened = false;
            }
            if (opened) throw new Error(`new member ${id} opened an earlier root wrap`);
          }
        }
      }
      live.set(id, m);
    }
    if (root) rootKeys.add(root.toString('hex'));
    recentRootWraps.push(r.rekey.wraps.filter((w) => w.keyId === r.rekey.rootKeyId).map((w) => Buffer.from(w.encryptedKey)));
    if (recentRootWraps.length > 3) recentRootWraps.shift();
    maxMembers = Math.max(maxMembers, live.size);
    if (tree.memberCount !== live.size) throw new Error('tree and model disagree on the member count');
  }
  return { rekeys, maxMembers };
}

function withSeed(s: Scenario): ReturnType<typeof run> {
  try {
    return run(s);
  } catch (e) {
    const msg = `LKH differential test failed with seed ${s.seed} (degree ${s.degree}); replay with LKH_DIFF_SEED=${s.seed}`;
    console.error(msg);
    throw new Error(`${msg}: ${(e as Error).message}`, { cause: e });
  }
}

const seedFor = (fallback: number) => (process.env.LKH_DIFF_SEED ? Number(process.env.LKH_DIFF_SEED) : fallback);

describe('LKH differential test against a naive key-knowledge model', () => {
  it.each([
    [2, 16, 0x1001],
    [3, 24, 0x2002],
    [8, 32, 0x3003],
  ] as const)('degree %i, %i-octet keys: small groups, single joins/leaves and small batches', (degree, keySize, seed) => {
    const rng = new Prng(seed ^ 0xabc);
    const out = withSeed({ seed: seedFor(seed), degree, keySize, target: 100, operations: 1_000, batch: () => (rng.int(4) === 0 ? 1 + rng.int(6) : 1) });
    expect(out.rekeys).toBeGreaterThan(400);
    expect(out.maxMembers).toBeGreaterThan(80);
  });

  it('degree 4: up to 10,000 members over 100,000 operations in batches', () => {
    const rng = new Prng(0x4004 ^ 0xabc);
    const out = withSeed({ seed: seedFor(0x4004), degree: 4, keySize: 16, target: 10_000, operations: 100_000, batch: () => 2_000 + rng.int(4_000) });
    expect(out.maxMembers).toBeGreaterThanOrEqual(9_000);
    expect(out.rekeys).toBeGreaterThan(20);
  }, 300_000);
});
