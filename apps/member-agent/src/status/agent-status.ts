/**
 * What `member-agent status` and GET /status show: per group its state, role, GCKS, SAs (SPI,
 * edge, age, packets, bytes), last rekey and counters; the datapath's drops. Never key material.
 * GET /metrics serves the same in Prometheus text format (prom-client, a registry per agent).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry, Gauge } from 'prom-client';
import type { MemberAgent } from '../control/agent.js';

export interface SaStatus {
  spi: string;
  /** The speaker of a per-speaker SA (A.2: its source selector); absent for an SA of any source. */
  source?: string;
  edge: 'pending' | 'leading' | 'trailing';
  /** Anti-replay window in packets (RFC 4303 §3.4.3); 0 = off, as on an A.3 SA shared by all speakers. */
  antiReplayWindow: number;
  /** This member's Sender-ID in the SA's IVs (RFC 6054); absent when the group assigns none. */
  senderId?: number;
  ageSeconds: number;
  packetsIn: number;
  bytesIn: number;
  packetsOut: number;
  bytesOut: number;
}

export interface GroupStatus {
  name: string;
  role: string;
  state: string;
  gcks: string | null;
  tokenEdition: number | null;
  registeredAt: string | null;
  lastRekeyAt: string | null;
  lastRekeyMessageId: number | null;
  lastError: string;
  sas: SaStatus[];
  counters: Record<string, number>;
  refusals: Record<string, number>;
  timeline: { at: string; spi: string; event: string; cause: string }[];
}

export interface AgentStatus {
  uptimeSeconds: number;
  groups: GroupStatus[];
  datapath: { sent: number; bypassed: number; delivered: number; held: number; drops: Record<string, number> };
  /** Socket counters of the network binds (ESP in UDP per family; raw IP in TUN mode). */
  network: Record<string, unknown>;
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
const hex = (spi: number) => `0x${spi.toString(16).padStart(8, '0')}`;

export function agentStatus(agent: MemberAgent, now: number): AgentStatus {
  const stats = agent.datapath.stats();
  const bySpi = new Map(stats.sas.map((s) => [s.spi, s]));
  const groups: GroupStatus[] = [...agent.sessions.values()].map((s) => ({
    name: s.name,
    role: s.role,
    state: s.state,
    gcks: s.gcks ? `${s.gcks.address}:${s.gcks.port}` : null,
    tokenEdition: s.token?.edition ?? null,
    registeredAt: iso(s.registeredAt),
    lastRekeyAt: iso(s.lastRekeyAt),
    lastRekeyMessageId: s.lastRekeyMessageId ?? null,
    lastError: s.lastError,
    sas: [...s.sas.values()].map((h) => {
      const d = bySpi.get(h.spi);
      return {
        spi: hex(h.spi),
        ...(h.source !== undefined ? { source: h.source } : {}),
        edge: h.state === 'pending' ? 'pending' : h.state === 'retiring' ? 'trailing' : 'leading',
        antiReplayWindow: h.replayWindow,
        ...(h.senderId !== undefined ? { senderId: h.senderId } : {}),
        ageSeconds: Math.max(0, Math.round((now - h.installedAt) / 1000)),
        packetsIn: d?.packetsIn ?? 0,
        bytesIn: d?.bytesIn ?? 0,
        packetsOut: d?.packetsOut ?? 0,
        bytesOut: d?.bytesOut ?? 0,
      };
    }),
    counters: { ...s.counters },
    refusals: Object.fromEntries(s.refusals),
    timeline: s.timeline.map((e) => ({ at: new Date(e.at).toISOString(), spi: hex(e.spi), event: e.event, cause: e.cause })),
  }));
  return {
    uptimeSeconds: Math.round((now - agent.startedAt) / 1000),
    groups,
    datapath: { sent: stats.sent, bypassed: stats.bypassed, delivered: stats.delivered, held: stats.held, drops: { ...stats.drops } },
    network: JSON.parse(JSON.stringify(agent.net.stats)) as Record<string, unknown>,
  };
}

/** A registry whose gauges are read from the agent at scrape time. */
export function agentMetrics(agent: MemberAgent): Registry {
  const registry = new Registry();
  const collectDp = (set: (labels: Record<string, string>, v: number) => void, pick: (s: ReturnType<MemberAgent['datapath']['stats']>) => [Record<string, string>, number][]) => {
    for (const [l, v] of pick(agent.datapath.stats())) set(l, v);
  };
  new Gauge({
    name: 'groupsec_agent_datapath_packets',
    help: 'Datapath packets by outcome (sent, delivered, held)',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      collectDp((l, v) => this.set(l, v), (s) => [[{ outcome: 'sent' }, s.sent], [{ outcome: 'delivered' }, s.delivered], [{ outcome: 'held' }, s.held]]);
    },
  });
  new Gauge({
    name: 'groupsec_agent_datapath_drops',
    help: 'Datapath drops by reason',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      collectDp((l, v) => this.set(l, v), (s) => Object.entries(s.drops).map(([reason, v]) => [{ reason }, v]));
    },
  });
  new Gauge({
    name: 'groupsec_agent_group_events',
    help: 'Per-group control plane counters (registrations, rekeys, failovers, ...)',
    labelNames: ['group', 'counter'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of agent.sessions.values()) for (const [counter, v] of Object.entries(s.counters)) this.set({ group: s.name, counter }, v);
    },
  });
  new Gauge({
    name: 'groupsec_agent_group_registered',
    help: '1 when the group is registered',
    labelNames: ['group'],
    registers: [registry],
    collect() {
      for (const s of agent.sessions.values()) this.set({ group: s.name }, s.state === 'registered' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'groupsec_agent_sa_packets_in',
    help: 'Packets accepted per SA',
    labelNames: ['group', 'spi'],
    registers: [registry],
    collect() {
      this.reset();
      const bySpi = new Map(agent.datapath.stats().sas.map((x) => [x.spi, x]));
      for (const s of agent.sessions.values()) for (const h of s.sas.values()) this.set({ group: s.name, spi: hex(h.spi) }, bySpi.get(h.spi)?.packetsIn ?? 0);
    },
  });
  return registry;
}

/** Serves GET /status (JSON) and GET /metrics on 127.0.0.1 only. */
export class StatusServer {
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(agent: MemberAgent, port: number, now: () => number = Date.now): Promise<StatusServer> {
    const registry = agentMetrics(agent);
    const server = createServer((req, res) => {
      const send = (code: number, type: string, body: string) => {
        res.writeHead(code, { 'content-type': type });
        res.end(body);
      };
      if (req.method !== 'GET') return send(405, 'application/json', JSON.stringify({ message: 'GET only', code: 'METHOD_NOT_ALLOWED' }));
      if (req.url === '/status') return send(200, 'application/json', JSON.stringify(agentStatus(agent, now())));
      if (req.url === '/metrics') {
        registry.metrics().then(
          (text) => send(200, registry.contentType, text),
          (e: Error) => send(500, 'application/json', JSON.stringify({ message: e.message, code: 'METRICS' })),
        );
        return;
      }
      send(404, 'application/json', JSON.stringify({ message: 'not found', code: 'NOT_FOUND' }));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    return new StatusServer(server, (server.address() as AddressInfo).port);
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** Human-readable status for the CLI. */
export function formatStatus(s: AgentStatus): string {
  const lines = [`uptime ${s.uptimeSeconds}s  sent ${s.datapath.sent}  bypassed ${s.datapath.bypassed}  delivered ${s.datapath.delivered}  held ${s.datapath.held}`];
  const drops = Object.entries(s.datapath.drops).filter(([, v]) => v > 0);
  if (drops.length > 0) lines.push(`drops ${drops.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  for (const g of s.groups) {
    lines.push(`group ${g.name}  role ${g.role}  state ${g.state}  gcks ${g.gcks ?? '-'}  token edition ${g.tokenEdition ?? '-'}  last rekey ${g.lastRekeyAt ?? '-'}`);
    for (const sa of g.sas) {
      const replay = sa.antiReplayWindow > 0 ? `replay ${sa.antiReplayWindow}` : 'replay off';
      const sid = sa.senderId !== undefined ? `  sender-id ${sa.senderId}` : '';
      lines.push(`  SA ${sa.spi}${sa.source ? ` from ${sa.source}` : ''} ${sa.edge.padEnd(8)} age ${sa.ageSeconds}s  in ${sa.packetsIn}p/${sa.bytesIn}B  out ${sa.packetsOut}p/${sa.bytesOut}B  ${replay}${sid}`);
    }
    const c = Object.entries(g.counters).filter(([, v]) => v > 0);
    if (c.length > 0) lines.push(`  counters ${c.map(([k, v]) => `${k}=${v}`).join(' ')}`);
    if (g.lastError) lines.push(`  last error: ${g.lastError}`);
  }
  return lines.join('\n');
}
