import { ConfigError, loadConfig } from './config/gcks-config.js';
import { createApp, createLogger } from './bootstrap.js';

/** Starts the GCKS: `node dist/apps/gcks/src/main.js` (configuration from GCKS_* variables). */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const { app, adminToken } = await createApp(config);
  await app.listen(config.httpPort, config.httpHost);
  const addr = app.getHttpServer().address();
  const port = typeof addr === 'object' && addr ? addr.port : config.httpPort;
  const host = config.httpHost.includes(':') ? `[${config.httpHost}]` : config.httpHost;
  const url = `http://${host}:${port}/`;
  createLogger(config).log(`GCKS listening on ${url} (database ${config.databaseFile})`);
  const tokenLine = adminToken.issued
    ? `Admin token (new, shown nowhere else): written to ${adminToken.file}`
    : `Admin token: unchanged since it was written to ${adminToken.file}; rotate with: npm run gcks:rotate-token`;
  process.stdout.write(`\nGroupSec GCKS console: ${url}\nAPI docs: ${url}api/docs\n${tokenLine}\n\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`GCKS failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
