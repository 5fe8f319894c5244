import { Check, Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { GroupEntity } from './group.entity.js';

/** GSPD entry actions (RFC 4301 §4.4.1). */
export const POLICY_ACTIONS = ['protect', 'bypass', 'discard'] as const;
export type PolicyAction = (typeof POLICY_ACTIONS)[number];

/** GSPD directionality (spec/000 §4.1.1); symmetric is the default. */
export const DIRECTIONS = ['symmetric', 'sender-only', 'receiver-only'] as const;
export type Direction = (typeof DIRECTIONS)[number];

export const IPSEC_MODES = ['tunnel', 'transport'] as const;
export type IpsecMode = (typeof IPSEC_MODES)[number];

/** Tunnel mode address preservation (spec/000 §3.1); tunnel mode only. */
export const ADDRESS_PRESERVATIONS = ['none', 'source', 'destination', 'both'] as const;
export type AddressPreservation = (typeof ADDRESS_PRESERVATIONS)[number];

/** ESP transforms: AES-GCM with a 16-octet ICV (RFC 4106), AES-CBC with HMAC-SHA-256-128 (RFC 4868). */
export const ESP_TRANSFORMS = ['aes-gcm-128', 'aes-gcm-256', 'aes-cbc-128-hmac-sha256', 'aes-cbc-256-hmac-sha256'] as const;
export type EspTransform = (typeof ESP_TRANSFORMS)[number];

/** Data origin authentication (spec/000 §4.3): none, or a digital signature over each packet. */
export const DATA_ORIGIN_AUTHS = ['none', 'rsa-pkcs1-sha256', 'ecdsa-p256-sha256', 'ed25519'] as const;
export type DataOriginAuth = (typeof DATA_ORIGIN_AUTHS)[number];

/** What the GCKS does when a member leaves: rekey at once, or batch departures (Zhang et al. 2003). */
export const LEAVE_BEHAVIOURS = ['immediate', 'batched'] as const;
export type LeaveBehaviour = (typeof LEAVE_BEHAVIOURS)[number];

/** One ordered GSPD entry of a group. */
@Entity({ name: 'policies' })
@Index('IDX_policies_group_name', ['groupId', 'name'], { unique: true })
@Index('IDX_policies_group_position', ['groupId', 'position'])
@Check('CHK_policies_action', `"action" IN ('protect','bypass','discard')`)
@Check('CHK_policies_direction', `"direction" IN ('symmetric','sender-only','receiver-only')`)
@Check('CHK_policies_mode', `"mode" IN ('tunnel','transport')`)
@Check('CHK_policies_addressPreservation', `"addressPreservation" IN ('none','source','destination','both')`)
@Check('CHK_policies_atd', `"atd" > 0`)
@Check('CHK_policies_dtd', `"dtd" > 0`)
export class PolicyEntity {
  @PrimaryColumn('text') id: string;
  @Column('text') groupId: string;
  @ManyToOne(() => GroupEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'groupId' })
  group?: GroupEntity;
  /** 1-based order among the group's entries; the first match wins. */
  @Column('integer') position: number;
  @Column('text') name: string;
  @Column('text') sourcePrefix: string;
  @Column('text') destinationPrefix: string;
  /** IP protocol number, or null for any. */
  @Column('integer', { nullable: true }) protocol: number | null;
  @Column('integer', { nullable: true }) sourcePort: number | null;
  @Column('integer', { nullable: true }) destinationPort: number | null;
  @Column('text') action: PolicyAction;
  @Column('text') direction: Direction;
  @Column('text') mode: IpsecMode;
  @Column('text') addressPreservation: AddressPreservation;
  @Column('boolean') udpEncapsulation: boolean;
  @Column('text') espTransform: EspTransform;
  @Column('boolean') antiReplay: boolean;
  @Column('integer') replayWindow: number;
  @Column('text') dataOriginAuth: DataOriginAuth;
  /** Seconds. */
  @Column('integer') tekLifetime: number;
  /** Seconds. */
  @Column('integer') kekLifetime: number;
  @Column('boolean') rekeyRollover: boolean;
  /** Activation time delay, seconds (spec/000 §4.2.1). */
  @Column('integer') atd: number;
  /** Deactivation time delay, seconds (spec/000 §4.2.1). */
  @Column('integer') dtd: number;
  @Column('integer') rekeyRetransmissions: number;
  @Column('text') leaveBehaviour: LeaveBehaviour;
  /** Seconds between batched rekeys; null unless `leaveBehaviour` is batched. */
  @Column('integer', { nullable: true }) leaveBatchInterval: number | null;
  @Column('text') createdAt: string;
  @Column('text') updatedAt: string;
}
