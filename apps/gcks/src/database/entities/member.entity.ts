import { Check, Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { GroupEntity } from './group.entity.js';
import type { MemberRole } from './pad-rule.entity.js';

export const MEMBER_STATES = ['registered', 'left', 'evicted'] as const;
export type MemberState = (typeof MEMBER_STATES)[number];

/** A group member as registration (a later issue) records it; read-only through the API. */
@Entity({ name: 'members' })
@Check('CHK_members_role', `"role" IN ('receiver','speaker','both')`)
@Check('CHK_members_state', `"state" IN ('registered','left','evicted')`)
@Index('IDX_members_group_identity', ['groupId', 'identity'], { unique: true })
export class MemberEntity {
  @PrimaryColumn('text') id: string;
  @Column('text') groupId: string;
  @ManyToOne(() => GroupEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'groupId' })
  group?: GroupEntity;
  @Column('text') identity: string;
  @Column('text') role: MemberRole;
  @Column('text') state: MemberState;
  /** Address the member registered from. */
  @Column('text', { nullable: true }) address: string | null;
  /** Sender ID allotted to a speaker (RFC 6054), if any. */
  @Column('integer', { nullable: true }) senderId: number | null;
  @Column('text') joinedAt: string;
  @Column('text', { nullable: true }) lastSeenAt: string | null;
}
