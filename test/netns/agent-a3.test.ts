/**
 * Issue 6, scenario 3 (root only): Appendix A.3 of the architecture (RFC 5374), any-to-any with
 * one SA shared by every member and no anti-replay. The compiled GCKS and four compiled member
 * agents in TUN mode, each in its own namespace on one bridge; every agent is both a speaker and a
 * receiver of one 'any-to-any' group. Checked through the GCKS's REST API: an A.3 policy refuses
 * `antiReplay: true` (400, on create and on update) and defaults to off. Checked through the agents'
 * status: every member holds the same single data SPI, anti-replay off, each with its own Sender-ID
 * (RFC 6054). Then all four unmodified Python senders speak at once (200 numbered datagrams each):
 * every member's application receives every other member's datagrams exactly once; a bridge
 * capture shows all of it as ESP under the one SPI, the senders' ESP sequence numbers overlapping
 * (each sender counts from 1 on the shared SA: a shared anti-replay window would have refused all
 * but one sender's copy of each number), and no IV used twice (the IV's high bits are the sender's
 * Sender-ID, equal to what the GCKS assigned).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReplayWindow } from '@app/datapath';
import { SPEAKER_REPLAY_WINDOW } from '../../apps/member-agent/src/control/sa-mapping.js';
import { PY_RECEIVER, PY_SENDER, PYTHON } from '../support/netns-apps.js';
import { AGENT_HOST_SYSCTLS, agentStatus, AGENT_MAIN, GCKS_MAIN, NetnsGcks, sleep, startAgent, waitFor } from '../support/netns-agents.js';
import { bridgeCapture, espHeader, onPath, readCapture } from '../support/netns-capture.js';
import { assertBuilt, JsonLines, NetnsLab, netnsSkipReason, type LabHost } from '../support/netns.js';

const reason = netnsSkipReason() ?? (onPath('tcpdump') ? undefined : 'the capture needs tcpdump');
if (reason) console.log(`[netns] agent-a3.test.ts skipped: ${reason}`);

const GROUP = '239.194.3.1';
const REKEY = '239.194.3.9';
const DATA_PORT = 5000;
const ESP_PORT = 4500;
const STATUS_PORT = 7480;
const PER_SENDER = 200;
const GAP_MS = 2;
/** The datagrams are "<TEXT><sender> NNNN"; the capture is searched for TEXT in clear. */
const TEXT = 'a3-speaker-';
/** GWP_SENDER_ID_BITS the GCKS sends for a group with Sender-IDs (apps/gcks registration/group-config.ts). */
const SENDER_ID_BITS = 16;

interface SaView {
  spi: string;
  source?: string;
  edge: string;
  antiReplayWindow: number;
  senderId?: number;
  packetsIn: number;
  packetsOut: number;
}
interface StatusView {
  groups: { name: string; role: string; state: string; sas: SaView[]; counters: Record<string, number> }[];
  datapath: { sent: number; delivered: number; drops: Record<string, number> };
}

describe.skipIf(reason !== undefined)('A.3: four members, all speakers and receivers of one any-to-any group with one shared SA and no anti-replay', () => {
  const lab = new NetnsLab('a3');
  let work = '';
  let gcks: NetnsGcks;
  let groupId = '';
  let policyId = '';
  let hosts: LabHost[] = [];
  const names: readonly string[] = ['a', 'b', 'c', 'd'];
  const received = new Map<string, JsonLines>();

  const hostOf = (name: string) => hosts[names.indexOf(name)]!;
  async function status(name: string): Promise<StatusView> {
    return agentStatus<StatusView>(lab, hostOf(name).ns, STATUS_PORT);
  }
  /** The numbers of the datagrams "<sender> NNNN" one host's application received from `sender`. */
  function numbers(host: string, sender: string): number[] {
    return received
      .get(host)!
      .lines.filter((l) => l['ev'] === 'msg' && String(l['data']).startsWith(`${TEXT}${sender} `))
      .map((l) => Number(String(l['data']).split(' ')[1]));
  }

  beforeAll(async () => {
    assertBuilt(GCKS_MAIN);
    assertBuilt(AGENT_MAIN);
    work = mkdtempSync(join(tmpdir(), 'groupsec-a3-netns-'));
    const made = await lab.bridge([
      { suffix: 'g', ipv4: '198.51.100.10' },
      ...names.map((n, i) => ({ suffix: n, ipv4: `198.51.100.${i + 1}` })),
    ]);
    const g = made[0]!;
    hosts = made.slice(1);
    await Promise.all(made.map((h) => lab.sysctl(h.ns, AGENT_HOST_SYSCTLS)));
    gcks = new NetnsGcks(lab, g, join(work, 'gcks'));
    await gcks.start();
    groupId = (await gcks.ok<{ id: string }>('POST', '/groups', { name: 'a3', address: GROUP, serviceModel: 'any-to-any', rekeyAddress: REKEY, rekeyPort: 4600 })).id;
    await gcks.saveAnchor(join(work, 'owner.pem'));
    const psk = (name: string) => `a3-psk-${name}-0123456789abcdef`;
    for (const name of names) {
      await gcks.ok('POST', `/groups/${groupId}/pad-rules`, { kind: 'member', idType: 'psk', pattern: `${name}.a3`, role: 'speaker', psk: psk(name) });
    }
  }, 60_000);

  afterAll(async () => {
    await lab.cleanup();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('the GCKS refuses anti-replay on an A.3 policy (400 on create and on update) and leaves it off by default', async () => {
    const base = { name: 'a3-data', protocol: 17, destinationPort: DATA_PORT, udpEncapsulation: true, atd: 2, dtd: 2 };
    const refusedCreate = await gcks.api('POST', `/groups/${groupId}/policies`, { ...base, antiReplay: true });
    const created = await gcks.ok<{ id: string; antiReplay: boolean }>('POST', `/groups/${groupId}/policies`, base);
    policyId = created.id;
    const refusedUpdate = await gcks.api('PATCH', `/groups/${groupId}/policies/${policyId}`, { antiReplay: true });
    const after = await gcks.ok<{ antiReplay: boolean }>('GET', `/groups/${groupId}/policies/${policyId}`);
    console.log(
      `[netns] scenario 3, GCKS policy: POST antiReplay=true -> ${refusedCreate.status}, PATCH antiReplay=true -> ${refusedUpdate.status}, created without it -> antiReplay=${created.antiReplay}, after the refused PATCH -> antiReplay=${after.antiReplay}`,
    );
    expect(refusedCreate.status).toBe(400);
    expect(refusedCreate.body).toContain('antiReplay');
    expect(refusedUpdate.status).toBe(400);
    expect(refusedUpdate.body).toContain('antiReplay');
    expect(created.antiReplay).toBe(false);
    expect(after.antiReplay).toBe(false);
  }, 30_000);

  it('every member is a registered speaker holding the same single SA, anti-replay off, each with its own Sender-ID', async () => {
    expect(policyId).not.toBe('');
    await Promise.all(
      names.map((name) => {
        const h = hostOf(name);
        return startAgent(lab, h.ns, join(work, `${name}.json`), {
          identity: { kind: 'psk', id: `${name}.a3`, secret: `a3-psk-${name}-0123456789abcdef` },
          trustAnchor: join(work, 'owner.pem'),
          gcks: [{ address: gcks.host.ipv4, port: 4500 }],
          groups: [{ name: 'a3', role: 'speaker', address: GROUP, dataPort: DATA_PORT }],
          datapath: { mode: 'tun', localAddress: h.ipv4, multicastInterface: h.ipv4, tunName: 'gstun0' },
          status: { port: STATUS_PORT },
          logLevel: 'warn',
        });
      }),
    );
    for (const name of names) {
      let last: StatusView | undefined;
      await waitFor(`registration of ${name}`, async () => (last = await status(name)).groups[0]?.state === 'registered', 30_000).catch((e: Error) => {
        throw new Error(`${e.message}: ${JSON.stringify(last)}`);
      });
    }
    for (const name of names) {
      const lines = new JsonLines(lab.spawn(hostOf(name).ns, PYTHON, ['-u', '-c', PY_RECEIVER, GROUP, String(DATA_PORT)]));
      await lines.next((l) => l['ev'] === 'ready');
      received.set(name, lines);
    }
    const views = new Map(await Promise.all(names.map(async (n) => [n, await status(n)] as const)));
    const members = await gcks.ok<{ identity: string; role: string; senderId: number | null }[]>('GET', `/groups/${groupId}/members`);
    const figures = Object.fromEntries(
      names.map((n) => {
        const g = views.get(n)!.groups[0]!;
        return [n, { role: g.role, sas: g.sas.map((s) => ({ spi: s.spi, edge: s.edge, antiReplayWindow: s.antiReplayWindow, senderId: s.senderId })), gcksSenderId: members.find((m) => m.identity === `${n}.a3`)?.senderId }];
      }),
    );
    console.log(`[netns] scenario 3, members: ${JSON.stringify(figures)}`);
    const spis = new Set<string>();
    const senderIds = new Set<number>();
    for (const n of names) {
      const g = views.get(n)!.groups[0]!;
      expect(g.role).toBe('speaker');
      expect(g.sas).toHaveLength(1);
      const sa = g.sas[0]!;
      spis.add(sa.spi);
      expect(sa.edge).toBe('leading');
      expect(sa.source).toBeUndefined(); // one SA for every source, not per speaker
      expect(sa.antiReplayWindow).toBe(0);
      expect(sa.senderId).toBeTypeOf('number');
      expect(sa.senderId).toBe(figures[n]!.gcksSenderId);
      senderIds.add(sa.senderId!);
    }
    expect(spis.size).toBe(1);
    expect(senderIds.size).toBe(names.length);
  }, 90_000);

  it('all four speak at once: every member receives every other member’s datagrams exactly once; the bridge shows one SPI, overlapping sequence numbers, no IV twice', async () => {
    expect(received.size).toBe(names.length);
    const before = new Map(await Promise.all(names.map(async (n) => [n, await status(n)] as const)));
    const spi = Number(before.get('a')!.groups[0]!.sas[0]!.spi);
    const pcap = join(work, 'a3.pcap');
    const stop = await bridgeCapture(lab, pcap);
    const started = Date.now();
    await Promise.all(names.map((n) => lab.run(hostOf(n).ns, PYTHON, ['-c', PY_SENDER, GROUP, String(DATA_PORT), String(PER_SENDER), `${TEXT}${n}`, String(GAP_MS)])));
    const sendMs = Date.now() - started;
    await waitFor('delivery', () => names.every((h) => names.every((s) => s === h || numbers(h, s).length >= PER_SENDER)), 20_000).catch(() => undefined);
    await sleep(500); // anything late (a duplicate) would arrive now
    await stop();
    const after = new Map(await Promise.all(names.map(async (n) => [n, await status(n)] as const)));

    // Delivery, per receiving host and sender.
    const delivery = Object.fromEntries(
      names.map((h) => {
        const perSender = Object.fromEntries(
          names
            .filter((s) => s !== h)
            .map((s) => {
              const got = numbers(h, s);
              const unique = new Set(got);
              return [s, { received: got.length, lost: PER_SENDER - unique.size, duplicates: got.length - unique.size }];
            }),
        );
        return [h, perSender];
      }),
    );
    // The wire: every frame to the group, its ESP header.
    const frames = readCapture(pcap, { text: TEXT, espPort: ESP_PORT }).filter((f) => f.dst === GROUP);
    const esp = frames.map((f) => ({ src: f.src, h: espHeader(f, ESP_PORT) }));
    const bySource = new Map<string, { seq: number; iv: string }[]>();
    for (const e of esp) {
      if (!e.h || e.h.spi !== spi) continue;
      let list = bySource.get(e.src);
      if (!list) bySource.set(e.src, (list = []));
      list.push({ seq: e.h.seq, iv: e.h.iv });
    }
    const seqSets = names.map((n) => new Set((bySource.get(hostOf(n).ipv4) ?? []).map((x) => x.seq)));
    const sharedByAll = [...seqSets[0]!].filter((q) => seqSets.every((s) => s.has(q)));
    const ivs = esp.filter((e) => e.h?.spi === spi).map((e) => e.h!.iv);
    // What one anti-replay window on the shared SA would have made of the same packets, in the
    // order the bridge carried them (the datapath's own ReplayWindow, RFC 4303 §3.4.3).
    const window = new ReplayWindow(SPEAKER_REPLAY_WINDOW);
    // The window is the one an A.2 per-speaker SA gets.
    const refusedByOneWindow = esp.filter((e) => e.h?.spi === spi && !window.update(e.h.seq)).length;
    const ivSenderIds = Object.fromEntries(names.map((n) => [n, [...new Set((bySource.get(hostOf(n).ipv4) ?? []).map((x) => Number.parseInt(x.iv.slice(0, 8), 16) >>> (32 - SENDER_ID_BITS)))]]));
    const delta = (n: string, pick: (s: StatusView) => number) => pick(after.get(n)!) - pick(before.get(n)!);
    const figures = {
      senders: names.length,
      sent_per_sender: PER_SENDER,
      sent_total: PER_SENDER * names.length,
      send_ms: sendMs,
      delivery,
      own_datagrams_seen_by_own_application: Object.fromEntries(names.map((n) => [n, numbers(n, n).length])),
      wire: {
        frames_to_group: frames.length,
        esp_under_spi: ivs.length,
        other_frames: frames.length - ivs.length,
        clear_with_text: frames.filter((f) => f.payloadHasText).length,
        spi: `0x${spi.toString(16).padStart(8, '0')}`,
        per_source: Object.fromEntries(names.map((n) => {
          const list = bySource.get(hostOf(n).ipv4) ?? [];
          const seqs = list.map((x) => x.seq);
          return [hostOf(n).ipv4, { packets: list.length, seq_min: Math.min(...seqs), seq_max: Math.max(...seqs) }];
        })),
        sequence_numbers_used_by_all_senders: sharedByAll.length,
        one_window_would_refuse: { window: SPEAKER_REPLAY_WINDOW, refused: refusedByOneWindow },
        distinct_ivs: new Set(ivs).size,
        iv_sender_ids: ivSenderIds,
      },
      agents: Object.fromEntries(
        names.map((n) => [
          n,
          {
            sa_packets_in: delta(n, (s) => s.groups[0]!.sas[0]!.packetsIn),
            sa_packets_out: delta(n, (s) => s.groups[0]!.sas[0]!.packetsOut),
            delivered: delta(n, (s) => s.datapath.delivered),
            replay_drops: delta(n, (s) => s.datapath.drops['replay'] ?? 0),
            drops: Object.fromEntries(Object.entries(after.get(n)!.datapath.drops).map(([k, v]) => [k, v - (before.get(n)!.datapath.drops[k] ?? 0)]).filter(([, v]) => v !== 0)),
          },
        ]),
      ),
    };
    console.log(`[netns] scenario 3, all speak at once: ${JSON.stringify(figures)}`);

    // Exactly once, from every other member.
    for (const h of names) {
      for (const s of names) {
        if (s === h) continue;
        expect(numbers(h, s).sort((x, y) => x - y), `${h} from ${s}`).toEqual([...Array(PER_SENDER).keys()]);
      }
    }
    // One shared SPI on the wire, every sender's packets under it, nothing in clear.
    expect(figures.wire.clear_with_text).toBe(0);
    expect(ivs.length).toBe(PER_SENDER * names.length);
    expect(frames.length).toBe(PER_SENDER * names.length);
    for (const n of names) expect(bySource.get(hostOf(n).ipv4)?.length, `ESP from ${n}`).toBe(PER_SENDER);
    for (const n of names) expect(after.get(n)!.groups[0]!.sas.map((s) => Number(s.spi))).toEqual([spi]);
    // The senders' sequence numbers overlap on the one SA (each counts on its own), and all of it
    // was delivered: no replay window stood in the way.
    expect(sharedByAll.length).toBeGreaterThanOrEqual(PER_SENDER);
    expect(refusedByOneWindow).toBeGreaterThanOrEqual(PER_SENDER * (names.length - 1)); // each number passes once at most
    for (const n of names) {
      expect(figures.agents[n]!.replay_drops).toBe(0);
      expect(figures.agents[n]!.sa_packets_out).toBe(PER_SENDER);
      expect(figures.agents[n]!.sa_packets_in).toBe(PER_SENDER * (names.length - 1));
      // The agent hands up the others' datagrams only (its own come back to its application from
      // the kernel's local multicast loop, not through ESP).
      expect(figures.agents[n]!.delivered).toBe(PER_SENDER * (names.length - 1));
    }
    // Counter-mode IVs differ per sender: no IV twice under the SPI, and each sender's IVs carry
    // its own Sender-ID (RFC 6054), the one its status shows.
    expect(new Set(ivs).size).toBe(ivs.length);
    for (const n of names) expect(ivSenderIds[n]).toEqual([after.get(n)!.groups[0]!.sas[0]!.senderId]);
  }, 60_000);
});
