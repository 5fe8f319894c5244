import { Column, Entity, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { LkhTreeEntity } from './lkh-tree.entity.js';

/**
 * One node of an LKH tree: its version and its key sealed with AES-256-GCM under the master key
 * (libs/lkh NodeKeySealer; never a clear key in a row). `sealedKey` is null while the node's
 * subtree holds no member; the row stays so versions, and hence Key IDs, are never reused.
 */
@Entity({ name: 'lkh_nodes' })
export class LkhNodeEntity {
  @PrimaryColumn('text') treeId: string;
  @ManyToOne(() => LkhTreeEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'treeId' })
  tree?: LkhTreeEntity;
  /** Node index (libs/lkh layout.ts). */
  @PrimaryColumn('integer') node: number;
  @Column('integer') version: number;
  @Column('blob', { nullable: true }) sealedKey: Buffer | null;
}
