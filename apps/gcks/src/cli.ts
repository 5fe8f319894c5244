import { randomBytes } from 'node:crypto';
import 'reflect-metadata';
import { rotateAdminToken } from './auth/admin-token.js';
import { systemClock } from './common/clock.js';
import { ConfigError, loadConfig } from './config/gcks-config.js';
import { openDatabase } from './database/data-source.js';

const USAGE = `usage: node dist/apps/gcks/src/cli.js <command>

commands:
  rotate-token   generate a new admin token, store its hash, write it to GCKS_ADMIN_TOKEN_FILE;
                 the old token stops working at once (also for a running GCKS)
  migrate        apply pending database migrations and exit
`;

/** GCKS command line: administrative tasks that work on the database directly. */
export async function runCli(argv: readonly string[], env: Record<string, string | undefined>): Promise<number> {
  const command = argv[0];
  if (command !== 'rotate-token' && command !== 'migrate') {
    process.stderr.write(USAGE);
    return command === undefined || command === '--help' || command === 'help' ? 0 : 2;
  }
  let config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const ds = await openDatabase(config.databaseFile);
  try {
    if (command === 'rotate-token') {
      const issued = await rotateAdminToken(ds, config.adminTokenFile, systemClock, randomBytes);
      process.stdout.write(`New admin token (id ${issued.tokenId}) written to ${issued.file}; the previous token no longer works.\n`);
    } else {
      process.stdout.write(`Database ${config.databaseFile} is migrated.\n`);
    }
    return 0;
  } finally {
    await ds.destroy();
  }
}

runCli(process.argv.slice(2), process.env).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
