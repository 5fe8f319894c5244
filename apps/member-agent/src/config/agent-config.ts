/**
 * The member agent's configuration file (JSON), parsed and validated once into a typed object.
 * Every problem is reported together (one ConfigError listing each path and message); nothing
 * else in the agent reads files named by the user or process.env. Relative paths are resolved
 * against the config file's directory.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { isIP } from 'node:net';
import { z } from 'zod';

/** Default status HTTP port (localhost only). */
export const DEFAULT_STATUS_PORT = 7480;
/** Default G-IKEv2 port: RFC 3948 NAT-T port with the non-ESP marker (DESIGN.md "Wire and ports"). */
export const DEFAULT_GCKS_PORT = 4500;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly issues: readonly { path: string; message: string }[]) {
    super(`invalid member agent configuration:\n${issues.map((i) => `  - ${i.path || '(root)'}: ${i.message}`).join('\n')}`);
  }
}

const ipAddress = z.string().refine((s) => isIP(s) !== 0, 'not an IP address');
const port = z.number().int().min(1).max(65535);

const identity = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('certificate'),
    /** IKE identity: FQDN (ID_FQDN) or the certificate's subject. */
    id: z.string().min(1).max(255),
    certificate: z.string().min(1),
    privateKey: z.string().min(1),
  }),
  z.object({
    kind: z.literal('psk'),
    id: z.string().min(1).max(255),
    /** The pre-shared secret, or a file holding it (`secretFile`). */
    secret: z.string().min(8).optional(),
    secretFile: z.string().min(1).optional(),
  }),
]);

const gcks = z.object({
  address: ipAddress,
  port: port.default(DEFAULT_GCKS_PORT),
  /** The GCKS's IKE identity (FQDN) to ask for and accept; optional. */
  id: z.string().min(1).max(255).optional(),
});

const group = z.object({
  /** The group's name as in IDg (RFC 9838 §4.2). */
  name: z.string().min(1).max(255),
  role: z.enum(['speaker', 'receiver']).default('receiver'),
  /** "Always ready" (register at start) or on the first protected packet (RFC 5374 §4.1.1). */
  registration: z.enum(['at-start', 'on-demand']).default('at-start'),
  /** Socket mode: the local UDP port where applications send and receive plaintext for this group. */
  applicationPort: port.optional(),
  /** The group's address and data port, needed before registration for on-demand GSPD entries. */
  address: ipAddress.optional(),
  dataPort: port.optional(),
  /** SSM (RFC 4607): receive the group's traffic only from this speaker address. */
  source: ipAddress.optional(),
});

export const agentConfigSchema = z
  .object({
    identity,
    /** PEM file with the Group Owner's public signing key (policy token trust anchor). */
    trustAnchor: z.string().min(1),
    /** Trust anchors (CA certificates, PEM) for the GCKS's IKE certificate. */
    gcksCa: z.string().min(1).optional(),
    gcks: z.array(gcks).min(1).max(16),
    groups: z.array(group).min(1).max(64),
    datapath: z
      .object({
        mode: z.enum(['socket', 'tun']).default('socket'),
        /** Local unicast address (the inner and outer source of what we send). */
        localAddress: ipAddress.default('127.0.0.1'),
        /**
         * The host's IPv6 address on the link when `localAddress` is IPv4 and some group is IPv6
         * (the agent then carries both families; IKE and the IPv4 groups use `localAddress`).
         */
        localAddress6: ipAddress.optional(),
        /**
         * The link's interface name (e.g. eth0): raw sockets (TUN mode) and IPv6 multicast leave
         * and join there. Default: the interface holding the local address.
         */
        interface: z.string().min(1).max(15).optional(),
        /** Outgoing multicast interface: '127.0.0.1' on loopback. */
        multicastInterface: z.string().min(1).default('127.0.0.1'),
        /** Where socket-mode applications live (the agent sends them plaintext here). */
        applicationAddress: ipAddress.default('127.0.0.1'),
        tunName: z.string().min(1).max(15).default('gsec0'),
        /** The groups' ESP-in-UDP port (RFC 3948 §2.1); must match the GCKS's policy. */
        espPort: port.default(4500),
      })
      .prefault({}),
    /** Protected traffic is dropped until registered (default) or sent in clear (fail-open). */
    failMode: z.enum(['close', 'open']).default('close'),
    status: z
      .object({
        port: z.number().int().min(0).max(65535).default(DEFAULT_STATUS_PORT),
      })
      .prefault({}),
    /** Re-register this long before the KEK's lifetime ends (seconds). */
    kekRenewBeforeSeconds: z.number().int().min(1).max(86400).default(60),
    /** IKE retransmission: first timeout and tries before failing over to the next GCKS. */
    ikeTimeoutMs: z.number().int().min(50).max(60000).default(1000),
    ikeTries: z.number().int().min(1).max(10).default(3),
    logLevel: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
    debug: z
      .object({
        /**
         * Debugging only, off by default: append every installed SA's keys to this file in
         * Wireshark's `esp_sa` UAT format (like strongSwan's save-keys), so that tshark or
         * Wireshark can decrypt a capture. Anyone who reads the file can decrypt the group's
         * traffic; the agent warns in its log at start while it is set.
         */
        espKeyLog: z.string().min(1).optional(),
      })
      .prefault({}),
  });

type Issue = { path: string; message: string };

/**
 * Rules between fields, checked on the raw value so that they are reported together with the
 * shape errors (zod runs refinements only on an otherwise valid object).
 */
function crossFieldIssues(value: unknown): Issue[] {
  const out: Issue[] = [];
  if (typeof value !== 'object' || value === null) return out;
  const v = value as Record<string, unknown>;
  const datapath = (typeof v['datapath'] === 'object' && v['datapath'] !== null ? v['datapath'] : {}) as Record<string, unknown>;
  const mode = datapath['mode'] ?? 'socket';
  const groups = Array.isArray(v['groups']) ? (v['groups'] as unknown[]) : [];
  const names = new Set<unknown>();
  groups.forEach((raw, i) => {
    if (typeof raw !== 'object' || raw === null) return;
    const g = raw as Record<string, unknown>;
    if (g['name'] !== undefined && names.has(g['name'])) out.push({ path: `groups.${i}.name`, message: `duplicate group ${String(g['name'])}` });
    names.add(g['name']);
    if (mode === 'tun' && g['address'] === undefined) out.push({ path: `groups.${i}.address`, message: 'required in tun mode (routed into the TUN device)' });
    if (mode === 'socket') {
      for (const key of ['applicationPort', 'address', 'dataPort']) {
        if (g[key] === undefined) out.push({ path: `groups.${i}.${key}`, message: 'required in socket mode' });
      }
    }
    if (g['registration'] === 'on-demand' && (g['address'] === undefined || g['dataPort'] === undefined)) {
      out.push({ path: `groups.${i}`, message: 'on-demand registration needs address and dataPort' });
    }
  });
  const local = datapath['localAddress'] ?? '127.0.0.1';
  const local6 = datapath['localAddress6'];
  if (typeof local === 'string' && typeof local6 === 'string') {
    if (local.includes(':')) out.push({ path: 'datapath.localAddress6', message: 'only with an IPv4 localAddress' });
    if (!local6.includes(':')) out.push({ path: 'datapath.localAddress6', message: 'must be an IPv6 address' });
  }
  if (typeof local === 'string') {
    groups.forEach((raw, i) => {
      const a = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>)['address'] : undefined;
      if (typeof a !== 'string' || !a.includes(':') || local.includes(':') || local6 !== undefined) return;
      out.push({ path: `groups.${i}.address`, message: 'an IPv6 group needs datapath.localAddress6 (or an IPv6 localAddress)' });
    });
  }
  const id = v['identity'];
  if (typeof id === 'object' && id !== null && (id as Record<string, unknown>)['kind'] === 'psk') {
    const p = id as Record<string, unknown>;
    if ((p['secret'] === undefined) === (p['secretFile'] === undefined)) out.push({ path: 'identity', message: 'give exactly one of secret and secretFile' });
  }
  return out;
}

export type AgentConfigInput = z.input<typeof agentConfigSchema>;
export type AgentConfig = z.output<typeof agentConfigSchema>;
export type GroupConfig = AgentConfig['groups'][number];
export type GcksEndpoint = AgentConfig['gcks'][number];

/** Validates a parsed JSON value; relative file paths are resolved against `baseDir`. */
export function parseAgentConfig(value: unknown, baseDir: string): AgentConfig {
  const r = agentConfigSchema.safeParse(value);
  const issues = [...(r.success ? [] : r.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }))), ...crossFieldIssues(value)];
  if (!r.success || issues.length > 0) throw new ConfigError(issues);
  const c = r.data;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const id = c.identity;
  const identityOut =
    id.kind === 'certificate'
      ? { ...id, certificate: abs(id.certificate), privateKey: abs(id.privateKey) }
      : { ...id, ...(id.secretFile !== undefined ? { secretFile: abs(id.secretFile) } : {}) };
  const debug = c.debug.espKeyLog !== undefined ? { debug: { ...c.debug, espKeyLog: abs(c.debug.espKeyLog) } } : {};
  return { ...c, identity: identityOut, trustAnchor: abs(c.trustAnchor), ...(c.gcksCa !== undefined ? { gcksCa: abs(c.gcksCa) } : {}), ...debug };
}

/** Reads and validates a config file. Throws ConfigError (also for unreadable or non-JSON files). */
export function loadAgentConfig(path: string): AgentConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError([{ path: '', message: `cannot read ${path}: ${(e as Error).message}` }]);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ConfigError([{ path: '', message: `${path} is not JSON: ${(e as Error).message}` }]);
  }
  return parseAgentConfig(value, dirname(resolve(path)));
}

/** The credentials the config names, read from disk. Throws ConfigError listing every unreadable file. */
export interface AgentSecrets {
  trustAnchorPem: string;
  gcksCaPem?: string;
  certificatePem?: string;
  privateKeyPem?: string;
  psk?: Uint8Array;
}

export function readAgentSecrets(c: AgentConfig): AgentSecrets {
  const issues: { path: string; message: string }[] = [];
  const read = (path: string, where: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch (e) {
      issues.push({ path: where, message: `cannot read ${path}: ${(e as Error).message}` });
      return '';
    }
  };
  const out: AgentSecrets = { trustAnchorPem: read(c.trustAnchor, 'trustAnchor') };
  if (c.gcksCa !== undefined) out.gcksCaPem = read(c.gcksCa, 'gcksCa');
  const id = c.identity;
  if (id.kind === 'certificate') {
    out.certificatePem = read(id.certificate, 'identity.certificate');
    out.privateKeyPem = read(id.privateKey, 'identity.privateKey');
  } else {
    const secret = id.secret ?? read(id.secretFile!, 'identity.secretFile').trim();
    out.psk = new TextEncoder().encode(secret);
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return out;
}
