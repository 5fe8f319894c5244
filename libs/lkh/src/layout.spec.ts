import { describe, expect, it } from 'vitest';
import { KEY_ID_MAX_NODES } from './constants.js';
import { keyIdVersion, TreeLayout } from './layout.js';
import { Prng } from './testing/seeded-random.js';
import { LkhTree } from './tree.js';

describe('TreeLayout and Key IDs', () => {
  it.each([
    [2, 23, 8_388_608],
    [4, 11, 4_194_304],
    [8, 7, 2_097_152],
    [16, 5, 1_048_576],
  ])('degree %i: height up to %i, %i members, every node nameable by a 32-bit Key ID', (d, h, leaves) => {
    const sut = new TreeLayout(d);
    expect(sut.maxHeight).toBe(h);
    expect(sut.maxLeaves).toBe(leaves);
    const total = sut.levelOffset[sut.maxHeight + 1]!;
    expect(total).toBeLessThanOrEqual(KEY_ID_MAX_NODES);
    const last = total - 1;
    expect(sut.keyId(last, 255)).toBeLessThanOrEqual(0xffffffff);
    expect(sut.nodeOfKeyId(sut.keyId(last, 255))).toBe(last);
    expect(sut.nodeOfKeyId(sut.keyId(last, 0) + 256)).toBe(-1);
  });

  it('maps node and version to a non-zero Key ID and back', () => {
    const sut = new TreeLayout(4);
    const rng = new Prng(1);
    for (let k = 0; k < 1000; k++) {
      const node = rng.int(sut.levelOffset[sut.maxHeight + 1]!);
      const version = rng.next();
      const id = sut.keyId(node, version);
      expect(id).toBeGreaterThan(0);
      expect(sut.nodeOfKeyId(id)).toBe(node);
      expect(keyIdVersion(id)).toBe(version & 0xff);
    }
    expect(sut.nodeOfKeyId(0)).toBe(-1); // RFC 9838: Key ID 0 is the SA keying material
    expect(sut.nodeOfKeyId(255)).toBe(-1);
    expect(sut.nodeOfKeyId(1.5)).toBe(-1);
  });

  it('gives parent links that agree with levels and positions', () => {
    const sut = new TreeLayout(3);
    for (let l = 0; l < 5; l++) {
      for (let p = 0; p < 40; p++) {
        const n = sut.node(l, p);
        expect(sut.levelOf(n)).toBe(l);
        expect(sut.parent(n)).toBe(sut.node(l + 1, Math.floor(p / 3)));
      }
    }
    expect(sut.parent(sut.node(sut.maxHeight, 0))).toBe(-1);
  });

  it('keeps every existing Key ID when the tree grows a new root', () => {
    const tree = LkhTree.build({ degree: 2, random: new Prng(2).fill }, 4);
    const before = [0, 1, 2, 3].map((leaf) => tree.memberPath(leaf).map((k) => k.keyId));
    const r = tree.join();
    expect(tree.height).toBe(3);
    // The old root is now child 0 of the new root and kept its Key ID; the new root is wrapped under it.
    const oldRootId = before[0]!.at(-1)!;
    expect(r.rekey.wraps.some((w) => w.kwkId === oldRootId && w.keyId === tree.rootKeyId)).toBe(true);
    for (const leaf of [0, 1, 2, 3]) expect(tree.memberPath(leaf).map((k) => k.keyId).slice(0, 3)).toEqual(before[leaf]);
  });
});
