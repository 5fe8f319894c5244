import { DataSource } from 'typeorm';
import { loadConfig } from '../config/gcks-config.js';
import { dataSourceOptions } from './data-source.js';

/**
 * Entry point for the TypeORM CLI, e.g.
 * `npx typeorm migration:show -d dist/apps/gcks/src/database/cli-data-source.js`.
 * It uses the same configuration (and so the same database file) as the GCKS.
 */
export default new DataSource(dataSourceOptions(loadConfig(process.env).databaseFile));
