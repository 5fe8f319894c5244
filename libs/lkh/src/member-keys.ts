import { aesKeyUnwrapPad, keyWrapLength } from '@app/crypto';
import { KEY_ID_VERSION_HALF, KEY_ID_VERSION_MASK, LKH_KEY_SIZES, LKH_MAX_WRAPS_PER_REKEY, type LkhKeySize } from './constants.js';
import { LkhError } from './errors.js';
import { keyIdVersion, TreeLayout } from './layout.js';
import type { LkhRekey } from './rekey.js';
import type { PathKey } from './tree.js';

export interface MemberKeysInit {
  readonly degree: number;
  readonly keySize: LkhKeySize;
  /** The tree epoch these keys belong to (the epoch of the last rekey they reflect). */
  readonly epoch: number;
  /** Path keys, leaf first; each Key ID names node and version (constants.ts). */
  readonly path: readonly PathKey[];
}

export interface ApplyResult {
  readonly epoch: number;
  readonly rootKeyId: number;
  /** A copy of the new root key (group KEK). */
  readonly rootKey: Buffer;
  /** Wraps this member unwrapped: exactly the new keys of its path. */
  readonly opened: number;
}

/** A rekey checked once against a layout and indexed by KWK ID; shared by every member. */
interface Prepared {
  readonly degree: number;
  readonly keySize: number;
  readonly byKwk: Map<number, number[]>;
  /** Node -> Key IDs it is named by as a KWK (for gap detection). */
  readonly kwkByNode: Map<number, number[]>;
  readonly targets: Set<number>;
  readonly nodes: Int32Array; // per wrap: target node, KWK node
}

const prepared = new WeakMap<LkhRekey, Prepared>();

const serialDiff = (a: number, b: number): number => (a - b) & KEY_ID_VERSION_MASK;

/**
 * A member's side of the key tree: its Working Key Path (RFC 9838 §3.3) from its leaf key to the
 * group KEK. `apply` opens exactly the wraps of a rekey whose KWK it holds, in dependency order
 * (a key derived in the rekey can open the next one), and replaces its path keys. It refuses - and
 * changes nothing - on a replayed or older rekey (STALE_REKEY), a missed rekey (MISSED_REKEY, must
 * re-register), Key IDs that name no node or a wrap under its key for a node off its path
 * (UNKNOWN_KEY_ID), wraps of the wrong length (BAD_WRAP), a failed integrity check (INTEGRITY), and
 * when it cannot reach the new root key (EXCLUDED).
 */
export class MemberKeys {
  private readonly layout: TreeLayout;
  private epochValue: number;
  private nodes: number[];
  private versions: number[]; // low 8 bits, as Key IDs carry them
  private keys: Buffer[];

  private constructor(
    layout: TreeLayout,
    readonly keySize: LkhKeySize,
    epoch: number,
    nodes: number[],
    versions: number[],
    keys: Buffer[],
  ) {
    this.layout = layout;
    this.epochValue = epoch;
    this.nodes = nodes;
    this.versions = versions;
    this.keys = keys;
  }

  /** Keys received at registration (or read back from `path()`). */
  static fromPath(init: MemberKeysInit): MemberKeys {
    const layout = new TreeLayout(init.degree);
    if (!(LKH_KEY_SIZES as readonly number[]).includes(init.keySize)) {
      throw new LkhError('BAD_CONFIG', `key size ${init.keySize}`);
    }
    if (!Number.isInteger(init.epoch) || init.epoch < 0 || init.epoch > 0xffff_ffff) {
      throw new LkhError('BAD_CONFIG', `epoch ${init.epoch}`);
    }
    if (init.path.length === 0 || init.path.length > layout.maxHeight + 1) {
      throw new LkhError('BAD_CONFIG', `path of ${init.path.length} keys`);
    }
    const nodes: number[] = [];
    const versions: number[] = [];
    const keys: Buffer[] = [];
    for (const [i, pk] of init.path.entries()) {
      const node = layout.nodeOfKeyId(pk.keyId);
      if (node < 0) throw new LkhError('UNKNOWN_KEY_ID', `path Key ID ${pk.keyId} names no node`);
      if (i === 0 && layout.levelOf(node) !== 0) throw new LkhError('UNKNOWN_KEY_ID', 'path does not start at a leaf');
      if (i > 0 && layout.parent(nodes[i - 1]!) !== node) throw new LkhError('UNKNOWN_KEY_ID', `path Key ID ${pk.keyId} is not the parent of the previous key`);
      if (pk.key.length !== init.keySize) throw new LkhError('BAD_CONFIG', `path key ${i} has ${pk.key.length} octets`);
      nodes.push(node);
      versions.push(keyIdVersion(pk.keyId));
      keys.push(Buffer.from(pk.key));
    }
    return new MemberKeys(layout, init.keySize, init.epoch, nodes, versions, keys);
  }

  /**
   * A member admitted by the rekey of `epoch`: it holds only its leaf key (delivered under the
   * registration's GSK_w) and takes its path from that rekey with `apply`.
   */
  static forJoiner(init: { degree: number; keySize: LkhKeySize; epoch: number; leafKeyId: number; leafKey: Uint8Array }): MemberKeys {
    if (!Number.isInteger(init.epoch) || init.epoch < 1) throw new LkhError('BAD_CONFIG', `epoch ${init.epoch}`);
    return MemberKeys.fromPath({
      degree: init.degree,
      keySize: init.keySize,
      epoch: init.epoch - 1,
      path: [{ keyId: init.leafKeyId, key: Buffer.from(init.leafKey) }],
    });
  }

  get epoch(): number {
    return this.epochValue;
  }

  get rootKeyId(): number {
    const top = this.nodes.length - 1;
    return this.layout.keyId(this.nodes[top]!, this.versions[top]!);
  }

  rootKey(): Buffer {
    return Buffer.from(this.keys[this.keys.length - 1]!);
  }

  /** The Working Key Path, leaf first (copies). */
  path(): PathKey[] {
    return this.nodes.map((n, i) => ({ keyId: this.layout.keyId(n, this.versions[i]!), key: Buffer.from(this.keys[i]!) }));
  }

  /** Processes one rekey; on any error nothing changes. */
  apply(rekey: LkhRekey): ApplyResult {
    if (!Number.isInteger(rekey.epoch) || rekey.epoch < 0 || rekey.epoch > 0xffff_ffff) {
      throw new LkhError('UNKNOWN_KEY_ID', `rekey epoch ${rekey.epoch}`);
    }
    if (rekey.epoch <= this.epochValue) {
      throw new LkhError('STALE_REKEY', `rekey for epoch ${rekey.epoch}; keys are at epoch ${this.epochValue}`);
    }
    if (rekey.epoch > this.epochValue + 1) {
      throw new LkhError('MISSED_REKEY', `rekey for epoch ${rekey.epoch}; keys are at epoch ${this.epochValue}`);
    }
    const prep = this.prepare(rekey);
    const layout = this.layout;
    const nodes = [...this.nodes];
    const versions = [...this.versions];
    const keys = [...this.keys];
    const at = new Map<number, number>(); // held Key ID -> path index
    const queue: number[] = [];
    for (let i = 0; i < nodes.length; i++) {
      const id = layout.keyId(nodes[i]!, versions[i]!);
      at.set(id, i);
      queue.push(id);
    }
    let opened = 0;
    while (queue.length > 0) {
      const kwkId = queue.pop()!;
      const list = prep.byKwk.get(kwkId);
      if (!list) continue;
      const i = at.get(kwkId)!;
      const kwkVersion = keyIdVersion(kwkId);
      const kwk = keys[i]!;
      for (const w of list) {
        const wrap = rekey.wraps[w]!;
        const tNode = prep.nodes[2 * w]!;
        const tVersion = keyIdVersion(wrap.keyId);
        let j: number;
        if (tNode === nodes[i]) {
          j = i; // a new version of the node, wrapped under its old version (join)
          if (versions[j] === tVersion) continue;
          if (versions[j] !== kwkVersion || serialDiff(tVersion, kwkVersion) !== 1) {
            throw this.versionError(serialDiff(tVersion, versions[j]!), wrap.keyId);
          }
        } else if (tNode === layout.parent(nodes[i]!)) {
          j = i + 1;
          if (j < nodes.length) {
            if (versions[j] === tVersion) continue;
            if (serialDiff(tVersion, versions[j]!) !== 1) throw this.versionError(serialDiff(tVersion, versions[j]!), wrap.keyId);
          } else {
            nodes.push(tNode); // the tree grew a root above ours, or a joiner learns its path
            versions.push(tVersion);
            keys.push(Buffer.alloc(0));
          }
        } else {
          throw new LkhError('UNKNOWN_KEY_ID', `wrap of Key ID ${wrap.keyId} under ${kwkId}: not on this member's path`);
        }
        let key: Buffer;
        try {
          key = aesKeyUnwrapPad(kwk, wrap.encryptedKey);
        } catch {
          throw new LkhError('INTEGRITY', `wrap of Key ID ${wrap.keyId} under ${kwkId} failed its integrity check`);
        }
        if (key.length !== this.keySize) throw new LkhError('BAD_WRAP', `Key ID ${wrap.keyId} unwraps to ${key.length} octets`);
        versions[j] = tVersion;
        keys[j] = key;
        at.set(wrap.keyId, j);
        queue.push(wrap.keyId);
        opened++;
      }
    }
    // A KWK naming a newer version of one of our nodes that this rekey does not deliver was
    // made by a rekey we never saw.
    for (let i = 0; i < nodes.length; i++) {
      for (const id of prep.kwkByNode.get(nodes[i]!) ?? []) {
        const diff = serialDiff(keyIdVersion(id), versions[i]!);
        if (diff !== 0 && diff < KEY_ID_VERSION_HALF && !prep.targets.has(id)) {
          // A newer leaf key comes only from a registration: our leaf went to another member.
          if (i === 0) throw new LkhError('EXCLUDED', 'this member\'s leaf now belongs to another member');
          throw new LkhError('MISSED_REKEY', `Key ID ${id} is newer than the key this member holds`);
        }
      }
    }
    const top = nodes.length - 1;
    if (layout.keyId(nodes[top]!, versions[top]!) !== rekey.rootKeyId || keys[top]!.length === 0) {
      throw new LkhError('EXCLUDED', 'the rekey gives this member no path to the new root key');
    }
    this.nodes = nodes;
    this.versions = versions;
    this.keys = keys;
    this.epochValue = rekey.epoch;
    return { epoch: rekey.epoch, rootKeyId: rekey.rootKeyId, rootKey: Buffer.from(keys[top]!), opened };
  }

  private versionError(diff: number, keyId: number): LkhError {
    return diff !== 0 && diff < KEY_ID_VERSION_HALF
      ? new LkhError('MISSED_REKEY', `Key ID ${keyId} skips a version this member never received`)
      : new LkhError('UNKNOWN_KEY_ID', `Key ID ${keyId} names an older version than this member holds`);
  }

  /** Validates and indexes a rekey once per layout; the result is shared by all members. */
  private prepare(rekey: LkhRekey): Prepared {
    const cached = prepared.get(rekey);
    if (cached && cached.degree === this.layout.degree && cached.keySize === this.keySize) return cached;
    const layout = this.layout;
    const n = rekey.wraps.length;
    if (n > LKH_MAX_WRAPS_PER_REKEY) throw new LkhError('UNKNOWN_KEY_ID', `rekey has ${n} wraps`);
    if (layout.nodeOfKeyId(rekey.rootKeyId) < 0) throw new LkhError('UNKNOWN_KEY_ID', `root Key ID ${rekey.rootKeyId} names no node`);
    const wrapLength = keyWrapLength(this.keySize);
    const byKwk = new Map<number, number[]>();
    const kwkByNode = new Map<number, number[]>();
    const targets = new Set<number>();
    const nodes = new Int32Array(2 * n);
    for (let w = 0; w < n; w++) {
      const wrap = rekey.wraps[w]!;
      const t = layout.nodeOfKeyId(wrap.keyId);
      const k = layout.nodeOfKeyId(wrap.kwkId);
      if (t < 0 || k < 0) throw new LkhError('UNKNOWN_KEY_ID', `wrap ${w} names Key ID ${t < 0 ? wrap.keyId : wrap.kwkId}, no node`);
      if (wrap.encryptedKey.length !== wrapLength) {
        throw new LkhError('BAD_WRAP', `wrap ${w} has ${wrap.encryptedKey.length} octets; expected ${wrapLength}`);
      }
      nodes[2 * w] = t;
      nodes[2 * w + 1] = k;
      targets.add(wrap.keyId);
      const list = byKwk.get(wrap.kwkId);
      if (list) list.push(w);
      else {
        byKwk.set(wrap.kwkId, [w]);
        const ids = kwkByNode.get(k);
        if (ids) ids.push(wrap.kwkId);
        else kwkByNode.set(k, [wrap.kwkId]);
      }
    }
    const p: Prepared = { degree: layout.degree, keySize: this.keySize, byKwk, kwkByNode, targets, nodes };
    prepared.set(rekey, p);
    return p;
  }
}
