import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { AuditService, diff } from '../audit/audit.service.js';
import { CLOCK, type Clock } from '../common/clock.js';
import { DomainError, assertValid, rejectNulls, type FieldError } from '../common/domain-error.js';
import type { Actor } from '../common/request-context.js';
import { GroupEntity, type ServiceModel } from '../database/entities/group.entity.js';
import { PadRuleEntity } from '../database/entities/pad-rule.entity.js';
import { PolicyEntity } from '../database/entities/policy.entity.js';
import { UnitOfWork } from '../database/unit-of-work.js';
import { validateSpeakerRules } from '../pad/pad.rules.js';
import { validatePolicy } from '../policies/policy.rules.js';
import type { CreateGroupDto, UpdateGroupDto } from './group.dto.js';
import { groupAddress, validateGroupSettings, type GroupSettings } from './group.rules.js';

/** Default rekey port: G-IKEv2 over UDP 4500 (DESIGN.md, RFC 3948 §2.2). */
export const DEFAULT_REKEY_PORT = 4500;
export const DEFAULT_LKH_DEGREE = 4;
export const DEFAULT_MAX_SPEAKERS: { readonly [M in ServiceModel]: number } = {
  unidirectional: 1,
  'per-speaker': 16,
  'any-to-any': 64,
};

const NULLABLE_GROUP_FIELDS = ['rekeyAddress', 'rekeyPort'];

/** Which group field a policy cross-check failure is reported on when the group changes. */
const POLICY_FIELD_TO_GROUP_FIELD: Readonly<Record<string, string>> = {
  sourcePrefix: 'ssmSources',
  destinationPrefix: 'address',
  antiReplay: 'serviceModel',
};

export async function loadGroup(em: EntityManager, id: string): Promise<GroupEntity> {
  const g = await em.getRepository(GroupEntity).findOneBy({ id });
  if (!g) throw DomainError.notFound('group', id);
  return g;
}

@Injectable()
export class GroupsService {
  constructor(
    private readonly ds: DataSource,
    private readonly uow: UnitOfWork,
    private readonly audit: AuditService,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  list(): Promise<GroupEntity[]> {
    return this.ds.getRepository(GroupEntity).find({ order: { name: 'ASC' } });
  }

  get(id: string): Promise<GroupEntity> {
    return loadGroup(this.ds.manager, id);
  }

  create(dto: CreateGroupDto, who: Actor): Promise<GroupEntity> {
    rejectNulls(dto, NULLABLE_GROUP_FIELDS);
    const addressType = dto.addressType ?? 'multicast';
    const rekeyTransport = dto.rekeyTransport ?? 'multicast';
    const serviceModel = dto.serviceModel ?? 'per-speaker';
    const settings: GroupSettings = {
      name: dto.name,
      address: dto.address,
      addressType,
      sourceMode: dto.sourceMode ?? 'asm',
      ssmSources: dto.ssmSources ?? [],
      serviceModel,
      rekeyTransport,
      rekeyAddress:
        dto.rekeyAddress !== undefined ? dto.rekeyAddress : rekeyTransport === 'multicast' && addressType === 'multicast' ? dto.address : null,
      rekeyPort: dto.rekeyPort !== undefined ? dto.rekeyPort : rekeyTransport === 'multicast' ? DEFAULT_REKEY_PORT : null,
      maxSpeakers: dto.maxSpeakers ?? DEFAULT_MAX_SPEAKERS[serviceModel],
      lkhDegree: dto.lkhDegree ?? DEFAULT_LKH_DEGREE,
      enabled: dto.enabled ?? true,
    };
    return this.uow.run(async (em) => {
      assertValid(validateGroupSettings(settings));
      await this.assertNameFree(em, settings.name, null);
      const now = this.clock.now().toISOString();
      const group = Object.assign(new GroupEntity(), settings, {
        id: randomUUID(),
        ipVersion: ipVersionOf(settings),
        createdAt: now,
        updatedAt: now,
      });
      await em.getRepository(GroupEntity).insert(group);
      await this.audit.record(em, who, { action: 'create', entityType: 'group', entityId: group.id, groupId: group.id, details: { after: { ...group } } });
      return group;
    });
  }

  update(id: string, dto: UpdateGroupDto, who: Actor): Promise<GroupEntity> {
    rejectNulls(dto, NULLABLE_GROUP_FIELDS);
    return this.uow.run(async (em) => {
      const before = await loadGroup(em, id);
      const next: GroupSettings = { ...pickSettings(before) };
      for (const [k, v] of Object.entries(dto) as [keyof GroupSettings, never][]) {
        if (v !== undefined) next[k] = v;
      }
      // Follow-on defaults, so that switching one setting does not force the client to clear others.
      if (dto.rekeyAddress === undefined) {
        if (next.rekeyTransport === 'unicast') next.rekeyAddress = null;
        else if (before.rekeyTransport === 'unicast' || before.rekeyAddress === before.address) {
          next.rekeyAddress = next.addressType === 'multicast' ? next.address : null;
        }
      }
      if (dto.rekeyPort === undefined) {
        if (next.rekeyTransport === 'unicast') next.rekeyPort = null;
        else if (next.rekeyPort === null) next.rekeyPort = DEFAULT_REKEY_PORT;
      }
      const errors = validateGroupSettings(next);
      if (errors.length === 0) errors.push(...(await this.crossCheck(em, id, next)));
      assertValid(errors);
      if (next.name !== before.name) await this.assertNameFree(em, next.name, id);
      const after = Object.assign(new GroupEntity(), before, next, {
        ipVersion: ipVersionOf(next),
        updatedAt: this.clock.now().toISOString(),
      });
      const changes = diff(before, after);
      if (Object.keys(changes).length === 0) return before;
      await em.getRepository(GroupEntity).save(after);
      await this.audit.record(em, who, { action: 'update', entityType: 'group', entityId: id, groupId: id, details: { changes } });
      return after;
    });
  }

  remove(id: string, who: Actor): Promise<void> {
    return this.uow.run(async (em) => {
      const before = await loadGroup(em, id);
      await em.getRepository(GroupEntity).delete({ id });
      await this.audit.record(em, who, { action: 'delete', entityType: 'group', entityId: id, groupId: id, details: { before: { ...before } } });
    });
  }

  /** A changed group must still admit its existing policies and PAD rules. */
  private async crossCheck(em: EntityManager, id: string, next: GroupSettings): Promise<FieldError[]> {
    const errors: FieldError[] = [];
    const policies = await em.getRepository(PolicyEntity).find({ where: { groupId: id }, order: { position: 'ASC' } });
    for (const p of policies) {
      for (const e of validatePolicy(p, next)) {
        errors.push({ field: POLICY_FIELD_TO_GROUP_FIELD[e.field] ?? 'address', message: `conflicts with policy ${p.name}: ${e.field} ${e.message}` });
      }
    }
    const rules = await em.getRepository(PadRuleEntity).findBy({ groupId: id });
    errors.push(...validateSpeakerRules(next, rules, 'serviceModel'));
    return errors;
  }

  private async assertNameFree(em: EntityManager, name: string, exceptId: string | null): Promise<void> {
    const other = await em.getRepository(GroupEntity).findOneBy({ name });
    if (other && other.id !== exceptId) throw DomainError.conflict(`a group named ${name} already exists`, 'name');
  }
}

function ipVersionOf(g: GroupSettings): number {
  const a = groupAddress(g);
  if ('error' in a) throw new Error('ipVersionOf called on an invalid group');
  return a.address.version;
}

function pickSettings(g: GroupEntity): GroupSettings {
  const { name, address, addressType, sourceMode, ssmSources, serviceModel, rekeyTransport, rekeyAddress, rekeyPort, maxSpeakers, lkhDegree, enabled } = g;
  return { name, address, addressType, sourceMode, ssmSources, serviceModel, rekeyTransport, rekeyAddress, rekeyPort, maxSpeakers, lkhDegree, enabled };
}
