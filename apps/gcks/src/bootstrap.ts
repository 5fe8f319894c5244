import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import 'reflect-metadata';
import { ConsoleLogger, type LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { DataSource } from 'typeorm';
import { AppModule } from './app.module.js';
import { ensureAdminToken, type TokenIssue } from './auth/admin-token.js';
import { systemClock } from './common/clock.js';
import { ErrorFilter } from './common/error.filter.js';
import { createValidationPipe } from './common/validation.js';
import { LOG_LEVELS, type GcksConfig } from './config/gcks-config.js';
import { consoleStaticDir } from './console/console-assets.js';
import type { CoreDeps } from './core.module.js';
import { MasterKeyService } from './security/master-key.service.js';

export interface GcksApp {
  readonly app: NestExpressApplication;
  readonly adminToken: TokenIssue;
  readonly masterKey: MasterKeyService;
}

export interface CreateAppOptions extends CoreDeps {
  /** Logger to use instead of the configured console logger (tests pass `false`-like silent loggers). */
  readonly logger?: LoggerService | false;
}

/** Logger for the configured level and format. */
export function createLogger(config: GcksConfig): ConsoleLogger {
  const levels = LOG_LEVELS.slice(LOG_LEVELS.indexOf(config.logLevel));
  return new ConsoleLogger('gcks', { json: config.logJson, logLevels: [...levels], colors: !config.logJson && process.stdout.isTTY });
}

/**
 * Builds the GCKS HTTP application (not yet listening): data directory, master key, database
 * migrated, admin token ensured, global validation pipe and error filter, console and Swagger UI.
 */
export async function createApp(config: GcksConfig, opts: CreateAppOptions = {}): Promise<GcksApp> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const random = opts.random ?? randomBytes;
  const masterKey = MasterKeyService.loadOrCreate(config.masterKeyFile, random);
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config, masterKey, opts), {
    logger: opts.logger === undefined ? createLogger(config) : opts.logger,
    abortOnError: false,
  });
  app.disable('x-powered-by');
  app.use((req: { path: string }, res: { setHeader(k: string, v: string): void }, next: () => void) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('X-Frame-Options', 'DENY');
    // The console loads only its own files; the Swagger UI (under /api/docs) keeps its defaults.
    if (!req.path.startsWith('/api/docs')) {
      res.setHeader('Content-Security-Policy', "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
    }
    next();
  });
  app.useBodyParser('json', { limit: '256kb' });
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(new ErrorFilter());
  app.enableShutdownHooks();
  app.useStaticAssets(consoleStaticDir(), { index: 'index.html', fallthrough: true, maxAge: 0 });

  const doc = new DocumentBuilder()
    .setTitle('GroupSec GCKS')
    .setDescription('Group Owner API: groups, GSPD policies, PAD rules, trust anchors, members, audit log')
    .setVersion('1')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'The admin token' })
    .build();
  SwaggerModule.setup('api/docs', app, () => SwaggerModule.createDocument(app, doc));

  await app.init();
  const adminToken = await ensureAdminToken(app.get(DataSource), config.adminTokenFile, opts.clock ?? systemClock, random);
  return { app, adminToken, masterKey };
}
