import { CodecError, wrappedKey, type WrappedKey } from '@app/codec';
import { describe, expect, it } from 'vitest';
import { LkhError } from './errors.js';
import { MemberKeys } from './member-keys.js';
import type { LkhRekey } from './rekey.js';
import { Prng } from './testing/seeded-random.js';
import { LkhTree } from './tree.js';

const keySize = 16 as const;

function setup(seed = 21) {
  const tree = LkhTree.build({ degree: 4, keySize, random: new Prng(seed).fill }, 64);
  const sut = MemberKeys.fromPath({ degree: 4, keySize, epoch: tree.epoch, path: tree.memberPath(10) });
  return { tree, sut };
}

function snapshot(m: MemberKeys) {
  return { epoch: m.epoch, path: m.path().map((p) => `${p.keyId}:${p.key.toString('hex')}`) };
}

function errorOf(f: () => unknown): LkhError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(LkhError);
    return e as LkhError;
  }
  throw new Error('expected an LkhError');
}

/** A rekey whose wraps for this member's path are changed by `edit`. */
function edited(rekey: LkhRekey, edit: (w: WrappedKey, i: number) => WrappedKey): LkhRekey {
  return { ...rekey, wraps: rekey.wraps.map(edit) };
}

describe('MemberKeys', () => {
  it('opens exactly the wraps for the new keys of its path, whatever their order', () => {
    const { tree, sut } = setup();
    const r = tree.rekey({ leaves: [11, 40], joins: 1 });
    const shuffled: LkhRekey = { ...r.rekey, wraps: [...r.rekey.wraps].reverse() };
    const before = sut.path();
    const out = sut.apply(shuffled);
    expect(out.rootKey.equals(tree.rootKey()!)).toBe(true);
    const changed = sut.path().filter((p, i) => p.keyId !== before[i]!.keyId).length;
    expect(out.opened).toBe(changed);
    expect(sut.path()).toEqual(tree.memberPath(10));
  });

  it('rejects a replayed or older rekey (STALE_REKEY) and changes nothing', () => {
    const { tree, sut } = setup();
    const r1 = tree.leave(3);
    const r2 = tree.leave(4);
    sut.apply(r1.rekey);
    sut.apply(r2.rekey);
    const s = snapshot(sut);
    expect(errorOf(() => sut.apply(r2.rekey)).code).toBe('STALE_REKEY');
    expect(errorOf(() => sut.apply(r1.rekey)).code).toBe('STALE_REKEY');
    expect(snapshot(sut)).toEqual(s);
  });

  it('detects a missed rekey and asks to re-register instead of guessing', () => {
    const { tree, sut } = setup();
    tree.leave(3); // never delivered
    const r2 = tree.leave(12);
    const s = snapshot(sut);
    const e = errorOf(() => sut.apply(r2.rekey));
    expect(e.code).toBe('MISSED_REKEY');
    expect(e.mustReregister).toBe(true);
    expect(snapshot(sut)).toEqual(s);
  });

  it('detects a version gap even when the epoch looks right', () => {
    const { tree, sut } = setup();
    const r1 = tree.leave(8); // replaces keys on member 10's path (same parent)
    const r2 = tree.leave(9);
    // A forged epoch cannot hide that the KWKs of r2 are versions this member never received.
    const e = errorOf(() => sut.apply({ ...r2.rekey, epoch: r1.rekey.epoch }));
    expect(e.code).toBe('MISSED_REKEY');
    expect(sut.epoch).toBe(0);
  });

  it('rejects Key IDs that name no node, and wraps under its key for nodes off its path', () => {
    const { tree, sut } = setup();
    const r = tree.leave(11);
    const s = snapshot(sut);
    expect(errorOf(() => sut.apply(edited(r.rekey, (w, i) => (i === 0 ? { ...w, keyId: 0 } : w)))).code).toBe('UNKNOWN_KEY_ID');
    expect(errorOf(() => sut.apply(edited(r.rekey, (w, i) => (i === 1 ? { ...w, kwkId: 0xffffffff } : w)))).code).toBe('UNKNOWN_KEY_ID');
    expect(errorOf(() => sut.apply({ ...r.rekey, rootKeyId: 7 })).code).toBe('UNKNOWN_KEY_ID');
    // A wrap under this member's leaf key that claims to carry a key of an unrelated node.
    const mine = sut.path()[0]!.keyId;
    const i = r.rekey.wraps.findIndex((w) => w.kwkId === mine);
    const foreign = tree.layout.keyId(tree.layout.node(1, 15), 1);
    expect(errorOf(() => sut.apply(edited(r.rekey, (w, k) => (k === i ? { ...w, keyId: foreign } : w)))).code).toBe('UNKNOWN_KEY_ID');
    expect(snapshot(sut)).toEqual(s);
    expect(sut.apply(r.rekey).rootKey.equals(tree.rootKey()!)).toBe(true);
  });

  it('rejects truncated wraps: at the codec (CodecError) and at the member (BAD_WRAP)', () => {
    const { tree, sut } = setup();
    const r = tree.leave(11);
    const s = snapshot(sut);
    const mine = sut.path()[0]!.keyId;
    const i = r.rekey.wraps.findIndex((w) => w.kwkId === mine);
    const bytes = wrappedKey.encode(r.rekey.wraps[i]!);
    expect(() => wrappedKey.decode(bytes.subarray(0, 6))).toThrow(CodecError);
    const short = wrappedKey.decode(bytes.subarray(0, bytes.length - 8));
    expect(errorOf(() => sut.apply(edited(r.rekey, (w, k) => (k === i ? short : w)))).code).toBe('BAD_WRAP');
    expect(snapshot(sut)).toEqual(s);
  });

  it('rejects a wrap that fails its integrity check and keeps the old keys', () => {
    const { tree, sut } = setup();
    const r = tree.leave(11);
    const s = snapshot(sut);
    const path = sut.path().map((p) => p.keyId);
    // Corrupt the last wrap this member needs (after it already opened earlier ones).
    const needed = r.rekey.wraps.map((w, k) => [w, k] as const).filter(([w]) => path.includes(w.kwkId) || r.rekey.wraps.some((x) => x.keyId === w.kwkId && path.includes(x.kwkId)));
    const k = needed[needed.length - 1]![1];
    const bad = edited(r.rekey, (w, n) => {
      if (n !== k) return w;
      const e = Buffer.from(w.encryptedKey);
      e[5]! ^= 0x40;
      return { ...w, encryptedKey: e };
    });
    expect(errorOf(() => sut.apply(bad)).code).toBe('INTEGRITY');
    expect(snapshot(sut)).toEqual(s);
    expect(sut.apply(r.rekey).rootKey.equals(tree.rootKey()!)).toBe(true);
  });

  it('reports EXCLUDED to an evicted member, also on later rekeys', () => {
    const { tree, sut } = setup();
    const r = tree.leave(10);
    const e = errorOf(() => sut.apply(r.rekey));
    expect(e.code).toBe('EXCLUDED');
    expect(e.mustReregister).toBe(true);
    // Its keys are still those of epoch 0; a joiner reusing leaf 10 gets a new leaf key.
    const j = tree.join();
    expect(j.joined[0]!.leaf).toBe(10);
    expect(j.joined[0]!.leafKeyId).not.toBe(sut.path()[0]!.keyId);
  });

  it('lets a joiner take its path from the rekey or from its path wraps alone', () => {
    const { tree } = setup();
    tree.leave(5);
    const r = tree.join();
    const j = r.joined[0]!;
    const viaRekey = MemberKeys.forJoiner({ degree: 4, keySize, epoch: r.rekey.epoch, leafKeyId: j.leafKeyId, leafKey: j.leafKey });
    expect(viaRekey.apply(r.rekey).rootKey.equals(tree.rootKey()!)).toBe(true);
    const viaPath = MemberKeys.forJoiner({ degree: 4, keySize, epoch: r.rekey.epoch, leafKeyId: j.leafKeyId, leafKey: j.leafKey });
    expect(viaPath.apply({ ...r.rekey, wraps: j.pathWraps }).opened).toBe(tree.height);
    expect(viaPath.path()).toEqual(tree.memberPath(5));
  });

  it('validates the path it is given', () => {
    const { tree } = setup();
    const path = tree.memberPath(10);
    expect(errorOf(() => MemberKeys.fromPath({ degree: 4, keySize, epoch: 0, path: [path[0]!, path[2]!] })).code).toBe('UNKNOWN_KEY_ID');
    expect(errorOf(() => MemberKeys.fromPath({ degree: 4, keySize, epoch: 0, path: path.slice(1) })).code).toBe('UNKNOWN_KEY_ID');
    expect(errorOf(() => MemberKeys.fromPath({ degree: 4, keySize, epoch: 0, path: [] })).code).toBe('BAD_CONFIG');
    expect(errorOf(() => MemberKeys.fromPath({ degree: 4, keySize: 24, epoch: 0, path })).code).toBe('BAD_CONFIG');
  });
});
