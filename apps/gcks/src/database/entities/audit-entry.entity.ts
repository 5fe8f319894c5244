import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

/** One recorded change: who made it, when, to what, and the values before and after. */
@Entity({ name: 'audit_log' })
@Index('IDX_audit_log_group', ['groupId'])
export class AuditEntryEntity {
  @PrimaryGeneratedColumn('increment') id: number;
  @Column('text') at: string;
  /** `admin:<token id>` for the REST API, `cli` for the command line, `system` for the GCKS. */
  @Column('text') actor: string;
  @Column('text', { nullable: true }) remoteAddress: string | null;
  @Column('text') action: string;
  @Column('text') entityType: string;
  @Column('text') entityId: string;
  /** Kept as plain text (no foreign key) so the record outlives the group. */
  @Column('text', { nullable: true }) groupId: string | null;
  @Column('simple-json') details: Record<string, unknown>;
}
