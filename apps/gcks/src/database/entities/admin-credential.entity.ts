import { Check, Column, Entity, PrimaryColumn } from 'typeorm';

/** The single admin credential; only the SHA-256 of the bearer token is stored. */
@Entity({ name: 'admin_credentials' })
@Check('CHK_admin_credentials_single', `"id" = 1`)
export class AdminCredentialEntity {
  /** Always 1: there is one admin credential. */
  @PrimaryColumn('integer') id: number;
  /** Lowercase hex SHA-256 of the token. */
  @Column('text') tokenHash: string;
  @Column('text') createdAt: string;
  @Column('text', { nullable: true }) rotatedAt: string | null;
}
