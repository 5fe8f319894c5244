import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { GroupEntity } from './group.entity.js';

/** A CA certificate members' and the GCKS's certificates must chain to (spec/000 §4.1.3.1). */
@Entity({ name: 'trust_anchors' })
@Index('IDX_trust_anchors_unique', ['groupId', 'fingerprint'], { unique: true })
export class TrustAnchorEntity {
  @PrimaryColumn('text') id: string;
  @Column('text') groupId: string;
  @ManyToOne(() => GroupEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'groupId' })
  group?: GroupEntity;
  @Column('text') name: string;
  @Column('text') pem: string;
  /** SHA-256 fingerprint, colon-separated hex as node:crypto prints it. */
  @Column('text') fingerprint: string;
  @Column('text') subject: string;
  @Column('text') notAfter: string;
  @Column('text') createdAt: string;
}
