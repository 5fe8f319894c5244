import { describe, expect, it } from 'vitest';
import { LkhError } from './errors.js';
import { MemberKeys } from './member-keys.js';
import { Prng } from './testing/seeded-random.js';
import { LkhTree } from './tree.js';

const keySize = 16 as const;

function built(degree: number, members: number, seed = 1): LkhTree {
  return LkhTree.build({ degree, keySize, random: new Prng(seed).fill }, members);
}

function memberOf(tree: LkhTree, leaf: number): MemberKeys {
  return MemberKeys.fromPath({ degree: tree.degree, keySize, epoch: tree.epoch, path: tree.memberPath(leaf) });
}

/**
 * The fewest wraps a single leave can cost, computed from the member set alone: each ancestor of
 * the departed leaf needs its new key under every child subtree that still holds a member.
 */
function optimalLeaveWraps(degree: number, height: number, members: Set<number>, leaf: number): number {
  let wraps = 0;
  for (let level = 1; level <= height; level++) {
    const span = degree ** level;
    const childSpan = degree ** (level - 1);
    const base = Math.floor(leaf / span) * span;
    for (let j = 0; j < degree; j++) {
      let any = false;
      for (let m = base + j * childSpan; m < base + (j + 1) * childSpan && !any; m++) any = members.has(m) && m !== leaf;
      if (any) wraps++;
    }
  }
  return wraps;
}

describe('LkhTree wrap counts', () => {
  it.each([
    [2, 1],
    [2, 5],
    [3, 3],
    [4, 2],
    [4, 5],
    [8, 3],
    [16, 2],
  ])('a single leave from a full tree of degree %i and height %i costs d*h - 1 wraps', (d, h) => {
    const sut = built(d, d ** h);
    expect(sut.height).toBe(h);
    const leaf = new Prng(d * 100 + h).int(d ** h);
    const r = sut.leave(leaf);
    expect(r.rekey.wraps.length).toBe(d * h - 1);
  });

  it.each([
    [2, 4],
    [3, 3],
    [4, 4],
    [8, 2],
  ])('a single join into a full tree (degree %i, height %i, one leaf vacated) costs 2h wraps', (d, h) => {
    const sut = built(d, d ** h);
    sut.leave(d + 1);
    const r = sut.join();
    expect(r.joined[0]!.leaf).toBe(d + 1); // the vacated leaf is reused
    expect(r.rekey.wraps.length).toBe(2 * h);
    expect(r.joined[0]!.pathWraps.length).toBe(h);
  });

  it('a single leave from a sparse tree costs exactly the optimum for its shape', () => {
    const rng = new Prng(7);
    for (const d of [2, 4, 5]) {
      const n = d ** 4;
      const sut = built(d, n, 7);
      const members = new Set<number>([...Array(n).keys()]);
      for (let k = 0; k < n / 2; k++) {
        const all = [...members];
        const leaf = all[rng.int(all.length)]!;
        const expected = optimalLeaveWraps(d, sut.height, members, leaf);
        expect(sut.leave(leaf).rekey.wraps.length).toBe(expected);
        members.delete(leaf);
      }
    }
  });

  it('a batch of L leaves and L joins stays within L*d*log_d(n/L) wraps', () => {
    const d = 4;
    const n = 4 ** 7;
    const L = 64;
    const sut = built(d, n, 3);
    const rng = new Prng(3);
    const leaves = new Set<number>();
    while (leaves.size < L) leaves.add(rng.int(n));
    const r = sut.rekey({ leaves: [...leaves], joins: L });
    const bound = L * d * (Math.log(n / L) / Math.log(d));
    expect(r.rekey.wraps.length).toBeLessThanOrEqual(bound);
    expect(new Set(r.joined.map((j) => j.leaf))).toEqual(leaves); // vacated leaves are reused first
    // every replaced key is wrapped at most once per (new key, KWK) pair
    expect(new Set(r.rekey.wraps.map((w) => `${w.keyId}/${w.kwkId}`)).size).toBe(r.rekey.wraps.length);
  });

  it('matches the shape of RFC 9838 Appendix A: excluding F wraps root and the new keys as shown', () => {
    // A..H on leaves 0..7 of a binary tree; F is leaf 5. The RFC sends K{1}, K{15}, 15{16}, 15{6}, 16{11}.
    const sut = built(2, 8);
    const L = sut.layout;
    const name = new Map<number, string>([
      [L.node(3, 0), 'root'],
      [L.node(2, 0), '1'],
      [L.node(2, 1), '2'],
      [L.node(1, 2), '5'],
      [L.node(1, 3), '6'],
      [L.node(0, 4), '11'],
    ]);
    const r = sut.leave(5);
    const pairs = r.rekey.wraps.map((w) => `${name.get(L.nodeOfKeyId(w.keyId))}{${name.get(L.nodeOfKeyId(w.kwkId))}}`);
    // "2" and "5" are replaced by new versions (the RFC's 15 and 16).
    expect(pairs.sort()).toEqual(['2{5}', '2{6}', '5{11}', 'root{1}', 'root{2}'].sort());
  });
});

describe('LkhTree membership', () => {
  it('keeps every member on the root key through leaves, joins and growth', () => {
    const rng = new Prng(11);
    const sut = new LkhTree({ degree: 3, keySize, random: rng.fill });
    const members = new Map<number, MemberKeys>();
    for (let step = 0; step < 120; step++) {
      const leaves = members.size > 3 && rng.int(3) === 0 ? [[...members.keys()][rng.int(members.size)]!] : [];
      const joins = 1 + rng.int(3);
      const r = sut.rekey({ leaves, joins });
      for (const leaf of leaves) {
        const gone = members.get(leaf)!;
        members.delete(leaf);
        const err = (() => {
          try {
            gone.apply(r.rekey);
          } catch (e) {
            return e as LkhError;
          }
          return null;
        })();
        expect(err?.code).toBe('EXCLUDED');
        expect(err?.mustReregister).toBe(true);
      }
      for (const m of members.values()) expect(m.apply(r.rekey).rootKey.equals(sut.rootKey()!)).toBe(true);
      for (const j of r.joined) {
        const m = MemberKeys.forJoiner({ degree: 3, keySize, epoch: r.rekey.epoch, leafKeyId: j.leafKeyId, leafKey: j.leafKey });
        expect(m.apply(r.rekey).rootKey.equals(sut.rootKey()!)).toBe(true);
        expect(m.path().map((p) => p.keyId)).toEqual(sut.memberPath(j.leaf).map((p) => p.keyId));
        members.set(j.leaf, m);
      }
    }
    expect(sut.height).toBeGreaterThan(3);
    expect(sut.memberCount).toBe(members.size);
  });

  it('rejects bad batches with typed errors and changes nothing', () => {
    const sut = built(4, 20);
    const before = sut.rootKey()!;
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as LkhError).code;
      }
      return 'none';
    };
    expect(code(() => sut.rekey({ leaves: [25] }))).toBe('NOT_A_MEMBER');
    expect(code(() => sut.rekey({ leaves: [-1] }))).toBe('NOT_A_MEMBER');
    expect(code(() => sut.rekey({ leaves: [3, 3] }))).toBe('DUPLICATE');
    expect(code(() => sut.rekey({ joins: -1 }))).toBe('BAD_CONFIG');
    expect(code(() => new LkhTree({ degree: 17 }))).toBe('BAD_CONFIG');
    expect(code(() => new LkhTree({ keySize: 20 as 16 }))).toBe('BAD_CONFIG');
    expect(sut.epoch).toBe(0);
    expect(sut.memberCount).toBe(20);
    expect(sut.rootKey()!.equals(before)).toBe(true);
  });

  it('erases the keys of emptied subtrees and never reuses a Key ID', () => {
    const sut = built(2, 8);
    const seen = new Set<number>();
    for (const leaf of [0, 1, 2, 3]) {
      const ids = new Set(sut.leave(leaf).rekey.wraps.map((w) => w.keyId));
      for (const id of ids) expect(seen.has(id)).toBe(false);
      for (const id of ids) seen.add(id);
    }
    expect(sut.nodeState(sut.layout.node(2, 0)).key).toBeNull();
    const r = sut.rekey({ joins: 2 });
    expect(r.joined.map((j) => j.leaf)).toEqual([0, 1]);
    for (const w of r.rekey.wraps) expect(seen.has(w.keyId)).toBe(false);
  });

  it('restores from its own node states exactly', () => {
    const rng = new Prng(5);
    const sut = built(4, 300, 5);
    sut.rekey({ leaves: [1, 50, 299], joins: 1 });
    const copy = LkhTree.restore({}, sut.meta(), sut.allNodes());
    expect([...copy.allNodes()]).toEqual([...sut.allNodes()]);
    expect(copy.memberCount).toBe(sut.memberCount);
    // the same randomness gives byte-identical rekeys afterwards
    const a = LkhTree.restore({ random: new Prng(9).fill }, sut.meta(), sut.allNodes());
    const b = LkhTree.restore({ random: new Prng(9).fill }, sut.meta(), sut.allNodes());
    const ra = a.rekey({ leaves: [7], joins: 3 });
    const rb = b.rekey({ leaves: [7], joins: 3 });
    expect(ra.rekey).toEqual(rb.rekey);
    expect(rng.int(2)).toBeGreaterThanOrEqual(0);
  });
});
