import { createCipheriv, createDecipheriv } from 'node:crypto';
import { SEAL_AAD_LABEL, SEAL_IV_LENGTH, SEAL_KEK_LENGTH, SEAL_TAG_LENGTH } from './constants.js';
import { LkhError } from './errors.js';
import { cryptoRandomFill, type RandomFill } from './random.js';
import type { LkhChangeSet } from './rekey.js';
import { LkhTree, type LkhNodeState, type LkhTreeMeta, type LkhTreeOptions } from './tree.js';

/** One persisted node: its key sealed (sealer below), or null while its subtree is empty. */
export interface LkhNodeRecord {
  readonly node: number;
  readonly version: number;
  readonly sealedKey: Uint8Array | null;
}

export interface LkhTreeRecord {
  readonly meta: LkhTreeMeta;
  readonly nodes: readonly LkhNodeRecord[];
}

/**
 * Where trees are kept (the GCKS binds a SQLite implementation, apps/gcks/src/lkh). `write` must be
 * atomic: the meta row and the given node rows (upserts) commit together or not at all.
 */
export interface LkhTreeRepository {
  load(treeId: string): Promise<LkhTreeRecord | null>;
  /** Upserts `nodes` and the meta; with `replace` first deletes every node row of the tree. */
  write(treeId: string, meta: LkhTreeMeta, nodes: readonly LkhNodeRecord[], options: { replace: boolean }): Promise<void>;
  delete(treeId: string): Promise<void>;
}
/** Injection token of the repository, named after the interface (STYLE.md). */
export const LkhTreeRepository = Symbol('LkhTreeRepository');

/**
 * Seals node keys at rest with AES-256-GCM under a key-encryption key the caller keeps outside the
 * database. The AAD binds the label, tree, node and version, so a sealed key moved to another row
 * or rolled back to another version does not open. Sealed form: IV (12) | ciphertext | tag (16).
 */
export class NodeKeySealer {
  private readonly kek: Buffer;
  constructor(
    kek: Uint8Array,
    private readonly random: RandomFill = cryptoRandomFill,
  ) {
    if (kek.length !== SEAL_KEK_LENGTH) throw new LkhError('BAD_CONFIG', `sealing KEK of ${kek.length} octets; expected ${SEAL_KEK_LENGTH}`);
    this.kek = Buffer.from(kek);
  }

  private aad(treeId: string, node: number, version: number): Buffer {
    const head = Buffer.from(`${SEAL_AAD_LABEL}\0${treeId}\0`, 'utf8');
    const tail = Buffer.alloc(8);
    tail.writeUInt32BE(node, 0);
    tail.writeUInt32BE(version, 4);
    return Buffer.concat([head, tail]);
  }

  seal(treeId: string, node: number, version: number, key: Uint8Array): Buffer {
    const out = Buffer.alloc(SEAL_IV_LENGTH + key.length + SEAL_TAG_LENGTH);
    const iv = out.subarray(0, SEAL_IV_LENGTH);
    this.random(iv);
    const c = createCipheriv('aes-256-gcm', this.kek, iv);
    c.setAAD(this.aad(treeId, node, version));
    const ct = c.update(key);
    c.final();
    ct.copy(out, SEAL_IV_LENGTH);
    c.getAuthTag().copy(out, SEAL_IV_LENGTH + key.length);
    return out;
  }

  open(treeId: string, node: number, version: number, sealed: Uint8Array): Buffer {
    if (sealed.length <= SEAL_IV_LENGTH + SEAL_TAG_LENGTH) throw new LkhError('BAD_SNAPSHOT', `sealed key of node ${node} truncated`);
    const s = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.length);
    try {
      const d = createDecipheriv('aes-256-gcm', this.kek, s.subarray(0, SEAL_IV_LENGTH));
      d.setAAD(this.aad(treeId, node, version));
      d.setAuthTag(s.subarray(s.length - SEAL_TAG_LENGTH));
      const key = d.update(s.subarray(SEAL_IV_LENGTH, s.length - SEAL_TAG_LENGTH));
      d.final();
      return key;
    } catch {
      throw new LkhError('BAD_SNAPSHOT', `sealed key of node ${node} does not open under this KEK`);
    }
  }
}

/**
 * Saves and loads LKH trees through a repository, sealing node keys. After `saveAll` once, each
 * rekey is persisted with `saveChanges(result.changes)`, which writes only the nodes it changed.
 */
export class LkhTreeStore {
  constructor(
    private readonly repository: LkhTreeRepository,
    private readonly sealer: NodeKeySealer,
  ) {}

  private record(treeId: string, n: LkhNodeState): LkhNodeRecord {
    return { node: n.node, version: n.version, sealedKey: n.key ? this.sealer.seal(treeId, n.node, n.version, n.key) : null };
  }

  async saveAll(treeId: string, tree: LkhTree): Promise<void> {
    const nodes: LkhNodeRecord[] = [];
    for (const n of tree.allNodes()) nodes.push(this.record(treeId, n));
    await this.repository.write(treeId, tree.meta(), nodes, { replace: true });
  }

  /** Persists one rekey; change sets must be saved in the order the rekeys were made. */
  async saveChanges(treeId: string, tree: LkhTree, changes: LkhChangeSet): Promise<void> {
    if (changes.epoch !== tree.epoch) {
      throw new LkhError('BAD_SNAPSHOT', `change set of epoch ${changes.epoch} but the tree is at ${tree.epoch}`);
    }
    const nodes = changes.nodes.map((node) => this.record(treeId, tree.nodeState(node)));
    await this.repository.write(treeId, tree.meta(), nodes, { replace: false });
  }

  async load(treeId: string, options: Pick<LkhTreeOptions, 'random'> = {}): Promise<LkhTree | null> {
    const rec = await this.repository.load(treeId);
    if (!rec) return null;
    const states = rec.nodes.map((n) => ({
      node: n.node,
      version: n.version,
      key: n.sealedKey ? this.sealer.open(treeId, n.node, n.version, n.sealedKey) : null,
    }));
    return LkhTree.restore(options, rec.meta, states);
  }
}
