import { randomUUID, X509Certificate } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { AuditService, diff } from '../audit/audit.service.js';
import { CLOCK, type Clock } from '../common/clock.js';
import { DomainError, assertValid, rejectNulls } from '../common/domain-error.js';
import type { Actor } from '../common/request-context.js';
import { PadRuleEntity } from '../database/entities/pad-rule.entity.js';
import { TrustAnchorEntity } from '../database/entities/trust-anchor.entity.js';
import { UnitOfWork } from '../database/unit-of-work.js';
import { loadGroup } from '../groups/groups.service.js';
import { SecretBox } from '../security/secret-box.js';
import type { CreatePadRuleDto, CreateTrustAnchorDto, PadRuleResponse, TrustAnchorResponse, UpdatePadRuleDto } from './pad.dto.js';
import { validatePadRule, validateSpeakerRules } from './pad.rules.js';

const pskContext = (ruleId: string) => `pad_rules.pskSealed:${ruleId}`;

/** The API view of a rule: the sealed PSK is replaced by whether there is one. */
export function toPadRuleResponse(r: PadRuleEntity): PadRuleResponse {
  const { pskSealed, group: _group, ...rest } = r;
  return { ...rest, hasPsk: pskSealed !== null };
}

function auditView(r: PadRuleEntity): PadRuleResponse {
  return toPadRuleResponse(r);
}

/** PAD rules (who may join and speak, whom members accept as GCKS) and trust anchors, per group. */
@Injectable()
export class PadService {
  constructor(
    private readonly ds: DataSource,
    private readonly uow: UnitOfWork,
    private readonly audit: AuditService,
    private readonly secrets: SecretBox,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  async listRules(groupId: string): Promise<PadRuleResponse[]> {
    await loadGroup(this.ds.manager, groupId);
    const rules = await this.ds.getRepository(PadRuleEntity).find({ where: { groupId }, order: { createdAt: 'ASC', id: 'ASC' } });
    return rules.map(toPadRuleResponse);
  }

  async getRule(groupId: string, id: string): Promise<PadRuleResponse> {
    return toPadRuleResponse(await loadRule(this.ds.manager, groupId, id));
  }

  createRule(groupId: string, dto: CreatePadRuleDto, who: Actor): Promise<PadRuleResponse> {
    rejectNulls(dto, ['role']);
    return this.uow.run(async (em) => {
      const group = await loadGroup(em, groupId);
      const kind = dto.kind ?? 'member';
      const rule = Object.assign(new PadRuleEntity(), {
        id: randomUUID(),
        groupId,
        kind,
        idType: dto.idType,
        pattern: dto.pattern,
        role: dto.role !== undefined ? dto.role : kind === 'member' ? 'receiver' : null,
        pskSealed: null as string | null,
      });
      const existing = await em.getRepository(PadRuleEntity).findBy({ groupId });
      assertValid([
        ...validatePadRule({ ...rule, hasPsk: dto.psk !== undefined }),
        ...validateSpeakerRules(group, [...existing, rule], 'role'),
      ]);
      if (existing.some((r) => r.kind === rule.kind && r.idType === rule.idType && r.pattern === rule.pattern)) {
        throw DomainError.conflict('the group already has this rule', 'pattern');
      }
      if (dto.psk !== undefined) rule.pskSealed = this.secrets.seal(Buffer.from(dto.psk, 'utf8'), pskContext(rule.id));
      rule.createdAt = rule.updatedAt = this.clock.now().toISOString();
      await em.getRepository(PadRuleEntity).insert(rule);
      await this.audit.record(em, who, { action: 'create', entityType: 'pad-rule', entityId: rule.id, groupId, details: { after: auditView(rule) } });
      return toPadRuleResponse(rule);
    });
  }

  updateRule(groupId: string, id: string, dto: UpdatePadRuleDto, who: Actor): Promise<PadRuleResponse> {
    rejectNulls(dto, ['role']);
    return this.uow.run(async (em) => {
      const group = await loadGroup(em, groupId);
      const before = await loadRule(em, groupId, id);
      const after = Object.assign(new PadRuleEntity(), before);
      if (dto.pattern !== undefined) after.pattern = dto.pattern;
      if (dto.role !== undefined) after.role = dto.role;
      const others = (await em.getRepository(PadRuleEntity).findBy({ groupId })).filter((r) => r.id !== id);
      assertValid([
        ...validatePadRule({ ...after, hasPsk: dto.psk !== undefined || before.pskSealed !== null }),
        ...validateSpeakerRules(group, [...others, after], 'role'),
      ]);
      if (others.some((r) => r.kind === after.kind && r.idType === after.idType && r.pattern === after.pattern)) {
        throw DomainError.conflict('the group already has this rule', 'pattern');
      }
      if (dto.psk !== undefined) after.pskSealed = this.secrets.seal(Buffer.from(dto.psk, 'utf8'), pskContext(id));
      const changes = diff(auditView(before), auditView(after));
      if (Object.keys(changes).length === 0 && dto.psk === undefined) return toPadRuleResponse(before);
      after.updatedAt = this.clock.now().toISOString();
      await em.getRepository(PadRuleEntity).save(after);
      await this.audit.record(em, who, {
        action: 'update',
        entityType: 'pad-rule',
        entityId: id,
        groupId,
        details: { changes, ...(dto.psk !== undefined ? { pskReplaced: true } : {}) },
      });
      return toPadRuleResponse(after);
    });
  }

  removeRule(groupId: string, id: string, who: Actor): Promise<void> {
    return this.uow.run(async (em) => {
      const before = await loadRule(em, groupId, id);
      await em.getRepository(PadRuleEntity).delete({ id });
      await this.audit.record(em, who, { action: 'delete', entityType: 'pad-rule', entityId: id, groupId, details: { before: auditView(before) } });
    });
  }

  /** The PSK of a rule in clear, for the registration responder (a later issue). */
  async rulePsk(groupId: string, id: string): Promise<Buffer | null> {
    const r = await loadRule(this.ds.manager, groupId, id);
    return r.pskSealed === null ? null : this.secrets.open(r.pskSealed, pskContext(id));
  }

  async listAnchors(groupId: string): Promise<TrustAnchorResponse[]> {
    await loadGroup(this.ds.manager, groupId);
    const rows = await this.ds.getRepository(TrustAnchorEntity).find({ where: { groupId }, order: { createdAt: 'ASC', id: 'ASC' } });
    return rows.map(anchorView);
  }

  async getAnchor(groupId: string, id: string): Promise<TrustAnchorResponse> {
    return anchorView(await loadAnchor(this.ds.manager, groupId, id));
  }

  addAnchor(groupId: string, dto: CreateTrustAnchorDto, who: Actor): Promise<TrustAnchorResponse> {
    return this.uow.run(async (em) => {
      await loadGroup(em, groupId);
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(dto.pem);
      } catch {
        throw DomainError.validation([{ field: 'pem', message: 'is not a PEM X.509 certificate' }]);
      }
      if (!cert.ca) throw DomainError.validation([{ field: 'pem', message: 'a trust anchor must be a CA certificate (basicConstraints CA:TRUE)' }]);
      const anchor = Object.assign(new TrustAnchorEntity(), {
        id: randomUUID(),
        groupId,
        name: dto.name,
        pem: cert.toString(),
        fingerprint: cert.fingerprint256,
        subject: cert.subject.replace(/\n/g, ', '),
        notAfter: new Date(cert.validTo).toISOString(),
        createdAt: this.clock.now().toISOString(),
      });
      if (await em.getRepository(TrustAnchorEntity).findOneBy({ groupId, fingerprint: anchor.fingerprint })) {
        throw DomainError.conflict('the group already trusts this certificate', 'pem');
      }
      await em.getRepository(TrustAnchorEntity).insert(anchor);
      const { pem: _pem, ...summary } = anchorView(anchor);
      await this.audit.record(em, who, { action: 'create', entityType: 'trust-anchor', entityId: anchor.id, groupId, details: { after: summary } });
      return anchorView(anchor);
    });
  }

  removeAnchor(groupId: string, id: string, who: Actor): Promise<void> {
    return this.uow.run(async (em) => {
      const before = await loadAnchor(em, groupId, id);
      await em.getRepository(TrustAnchorEntity).delete({ id });
      const { pem: _pem, ...summary } = anchorView(before);
      await this.audit.record(em, who, { action: 'delete', entityType: 'trust-anchor', entityId: id, groupId, details: { before: summary } });
    });
  }
}

function anchorView(a: TrustAnchorEntity): TrustAnchorResponse {
  const { group: _group, ...rest } = a;
  return rest;
}

async function loadRule(em: EntityManager, groupId: string, id: string): Promise<PadRuleEntity> {
  await loadGroup(em, groupId);
  const r = await em.getRepository(PadRuleEntity).findOneBy({ id, groupId });
  if (!r) throw DomainError.notFound('PAD rule', id);
  return r;
}

async function loadAnchor(em: EntityManager, groupId: string, id: string): Promise<TrustAnchorEntity> {
  await loadGroup(em, groupId);
  const a = await em.getRepository(TrustAnchorEntity).findOneBy({ id, groupId });
  if (!a) throw DomainError.notFound('trust anchor', id);
  return a;
}
