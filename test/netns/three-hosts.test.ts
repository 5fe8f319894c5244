/**
 * Issue 3's network test (root only): three hosts A, B, C on a bridge, each running the member
 * datapath in its own node process (test/support/netns-host.ts) with a TUN device on the
 * application side and raw ESP (or ESP in UDP) on the network side. An unmodified program on A
 * (a Python UDP sender) multicasts to the group; A's TUN bind hands each packet to the datapath,
 * which sends it as ESP in tunnel mode with address preservation "both"; B and C open it and
 * write it into their TUN devices, where plain Python receivers get it. A capture on the bridge
 * must show the group traffic only as ESP, with outer addresses equal to the inner ones (tshark
 * decrypts it with the SA's key to compare), and nothing in clear. SAs are installed through the
 * Datapath API with fixed test keys (key management comes later).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, JsonLines, NetnsLab, netnsSkipReason, stopChild, type LabHost } from '../support/netns.js';
import { decryptWithTshark, onPath, readCapture } from '../support/netns-capture.js';
import { PY_JUNK_SENDER, PY_SENDER, PYTHON, startNetnsHost, startReceivers } from '../support/netns-apps.js';

const reason =
  netnsSkipReason() ??
  (onPath('tcpdump') ? undefined : 'the capture needs tcpdump') ??
  (onPath('tshark') ? undefined : 'decrypting the capture needs tshark');
if (reason) console.log(`[netns] three-hosts.test.ts skipped: ${reason}`);

const HOST = fileURLToPath(new URL('../../dist/test/support/netns-host.js', import.meta.url));
const APP_PORT = 5000;
const MESSAGES = 200;
const TEXT = 'unmodified sender says';
const SPI = 0x5a5a0001;
const TUN = 'gstun0';
const UDP_ENCAP_PORT = 4500;
const PROTO_UDP = 17;

/** AES-GCM-128 key || 4-byte salt (RFC 4106 §8.1): fixed test bytes, not a secret. */
const TEST_KEY = '000102030405060708090a0b0c0d0e0f' + 'cafebabe';

const FAMILIES = {
  4: { group: '239.193.0.1', hosts: ['198.51.100.1', '198.51.100.2', '198.51.100.3'], bits: 32 },
  6: { group: 'ff3e::4000:1', hosts: ['2001:db8:5::1', '2001:db8:5::2', '2001:db8:5::3'], bits: 128 },
} as const;

const VARIANTS = [
  { name: 'raw ESP over IPv4', network: 'raw', family: 4, tag: 'r4' },
  { name: 'ESP in UDP 4500 over IPv4 (RFC 3948)', network: 'udp', family: 4, tag: 'u4' },
  { name: 'raw ESP over IPv6', network: 'raw', family: 6, tag: 'r6' },
  { name: 'ESP in UDP 4500 over IPv6', network: 'udp', family: 6, tag: 'u6' },
] as const;

describe.skipIf(reason !== undefined).each(VARIANTS)('three hosts on a bridge, TUN-protected multicast as $name', (variant) => {
  const fam = FAMILIES[variant.family];
  const GROUP = fam.group;
  const lab = new NetnsLab(variant.tag);
  // Made in beforeAll (not at collection, which also happens for skipped suites), removed in afterAll.
  let work = '';
  let pcap = '';
  let hosts: LabHost[] = [];
  const addressOf = (h: LabHost) => (variant.family === 4 ? h.ipv4 : h.ipv6!);
  const agents = new Map<string, JsonLines>();
  const receivers = new Map<string, JsonLines>();

  beforeAll(async () => {
    assertBuilt(HOST);
    work = mkdtempSync(join(tmpdir(), 'groupsec-netns-'));
    pcap = join(work, 'bridge.pcap');
    hosts = await lab.bridge(
      fam.hosts.map((address, i) => ({
        suffix: 'abc'[i]!,
        ipv4: variant.family === 4 ? address : `198.51.100.${i + 1}`,
        ...(variant.family === 6 ? { ipv6: address } : {}),
      })),
    );
    const a = hosts[0]!;
    for (const h of hosts) {
      await lab.sysctl(h.ns, {
        'net.ipv4.conf.all.rp_filter': '0',
        'net.ipv4.conf.default.rp_filter': '0',
        ...(variant.family === 4 ? { 'net.ipv6.conf.all.disable_ipv6': '1' } : {}),
      });
    }
    const policy = [
      {
        id: 'group-traffic',
        action: 'protect',
        direction: 'symmetric',
        selector: { destination: `${GROUP}/${fam.bits}`, protocol: PROTO_UDP, destinationPort: APP_PORT },
        groupId: 'netns-group',
      },
    ];
    for (const [i, h] of hosts.entries()) {
      const speaker = i === 0;
      const joins = speaker ? [] : [{ group: GROUP, source: addressOf(a) }];
      const config = {
        localAddress: addressOf(h),
        tun: {
          name: TUN,
          routes: [`${GROUP}/${fam.bits}`],
          txQueueLength: 4096,
          // IPv6: Linux takes a multicast source from the outgoing interface only (see TunOptions).
          ...(variant.family === 6 ? { addresses: [`${addressOf(h)}/128`], disableIpv6: false } : { disableIpv6: true }),
        },
        ...(variant.network === 'raw'
          ? {
              raw: {
                family: variant.family,
                multicastInterface: 'eth0',
                receiveBuffer: 1 << 20,
                groups: joins.map((j) => ({ ...j, interface: 'eth0' })),
              },
            }
          : {
              udp: {
                family: variant.family,
                localAddress: addressOf(h),
                port: UDP_ENCAP_PORT,
                receiveBufferSize: 1 << 20,
                multicastInterface: variant.family === 4 ? h.ipv4 : '::%eth0',
                groups: joins.map((j) => ({ ...j, interface: variant.family === 4 ? h.ipv4 : '::%eth0' })),
              },
            }),
        policy,
        sas: [
          {
            spi: SPI,
            policyId: 'group-traffic',
            destination: GROUP,
            source: addressOf(a),
            direction: speaker ? 'sender-only' : 'receiver-only',
            mode: 'tunnel',
            addressPreservation: 'both',
            transform: { kind: 'aes-gcm-16', keyBits: 128 },
            encryptionKey: TEST_KEY,
            ...(variant.network === 'udp' ? { udpEncapsulation: { sourcePort: UDP_ENCAP_PORT, destinationPort: UDP_ENCAP_PORT } } : {}),
            replayWindow: 64,
            senderId: 1,
            senderIdBits: 8,
          },
        ],
      };
      await startNetnsHost(lab, agents, h.ns, HOST, config);
    }
    await startReceivers(lab, receivers, hosts.slice(1).map((h) => h.ns), GROUP, APP_PORT);
  });

  afterAll(async () => {
    await lab.cleanup();
    if (work !== '' && process.env.GROUPSEC_KEEP_PCAP !== '1') rmSync(work, { recursive: true, force: true });
    else console.log(`[netns] capture kept in ${work}`);
  });

  it('delivers every message to B and C while the bridge carries only ESP with preserved addresses', async () => {
    const [a, b, c] = hosts as [LabHost, LabHost, LabHost];
    const speaker = addressOf(a);
    const capture = lab.spawn(lab.bridgeNamespace, 'tcpdump', ['-i', 'br0', '-n', '-U', '--immediate-mode', '-w', pcap]);
    const captureLog = new JsonLines(capture);
    await waitUntil(() => captureLog.stderr.some((l) => l.includes('listening on')));

    await lab.run(a.ns, PYTHON, ['-c', PY_SENDER, GROUP, String(APP_PORT), String(MESSAGES), TEXT]);

    const last = `${TEXT} ${String(MESSAGES - 1).padStart(4, '0')}`;
    for (const h of [b, c]) {
      await receivers.get(h.ns)!.next((l) => l.ev === 'msg' && l.data === last, 20_000).catch(() => undefined);
    }
    // Let the capture see the last frames before stopping it (bounded, not a timing assertion).
    await new Promise((r) => setTimeout(r, 200));
    await stopChild(capture);

    const figures: Record<string, unknown> = { sent: MESSAGES };
    for (const h of [b, c]) {
      const msgs = receivers.get(h.ns)!.lines.filter((l) => l.ev === 'msg');
      figures[`received_${h.ns.slice(-1)}`] = msgs.length;
      figures[`lost_${h.ns.slice(-1)}`] = MESSAGES - new Set(msgs.map((m) => m.data)).size;
    }
    for (const [ns, agent] of agents) {
      const reply = await agent.request({ op: 'stats' });
      const dp = reply.datapath as { sent: number; delivered: number; drops: Record<string, number> };
      const drops = Object.entries(dp.drops).filter(([, n]) => n > 0);
      // Drops seen here are the kernel's own IGMP/MLD reports that leave by the TUN: no policy.
      figures[`datapath_${ns.slice(-1)}`] = { sent: dp.sent, delivered: dp.delivered, drops: Object.fromEntries(drops) };
    }
    const frames = readCapture(pcap, { text: TEXT, espPort: UDP_ENCAP_PORT });
    const toGroup = frames.filter((f) => f.dst === GROUP);
    const esp = toGroup.filter((f) => f.spi !== undefined);
    figures.bridge_frames_to_group = toGroup.length;
    figures.bridge_esp = esp.length;
    figures.bridge_clear_udp = frames.filter((f) => f.proto === PROTO_UDP && f.spi === undefined).length;
    console.log(`[netns] three hosts, ${variant.name}: ${JSON.stringify(figures)}`);

    // The receivers got every message, exactly once, from A's own address (the inner source).
    for (const h of [b, c]) {
      const msgs = receivers.get(h.ns)!.lines.filter((l) => l.ev === 'msg');
      expect(msgs.length, `${h.ns}: ${JSON.stringify(figures)}`).toBe(MESSAGES);
      expect(new Set(msgs.map((m) => m.data)).size).toBe(MESSAGES);
      expect(msgs.every((m) => m.from === speaker)).toBe(true);
    }
    // On the wire: the group traffic is ESP only, one packet per message, the outer source is
    // A and the outer destination the group; no UDP other than ESP in UDP 4500 (no application
    // datagram) crossed the bridge, and the message text never appears in any frame.
    expect(figures.bridge_clear_udp).toBe(0);
    expect(toGroup.length).toBe(MESSAGES);
    expect(esp.length).toBe(MESSAGES);
    expect(esp.every((f) => f.src === speaker && f.spi === SPI)).toBe(true);
    expect(frames.some((f) => f.payloadHasText)).toBe(false);

    // An independent implementation opens every ESP packet with the SA's key: the ICV is good,
    // and the inner header's source and destination are the outer ones (preservation "both").
    const opened = decryptWithTshark(pcap, [{ family: variant.family, src: speaker, dst: GROUP, spi: SPI, key: TEST_KEY }]);
    expect(opened.length).toBe(MESSAGES);
    for (const o of opened) {
      expect(o.spi).toBe(SPI);
      expect(o.icvGood, JSON.stringify(o)).toBe(true);
      expect(o.src).toEqual([speaker, speaker]);
      expect(o.dst).toEqual([GROUP, GROUP]);
      expect(o.innerDstPort).toBe(APP_PORT);
      expect(o.text).toMatch(new RegExp(`^${TEXT} \\d{4}$`));
    }
    expect(new Set(opened.map((o) => o.text)).size).toBe(MESSAGES);
  });

  it('turns hostile input from the wire into counted drops, delivering nothing', async () => {
    const [a, b, c] = hosts as [LabHost, LabHost, LabHost];
    const JUNK = 300;
    const seed = Number(process.env.GROUPSEC_SEED ?? Date.now() % 1_000_000);
    const snapshot = async () => {
      const out: Record<string, Accounting> = {};
      for (const h of [b, c]) out[h.ns] = accounting(await agents.get(h.ns)!.request({ op: 'stats' }));
      return out;
    };
    const before = await snapshot();
    const port = variant.network === 'udp' ? UDP_ENCAP_PORT : 0;
    await lab.run(a.ns, PYTHON, ['-c', PY_JUNK_SENDER, variant.network, GROUP, String(port), String(JUNK), addressOf(a), String(SPI), String(seed), 'eth0']);
    // Wait until both receivers' binds have seen every junk datagram (bounded).
    let after = await snapshot();
    const end = Date.now() + 15_000;
    while ([b, c].some((h) => after[h.ns]!.received - before[h.ns]!.received < JUNK) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 50));
      after = await snapshot();
    }
    const figures = Object.fromEntries(
      [b, c].map((h) => {
        const d = diff(after[h.ns]!, before[h.ns]!);
        return [h.ns.slice(-1), d];
      }),
    );
    console.log(`[netns] hostile input, ${variant.name}, seed ${seed}: sent ${JUNK}, ${JSON.stringify(figures)}`);
    for (const h of [b, c]) {
      const d = diff(after[h.ns]!, before[h.ns]!);
      expect(d.received, `seed ${seed}`).toBe(JUNK);
      expect(d.delivered, `seed ${seed}`).toBe(0);
      // Every input is accounted for: a counted drop, or (ESP-in-UDP port) IKE/keepalive handed on.
      expect(d.dropped + d.ike + d.keepalives, `seed ${seed}: ${JSON.stringify(d)}`).toBe(JUNK);
      expect(d.icv, `seed ${seed}`).toBeGreaterThan(0); // forged packets with our SPI failed the ICV
    }
    // The agents are still alive and still deliver: the datapath state was not disturbed.
    expect(agents.get(b.ns)!.child.exitCode).toBeNull();
    expect(agents.get(c.ns)!.child.exitCode).toBeNull();
  });

  it('accounts for every packet of an unpaced burst on every host, and prints the rates', async () => {
    const BURST = 3000;
    const read = async () => {
      const out = new Map<string, HostCounters>();
      for (const h of hosts) out.set(h.ns, counters(await agents.get(h.ns)!.request({ op: 'stats' })));
      return out;
    };
    const before = await read();
    const counted = new Map(hosts.slice(1).map((h) => [h.ns, receivers.get(h.ns)!.lines.filter((l) => l.ev === 'msg').length]));
    const started = Date.now();
    const { stdout } = await lab.run(hosts[0]!.ns, PYTHON, ['-c', PY_SENDER, GROUP, String(APP_PORT), String(BURST), 'burst', '0']);
    // Wait (bounded) until no counter moves any more: every queue has drained.
    let after = await read();
    for (let stable = 0, i = 0; stable < 3 && i < 200; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const next = await read();
      stable = JSON.stringify([...next]) === JSON.stringify([...after]) ? stable + 1 : 0;
      after = next;
    }
    const elapsed = (Date.now() - started) / 1000;
    const figures: Record<string, unknown> = { sent_by_app: BURST, app_send_pps: Math.round(BURST / Number(stdout.trim())) };
    for (const h of hosts) {
      const d = minus(after.get(h.ns)!, before.get(h.ns)!);
      // Conservation, per host: every packet the datapath was handed (from the network or from
      // the TUN) ended as exactly one outcome; every one it sent or delivered reached its bind
      // or was counted there as refused.
      expect(d.netReceived + d.tunRead, `${h.ns} ${JSON.stringify(d)}`).toBe(d.dpConsumed);
      expect(d.netSent + d.netFailed, `${h.ns} ${JSON.stringify(d)}`).toBe(d.dpSent);
      expect(d.tunWritten + d.tunFailed, `${h.ns} ${JSON.stringify(d)}`).toBe(d.dpDelivered);
      const name = h.ns.slice(-1);
      if (h === hosts[0]) {
        figures.a = { read_from_tun: d.tunRead, kernel_dropped_at_tun: d.tunKernelDropped, esp_sent: d.dpSent, send_failed: d.netFailed };
        // What the application sent either reached the datapath or was dropped by the kernel in
        // front of the TUN queue (a reader slower than the sender); nothing vanishes in between.
        expect(d.tunRead + d.tunKernelDropped).toBeGreaterThanOrEqual(BURST);
      }
      else {
        const apps = receivers.get(h.ns)!.lines.filter((l) => l.ev === 'msg').length - counted.get(h.ns)!;
        figures[name] = { esp_received: d.netReceived, delivered: d.dpDelivered, app_received: apps, loss_pct: +(100 * (1 - apps / BURST)).toFixed(1) };
        expect(apps).toBeLessThanOrEqual(d.dpDelivered);
        expect(d.dpDelivered).toBeGreaterThan(0);
      }
    }
    figures.settle_s = +elapsed.toFixed(2);
    console.log(`[netns] unpaced burst, ${variant.name}: ${JSON.stringify(figures)}`);
  });
});

interface HostCounters {
  netReceived: number;
  netSent: number;
  netFailed: number;
  tunRead: number;
  tunWritten: number;
  tunFailed: number;
  tunKernelDropped: number;
  dpSent: number;
  dpDelivered: number;
  dpConsumed: number;
}

/** The counters every packet must be accounted in, from one host's stats reply. */
function counters(reply: Record<string, unknown>): HostCounters {
  const dp = reply.datapath as {
    sent: number;
    bypassed: number;
    delivered: number;
    held: number;
    ike: number;
    keepalives: number;
    drops: Record<string, number>;
  };
  const net = reply.network as Record<string, number>;
  const tun = reply.tun as Record<string, number>;
  const tunKernel = reply.tunKernel as { txDropped: number };
  const drops = Object.values(dp.drops).reduce((a, b) => a + b, 0);
  return {
    netReceived: net.receivedPackets!,
    netSent: net.sentPackets!,
    netFailed: (net.sendQueueFull ?? 0) + net.sendErrors! + net.sendRejected!,
    tunRead: tun.rxPackets!,
    tunWritten: tun.txPackets!,
    tunFailed: tun.txQueueFull! + tun.txErrors!,
    tunKernelDropped: tunKernel.txDropped,
    dpSent: dp.sent,
    dpDelivered: dp.delivered,
    dpConsumed: dp.sent + dp.bypassed + dp.delivered + dp.held + dp.ike + dp.keepalives + drops,
  };
}

function minus(x: HostCounters, y: HostCounters): HostCounters {
  return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, v - y[k as keyof HostCounters]])) as unknown as HostCounters;
}

interface Accounting {
  received: number;
  delivered: number;
  /** All drops except noPolicy (the kernel's own IGMP/MLD reports on the TUN). */
  dropped: number;
  icv: number;
  ike: number;
  keepalives: number;
}

function accounting(reply: Record<string, unknown>): Accounting {
  const dp = reply.datapath as { delivered: number; ike: number; keepalives: number; drops: Record<string, number> };
  const network = reply.network as { receivedPackets: number };
  const dropped = Object.entries(dp.drops).reduce((sum, [k, n]) => (k === 'noPolicy' ? sum : sum + n), 0);
  return { received: network.receivedPackets, delivered: dp.delivered, dropped, icv: dp.drops.icv ?? 0, ike: dp.ike, keepalives: dp.keepalives };
}

function diff(x: Accounting, y: Accounting): Accounting {
  return {
    received: x.received - y.received,
    delivered: x.delivered - y.delivered,
    dropped: x.dropped - y.dropped,
    icv: x.icv - y.icv,
    ike: x.ike - y.ike,
    keepalives: x.keepalives - y.keepalives,
  };
}

async function waitUntil(cond: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}
