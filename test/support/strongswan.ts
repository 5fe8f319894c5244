/**
 * strongSwan's charon as an independent IKEv2 peer for the interop tests (REFERENCES.md):
 * a hermetic strongswan.conf (explicit plugin list, no includes), a vici socket and credentials
 * under a temporary directory, a private /run for the pid file, raised cookie thresholds, short
 * retransmits, and a file log with `ike = 4` whose SK_* dumps are an oracle for our key derivation.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { failInCiAsRoot, type NetnsLab, type RunResult } from './netns.js';

export const CHARON = '/usr/lib/ipsec/charon';

/** Why the strongSwan interop cannot run here, or undefined (in CI as root a reason throws). */
export function strongswanSkipReason(): string | undefined {
  const reason = strongswanSkipReasonUnchecked();
  failInCiAsRoot(reason);
  return reason;
}

function strongswanSkipReasonUnchecked(): string | undefined {
  if (process.platform !== 'linux') return `needs Linux (this is ${process.platform})`;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'needs root (network namespaces)';
  if (!existsSync(CHARON)) return `needs strongSwan's charon at ${CHARON} (Debian strongswan-charon)`;
  for (const tool of ['swanctl', 'ip', 'unshare']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `needs \`${tool}\``;
    }
  }
  return undefined;
}

const PLUGINS =
  'random nonce openssl pem pkcs1 pkcs8 x509 pubkey revocation constraints curve25519 aes sha1 sha2 hmac gcm kdf kernel-netlink socket-default vici';

export class Charon {
  readonly conf: string;
  readonly swanctlDir: string;
  readonly logFile: string;
  readonly vici: string;
  private child?: ChildProcess;

  constructor(
    private readonly lab: NetnsLab,
    readonly ns: string,
    readonly dir: string,
    /** Half-open responder SAs at which charon demands a COOKIE (RFC 7296 §2.6); high by default. */
    cookieThreshold = 10000,
  ) {
    this.conf = join(dir, 'strongswan.conf');
    this.swanctlDir = join(dir, 'swanctl');
    this.logFile = join(dir, 'charon.log');
    this.vici = join(dir, 'charon.vici');
    for (const sub of ['x509', 'x509ca', 'private', 'ecdsa', 'pubkey', 'rsa']) mkdirSync(join(this.swanctlDir, sub), { recursive: true });
    writeFileSync(
      this.conf,
      `charon {
  load_modular = no
  load = ${PLUGINS}
  cookie_threshold = ${cookieThreshold}
  cookie_threshold_ip = 10000
  block_threshold = 10000
  retransmit_timeout = 1
  retransmit_tries = 2
  install_routes = no
  install_virtual_ip = no
  filelog {
    oracle {
      path = ${this.logFile}
      default = 1
      ike = 4
      cfg = 2
      net = 2
      enc = 1
      flush_line = yes
    }
  }
  plugins {
    vici {
      socket = unix://${this.vici}
    }
  }
}
swanctl {
  socket = unix://${this.vici}
}
`,
    );
  }

  /** Writes swanctl.conf and credential files (paths relative to the swanctl directory). */
  writeSwanctl(conf: string, files: Record<string, string> = {}): void {
    writeFileSync(join(this.swanctlDir, 'swanctl.conf'), conf);
    for (const [rel, content] of Object.entries(files)) writeFileSync(join(this.swanctlDir, rel), content, { mode: 0o600 });
  }

  private env(): NodeJS.ProcessEnv {
    return { ...process.env, STRONGSWAN_CONF: this.conf, SWANCTL_DIR: this.swanctlDir };
  }

  /** Starts charon in the foreground inside the namespace with a private /run; waits for vici. */
  async start(): Promise<void> {
    rmSync(this.vici, { force: true });
    this.child = this.lab.spawn(this.ns, 'unshare', ['-m', 'sh', '-c', `mount -t tmpfs tmpfs /run && exec ${CHARON}`], this.env());
    this.child.stdout?.resume();
    this.child.stderr?.resume();
    for (let i = 0; i < 100; i++) {
      try {
        await this.swanctl(['--stats']);
        return;
      } catch {
        if (this.child.exitCode !== null) throw new Error(`charon exited: ${this.log().slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw new Error(`charon did not answer on vici: ${this.log().slice(-2000)}`);
  }

  swanctl(args: string[]): Promise<RunResult> {
    return this.lab.run(this.ns, 'env', [`STRONGSWAN_CONF=${this.conf}`, `SWANCTL_DIR=${this.swanctlDir}`, 'swanctl', ...args]);
  }

  async loadAll(): Promise<void> {
    await this.swanctl(['--load-all', '--noprompt']);
  }

  /** Childless initiation of IKE config `name` (RFC 6023); resolves with swanctl's output. */
  async initiateIke(name: string, timeoutSec = 10): Promise<RunResult> {
    return this.swanctl(['--initiate', '--ike', name, '--timeout', String(timeoutSec)]);
  }

  async listSas(name?: string): Promise<string> {
    const r = await this.swanctl(['--list-sas', '--noblock', ...(name ? ['--ike', name] : [])]);
    return r.stdout;
  }

  async terminateIke(name: string): Promise<void> {
    await this.swanctl(['--terminate', '--ike', name, '--force', '--timeout', '3']).catch(() => undefined);
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /**
   * The key dumps charon's `ike = 4` log holds for an IKE SA, by label (e.g. 'Sk_d secret'),
   * taking the LAST dump of each label after `sinceOffset` characters of the log.
   */
  loggedKeys(sinceOffset = 0): Record<string, string> {
    const lines = this.log().slice(sinceOffset).split('\n');
    const keys: Record<string, string> = {};
    for (let i = 0; i < lines.length; i++) {
      const m = /\] (.+?) => (\d+) bytes @/.exec(lines[i]!);
      if (!m) continue;
      const want = Number(m[2]);
      let hex = '';
      for (let j = i + 1; j < lines.length && hex.length < 2 * want; j++) {
        const d = /\]\s+\d+: ((?:[0-9A-F]{2} ?)+)/.exec(lines[j]!);
        if (!d) break;
        hex += d[1]!.replace(/ /g, '').toLowerCase();
      }
      keys[m[1]!] = hex.slice(0, 2 * want);
    }
    return keys;
  }
}
