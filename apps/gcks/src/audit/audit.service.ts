import { Inject, Injectable } from '@nestjs/common';
import { DataSource, LessThan, type EntityManager, type FindOptionsWhere } from 'typeorm';
import { CLOCK, type Clock } from '../common/clock.js';
import type { Actor } from '../common/request-context.js';
import { AuditEntryEntity } from '../database/entities/audit-entry.entity.js';

export interface AuditChange {
  action: 'create' | 'update' | 'delete';
  entityType: 'group' | 'policy' | 'pad-rule' | 'trust-anchor';
  entityId: string;
  groupId: string | null;
  /** `before`/`after` values (never secrets). */
  details: Record<string, unknown>;
}

/** Appends to and reads the audit log. Writes happen inside the caller's transaction. */
@Injectable()
export class AuditService {
  constructor(
    private readonly ds: DataSource,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  async record(em: EntityManager, who: Actor, change: AuditChange): Promise<void> {
    const row = Object.assign(new AuditEntryEntity(), {
      at: this.clock.now().toISOString(),
      actor: who.actor,
      remoteAddress: who.remoteAddress,
      ...change,
    });
    await em.getRepository(AuditEntryEntity).save(row);
  }

  /** Newest first; `beforeId` pages backwards. */
  list(q: { groupId?: string; beforeId?: number; limit: number }): Promise<AuditEntryEntity[]> {
    const where: FindOptionsWhere<AuditEntryEntity> = {};
    if (q.groupId) where.groupId = q.groupId;
    if (q.beforeId) where.id = LessThan(q.beforeId);
    return this.ds.getRepository(AuditEntryEntity).find({ where, order: { id: 'DESC' }, take: q.limit });
  }
}

/** The fields that differ between two versions of a record, as `{ field: { from, to } }`. */
export function diff<T extends object>(before: T, after: T): Record<string, { from: unknown; to: unknown }> {
  const out: Record<string, { from: unknown; to: unknown }> = {};
  for (const k of Object.keys(after) as (keyof T & string)[]) {
    if (k === 'updatedAt') continue;
    if (JSON.stringify(before[k]) !== JSON.stringify(after[k])) out[k] = { from: before[k], to: after[k] };
  }
  return out;
}
