import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { DataSource, EntityManager } from 'typeorm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditService, type AuditChange } from '../../apps/gcks/src/audit/audit.service.js';
import type { Clock } from '../../apps/gcks/src/common/clock.js';
import { DomainError, ErrorCode } from '../../apps/gcks/src/common/domain-error.js';
import type { Actor } from '../../apps/gcks/src/common/request-context.js';
import { openDatabase } from '../../apps/gcks/src/database/data-source.js';
import { UnitOfWork } from '../../apps/gcks/src/database/unit-of-work.js';
import { GroupsService } from '../../apps/gcks/src/groups/groups.service.js';
import { PadService } from '../../apps/gcks/src/pad/pad.service.js';
import { PoliciesService } from '../../apps/gcks/src/policies/policies.service.js';
import { MasterKeyService } from '../../apps/gcks/src/security/master-key.service.js';
import { SecretBox, SecretBoxError } from '../../apps/gcks/src/security/secret-box.js';
import { tempDir } from '../support/temp-dir.js';

const clock: Clock = { now: () => new Date('2026-11-22T12:00:00.000Z') };
const who: Actor = { actor: 'admin:test', remoteAddress: '127.0.0.1' };

/** An audit service whose writes fail, to prove a change never lands without its audit record. */
class FailingAudit extends AuditService {
  override async record(_em: EntityManager, _who: Actor, _change: AuditChange): Promise<void> {
    throw new Error('audit storage failed');
  }
}

describe('GCKS services on a real SQLite file', () => {
  let dir: ReturnType<typeof tempDir>;
  let ds: DataSource;
  let file: string;
  const services = (d: DataSource, audit = new AuditService(d, clock)) => {
    const uow = new UnitOfWork(d);
    const master = MasterKeyService.loadOrCreate(join(dir.path, 'master.key'), randomBytes);
    return {
      groups: new GroupsService(d, uow, audit, clock),
      policies: new PoliciesService(d, uow, audit, clock),
      pad: new PadService(d, uow, audit, new SecretBox(master, randomBytes), clock),
    };
  };

  beforeEach(async () => {
    dir = tempDir('gcks-medium-');
    file = join(dir.path, 'gcks.sqlite');
    ds = await openDatabase(file);
  });
  afterEach(async () => {
    if (ds?.isInitialized) await ds.destroy();
    dir.remove();
  });

  it('lets exactly one of several concurrent creates with the same name win', async () => {
    const { groups } = services(ds);
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => groups.create({ name: 'race', address: `239.0.0.${i + 1}` }, who)),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results.filter((x): x is PromiseRejectedResult => x.status === 'rejected')) {
      expect(r.reason).toBeInstanceOf(DomainError);
      expect((r.reason as DomainError).code).toBe(ErrorCode.CONFLICT);
    }
    expect(await ds.query(`SELECT count(*) AS n FROM groups`)).toEqual([{ n: 1 }]);
    expect(await ds.query(`SELECT count(*) AS n FROM audit_log WHERE entityType = 'group'`)).toEqual([{ n: 1 }]);
  });

  it('writes nothing when the audit record cannot be written', async () => {
    const { groups } = services(ds, new FailingAudit(ds, clock));
    await expect(groups.create({ name: 'g', address: '239.1.1.1' }, who)).rejects.toThrow('audit storage failed');
    expect(await ds.query(`SELECT count(*) AS n FROM groups`)).toEqual([{ n: 0 }]);
    // The queue recovers after a failure.
    const ok = services(ds);
    await expect(ok.groups.create({ name: 'g', address: '239.1.1.1' }, who)).resolves.toMatchObject({ name: 'g' });
  });

  it('keeps policy positions contiguous through inserts, moves and deletes', async () => {
    const { groups, policies } = services(ds);
    const g = await groups.create({ name: 'g', address: '239.1.1.1' }, who);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await policies.create(g.id, { name: `p${i}`, position: i % 2 === 0 ? 1 : undefined }, who)).id);
    await policies.update(g.id, ids[0], { position: 6 }, who);
    await policies.remove(g.id, ids[3], who);
    await policies.update(g.id, ids[5], { position: 1 }, who);
    const rows: { name: string; position: number }[] = await ds.query(`SELECT name, position FROM policies ORDER BY position`);
    expect(rows.map((r) => r.position)).toEqual([1, 2, 3, 4, 5]);
    expect(rows.map((r) => r.name)).toEqual(['p5', 'p4', 'p2', 'p1', 'p0']);
  });

  it('survives closing and reopening the database, PSKs included', async () => {
    const { groups, policies, pad } = services(ds);
    const g = await groups.create({ name: 'persist', address: 'ff0e::42' }, who);
    await policies.create(g.id, { name: 'p', udpEncapsulation: true }, who);
    const rule = await pad.createRule(g.id, { idType: 'psk', pattern: 'dev-1', psk: 'a sixteen+ char secret' }, who);
    await ds.destroy();

    ds = await openDatabase(file);
    const again = services(ds);
    expect(await again.groups.get(g.id)).toMatchObject({ name: 'persist', ipVersion: 6, rekeyAddress: 'ff0e::42' });
    expect(await again.policies.list(g.id)).toEqual([expect.objectContaining({ name: 'p', udpEncapsulation: true, destinationPrefix: 'ff0e::42/128' })]);
    expect((await again.pad.rulePsk(g.id, rule.id))?.toString()).toBe('a sixteen+ char secret');

    const stranger = new SecretBox(MasterKeyService.loadOrCreate(join(dir.path, 'other.key'), randomBytes), randomBytes);
    const [{ pskSealed }] = await ds.query(`SELECT pskSealed FROM pad_rules`);
    expect(() => stranger.open(pskSealed, `pad_rules.pskSealed:${rule.id}`)).toThrow(SecretBoxError);
  });
});
