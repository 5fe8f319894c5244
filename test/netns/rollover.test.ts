/**
 * Rollover across real hosts (RFC 5374 §4.2.1; root only): the speaker A sends on the trailing-edge
 * SA, the leading edge is installed everywhere through the Datapath API (receivers first), A
 * switches to it once it is active, and B and C accept both until the trailing edge's delete time
 * — no message is lost. Then captured packets are replayed from A: duplicates are dropped by the
 * anti-replay window, and after the trailing edge is deleted its packets are dropped too.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, JsonLines, NetnsLab, netnsSkipReason, stopChild, type LabHost } from '../support/netns.js';
import { decryptWithTshark, onPath, readCapture } from '../support/netns-capture.js';
import { PY_RAW4_REPLAY, PY_SENDER, PYTHON, startNetnsHost, startReceivers } from '../support/netns-apps.js';

const reason =
  netnsSkipReason() ??
  (onPath('tcpdump') ? undefined : 'the capture needs tcpdump') ??
  (onPath('tshark') ? undefined : 'decrypting the capture needs tshark');
if (reason) console.log(`[netns] rollover.test.ts skipped: ${reason}`);

const HOST = fileURLToPath(new URL('../../dist/test/support/netns-host.js', import.meta.url));
const GROUP = '239.193.0.2';
const APP_PORT = 5000;
const BATCH = 100;
const TRAILING = { spi: 0x7a000001, key: '101112131415161718191a1b1c1d1e1f' + '01020304' };
const LEADING = { spi: 0x7a000002, key: '202122232425262728292a2b2c2d2e2f' + '05060708' };

type Stats = { datapath: { delivered: number; drops: Record<string, number> } };

describe.skipIf(reason !== undefined)('rollover between three hosts on a bridge (raw ESP, IPv4)', () => {
  const lab = new NetnsLab('o');
  // Made in beforeAll (not at collection, which also happens for skipped suites), removed in afterAll.
  let work = '';
  let pcap = '';
  let hosts: LabHost[] = [];
  const agents = new Map<string, JsonLines>();
  const receivers = new Map<string, JsonLines>();

  const sa = (edge: typeof TRAILING, speaker: string, direction: 'sender-only' | 'receiver-only') => ({
    spi: edge.spi,
    policyId: 'group-traffic',
    destination: GROUP,
    source: speaker,
    direction,
    mode: 'tunnel',
    addressPreservation: 'both',
    transform: { kind: 'aes-gcm-16', keyBits: 128 },
    encryptionKey: edge.key,
    replayWindow: 64,
    senderId: 1,
    senderIdBits: 8,
  });

  beforeAll(async () => {
    assertBuilt(HOST);
    work = mkdtempSync(join(tmpdir(), 'groupsec-rollover-'));
    pcap = join(work, 'bridge.pcap');
    hosts = await lab.bridge([
      { suffix: 'a', ipv4: '198.51.100.1' },
      { suffix: 'b', ipv4: '198.51.100.2' },
      { suffix: 'c', ipv4: '198.51.100.3' },
    ]);
    const a = hosts[0]!;
    for (const h of hosts) {
      await lab.sysctl(h.ns, {
        'net.ipv4.conf.all.rp_filter': '0',
        'net.ipv4.conf.default.rp_filter': '0',
        'net.ipv6.conf.all.disable_ipv6': '1',
      });
    }
    for (const [i, h] of hosts.entries()) {
      const speaker = i === 0;
      const config = {
        localAddress: h.ipv4,
        tun: { name: 'gstun0', routes: [`${GROUP}/32`] },
        raw: {
          multicastInterface: 'eth0',
          receiveBuffer: 1 << 20,
          groups: speaker ? [] : [{ group: GROUP, interface: 'eth0', source: a.ipv4 }],
        },
        policy: [
          {
            id: 'group-traffic',
            action: 'protect',
            selector: { destination: `${GROUP}/32`, protocol: 17, destinationPort: APP_PORT },
            groupId: 'netns-group',
          },
        ],
        sas: [sa(TRAILING, a.ipv4, speaker ? 'sender-only' : 'receiver-only')],
      };
      await startNetnsHost(lab, agents, h.ns, HOST, config);
    }
    await startReceivers(lab, receivers, hosts.slice(1).map((h) => h.ns), GROUP, APP_PORT);
  });

  afterAll(async () => {
    await lab.cleanup();
    if (work !== '') rmSync(work, { recursive: true, force: true });
  });

  const sendBatch = async (text: string) => {
    const [a, b, c] = hosts as [LabHost, LabHost, LabHost];
    await lab.run(a.ns, PYTHON, ['-c', PY_SENDER, GROUP, String(APP_PORT), String(BATCH), text]);
    const last = `${text} ${String(BATCH - 1).padStart(4, '0')}`;
    for (const h of [b, c]) await receivers.get(h.ns)!.next((l) => l.ev === 'msg' && l.data === last, 20_000).catch(() => undefined);
  };
  const stats = async (h: LabHost) => (await agents.get(h.ns)!.request({ op: 'stats' })) as unknown as Stats;

  it('switches the speaker to the leading edge without losing a message, then drops replays and the deleted edge', async () => {
    const [a, b, c] = hosts as [LabHost, LabHost, LabHost];
    const capture = lab.spawn(lab.bridgeNamespace, 'tcpdump', ['-i', 'br0', '-n', '-U', '--immediate-mode', '-w', pcap]);
    const captureLog = new JsonLines(capture);
    const end = Date.now() + 15_000;
    while (!captureLog.stderr.some((l) => l.includes('listening on')) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));

    await sendBatch('before');
    // Receivers install the leading edge first and keep the trailing edge for a while (its DTD);
    // then the speaker gets the leading edge, active at once.
    for (const h of [b, c]) {
      await agents.get(h.ns)!.request({ op: 'installSa', sa: sa(LEADING, a.ipv4, 'receiver-only') });
      await agents.get(h.ns)!.request({ op: 'retireSa', spi: TRAILING.spi, deleteInMs: 600_000 });
    }
    await agents.get(a.ns)!.request({ op: 'installSa', sa: sa(LEADING, a.ipv4, 'sender-only'), activateInMs: 0 });
    await sendBatch('after');
    await new Promise((r) => setTimeout(r, 200));
    await stopChild(capture);

    for (const h of [b, c]) {
      const msgs = receivers.get(h.ns)!.lines.filter((l) => l.ev === 'msg').map((l) => String(l.data));
      expect(msgs.length, h.ns).toBe(2 * BATCH);
      expect(new Set(msgs).size).toBe(2 * BATCH);
    }
    const esp = readCapture(pcap, { text: 'before', espPort: 4500 }).filter((f) => f.dst === GROUP && f.spi !== undefined);
    const spis = esp.map((f) => f.spi);
    expect(spis).toEqual([...Array(BATCH).fill(TRAILING.spi), ...Array(BATCH).fill(LEADING.spi)]);
    const opened = decryptWithTshark(pcap, [
      { family: 4, src: a.ipv4, dst: GROUP, spi: TRAILING.spi, key: TRAILING.key },
      { family: 4, src: a.ipv4, dst: GROUP, spi: LEADING.spi, key: LEADING.key },
    ]);
    expect(opened.length).toBe(2 * BATCH);
    expect(opened.every((o) => o.icvGood)).toBe(true);
    expect(opened.slice(0, BATCH).every((o) => o.text.startsWith('before '))).toBe(true);
    expect(opened.slice(BATCH).every((o) => o.text.startsWith('after '))).toBe(true);
    console.log(`[netns] rollover: sent ${2 * BATCH}, SPIs on the wire ${BATCH}x trailing then ${BATCH}x leading, received by B and C: ${2 * BATCH} each`);

    // Replays from the wire: one packet of each edge, both already seen -> anti-replay drops.
    const oldPacket = esp[0]!.hex;
    const newPacket = esp[esp.length - 1]!.hex;
    const before = await stats(b);
    await lab.run(a.ns, PYTHON, ['-c', PY_RAW4_REPLAY, a.ipv4, oldPacket, newPacket]);
    let after = await stats(b);
    const until = Date.now() + 10_000;
    while (after.datapath.drops.replay! - before.datapath.drops.replay! < 2 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
      after = await stats(b);
    }
    expect(after.datapath.drops.replay! - before.datapath.drops.replay!).toBe(2);
    expect(after.datapath.delivered).toBe(before.datapath.delivered);

    // The trailing edge reaches its delete time: its packets are no longer accepted at all.
    await agents.get(b.ns)!.request({ op: 'retireSa', spi: TRAILING.spi, deleteInMs: 0 });
    const total = (s: Stats) => Object.entries(s.datapath.drops).reduce((n, [k, v]) => (k === 'noPolicy' ? n : n + v), 0);
    const beforeDelete = await stats(b);
    await lab.run(a.ns, PYTHON, ['-c', PY_RAW4_REPLAY, a.ipv4, oldPacket]);
    let afterDelete = await stats(b);
    const until2 = Date.now() + 10_000;
    while (total(afterDelete) === total(beforeDelete) && Date.now() < until2) {
      await new Promise((r) => setTimeout(r, 50));
      afterDelete = await stats(b);
    }
    expect(total(afterDelete) - total(beforeDelete)).toBe(1);
    expect(afterDelete.datapath.drops.replay).toBe(beforeDelete.datapath.drops.replay);
    expect(afterDelete.datapath.delivered).toBe(beforeDelete.datapath.delivered);
    // C (trailing edge still held) saw the same replays and delivered none of them either.
    const atC = await stats(c);
    expect(atC.datapath.delivered).toBe(2 * BATCH);
    expect(atC.datapath.drops.replay).toBeGreaterThanOrEqual(2);
  });
});
