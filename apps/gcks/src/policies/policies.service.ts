import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { AuditService, diff } from '../audit/audit.service.js';
import { CLOCK, type Clock } from '../common/clock.js';
import { DomainError, assertValid, rejectNulls } from '../common/domain-error.js';
import type { Actor } from '../common/request-context.js';
import type { GroupEntity } from '../database/entities/group.entity.js';
import { PolicyEntity } from '../database/entities/policy.entity.js';
import { UnitOfWork } from '../database/unit-of-work.js';
import { loadGroup } from '../groups/groups.service.js';
import type { CreatePolicyDto, UpdatePolicyDto } from './policy.dto.js';
import { validatePolicy, type PolicySettings } from './policy.rules.js';

/** Defaults after deployed group VPNs (REFERENCES.md): 1 h lifetimes, ATD 15 s, 2 retransmissions. */
export const POLICY_DEFAULTS = {
  action: 'protect',
  direction: 'symmetric',
  mode: 'tunnel',
  udpEncapsulation: false,
  espTransform: 'aes-gcm-256',
  replayWindow: 64,
  dataOriginAuth: 'none',
  tekLifetime: 3600,
  kekLifetime: 3600,
  rekeyRollover: true,
  atd: 15,
  dtd: 15,
  rekeyRetransmissions: 2,
  leaveBehaviour: 'immediate',
} as const;

const NULLABLE_POLICY_FIELDS = ['protocol', 'sourcePort', 'destinationPort', 'leaveBatchInterval'];

/** The host prefix of the group's own address, the default (and widest allowed) destination. */
export function groupDestination(g: Pick<GroupEntity, 'address' | 'addressType' | 'ipVersion'>): string {
  const host = g.addressType === 'broadcast' ? g.address.split('/')[0] : g.address;
  return `${host}/${g.ipVersion === 4 ? 32 : 128}`;
}

function defaultSource(g: GroupEntity): string | undefined {
  if (g.sourceMode === 'ssm') return g.ssmSources.length === 1 ? `${g.ssmSources[0]}/${g.ipVersion === 4 ? 32 : 128}` : undefined;
  return g.ipVersion === 4 ? '0.0.0.0/0' : '::/0';
}

@Injectable()
export class PoliciesService {
  constructor(
    private readonly ds: DataSource,
    private readonly uow: UnitOfWork,
    private readonly audit: AuditService,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  async list(groupId: string): Promise<PolicyEntity[]> {
    await loadGroup(this.ds.manager, groupId);
    return this.ds.getRepository(PolicyEntity).find({ where: { groupId }, order: { position: 'ASC' } });
  }

  async get(groupId: string, id: string): Promise<PolicyEntity> {
    return load(this.ds.manager, groupId, id);
  }

  create(groupId: string, dto: CreatePolicyDto, who: Actor): Promise<PolicyEntity> {
    rejectNulls(dto, NULLABLE_POLICY_FIELDS);
    return this.uow.run(async (em) => {
      const group = await loadGroup(em, groupId);
      const mode = dto.mode ?? POLICY_DEFAULTS.mode;
      const sourcePrefix = dto.sourcePrefix ?? defaultSource(group);
      if (sourcePrefix === undefined) {
        throw DomainError.validation([{ field: 'sourcePrefix', message: 'an SSM group with several sources needs an explicit source prefix' }]);
      }
      const settings: PolicySettings = {
        ...POLICY_DEFAULTS,
        name: dto.name,
        sourcePrefix,
        destinationPrefix: dto.destinationPrefix ?? groupDestination(group),
        protocol: dto.protocol ?? null,
        sourcePort: dto.sourcePort ?? null,
        destinationPort: dto.destinationPort ?? null,
        mode,
        addressPreservation: dto.addressPreservation ?? (mode === 'tunnel' ? 'both' : 'none'),
        antiReplay: dto.antiReplay ?? group.serviceModel !== 'any-to-any',
        leaveBatchInterval: dto.leaveBatchInterval ?? null,
        ...definedOnly(dto, ['action', 'direction', 'udpEncapsulation', 'espTransform', 'replayWindow', 'dataOriginAuth', 'tekLifetime', 'kekLifetime', 'rekeyRollover', 'atd', 'dtd', 'rekeyRetransmissions', 'leaveBehaviour']),
      };
      assertValid(validatePolicy(settings, group));
      await assertNameFree(em, groupId, settings.name, null);
      const siblings = await em.getRepository(PolicyEntity).find({ where: { groupId }, order: { position: 'ASC' } });
      const position = checkPosition(dto.position, siblings.length + 1);
      const now = this.clock.now().toISOString();
      const policy = Object.assign(new PolicyEntity(), settings, { id: randomUUID(), groupId, position, createdAt: now, updatedAt: now });
      siblings.splice(position - 1, 0, policy);
      await renumber(em, siblings, policy);
      await em.getRepository(PolicyEntity).insert(policy);
      await this.audit.record(em, who, { action: 'create', entityType: 'policy', entityId: policy.id, groupId, details: { after: { ...policy } } });
      return policy;
    });
  }

  update(groupId: string, id: string, dto: UpdatePolicyDto, who: Actor): Promise<PolicyEntity> {
    rejectNulls(dto, NULLABLE_POLICY_FIELDS);
    return this.uow.run(async (em) => {
      const group = await loadGroup(em, groupId);
      const before = await load(em, groupId, id);
      const { position: wanted, ...fields } = dto;
      const after = Object.assign(new PolicyEntity(), before, definedOnly(fields, Object.keys(fields) as (keyof typeof fields)[]));
      // Switching to transport mode drops the tunnel-only default instead of failing on it.
      if (dto.mode === 'transport' && dto.addressPreservation === undefined) after.addressPreservation = 'none';
      if (dto.leaveBehaviour === 'immediate' && dto.leaveBatchInterval === undefined) after.leaveBatchInterval = null;
      assertValid(validatePolicy(after, group));
      if (after.name !== before.name) await assertNameFree(em, groupId, after.name, id);
      const siblings = (await em.getRepository(PolicyEntity).find({ where: { groupId }, order: { position: 'ASC' } })).filter((p) => p.id !== id);
      const position = wanted === undefined ? before.position : checkPosition(wanted, siblings.length + 1);
      siblings.splice(position - 1, 0, after);
      await renumber(em, siblings, after);
      const changes = diff(before, after);
      if (Object.keys(changes).length === 0) return before;
      after.updatedAt = this.clock.now().toISOString();
      await em.getRepository(PolicyEntity).save(after);
      await this.audit.record(em, who, { action: 'update', entityType: 'policy', entityId: id, groupId, details: { changes } });
      return after;
    });
  }

  remove(groupId: string, id: string, who: Actor): Promise<void> {
    return this.uow.run(async (em) => {
      const before = await load(em, groupId, id);
      await em.getRepository(PolicyEntity).delete({ id });
      const rest = await em.getRepository(PolicyEntity).find({ where: { groupId }, order: { position: 'ASC' } });
      await renumber(em, rest, null);
      await this.audit.record(em, who, { action: 'delete', entityType: 'policy', entityId: id, groupId, details: { before: { ...before } } });
    });
  }
}

async function load(em: EntityManager, groupId: string, id: string): Promise<PolicyEntity> {
  await loadGroup(em, groupId);
  const p = await em.getRepository(PolicyEntity).findOneBy({ id, groupId });
  if (!p) throw DomainError.notFound('policy', id);
  return p;
}

async function assertNameFree(em: EntityManager, groupId: string, name: string, exceptId: string | null): Promise<void> {
  const other = await em.getRepository(PolicyEntity).findOneBy({ groupId, name });
  if (other && other.id !== exceptId) throw DomainError.conflict(`the group already has a policy named ${name}`, 'name');
}

function checkPosition(wanted: number | undefined, max: number): number {
  if (wanted === undefined) return max;
  if (wanted > max) throw DomainError.validation([{ field: 'position', message: `must be from 1 to ${max}` }]);
  return wanted;
}

/** Gives `ordered` the positions 1..n, saving the rows (other than `skip`) whose position moved. */
async function renumber(em: EntityManager, ordered: PolicyEntity[], skip: PolicyEntity | null): Promise<void> {
  for (const [i, p] of ordered.entries()) {
    if (p.position === i + 1) continue;
    p.position = i + 1;
    if (p !== skip) await em.getRepository(PolicyEntity).update({ id: p.id }, { position: p.position });
  }
}

function definedOnly<T extends object, K extends keyof T>(o: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
