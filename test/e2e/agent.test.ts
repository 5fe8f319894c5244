import dgram from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAgentConfig, type AgentConfigInput } from '../../apps/member-agent/src/config/agent-config.js';
import { MemberAgent } from '../../apps/member-agent/src/control/agent.js';
import { jsonLogger } from '../../apps/member-agent/src/control/logger.js';
import { StatusServer, agentStatus, formatStatus } from '../../apps/member-agent/src/status/agent-status.js';
import { TestGcks } from '../support/agent-gcks.js';
import { LoopbackApp, freeUdpPort, sleep, waitFor } from '../support/udp-loopback.js';

/**
 * Three member agents in socket mode on loopback (real UDP, real multicast on 127.0.0.1) against
 * an in-process GCKS speaking G-IKEv2: registration, numbered messages from a speaker to two
 * receivers, a receiver-only member's send dropped by its own GSPD, a forced rekey with rollover
 * (nothing lost, nothing twice, the speaker switches only after ATD), an eviction after which the
 * evicted member receives nothing new while the others lose nothing, and de-registration.
 */

// Ports are taken free at the start of each suite (beforeAll): ESP in UDP to the group uses the
// same number as the inner data port; the rekey port is another.
let ESP_PORT = 0;
let REKEY_PORT = 0;
let DATA_PORT = 0;
const GROUP = `239.71.${process.pid % 250}.${(process.pid >> 8) % 250}`;
const REKEY_GROUP = `239.72.${process.pid % 250}.${(process.pid >> 8) % 250}`;
const PSK = 'correct horse battery staple';
const ATD = 1;
const DTD = 1;

describe('member agent end to end on loopback (socket mode, in-process GCKS)', () => {
  let gcks: TestGcks;
  const agents: Record<string, MemberAgent> = {};
  const apps: Record<string, LoopbackApp> = {};
  const logs: string[] = [];
  const names = { s: 'talker.speakers.test', a: 'a.rx.test', b: 'b.rx.test' } as const;

  async function sendBurst(from: number, count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      apps.s!.send(from + i);
      if (i % 20 === 19) await sleep(5);
    }
  }

  beforeAll(async () => {
    ESP_PORT = DATA_PORT = await freeUdpPort();
    REKEY_PORT = await freeUdpPort();
    gcks = await TestGcks.start({ group: 'demo', groupAddress: GROUP, dataPort: DATA_PORT, rekeyAddress: REKEY_GROUP, rekeyPort: REKEY_PORT, atd: ATD, dtd: DTD, psk: PSK, speakers: '*.speakers.test', receivers: '*.rx.test' });
    for (const [key, id] of Object.entries(names)) {
      const input: AgentConfigInput = {
        identity: { kind: 'psk', id, secret: PSK },
        trustAnchor: 'unused.pem',
        gcks: [
          { address: '127.0.0.1', port: gcks.port, id: 'gcks.test' },
        ],
        groups: [{ name: 'demo', role: key === 's' ? 'speaker' : 'receiver', applicationPort: await freeUdpPort(), address: GROUP, dataPort: DATA_PORT }],
        status: { port: 0 },
        ikeTimeoutMs: 300,
        ikeTries: 2,
      };
      const config = parseAgentConfig(input, '/');
      agents[key] = await MemberAgent.start({
        config,
        secrets: { trustAnchorPem: gcks.anchorPem, psk: new TextEncoder().encode(PSK) },
        log: jsonLogger('info', (l) => void logs.push(`${key} ${l}`)),
        espPort: ESP_PORT,
      });
      apps[key] = await LoopbackApp.open(config.groups[0]!.applicationPort!);
    }
  }, 30_000);

  afterAll(async () => {
    await Promise.all(Object.values(agents).map((a) => a.stop()));
    await Promise.all(Object.values(apps).map((a) => a.close()));
    await gcks?.close();
  });

  it('registers every agent with the policy token checked, and serves status and metrics', async () => {
    await waitFor('registration', () => Object.values(agents).every((a) => a.sessions.get('demo')!.state === 'registered'));
    expect(gcks.registrations).toBe(3);
    const status = await StatusServer.start(agents.a!, 0);
    try {
      const s = (await (await fetch(`http://127.0.0.1:${status.port}/status`)).json()) as ReturnType<typeof agentStatus>;
      expect(s.groups[0]).toMatchObject({ name: 'demo', role: 'receiver', state: 'registered', tokenEdition: 1 });
      expect(s.groups[0]!.sas.map((x) => x.spi)).toEqual([`0x${gcks.currentTekSpi.toString(16).padStart(8, '0')}`]);
      const metrics = await (await fetch(`http://127.0.0.1:${status.port}/metrics`)).text();
      expect(metrics).toMatch(/groupsec_agent_group_registered\{group="demo"\} 1/);
      expect(JSON.stringify(s)).not.toMatch(/encKey|encryptionKey|gsk[EAW]|integKey/);
      expect((await fetch(`http://127.0.0.1:${status.port}/nope`)).status).toBe(404);
      expect((await fetch(`http://127.0.0.1:${status.port}/status`, { method: 'POST' })).status).toBe(405);
      const text = formatStatus(s);
      expect(text).toMatch(/^group demo {2}role receiver {2}state registered/m);
      expect(text).toMatch(new RegExp(`^  SA 0x${gcks.currentTekSpi.toString(16).padStart(8, '0')} leading`, 'm'));
    } finally {
      await status.close();
    }
    for (const line of logs) expect(line).not.toMatch(/encKey|gskE|gskW|secret/i);
  });

  it('a speaker reaches both receivers; a receiver-only member cannot send', async () => {
    apps.a!.subscribe();
    apps.b!.subscribe();
    await sleep(200);
    await sendBurst(0, 200);
    await waitFor('delivery', () => apps.a!.got.length >= 200 && apps.b!.got.length >= 200);
    expect(apps.a!.got).toEqual([...Array(200).keys()]);
    expect(apps.b!.got).toEqual([...Array(200).keys()]);
    const before = agents.a!.datapath.stats().drops.directionViolation;
    apps.a!.send(9999);
    await waitFor('direction drop', () => agents.a!.datapath.stats().drops.directionViolation === before + 1);
    await sleep(100);
    expect(apps.b!.got).not.toContain(9999);
  });

  it('forced rekey: the leading edge is installed at once, used after ATD, the trailing edge deleted after DTD; nothing lost', async () => {
    const oldSpi = gcks.currentTekSpi;
    const newSpi = gcks.forceRekey();
    await waitFor('rekey', () => Object.values(agents).every((a) => a.sessions.get('demo')!.sas.has(newSpi)));
    const speaker = agents.s!.sessions.get('demo')!;
    expect(speaker.sas.get(newSpi)!.state).toBe('pending');
    // Keep sending through the switch.
    const start = 200;
    let n = start;
    const until = Date.now() + (ATD + DTD) * 1000 + 800;
    while (Date.now() < until) {
      await sendBurst(n, 20);
      n += 20;
      await sleep(20);
    }
    await waitFor('delivery', () => apps.a!.got.length >= n && apps.b!.got.length >= n);
    for (const app of [apps.a!, apps.b!]) expect(app.got.slice(start)).toEqual([...Array(n - start).keys()].map((i) => i + start));
    const stats = new Map(agents.s!.datapath.stats().sas.map((x) => [x.spi, x]));
    expect(stats.has(oldSpi)).toBe(false); // deleted after DTD
    expect(stats.get(newSpi)!.packetsOut).toBeGreaterThan(0);
    const t = speaker.timeline.filter((e) => e.spi === newSpi || e.spi === oldSpi).map((e) => [e.spi === newSpi ? 'new' : 'old', e.event]);
    expect(t).toEqual([
      ['old', 'installed'],
      ['old', 'activated'],
      ['new', 'installed'],
      ['old', 'retired'],
      ['new', 'activated'],
      ['old', 'deleted'],
    ]);
    const act = speaker.timeline.find((e) => e.spi === newSpi && e.event === 'activated')!.at;
    const inst = speaker.timeline.find((e) => e.spi === newSpi && e.event === 'installed')!.at;
    expect(act - inst).toBeGreaterThanOrEqual(ATD * 1000 - 5);
    for (const a of Object.values(agents)) expect(a.sessions.get('demo')!.counters.rekeysAccepted).toBe(1);
  }, 20_000);

  it('eviction: the evicted member is excluded and decrypts nothing new; the others lose nothing', async () => {
    const beforeB = apps.b!.got.length;
    const newSpi = gcks.evict(names.b);
    await waitFor('eviction rekey', () => [agents.s!, agents.a!].every((a) => a.sessions.get('demo')!.sas.has(newSpi)));
    await waitFor('exclusion', () => agents.b!.sessions.get('demo')!.state === 'excluded');
    await sleep(ATD * 1000 + 200); // the speaker switches to the new TEK
    const start = 100_000;
    await sendBurst(start, 200);
    await waitFor('delivery', () => apps.a!.got.filter((x) => x >= start).length >= 200);
    await sleep(200);
    expect(apps.a!.got.filter((x) => x >= start)).toEqual([...Array(200).keys()].map((i) => i + start));
    expect(apps.b!.got.filter((x) => x >= start)).toEqual([]);
    expect(apps.b!.got.length).toBe(beforeB);
    expect(agents.b!.datapath.stats().drops.noSa).toBeGreaterThan(0);
  }, 20_000);

  it('de-registers on stop (the GCKS sees the leave)', async () => {
    const leaves = gcks.leaves;
    await agents.a!.stop();
    expect(gcks.leaves).toBe(leaves + 1);
    expect(agents.a!.sessions.get('demo')!.counters.deregistrations).toBe(1);
  });
});

describe('member agent: failover, on-demand registration (RFC 5374 §4.1.1), unknown SPI', () => {
  let gcks: TestGcks;
  let silent: dgram.Socket;
  const agents: MemberAgent[] = [];
  const apps: LoopbackApp[] = [];
  let port0 = 0;
  let rekeyPort = 0;
  const group = `239.73.${process.pid % 250}.${(process.pid >> 8) % 250}`;
  const rekeyGroup = `239.74.${process.pid % 250}.${(process.pid >> 8) % 250}`;

  async function agent(id: string, role: 'speaker' | 'receiver', appPort: number, gcksList: { address: string; port: number }[], registration: 'at-start' | 'on-demand') {
    const config = parseAgentConfig(
      {
        identity: { kind: 'psk', id, secret: PSK },
        trustAnchor: 'unused.pem',
        gcks: gcksList,
        groups: [{ name: 'od', role, registration, applicationPort: appPort, address: group, dataPort: port0 }],
        ikeTimeoutMs: 200,
        ikeTries: 2,
      },
      '/',
    );
    const a = await MemberAgent.start({ config, secrets: { trustAnchorPem: gcks.anchorPem, psk: new TextEncoder().encode(PSK) }, log: jsonLogger('error', () => undefined), espPort: port0 });
    agents.push(a);
    const app = await LoopbackApp.open(appPort);
    apps.push(app);
    return { a, app, s: a.sessions.get('od')! };
  }

  beforeAll(async () => {
    port0 = await freeUdpPort();
    rekeyPort = await freeUdpPort();
    gcks = await TestGcks.start({ group: 'od', groupAddress: group, dataPort: port0, rekeyAddress: rekeyGroup, rekeyPort, atd: 1, dtd: 1, psk: PSK, speakers: '*.speakers.test', receivers: '*.rx.test' });
    silent = dgram.createSocket('udp4');
    await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
  });
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await Promise.all(apps.map((a) => a.close()));
    await new Promise<void>((r) => silent.close(() => r()));
    await gcks?.close();
  });

  it('fails over to the next GCKS when the first does not answer', async () => {
    const dead = { address: '127.0.0.1', port: (silent.address() as { port: number }).port };
    const { s } = await agent('rx1.rx.test', 'receiver', await freeUdpPort(), [dead, { address: '127.0.0.1', port: gcks.port }], 'at-start');
    await waitFor('registration after failover', () => s.state === 'registered');
    expect(s.counters.failovers).toBe(1);
    expect(s.gcks).toEqual({ address: '127.0.0.1', port: gcks.port });
    expect(s.lastError).toMatch(/TIMEOUT/);
  });

  it('on-demand: nothing before the first protected packet; that packet triggers registration and is sent once the SA is there', async () => {
    const before = gcks.registrations;
    const { a, app, s } = await agent('od.speakers.test', 'speaker', await freeUdpPort(), [{ address: '127.0.0.1', port: gcks.port }], 'on-demand');
    const rx = apps[0]!;
    rx.subscribe();
    await sleep(300);
    expect(s.state).toBe('idle');
    expect(gcks.registrations).toBe(before);
    app.send(4242);
    await waitFor('on-demand registration', () => s.state === 'registered');
    expect(gcks.registrations).toBe(before + 1);
    await waitFor('held packet delivered', () => rx.got.includes(4242));
    expect(a.datapath.stats().sent).toBeGreaterThanOrEqual(1);
  });

  it('forged and junk datagrams on the rekey address are refused and counted; nothing changes', async () => {
    const s = agents[0]!.sessions.get('od')!;
    const sasBefore = [...s.sas.keys()];
    const regs = s.counters.registrations;
    const junk = dgram.createSocket('udp4');
    await new Promise<void>((r) => junk.bind(0, '127.0.0.1', () => r()));
    junk.setMulticastInterface('127.0.0.1');
    const fake = Buffer.alloc(80, 0x41);
    fake[17] = 0x20; // version 2
    fake[18] = 41; // GSA_REKEY
    junk.send(fake, rekeyPort, rekeyGroup);
    junk.send(Buffer.from([1, 2, 3]), rekeyPort, rekeyGroup);
    await waitFor('refusals', () => s.counters.rekeysRefused >= 2);
    await new Promise<void>((r) => junk.close(() => r()));
    expect([...s.refusals.keys()].every((k) => k.startsWith('rekey:'))).toBe(true);
    expect([...s.sas.keys()]).toEqual(sasBefore);
    expect(s.counters.registrations).toBe(regs);
    expect(s.state).toBe('registered');
  });

  it('an unknown SPI for the group makes a registered member re-register', async () => {
    const rxAgent = agents[0]!;
    const s = rxAgent.sessions.get('od')!;
    const regs = s.counters.registrations;
    // A new TEK that only a fresh registration delivers: the GCKS switches without a GSA_REKEY.
    (gcks as unknown as { tek: { spi: number } }).tek = (gcks as unknown as { newTek(): { spi: number } }).newTek();
    const spk = agents[1]!.sessions.get('od')!;
    await spk.register(); // the speaker re-registers and gets the new TEK
    await sleep(100);
    apps[1]!.send(1);
    await waitFor('re-registration', () => s.counters.registrations === regs + 1);
    expect(s.counters.unknownSpi).toBeGreaterThanOrEqual(1);
    expect(s.sas.has(gcks.currentTekSpi)).toBe(true);
  });

  it('A.3 any-to-any: two speakers share one SA (distinct Sender-IDs in the IV, no anti-replay) and a receiver gets both streams', async () => {
    const second = await agent('od2.speakers.test', 'speaker', await freeUdpPort(), [{ address: '127.0.0.1', port: gcks.port }], 'at-start');
    await waitFor('second speaker', () => second.s.state === 'registered');
    const first = agents[1]!;
    // One shared SA: both speakers hold the group's current TEK (any source, window 0).
    expect(second.s.sas.has(gcks.currentTekSpi)).toBe(true);
    expect(first.sessions.get('od')!.sas.has(gcks.currentTekSpi)).toBe(true);
    const rx = apps[0]!;
    const before = rx.got.length;
    for (let i = 0; i < 100; i++) {
      apps[1]!.send(200_000 + i);
      second.app.send(300_000 + i);
      if (i % 20 === 19) await sleep(5);
    }
    await waitFor('both streams', () => rx.got.length >= before + 200);
    await sleep(100);
    const got = rx.got.slice(before);
    expect(got.filter((n) => n >= 300_000)).toEqual([...Array(100).keys()].map((i) => 300_000 + i));
    expect(got.filter((n) => n < 300_000)).toEqual([...Array(100).keys()].map((i) => 200_000 + i));
    expect(agents[0]!.datapath.stats().drops.replay).toBe(0);
  });

  it('re-registers before its KEK expires (kekRenewBeforeSeconds)', async () => {
    const config = parseAgentConfig(
      {
        identity: { kind: 'psk', id: 'kek.rx.test', secret: PSK },
        trustAnchor: 'unused.pem',
        gcks: [{ address: '127.0.0.1', port: gcks.port }],
        groups: [{ name: 'od', role: 'receiver', applicationPort: await freeUdpPort(), address: group, dataPort: port0 }],
        kekRenewBeforeSeconds: 3599, // the test GCKS's KEK lives 3600 s: renew after about 1 s
      },
      '/',
    );
    const a = await MemberAgent.start({ config, secrets: { trustAnchorPem: gcks.anchorPem, psk: new TextEncoder().encode(PSK) }, log: jsonLogger('error', () => undefined), espPort: port0 });
    agents.push(a);
    const s = a.sessions.get('od')!;
    await waitFor('renewal', () => s.counters.reRegistrations >= 1 && s.state === 'registered', 8000);
    expect(s.counters.registrations).toBeGreaterThanOrEqual(2);
  });
});

describe('member agent: an SSM group (RFC 4607) on loopback', () => {
  let gcks: TestGcks;
  const agents: MemberAgent[] = [];
  const apps: LoopbackApp[] = [];
  let port0 = 0;
  const group = `232.75.${process.pid % 250}.${(process.pid >> 8) % 250}`;

  async function agent(id: string, role: 'speaker' | 'receiver', appPort: number, source?: string) {
    const config = parseAgentConfig(
      {
        identity: { kind: 'psk', id, secret: PSK },
        trustAnchor: 'unused.pem',
        gcks: [{ address: '127.0.0.1', port: gcks.port }],
        groups: [{ name: 'ssm', role, applicationPort: appPort, address: group, dataPort: port0, ...(source ? { source } : {}) }],
      },
      '/',
    );
    const a = await MemberAgent.start({ config, secrets: { trustAnchorPem: gcks.anchorPem, psk: new TextEncoder().encode(PSK) }, log: jsonLogger('error', () => undefined), espPort: port0 });
    agents.push(a);
    const app = await LoopbackApp.open(appPort);
    apps.push(app);
    return { a, app };
  }

  beforeAll(async () => {
    port0 = await freeUdpPort();
    gcks = await TestGcks.start({ group: 'ssm', groupAddress: group, dataPort: port0, rekeyAddress: `239.76.${process.pid % 250}.1`, rekeyPort: await freeUdpPort(), atd: 1, dtd: 1, psk: PSK, speakers: '*.speakers.test', receivers: '*.rx.test' });
  });
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await Promise.all(apps.map((a) => a.close()));
    await gcks?.close();
  });

  it('the receiver joins (S,G) for the speaker only: the speaker reaches it, another source does not', async () => {
    const speaker = await agent('ssm.speakers.test', 'speaker', await freeUdpPort());
    const rx = await agent('ssm.rx.test', 'receiver', await freeUdpPort(), '127.0.0.1');
    await waitFor('registration', () => agents.every((a) => a.sessions.get('ssm')!.state === 'registered'));
    rx.app.subscribe();
    await sleep(200);
    for (let i = 0; i < 50; i++) speaker.app.send(i);
    await waitFor('delivery', () => rx.app.got.length >= 50);
    expect(rx.app.got).toEqual([...Array(50).keys()]);
    const received = rx.a.network.stats.receivedPackets;
    const other = dgram.createSocket('udp4');
    await new Promise<void>((r) => other.bind(0, '127.0.0.2', () => r()));
    other.setMulticastInterface('127.0.0.1');
    for (let i = 0; i < 20; i++) other.send(Buffer.alloc(40, 1), port0, group);
    await sleep(300);
    await new Promise<void>((r) => other.close(() => r()));
    expect(rx.a.network.stats.receivedPackets).toBe(received); // filtered by the kernel's source filter
  });
});
