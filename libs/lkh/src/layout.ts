import {
  KEY_ID_MAX_NODES,
  KEY_ID_NODE_FACTOR,
  KEY_ID_VERSION_MASK,
  LKH_MAX_DEGREE,
  LKH_MIN_DEGREE,
} from './constants.js';
import { LkhError } from './errors.js';

/**
 * Node numbering of a d-ary key tree whose leaves all sit on level 0 and whose root sits on level
 * `height`. Position p on level l has parent (l + 1, floor(p / d)) and children (l - 1, d*p + j).
 * Because levels are counted from the leaves, growing the tree (a new root above the old one, which
 * becomes child 0) changes no existing position.
 *
 * The node index is `levelOffset[l] + p`, where level l reserves d^(maxHeight - l) positions and
 * maxHeight is the largest height whose whole tree fits the 2^24 - 1 nodes a Key ID can name
 * (constants.ts). So node indices, and the Key IDs made from them, never change.
 *
 *   degree   maxHeight   most members
 *      2        23        8,388,608
 *      4        11        4,194,304
 *      8         7        2,097,152
 *     16         5        1,048,576
 */
export class TreeLayout {
  readonly maxHeight: number;
  /** levelOffset[l] = index of position 0 of level l; levelOffset[maxHeight + 1] = node count. */
  readonly levelOffset: readonly number[];
  /** levelSize[l] = d^(maxHeight - l): positions reserved on level l. */
  readonly levelSize: readonly number[];

  constructor(readonly degree: number) {
    if (!Number.isInteger(degree) || degree < LKH_MIN_DEGREE || degree > LKH_MAX_DEGREE) {
      throw new LkhError('BAD_CONFIG', `degree ${degree} outside ${LKH_MIN_DEGREE}..${LKH_MAX_DEGREE}`);
    }
    let h = 1;
    while (TreeLayout.totalNodes(degree, h + 1) <= KEY_ID_MAX_NODES) h++;
    this.maxHeight = h;
    const sizes: number[] = [];
    const offsets: number[] = [0];
    for (let l = 0; l <= h; l++) {
      sizes.push(degree ** (h - l));
      offsets.push(offsets[l]! + sizes[l]!);
    }
    this.levelSize = sizes;
    this.levelOffset = offsets;
  }

  private static totalNodes(d: number, h: number): number {
    let sum = 0;
    for (let l = 0; l <= h; l++) sum += d ** l;
    return sum;
  }

  /** Most members (leaves) the layout can hold. */
  get maxLeaves(): number {
    return this.levelSize[0]!;
  }

  /** Leaves under one node of level l. */
  subtreeLeaves(level: number): number {
    return this.degree ** level;
  }

  node(level: number, pos: number): number {
    return this.levelOffset[level]! + pos;
  }

  /** Level of a node index, or -1 when it is not a node. */
  levelOf(node: number): number {
    if (!Number.isInteger(node) || node < 0) return -1;
    const off = this.levelOffset;
    for (let l = 0; l <= this.maxHeight; l++) if (node < off[l + 1]!) return l;
    return -1;
  }

  /** Parent node index, or -1 for a node on the top level. */
  parent(node: number): number {
    const l = this.levelOf(node);
    if (l < 0 || l >= this.maxHeight) return -1;
    const p = node - this.levelOffset[l]!;
    return this.levelOffset[l + 1]! + Math.floor(p / this.degree);
  }

  /** The Key ID of a node's key at a version (constants.ts). */
  keyId(node: number, version: number): number {
    return (node + 1) * KEY_ID_NODE_FACTOR + (version & KEY_ID_VERSION_MASK);
  }

  /** Node index named by a Key ID, or -1 when the Key ID names no node of this layout. */
  nodeOfKeyId(keyId: number): number {
    if (!Number.isInteger(keyId) || keyId < KEY_ID_NODE_FACTOR || keyId > 0xffff_ffff) return -1;
    const node = Math.floor(keyId / KEY_ID_NODE_FACTOR) - 1;
    return node < this.levelOffset[this.maxHeight + 1]! ? node : -1;
  }
}

/** The low version bits carried by a Key ID. */
export function keyIdVersion(keyId: number): number {
  return keyId & KEY_ID_VERSION_MASK;
}
