import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './gcks-config.js';

describe('loadConfig', () => {
  it('defaults to 127.0.0.1:8080 with every file under ./data', () => {
    const sut = loadConfig({}, '/srv/gs');
    expect(sut).toMatchObject({
      httpHost: '127.0.0.1',
      httpPort: 8080,
      dataDir: '/srv/gs/data',
      databaseFile: '/srv/gs/data/gcks.sqlite',
      masterKeyFile: '/srv/gs/data/master.key',
      adminTokenFile: '/srv/gs/data/admin-token',
      logLevel: 'log',
      logJson: true,
    });
  });

  it('takes explicit values, resolving relative paths against cwd and ignoring empty and foreign variables', () => {
    const sut = loadConfig(
      { GCKS_HTTP_PORT: '0', GCKS_DATA_DIR: 'var', GCKS_DB_FILE: '/db/x.sqlite', GCKS_LOG_JSON: 'false', GCKS_HTTP_HOST: '', HOME: '/root' },
      '/srv',
    );
    expect(sut).toMatchObject({ httpHost: '127.0.0.1', httpPort: 0, dataDir: '/srv/var', databaseFile: '/db/x.sqlite', masterKeyFile: '/srv/var/master.key', logJson: false });
  });

  it('reports every problem at once', () => {
    try {
      loadConfig({ GCKS_HTTP_PORT: '99999', GCKS_LOG_LEVEL: 'chatty', GCKS_LOG_JSON: 'maybe' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const problems = (err as ConfigError).problems.join('\n');
      expect(problems).toMatch(/GCKS_HTTP_PORT/);
      expect(problems).toMatch(/GCKS_LOG_LEVEL/);
      expect(problems).toMatch(/GCKS_LOG_JSON/);
    }
    expect(() => loadConfig({ GCKS_HTTP_PORT: '80a' })).toThrow(ConfigError);
  });
});
