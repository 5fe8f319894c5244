/**
 * The member agent daemon and its CLI (issue 6).
 *
 *   member-agent run --config agent.json     start: register, protect, serve /status and /metrics
 *   member-agent status [--port 7480] [--json]  print the running agent's status (localhost HTTP)
 *   member-agent check --config agent.json   validate the config file (every error at once)
 *
 * SIGINT/SIGTERM de-register every group (GSA_REGISTRATION leave, INFORMATIONAL Delete) and exit 0.
 */
import { ConfigError, DEFAULT_STATUS_PORT, loadAgentConfig, readAgentSecrets } from './config/agent-config.js';
import { MemberAgent } from './control/agent.js';
import { jsonLogger } from './control/logger.js';
import { StatusServer, formatStatus, type AgentStatus } from './status/agent-status.js';

function arg(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

const USAGE = 'usage: member-agent run --config <file> | status [--port <n>] [--json] | check --config <file>';

async function run(args: readonly string[]): Promise<number> {
  const path = arg(args, '--config');
  if (!path) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const config = loadAgentConfig(path);
  const secrets = readAgentSecrets(config);
  const log = jsonLogger(config.logLevel);
  const agent = await MemberAgent.start({ config, secrets, log });
  const status = await StatusServer.start(agent, config.status.port);
  log.info('member agent started', { groups: config.groups.map((g) => g.name), statusPort: status.port, mode: config.datapath.mode });
  // A line on stdout for supervisors and the demo: where the status endpoint is.
  process.stdout.write(`${JSON.stringify({ ready: true, statusPort: status.port, pid: process.pid })}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  log.info('stopping: de-registering');
  await agent.stop();
  await status.close();
  log.info('stopped');
  return 0;
}

async function status(args: readonly string[]): Promise<number> {
  const port = Number(arg(args, '--port') ?? DEFAULT_STATUS_PORT);
  let body: AgentStatus;
  try {
    const res = await fetch(`http://127.0.0.1:${port}/status`);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    body = (await res.json()) as AgentStatus;
  } catch (e) {
    process.stderr.write(`no member agent answering on 127.0.0.1:${port}: ${(e as Error).message}\n`);
    return 1;
  }
  process.stdout.write(`${args.includes('--json') ? JSON.stringify(body, null, 2) : formatStatus(body)}\n`);
  return 0;
}

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run':
        return await run(rest);
      case 'status':
        return await status(rest);
      case 'check': {
        const path = arg(rest, '--config');
        if (!path) break;
        readAgentSecrets(loadAgentConfig(path));
        process.stdout.write('configuration is valid\n');
        return 0;
      }
      default:
        break;
    }
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      return 2;
    }
    process.stderr.write(`member-agent: ${(e as Error).message}\n`);
    return 1;
  }
  process.stderr.write(`${USAGE}\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`member-agent: ${e.message}\n`);
    process.exit(1);
  },
);
