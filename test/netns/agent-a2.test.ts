/**
 * Issue 6, scenario 2 (root only): Appendix A.2 of the architecture (RFC 5374) end to end. The
 * compiled GCKS and 17 compiled member agents in TUN mode, each in its own namespace on one bridge:
 * 16 speakers and one receiver-only member of a 'per-speaker' group (maxSpeakers 16). The GCKS gives
 * every speaker SAs of its own whose source selector is the speaker's address and announces them to
 * the group in batched GSA_REKEYs. All 16 speak at once (unmodified Python senders, 100 datagrams
 * each at 50/s). Checked through the agents' status: every member holds 16 per-speaker SAs with 16
 * distinct SPIs, one per speaker address; each speaker sends only on its own SA; every speaker's
 * datagrams reach every other member exactly once, each counted on that speaker's SA, and no packet
 * is dropped as a replay or for lack of an SA (anti-replay is per SA: one window per speaker).
 * Then a speaker leaves: the others delete its SA and keep theirs, rolled over.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PY_RAW4_REPLAY, PY_RECEIVER, PY_SENDER, PYTHON } from '../support/netns-apps.js';
import { onPath, readCapture } from '../support/netns-capture.js';
import { AGENT_HOST_SYSCTLS, agentStatus, AGENT_MAIN, GCKS_MAIN, NetnsGcks, sleep, startAgent, waitFor } from '../support/netns-agents.js';
import { assertBuilt, JsonLines, NetnsLab, netnsSkipReason, stopChild, type LabHost } from '../support/netns.js';

const reason = netnsSkipReason() ?? (onPath('tcpdump') ? undefined : 'the replay check needs tcpdump');
if (reason) console.log(`[netns] agent-a2.test.ts skipped: ${reason}`);

const GROUP = '239.194.2.1';
const REKEY = '239.194.2.9';
const DATA_PORT = 5000;
const STATUS_PORT = 7480;
const SPEAKERS = 16;
const PER_SPEAKER = 100;
const GAP_MS = 20; // 50 datagrams/s per speaker
const ATD = 2;
const DTD = 2;

interface SaView {
  spi: string;
  source?: string;
  edge: string;
  packetsIn: number;
  packetsOut: number;
}
interface StatusView {
  groups: { name: string; state: string; sas: SaView[]; counters: Record<string, number> }[];
  datapath: { sent: number; delivered: number; drops: Record<string, number> };
}

describe.skipIf(reason !== undefined)('A.2: 16 concurrent speakers with an SA each, a receiver-only member, 18 namespaces on a bridge', () => {
  const lab = new NetnsLab('a2');
  let work = '';
  let gcks: NetnsGcks;
  let groupId = '';
  let hosts: LabHost[] = []; // speakers s1..s16, then the receiver r
  const names = [...Array.from({ length: SPEAKERS }, (_, i) => `s${i + 1}`), 'r'];
  const agents = new Map<string, JsonLines>();
  const received = new Map<string, JsonLines>();

  const hostOf = (name: string) => hosts[names.indexOf(name)]!;
  const speakerNames = names.slice(0, SPEAKERS);
  async function status(name: string): Promise<StatusView> {
    return agentStatus<StatusView>(lab, hostOf(name).ns, STATUS_PORT);
  }
  const statuses = async () => new Map(await Promise.all(names.map(async (n) => [n, await status(n)] as const)));
  /** The datagrams "<speaker> NNNN" one host's application received, by speaker. */
  function got(host: string): Map<string, { from: string; n: number }[]> {
    const out = new Map<string, { from: string; n: number }[]>();
    for (const l of received.get(host)!.lines) {
      if (l['ev'] !== 'msg') continue;
      const [who, num] = String(l['data']).split(' ');
      if (!who || num === undefined) continue;
      let list = out.get(who);
      if (!list) out.set(who, (list = []));
      list.push({ from: String(l['from']), n: Number(num) });
    }
    return out;
  }

  beforeAll(async () => {
    assertBuilt(GCKS_MAIN);
    assertBuilt(AGENT_MAIN);
    work = mkdtempSync(join(tmpdir(), 'groupsec-a2-netns-'));
    const made = await lab.bridge([
      { suffix: 'g', ipv4: '198.51.100.200' },
      ...names.map((n, i) => ({ suffix: n, ipv4: n === 'r' ? '198.51.100.100' : `198.51.100.${i + 1}` })),
    ]);
    const g = made[0]!;
    hosts = made.slice(1);
    await Promise.all(made.map((h) => lab.sysctl(h.ns, AGENT_HOST_SYSCTLS)));
    gcks = new NetnsGcks(lab, g, join(work, 'gcks'));
    await gcks.start();
    groupId = (await gcks.ok<{ id: string }>('POST', '/groups', { name: 'a2', address: GROUP, serviceModel: 'per-speaker', maxSpeakers: SPEAKERS, rekeyAddress: REKEY, rekeyPort: 4600 })).id;
    await gcks.ok('POST', `/groups/${groupId}/policies`, { name: 'a2-data', protocol: 17, destinationPort: DATA_PORT, udpEncapsulation: true, atd: ATD, dtd: DTD });
    await gcks.saveAnchor(join(work, 'owner.pem'));
    const psk = (name: string) => `a2-psk-${name}-0123456789abcdef`;
    for (const name of names) {
      await gcks.ok('POST', `/groups/${groupId}/pad-rules`, { kind: 'member', idType: 'psk', pattern: `${name}.a2`, role: name === 'r' ? 'receiver' : 'speaker', psk: psk(name) });
    }
    // All 17 agents start at once: the speakers' joins fall into few batched announcements.
    await Promise.all(
      names.map(async (name) => {
        const h = hostOf(name);
        const cfg = {
          identity: { kind: 'psk', id: `${name}.a2`, secret: psk(name) },
          trustAnchor: join(work, 'owner.pem'),
          gcks: [{ address: g.ipv4, port: 4500 }],
          groups: [{ name: 'a2', role: name === 'r' ? 'receiver' : 'speaker', address: GROUP, dataPort: DATA_PORT }],
          datapath: { mode: 'tun', localAddress: h.ipv4, multicastInterface: h.ipv4, tunName: 'gstun0' },
          status: { port: STATUS_PORT },
          logLevel: 'warn',
        };
        agents.set(name, await startAgent(lab, h.ns, join(work, `${name}.json`), cfg));
      }),
    );
    for (const name of names) {
      let last: StatusView | undefined;
      await waitFor(`registration of ${name}`, async () => (last = await status(name)).groups[0]?.state === 'registered', 60_000).catch((e: Error) => {
        throw new Error(`${e.message}: ${JSON.stringify(last)}`);
      });
    }
    for (const name of names) {
      const lines = new JsonLines(lab.spawn(hostOf(name).ns, PYTHON, ['-u', '-c', PY_RECEIVER, GROUP, String(DATA_PORT)]));
      await lines.next((l) => l['ev'] === 'ready');
      received.set(name, lines);
    }
  }, 180_000);

  afterAll(async () => {
    await lab.cleanup();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('every member holds one SA per speaker (16 distinct SPIs, source = the speaker), announced in batches', async () => {
    const speakerAddresses = speakerNames.map((n) => hostOf(n).ipv4).sort();
    let all = new Map<string, StatusView>();
    await waitFor(
      'every agent holding the 16 speakers’ SAs',
      async () => {
        all = await statuses();
        return [...all.values()].every((s) => new Set(s.groups[0]!.sas.filter((x) => x.edge !== 'trailing').map((x) => x.source)).size === SPEAKERS);
      },
      30_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify([...all].map(([n, s]) => [n, s.groups[0]!.sas.length]))}`);
    });
    const reference = all.get('r')!.groups[0]!.sas;
    for (const [name, s] of all) {
      const sas = s.groups[0]!.sas;
      expect(sas.map((x) => x.source).sort(), name).toEqual(speakerAddresses);
      expect(new Set(sas.map((x) => x.spi)).size, name).toBe(SPEAKERS);
      // Everyone holds the same SA for a given speaker.
      expect(sas.map((x) => `${x.source}=${x.spi}`).sort(), name).toEqual(reference.map((x) => `${x.source}=${x.spi}`).sort());
    }
    const keys = await gcks.ok<{ lastMessageId: number; speakers?: number; members: number }>('GET', `/groups/${groupId}/keys`);
    console.log(`[netns] A.2 setup: 17 agents registered (16 speakers, 1 receiver-only), ${SPEAKERS} per-speaker SAs at every member; GCKS: ${JSON.stringify(keys)}; announcements (GSA_REKEY, pool refills included): Message IDs 0..${keys.lastMessageId}`);
  }, 60_000);

  it(`all 16 speak at once (${PER_SPEAKER} datagrams each at 50/s): every member receives every other speaker exactly once, each on that speaker's SA`, async () => {
    const before = await statuses();
    const started = Date.now();
    await Promise.all(speakerNames.map((n) => lab.run(hostOf(n).ns, PYTHON, ['-c', PY_SENDER, GROUP, String(DATA_PORT), String(PER_SPEAKER), n, String(GAP_MS)])));
    const sentIn = (Date.now() - started) / 1000;
    const complete = () => names.every((h) => speakerNames.every((s) => s === h || (got(h).get(s)?.length ?? 0) >= PER_SPEAKER));
    await waitFor('delivery', complete, 20_000).catch(() => undefined);
    await sleep(500); // late duplicates would show up here
    const after = await statuses();

    // Figures: per host, from every other speaker.
    const lines: string[] = [];
    let totalLost = 0;
    let totalDup = 0;
    for (const h of names) {
      const m = got(h);
      let recv = 0;
      let lost = 0;
      let dup = 0;
      for (const s of speakerNames) {
        if (s === h) continue;
        const list = m.get(s) ?? [];
        const unique = new Set(list.map((x) => x.n));
        recv += list.length;
        lost += PER_SPEAKER - unique.size;
        dup += list.length - unique.size;
      }
      totalLost += lost;
      totalDup += dup;
      const expected = PER_SPEAKER * (h === 'r' ? SPEAKERS : SPEAKERS - 1);
      lines.push(`${h}=${recv}/${expected}${lost || dup ? ` (lost ${lost}, dup ${dup})` : ''}`);
    }
    console.log(
      `[netns] A.2: 16 speakers sent ${SPEAKERS * PER_SPEAKER} datagrams (${PER_SPEAKER} each at ${1000 / GAP_MS}/s, all at once, ${sentIn.toFixed(1)} s); received per host: ${lines.join(' ')}; lost ${totalLost}, duplicates ${totalDup}`,
    );

    for (const h of names) {
      const m = got(h);
      for (const s of speakerNames) {
        if (s === h) continue;
        const list = m.get(s) ?? [];
        expect(list.map((x) => x.n), `${h} from ${s}`).toEqual([...Array(PER_SPEAKER).keys()]);
        // Address preservation: the application sees the speaker's own address.
        expect(new Set(list.map((x) => x.from)), `${h} from ${s}`).toEqual(new Set([hostOf(s).ipv4]));
      }
    }
    const perSa: string[] = [];
    for (const h of names) {
      const b = before.get(h)!;
      const a = after.get(h)!;
      const bySource = new Map(a.groups[0]!.sas.map((x) => [x.source!, x]));
      const was = new Map(b.groups[0]!.sas.map((x) => [x.spi, x]));
      const delta = (x: SaView, k: 'packetsIn' | 'packetsOut') => x[k] - (was.get(x.spi)?.[k] ?? 0);
      for (const s of speakerNames) {
        const sa = bySource.get(hostOf(s).ipv4)!;
        if (s === h) {
          // A speaker sends on its own SA only.
          expect(delta(sa, 'packetsOut'), `${h} own SA`).toBe(PER_SPEAKER);
        } else {
          expect(delta(sa, 'packetsIn'), `${h}: SA of ${s}`).toBe(PER_SPEAKER);
          expect(delta(sa, 'packetsOut'), `${h}: SA of ${s}`).toBe(0);
        }
      }
      // One replay window per SA: 16 interleaved senders, nothing refused as a replay or unknown.
      for (const k of ['replay', 'noSa', 'integrity']) expect(a.datapath.drops[k] ?? 0, `${h} drops ${k}`).toBe(b.datapath.drops[k] ?? 0);
      expect(a.groups[0]!.counters['reRegistrations'], h).toBe(b.groups[0]!.counters['reRegistrations']);
      const ins = a.groups[0]!.sas.map((x) => delta(x, 'packetsIn'));
      perSa.push(`${h}:[${ins.join(',')}]`);
    }
    console.log(`[netns] A.2 per-SA packets in (one count per SA): ${perSa.slice(0, 2).join(' ')} … ${perSa[perSa.length - 1]}; replay/noSa drops 0 at all 17`);
  }, 90_000);

  it('per-SA anti-replay: one speaker’s packets captured on the bridge and replayed are refused by every other member and delivered once', async () => {
    const file = join(work, 'replay.pcap');
    const tcpdump = new JsonLines(lab.spawn(lab.bridgeNamespace, 'tcpdump', ['-i', 'br0', '-n', '-U', '--immediate-mode', '-w', file, 'udp', 'and', 'src', 'host', hostOf('s1').ipv4, 'and', 'dst', 'port', '4500']));
    await waitFor('tcpdump', () => tcpdump.stderr.some((l) => l.includes('listening on')), 15_000);
    await lab.run(hostOf('s1').ns, PYTHON, ['-c', PY_SENDER, GROUP, String(DATA_PORT), '5', 'rep', String(GAP_MS)]);
    await waitFor('delivery of the originals', () => names.every((h) => h === 's1' || (got(h).get('rep')?.length ?? 0) >= 5));
    await sleep(300); // the last frames reach the file (bounded, not a timing assertion)
    await stopChild(tcpdump.child);
    const frames = readCapture(file, { text: 'rep', espPort: 4500 }).filter((f) => f.spi !== undefined && f.src === hostOf('s1').ipv4);
    expect(frames).toHaveLength(5);
    expect(frames.some((f) => f.payloadHasText)).toBe(false); // ESP on the wire, no clear text
    const s1Spi = `0x${frames[0]!.spi!.toString(16).padStart(8, '0')}`;
    expect((await status('r')).groups[0]!.sas.find((x) => x.spi === s1Spi)?.source).toBe(hostOf('s1').ipv4);

    const before = await statuses();
    // Re-injected as they were (outer source s1, same SPI and sequence numbers) from the GCKS's
    // namespace: the only host on the bridge whose routes do not lead the group into a TUN device.
    // A raw socket's multicast needs a route (IP_MULTICAST_IF alone does not steer it).
    await lab.run(gcks.host.ns, 'ip', ['route', 'replace', `${GROUP}/32`, 'dev', gcks.host.ifname]);
    // The veths offload UDP checksums, so a frame seen on the bridge may carry only the partial
    // sum: the copies go out with checksum 0 (none, RFC 768); the ESP packet itself is untouched.
    const replays = frames.map((f) => {
      const p = Buffer.from(f.hex, 'hex');
      p.writeUInt16BE(0, (p[0]! & 0x0f) * 4 + 6);
      return p.toString('hex');
    });
    await lab.run(gcks.host.ns, PYTHON, ['-c', PY_RAW4_REPLAY, gcks.host.ipv4, ...replays]);
    const others = names.filter((n) => n !== 's1');
    await waitFor('the replays refused', async () => {
      const now = await Promise.all(others.map((n) => status(n)));
      return now.every((s, i) => (s.datapath.drops['replay'] ?? 0) - (before.get(others[i]!)!.datapath.drops['replay'] ?? 0) >= frames.length);
    }, 10_000).catch(async (e: Error) => {
      const now = await statuses();
      const diff = (n: string) => {
        const b = before.get(n)!;
        const a = now.get(n)!;
        const d = Object.entries(a.datapath.drops).filter(([k, v]) => v !== (b.datapath.drops[k] ?? 0)).map(([k, v]) => `${k}+${v - (b.datapath.drops[k] ?? 0)}`);
        return `${n}: ${d.join(',') || 'no drops'} delivered+${a.datapath.delivered - b.datapath.delivered}`;
      };
      throw new Error(`${e.message}; ${names.map(diff).join('; ')}; frames ${frames.map((f) => f.hex.slice(0, 80)).join(' ')}`);
    });
    await sleep(300);
    const after = await statuses();
    const delta = (n: string, k: string) => (after.get(n)!.datapath.drops[k] ?? 0) - (before.get(n)!.datapath.drops[k] ?? 0);
    for (const n of others) {
      expect(delta(n, 'replay'), n).toBe(frames.length);
      const sa = after.get(n)!.groups[0]!.sas.find((x) => x.spi === s1Spi)!;
      expect(sa.packetsIn - before.get(n)!.groups[0]!.sas.find((x) => x.spi === s1Spi)!.packetsIn, n).toBe(0);
    }
    for (const n of names) {
      const rep = (got(n).get('rep') ?? []).map((x) => x.n);
      // s1's application sees its own datagrams only if the kernel loops them back; never twice.
      if (n === 's1') expect(new Set(rep).size, n).toBe(rep.length);
      else expect(rep.sort(), n).toEqual([0, 1, 2, 3, 4]);
    }
    console.log(
      `[netns] A.2 replay: 5 ESP packets of s1 (SPI ${s1Spi}) replayed on the bridge: refused as replays on s1's SA at all ${others.length} other members, delivered 0 times more; s1 itself (its kernel drops frames with its own source address): replay ${delta('s1', 'replay')}, directionViolation ${delta('s1', 'directionViolation')}`,
    );
  }, 60_000);

  it('a forced rekey while all 16 speak: every speaker moves to a new SA of its own after ATD; every datagram arrives exactly once', async () => {
    const COUNT = 300; // 6 s at 50/s: longer than ATD + DTD after the rekey
    const before = await statuses();
    const ownBefore = new Map(speakerNames.map((n) => [n, before.get(n)!.groups[0]!.sas.find((x) => x.source === hostOf(n).ipv4)!.spi]));
    const sending = Promise.all(speakerNames.map((n) => lab.run(hostOf(n).ns, PYTHON, ['-c', PY_SENDER, GROUP, String(DATA_PORT), String(COUNT), `${n}r`, String(GAP_MS)])));
    await sleep(1000);
    const rekey = await gcks.ok<{ messageIds: number[] }>('POST', `/groups/${groupId}/rekey`);
    await sending;
    const complete = () => names.every((h) => speakerNames.every((s) => s === h || (got(h).get(`${s}r`)?.length ?? 0) >= COUNT));
    await waitFor('delivery', complete, 20_000).catch(() => undefined);
    await sleep(500);
    const after = await statuses();
    let lost = 0;
    let dup = 0;
    const perHost: string[] = [];
    for (const h of names) {
      let n = 0;
      for (const s of speakerNames) {
        if (s === h) continue;
        const list = (got(h).get(`${s}r`) ?? []).map((x) => x.n);
        n += list.length;
        lost += COUNT - new Set(list).size;
        dup += list.length - new Set(list).size;
      }
      perHost.push(`${h}=${n}`);
    }
    console.log(
      `[netns] A.2 rollover: 16 speakers sent ${SPEAKERS * COUNT} datagrams (${COUNT} each at 50/s) through a forced rekey (Message IDs ${JSON.stringify(rekey.messageIds)}); received per host: ${perHost.join(' ')}; lost ${lost}, duplicates ${dup}`,
    );
    for (const h of names) for (const s of speakerNames) if (s !== h) expect((got(h).get(`${s}r`) ?? []).map((x) => x.n), `${h} from ${s}`).toEqual([...Array(COUNT).keys()]);
    for (const n of speakerNames) {
      const g = after.get(n)!.groups[0]!;
      // The speaker's own SA is a new one now, from the same address; the old one was retired.
      const own = g.sas.filter((x) => x.source === hostOf(n).ipv4 && x.edge === 'leading');
      expect(own, n).toHaveLength(1);
      expect(own[0]!.spi, n).not.toBe(ownBefore.get(n));
      const t = (g as unknown as { timeline: { at: string; spi: string; event: string; cause: string }[] }).timeline;
      const installed = t.find((e) => e.spi === own[0]!.spi && e.event === 'installed')!;
      const activated = t.find((e) => e.spi === own[0]!.spi && e.event === 'activated')!;
      expect(Date.parse(activated.at) - Date.parse(installed.at), n).toBeGreaterThanOrEqual(ATD * 1000);
    }
    for (const h of names) {
      for (const k of ['replay', 'noSa', 'expired']) expect(after.get(h)!.datapath.drops[k] ?? 0, `${h} ${k}`).toBe(before.get(h)!.datapath.drops[k] ?? 0);
    }
  }, 90_000);

  it('a speaker leaves: the others delete its SA and keep one SA for each of the 15 remaining speakers', async () => {
    const leaving = 's16';
    const gone = hostOf(leaving).ipv4;
    await stopChild(agents.get(leaving)!.child, 5000); // SIGTERM: the agent de-registers
    await waitFor('the GCKS listing 15 speakers', async () => (await gcks.ok<{ speakers: number }>('GET', `/groups/${groupId}/keys`)).speakers === SPEAKERS - 1, 20_000);
    const others = names.filter((n) => n !== leaving);
    let all = new Map<string, StatusView>();
    await waitFor(
      `the others dropping ${leaving}'s SA`,
      async () => {
        all = new Map(await Promise.all(others.map(async (n) => [n, await status(n)] as const)));
        return [...all.values()].every((s) => {
          const sas = s.groups[0]!.sas;
          return sas.filter((x) => x.source === gone).every((x) => x.edge === 'trailing') && new Set(sas.filter((x) => x.edge !== 'trailing').map((x) => x.source)).size === SPEAKERS - 1;
        });
      },
      20_000,
    );
    for (const [n, s] of all) {
      expect(s.groups[0]!.state, n).toBe('registered');
      const live = s.groups[0]!.sas.filter((x) => x.edge !== 'trailing');
      expect(live.map((x) => x.source).sort(), n).toEqual(others.filter((o) => o !== 'r').map((o) => hostOf(o).ipv4).sort());
    }
    console.log(`[netns] A.2 leave: ${leaving} de-registered; 16 remaining members hold ${SPEAKERS - 1} live per-speaker SAs each, ${leaving}'s retired`);
  }, 60_000);
});
