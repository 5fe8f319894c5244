import { Column, Entity, PrimaryColumn } from 'typeorm';

/** One LKH key tree (libs/lkh), usually one per group: its shape and how far it has rekeyed. */
@Entity({ name: 'lkh_trees' })
export class LkhTreeEntity {
  /** The tree's id (the GCKS uses the group id). */
  @PrimaryColumn('text') id: string;
  @Column('integer') degree: number;
  /** Node key size in octets (16, 24, 32). */
  @Column('integer') keySize: number;
  /** Level of the root above the leaves. */
  @Column('integer') height: number;
  /** Number of rekeys made; never goes backwards. */
  @Column('integer') epoch: number;
  @Column('text') updatedAt: string;
}
