import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';

/**
 * The GCKS configuration, parsed once from `GCKS_*` environment variables. This is the only place
 * in the GCKS that reads the environment: everything else receives a `GcksConfig`.
 */
export interface GcksConfig {
  /** Address the HTTP server (REST API, console) listens on. */
  readonly httpHost: string;
  /** TCP port of the HTTP server; 0 picks a free port (tests). */
  readonly httpPort: number;
  /** Directory holding the database, the master key and the admin token file. */
  readonly dataDir: string;
  /** SQLite database file. */
  readonly databaseFile: string;
  /** 32-byte master key that encrypts secret columns (created on first start, mode 0600). */
  readonly masterKeyFile: string;
  /** Where a newly generated admin token is written (mode 0600). */
  readonly adminTokenFile: string;
  /** Nest log levels from this one upwards are printed. */
  readonly logLevel: LogLevelName;
  /** One JSON object per log line (true) or human-readable lines (false). */
  readonly logJson: boolean;
  /** G-IKEv2 registration: listen address, UDP port (RFC 3948 framing when `ikeNatT`), GCKS IKE identity (FQDN). */
  readonly ikeHost?: string;
  readonly ikePort?: number;
  readonly ikeNatT?: boolean;
  readonly ikePlainPort?: number;
  readonly gcksIdentity?: string;
}

export const LOG_LEVELS = ['verbose', 'debug', 'log', 'warn', 'error', 'fatal'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];

/** Every variable with its default, as documented in the README's configuration reference. */
export const CONFIG_DEFAULTS = {
  GCKS_HTTP_HOST: '127.0.0.1',
  GCKS_HTTP_PORT: '8080',
  GCKS_DATA_DIR: './data',
  GCKS_DB_FILE: '<GCKS_DATA_DIR>/gcks.sqlite',
  GCKS_MASTER_KEY_FILE: '<GCKS_DATA_DIR>/master.key',
  GCKS_ADMIN_TOKEN_FILE: '<GCKS_DATA_DIR>/admin-token',
  GCKS_LOG_LEVEL: 'log',
  GCKS_LOG_JSON: 'true',
} as const;

const boolString = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const schema = z.object({
  GCKS_HTTP_HOST: z.string().min(1).default(CONFIG_DEFAULTS.GCKS_HTTP_HOST),
  GCKS_HTTP_PORT: z
    .string()
    .regex(/^\d+$/, 'must be an integer between 0 and 65535')
    .transform(Number)
    .pipe(z.number().int().min(0).max(65535, 'must be an integer between 0 and 65535'))
    .default(Number(CONFIG_DEFAULTS.GCKS_HTTP_PORT)),
  GCKS_DATA_DIR: z.string().min(1).default(CONFIG_DEFAULTS.GCKS_DATA_DIR),
  GCKS_DB_FILE: z.string().min(1).optional(),
  GCKS_MASTER_KEY_FILE: z.string().min(1).optional(),
  GCKS_ADMIN_TOKEN_FILE: z.string().min(1).optional(),
  GCKS_LOG_LEVEL: z.enum(LOG_LEVELS).default('log'),
  GCKS_LOG_JSON: boolString.default(true),
  GCKS_IKE_HOST: z.string().min(1).default('127.0.0.1'),
  GCKS_IKE_PORT: z.string().regex(/^\d+$/, 'must be an integer between 0 and 65535').transform(Number).pipe(z.number().int().min(0).max(65535)).default(4500),
  GCKS_IKE_NAT_T: boolString.default(true),
  GCKS_IKE_PLAIN_PORT: z.string().regex(/^\d+$/, 'must be an integer between 0 and 65535').transform(Number).pipe(z.number().int().min(0).max(65535)).optional(),
  GCKS_IDENTITY: z.string().min(1).default('gcks.groupsec.local'),
});

/** Thrown when the environment does not describe a valid configuration; lists every problem. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid GCKS configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Parses the environment into a `GcksConfig`. Relative paths are resolved against `cwd`; files
 * not given explicitly live in the data directory. All errors are reported together.
 */
export function loadConfig(env: Record<string, string | undefined>, cwd: string = process.cwd()): GcksConfig {
  const relevant: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    // An empty variable counts as unset, as shells make it easy to export one by accident.
    if (k.startsWith('GCKS_') && v !== undefined && v !== '') relevant[k] = v;
  }
  const parsed = schema.safeParse(relevant);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`));
  }
  const v = parsed.data;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(cwd, p));
  const dataDir = abs(v.GCKS_DATA_DIR);
  const inData = (given: string | undefined, file: string) => (given ? abs(given) : join(dataDir, file));
  return {
    httpHost: v.GCKS_HTTP_HOST,
    httpPort: v.GCKS_HTTP_PORT,
    dataDir,
    databaseFile: inData(v.GCKS_DB_FILE, 'gcks.sqlite'),
    masterKeyFile: inData(v.GCKS_MASTER_KEY_FILE, 'master.key'),
    adminTokenFile: inData(v.GCKS_ADMIN_TOKEN_FILE, 'admin-token'),
    logLevel: v.GCKS_LOG_LEVEL,
    logJson: v.GCKS_LOG_JSON,
    ikeHost: v.GCKS_IKE_HOST,
    ikePort: v.GCKS_IKE_PORT,
    ikeNatT: v.GCKS_IKE_NAT_T,
    ...(v.GCKS_IKE_PLAIN_PORT !== undefined ? { ikePlainPort: v.GCKS_IKE_PLAIN_PORT } : {}),
    gcksIdentity: v.GCKS_IDENTITY,
  };
}

/** Injection token for the parsed configuration. */
export const GCKS_CONFIG = Symbol('GCKS_CONFIG');
