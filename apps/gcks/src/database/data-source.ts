import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { MIGRATIONS } from '../../../../migrations/index.js';
import { ENTITIES } from './entities.js';

/**
 * The one DataSource configuration of the GCKS, shared by the app (TypeOrmModule) and the TypeORM
 * CLI (`cli-data-source.ts`). Entities and migrations are listed explicitly; the schema is only ever
 * changed by migrations (run at boot), never synchronized. WAL and foreign keys are switched on for
 * every connection.
 */
export function dataSourceOptions(databaseFile: string): DataSourceOptions {
  return {
    type: 'better-sqlite3',
    database: databaseFile,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    migrationsTransactionMode: 'each',
    synchronize: false,
    migrationsRun: false,
    enableWAL: true,
    // The driver also sets this; stating it here keeps the guarantee independent of driver defaults.
    prepareDatabase: (db: { pragma(sql: string): unknown }) => {
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 5000');
    },
    logging: ['error', 'migration'],
  };
}

/** Opens the database (creating its directory) and applies pending migrations. */
export async function openDatabase(databaseFile: string): Promise<DataSource> {
  if (databaseFile !== ':memory:') mkdirSync(dirname(databaseFile), { recursive: true, mode: 0o700 });
  const ds = new DataSource(dataSourceOptions(databaseFile));
  await ds.initialize();
  try {
    await ds.runMigrations({ transaction: 'each' });
  } catch (err) {
    await ds.destroy();
    throw err;
  }
  return ds;
}
