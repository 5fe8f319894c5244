import { Check, Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { GroupEntity } from './group.entity.js';

/**
 * A PAD rule (spec/000 §4.1.3.1) either admits members (`member`) or names an identity members
 * must accept as the group's GCKS (`gcks`).
 */
export const PAD_KINDS = ['member', 'gcks'] as const;
export type PadKind = (typeof PAD_KINDS)[number];

/** What the pattern is matched against: a certificate subject, one of its SANs, or a PSK identity. */
export const PAD_ID_TYPES = ['subject', 'san-dns', 'san-email', 'san-ip', 'san-uri', 'psk'] as const;
export type PadIdType = (typeof PAD_ID_TYPES)[number];

export const MEMBER_ROLES = ['receiver', 'speaker', 'both'] as const;
export type MemberRole = (typeof MEMBER_ROLES)[number];

@Entity({ name: 'pad_rules' })
@Check('CHK_pad_rules_kind', `"kind" IN ('member','gcks')`)
@Check('CHK_pad_rules_role', `"role" IS NULL OR "role" IN ('receiver','speaker','both')`)
@Index('IDX_pad_rules_unique', ['groupId', 'kind', 'idType', 'pattern'], { unique: true })
export class PadRuleEntity {
  @PrimaryColumn('text') id: string;
  @Column('text') groupId: string;
  @ManyToOne(() => GroupEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'groupId' })
  group?: GroupEntity;
  @Column('text') kind: PadKind;
  @Column('text') idType: PadIdType;
  /** Exact identity, or a pattern where `*` matches any run of characters. */
  @Column('text') pattern: string;
  /** Role granted to a matching member; null for `gcks` rules. */
  @Column('text', { nullable: true }) role: MemberRole | null;
  /** Pre-shared key of a `psk` rule, sealed under the master key; never returned by the API. */
  @Column('text', { nullable: true }) pskSealed: string | null;
  @Column('text') createdAt: string;
  @Column('text') updatedAt: string;
}
