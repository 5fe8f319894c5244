import { createHash, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DataSource, EntityManager } from 'typeorm';
import type { Clock, RandomBytes } from '../common/clock.js';
import { AdminCredentialEntity } from '../database/entities/admin-credential.entity.js';
import { AuditEntryEntity } from '../database/entities/audit-entry.entity.js';

/** Bytes of randomness in an admin token (256 bits). */
export const ADMIN_TOKEN_BYTES = 32;
const CREDENTIAL_ID = 1;

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A short, non-secret name for a token (the start of its hash) used in audit records and logs. */
export function tokenId(tokenHash: string): string {
  return tokenHash.slice(0, 12);
}

function writeTokenFile(path: string, token: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
}

async function install(em: EntityManager, token: string, clock: Clock, rotated: boolean): Promise<string> {
  const now = clock.now().toISOString();
  const tokenHash = hashToken(token);
  const repo = em.getRepository(AdminCredentialEntity);
  const existing = await repo.findOneBy({ id: CREDENTIAL_ID });
  await repo.save({
    id: CREDENTIAL_ID,
    tokenHash,
    createdAt: existing?.createdAt ?? now,
    rotatedAt: rotated ? now : null,
  });
  return tokenHash;
}

export interface TokenIssue {
  /** Whether a new token was written (first start or rotation). */
  readonly issued: boolean;
  /** The file holding the token (only meaningful when `issued`). */
  readonly file: string;
  readonly tokenId: string;
}

/**
 * On first start: generates the admin bearer token, stores only its SHA-256, writes the token to
 * `file` (mode 0600). Later starts leave everything as it is.
 */
export async function ensureAdminToken(ds: DataSource, file: string, clock: Clock, random: RandomBytes): Promise<TokenIssue> {
  const existing = await ds.getRepository(AdminCredentialEntity).findOneBy({ id: CREDENTIAL_ID });
  if (existing) return { issued: false, file, tokenId: tokenId(existing.tokenHash) };
  const token = random(ADMIN_TOKEN_BYTES).toString('base64url');
  const hash = await ds.transaction(async (em) => {
    const h = await install(em, token, clock, false);
    await em.getRepository(AuditEntryEntity).save(auditRow(clock, 'system', 'create', h));
    return h;
  });
  writeTokenFile(file, token);
  return { issued: true, file, tokenId: tokenId(hash) };
}

/** Replaces the admin token (CLI `rotate-token`); the old one stops working at once. */
export async function rotateAdminToken(ds: DataSource, file: string, clock: Clock, random: RandomBytes, actor = 'cli'): Promise<TokenIssue> {
  const token = random(ADMIN_TOKEN_BYTES).toString('base64url');
  const hash = await ds.transaction(async (em) => {
    const h = await install(em, token, clock, true);
    await em.getRepository(AuditEntryEntity).save(auditRow(clock, actor, 'rotate', h));
    return h;
  });
  writeTokenFile(file, token);
  return { issued: true, file, tokenId: tokenId(hash) };
}

function auditRow(clock: Clock, actor: string, action: string, hash: string): AuditEntryEntity {
  return Object.assign(new AuditEntryEntity(), {
    at: clock.now().toISOString(),
    actor,
    remoteAddress: null,
    action,
    entityType: 'admin-credential',
    entityId: String(CREDENTIAL_ID),
    groupId: null,
    details: { tokenId: tokenId(hash) },
  });
}

/**
 * Checks a presented bearer token against the stored hash (constant-time), reading the hash
 * each time so a rotation by the CLI takes effect without a restart. Returns the token id or null.
 */
export async function verifyAdminToken(ds: DataSource, presented: string): Promise<string | null> {
  const row = await ds.getRepository(AdminCredentialEntity).findOneBy({ id: CREDENTIAL_ID });
  if (!row) return null;
  const a = Buffer.from(hashToken(presented), 'hex');
  const b = Buffer.from(row.tokenHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b) ? tokenId(row.tokenHash) : null;
}
