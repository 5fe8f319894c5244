import { Check, Column, Entity, PrimaryColumn, Unique } from 'typeorm';

/** How a group's members are addressed (spec/000 §1.1). */
export const ADDRESS_TYPES = ['multicast', 'broadcast', 'anycast'] as const;
export type AddressType = (typeof ADDRESS_TYPES)[number];

/** Any-source or source-specific multicast (RFC 4607). */
export const SOURCE_MODES = ['asm', 'ssm'] as const;
export type SourceMode = (typeof SOURCE_MODES)[number];

/**
 * Service models of spec/000 Appendix A: A.1 one speaker, many receivers; A.2 several speakers,
 * each with its own SA; A.3 any member may speak, all share one SA.
 */
export const SERVICE_MODELS = ['unidirectional', 'per-speaker', 'any-to-any'] as const;
export type ServiceModel = (typeof SERVICE_MODELS)[number];

/** How GSA_REKEY messages reach members: to a multicast address, or one by one. */
export const REKEY_TRANSPORTS = ['multicast', 'unicast'] as const;
export type RekeyTransport = (typeof REKEY_TRANSPORTS)[number];

@Entity({ name: 'groups' })
@Unique('UQ_groups_name', ['name'])
@Check('CHK_groups_addressType', `"addressType" IN ('multicast','broadcast','anycast')`)
@Check('CHK_groups_ipVersion', `"ipVersion" IN (4, 6)`)
@Check('CHK_groups_sourceMode', `"sourceMode" IN ('asm','ssm')`)
@Check('CHK_groups_serviceModel', `"serviceModel" IN ('unidirectional','per-speaker','any-to-any')`)
@Check('CHK_groups_rekeyTransport', `"rekeyTransport" IN ('multicast','unicast')`)
export class GroupEntity {
  @PrimaryColumn('text') id: string;
  @Column('text') name: string;
  @Column('text') address: string;
  @Column('text') addressType: AddressType;
  /** 4 or 6, derived from `address`. */
  @Column('integer') ipVersion: number;
  @Column('text') sourceMode: SourceMode;
  /** Authorized source addresses of an SSM group (JSON array; empty for ASM). */
  @Column('simple-json') ssmSources: string[];
  @Column('text') serviceModel: ServiceModel;
  @Column('text') rekeyTransport: RekeyTransport;
  @Column('text', { nullable: true }) rekeyAddress: string | null;
  @Column('integer', { nullable: true }) rekeyPort: number | null;
  @Column('integer') maxSpeakers: number;
  @Column('integer') lkhDegree: number;
  @Column('boolean') enabled: boolean;
  @Column('text') createdAt: string;
  @Column('text') updatedAt: string;
}
