import { readFileSync } from 'node:fs';
import type { LoggerService } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { createApp, type GcksApp } from '../../apps/gcks/src/bootstrap.js';
import { loadConfig, type GcksConfig } from '../../apps/gcks/src/config/gcks-config.js';
import { tempDir } from './temp-dir.js';

/** Keeps log lines in memory so tests can assert what was logged (and what was not). */
export class CapturingLogger implements LoggerService {
  readonly lines: { level: string; message: string; context?: string }[] = [];
  private push(level: string, message: unknown, rest: unknown[]): void {
    const context = typeof rest[rest.length - 1] === 'string' ? (rest[rest.length - 1] as string) : undefined;
    this.lines.push({ level, message: String(message), context });
  }
  log(m: unknown, ...r: unknown[]) { this.push('log', m, r); }
  error(m: unknown, ...r: unknown[]) { this.push('error', m, r); }
  warn(m: unknown, ...r: unknown[]) { this.push('warn', m, r); }
  debug(m: unknown, ...r: unknown[]) { this.push('debug', m, r); }
  verbose(m: unknown, ...r: unknown[]) { this.push('verbose', m, r); }
  fatal(m: unknown, ...r: unknown[]) { this.push('fatal', m, r); }
}

export interface TestGcks extends GcksApp {
  readonly config: GcksConfig;
  readonly token: string;
  readonly logger: CapturingLogger;
  readonly ds: DataSource;
  /** The HTTP server for supertest. */
  readonly server: ReturnType<GcksApp['app']['getHttpServer']>;
  /** Row counts of every table, to prove a rejected request wrote nothing. */
  counts(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

const TABLES = ['groups', 'policies', 'pad_rules', 'trust_anchors', 'members', 'audit_log', 'admin_credentials'];

/** The GCKS Nest app on a fresh temporary data directory (real SQLite file, migrations applied). */
export async function startTestGcks(): Promise<TestGcks> {
  const dir = tempDir('gcks-e2e-');
  const config = loadConfig({ GCKS_DATA_DIR: dir.path, GCKS_HTTP_PORT: '0', GCKS_IKE_PORT: '0', GCKS_LOG_JSON: 'false' });
  const logger = new CapturingLogger();
  const gcks = await createApp(config, { logger });
  const ds = gcks.app.get(DataSource);
  return {
    ...gcks,
    config,
    logger,
    ds,
    token: readFileSync(config.adminTokenFile, 'utf8').trim(),
    server: gcks.app.getHttpServer(),
    async counts() {
      const out: Record<string, number> = {};
      for (const t of TABLES) out[t] = Number((await ds.query(`SELECT count(*) AS n FROM "${t}"`))[0].n);
      return out;
    },
    async close() {
      await gcks.app.close();
      dir.remove();
    },
  };
}
