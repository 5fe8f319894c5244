import { Controller, Get, Header, Module } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { DataSource } from 'typeorm';

/**
 * Prometheus metrics of the GCKS (issue 6: "/metrics on both apps"): groups, members by state,
 * audit events by action, read from the database at scrape time, plus the process's default
 * metrics. Behind the admin bearer token like the rest of the API (Prometheus sends it with
 * `authorization.credentials_file`). Counts only; no identities, no key material.
 */
@ApiTags('metrics')
@ApiBearerAuth()
@Controller('metrics')
export class MetricsController {
  private readonly registry = new Registry();

  constructor(ds: DataSource) {
    collectDefaultMetrics({ register: this.registry, prefix: 'groupsec_gcks_' });
    new Gauge({
      name: 'groupsec_gcks_groups',
      help: 'Groups defined',
      registers: [this.registry],
      async collect() {
        const [r] = (await ds.query('SELECT COUNT(*) AS n FROM "groups"')) as { n: number }[];
        this.set(Number(r?.n ?? 0));
      },
    });
    new Gauge({
      name: 'groupsec_gcks_members',
      help: 'Members by state (registered, left, evicted)',
      labelNames: ['state'],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const r of (await ds.query('SELECT "state", COUNT(*) AS n FROM "members" GROUP BY "state"')) as { state: string; n: number }[]) this.set({ state: r.state }, Number(r.n));
      },
    });
    new Gauge({
      name: 'groupsec_gcks_audit_events',
      help: 'Audit log entries by action (register, refuse, evict, rekey, ...)',
      labelNames: ['action'],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const r of (await ds.query('SELECT "action", COUNT(*) AS n FROM "audit_log" GROUP BY "action"')) as { action: string; n: number }[]) this.set({ action: r.action }, Number(r.n));
      },
    });
  }

  @Get()
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  @ApiOkResponse({ description: 'Prometheus text exposition format' })
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}

@Module({ controllers: [MetricsController] })
export class MetricsModule {}
