/**
 * Issue 3's network test (root only): three hosts A, B, C on a bridge, each running the member
 * datapath in its own node process (test/support/netns-host.ts) with a TUN device on the
 * application side and raw ESP on the network side. An unmodified program on A (a Python UDP
 * sender) multicasts to the group; A's TUN bind hands each packet to the datapath, which sends it
 * as ESP in tunnel mode with address preservation "both"; B and C open it and write it into their
 * TUN devices, where plain Python receivers get it. A capture on the bridge must show the group
 * traffic only as ESP, with outer addresses equal to the inner ones, and nothing in clear.
 * SAs are installed through the Datapath API with fixed test keys (key management comes later).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, JsonLines, NetnsLab, netnsSkipReason, stopChild, type LabHost } from '../support/netns.js';

const onPath = (tool: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const reason =
  netnsSkipReason() ??
  (onPath('tcpdump') ? undefined : 'the capture needs tcpdump') ??
  (onPath('tshark') ? undefined : 'decrypting the capture needs tshark');
if (reason) console.log(`[netns] three-hosts.test.ts skipped: ${reason}`);

const HOST = fileURLToPath(new URL('../../dist/test/support/netns-host.js', import.meta.url));
const PYTHON = '/usr/bin/python3';
const GROUP = '239.193.0.1';
const APP_PORT = 5000;
const MESSAGES = 200;
const SPI = 0x5a5a0001;
const TUN = 'gstun0';
const UDP_ENCAP_PORT = 4500;

const PY_RECEIVER = `
import json, socket, struct, sys
group, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', port))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack('4s4s', socket.inet_aton(group), socket.inet_aton('0.0.0.0')))
print(json.dumps({'ev': 'ready'}), flush=True)
while True:
    data, addr = s.recvfrom(65535)
    print(json.dumps({'ev': 'msg', 'from': addr[0], 'data': data.decode('latin1')}), flush=True)
`;

/** Sends `count` numbered messages, one per millisecond (bounded: a few hundred ms). */
const PY_SENDER = `
import socket, sys, time
group, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(count):
    s.sendto(('message %04d from an unmodified sender' % i).encode(), (group, port))
    time.sleep(0.001)
`;

/** AES-GCM-128 key || 4-byte salt (RFC 4106 §8.1): fixed test bytes, not a secret. */
const TEST_KEY = '000102030405060708090a0b0c0d0e0f' + 'cafebabe';

const VARIANTS = [
  { name: 'raw ESP (IP protocol 50)', network: 'raw', tag: 'r' },
  { name: 'ESP in UDP 4500 (RFC 3948)', network: 'udp', tag: 'u' },
] as const;

describe.skipIf(reason !== undefined).each(VARIANTS)('three hosts on a bridge, TUN-protected multicast as $name', (variant) => {
  const lab = new NetnsLab(variant.tag);
  const work = mkdtempSync(join(tmpdir(), 'groupsec-netns-'));
  const pcap = join(work, 'bridge.pcap');
  let hosts: LabHost[] = [];
  const agents = new Map<string, JsonLines>();
  const receivers = new Map<string, JsonLines>();

  beforeAll(async () => {
    assertBuilt(HOST);
    hosts = await lab.bridge([
      { suffix: 'a', ipv4: '198.51.100.1' },
      { suffix: 'b', ipv4: '198.51.100.2' },
      { suffix: 'c', ipv4: '198.51.100.3' },
    ]);
    const [a] = hosts as [LabHost];
    for (const h of hosts) {
      await lab.sysctl(h.ns, {
        'net.ipv4.conf.all.rp_filter': '0',
        'net.ipv4.conf.default.rp_filter': '0',
        'net.ipv6.conf.all.disable_ipv6': '1',
      });
    }
    const policy = [
      {
        id: 'group-traffic',
        action: 'protect',
        direction: 'symmetric',
        selector: { destination: `${GROUP}/32`, protocol: 17, destinationPort: APP_PORT },
        groupId: 'netns-group',
      },
    ];
    for (const [i, h] of hosts.entries()) {
      const speaker = i === 0;
      const config = {
        localAddress: h.ipv4,
        tun: { name: TUN, routes: [`${GROUP}/32`] },
        ...(variant.network === 'raw'
          ? { raw: { multicastInterface: 'eth0', groups: speaker ? [] : [{ group: GROUP, interface: 'eth0', source: a.ipv4 }] } }
          : {
              udp: {
                family: 4,
                localAddress: h.ipv4,
                port: UDP_ENCAP_PORT,
                multicastInterface: h.ipv4,
                groups: speaker ? [] : [{ group: GROUP, interface: h.ipv4, source: a.ipv4 }],
              },
            }),
        policy,
        sas: [
          {
            spi: SPI,
            policyId: 'group-traffic',
            destination: GROUP,
            source: a.ipv4,
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
      const agent = new JsonLines(lab.spawn(h.ns, process.execPath, [HOST, JSON.stringify(config)]));
      agents.set(h.ns, agent);
      await agent.next((l) => l.ev === 'ready');
    }
    for (const h of hosts.slice(1)) {
      const r = new JsonLines(lab.spawn(h.ns, PYTHON, ['-u', '-c', PY_RECEIVER, GROUP, String(APP_PORT)]));
      receivers.set(h.ns, r);
      await r.next((l) => l.ev === 'ready');
    }
  });

  afterAll(async () => {
    await lab.cleanup();
    if (process.env.GROUPSEC_KEEP_PCAP !== "1") rmSync(work, { recursive: true, force: true });
    else console.log(`[netns] capture kept in ${work}`);
  });

  it('delivers every message to B and C while the bridge carries only ESP with preserved addresses', async () => {
    const [a, b, c] = hosts as [LabHost, LabHost, LabHost];
    const capture = lab.spawn(lab.bridgeNamespace, 'tcpdump', ['-i', 'br0', '-n', '-U', '--immediate-mode', '-w', pcap]);
    const captureLog = new JsonLines(capture);
    await waitUntil(() => captureLog.stderr.some((l) => l.includes('listening on')));

    await lab.run(a.ns, PYTHON, ['-c', PY_SENDER, GROUP, String(APP_PORT), String(MESSAGES)]);

    const last = `message ${String(MESSAGES - 1).padStart(4, '0')} from an unmodified sender`;
    for (const h of [b, c]) {
      const r = receivers.get(h.ns)!;
      await r.next((l) => l.ev === 'msg' && l.data === last, 20_000).catch(() => undefined);
    }
    await stopChild(capture);

    const figures: Record<string, unknown> = { sent: MESSAGES };
    for (const h of [b, c]) {
      const msgs = receivers.get(h.ns)!.lines.filter((l) => l.ev === 'msg');
      figures[`received_${h.ns.slice(-1)}`] = msgs.length;
      figures[`lost_${h.ns.slice(-1)}`] = MESSAGES - new Set(msgs.map((m) => m.data)).size;
    }
    const stats: Record<string, unknown> = {};
    for (const [ns, agent] of agents) {
      const reply = await agent.request({ op: 'stats' });
      stats[ns.slice(-1)] = reply;
      const dp = reply.datapath as { sent: number; delivered: number; drops: Record<string, number> };
      const drops = Object.entries(dp.drops).filter(([, n]) => n > 0);
      figures[`datapath_${ns.slice(-1)}`] = { sent: dp.sent, delivered: dp.delivered, drops: Object.fromEntries(drops) };
    }

    const frames = readCapture(pcap);
    const toGroup = frames.filter((f) => f.dst === GROUP);
    const esp = toGroup.filter((f) => f.spi !== undefined);
    figures.bridge_frames_to_group = toGroup.length;
    figures.bridge_esp = esp.length;
    figures.bridge_clear_udp = frames.filter((f) => f.proto === 17 && f.spi === undefined).length;
    console.log(`[netns] three hosts, ${variant.name}: ${JSON.stringify(figures)}`);

    // The receivers got every message, exactly once, from A's own address (the inner source).
    for (const h of [b, c]) {
      const msgs = receivers.get(h.ns)!.lines.filter((l) => l.ev === 'msg');
      expect(msgs.length, `${h.ns}: ${JSON.stringify(stats)}`).toBe(MESSAGES);
      expect(new Set(msgs.map((m) => m.data)).size).toBe(MESSAGES);
      expect(msgs.every((m) => m.from === a.ipv4)).toBe(true);
    }
    // On the wire: the group traffic is ESP only, one packet per message, the outer source is
    // the inner source (A) and the outer destination the inner destination (the group); no UDP
    // other than ESP in UDP 4500 (the application's datagrams) crossed the bridge in clear.
    expect(figures.bridge_clear_udp).toBe(0);
    expect(toGroup.length).toBe(MESSAGES);
    expect(esp.length).toBe(MESSAGES);
    expect(esp.every((f) => f.src === a.ipv4 && f.spi === SPI)).toBe(true);
    expect(frames.some((f) => f.payloadHasText)).toBe(false);

    // An independent implementation opens every ESP packet with the SA's key: the ICV is good,
    // and the inner header's source and destination are the outer ones (preservation "both").
    const opened = decryptWithTshark(pcap, a.ipv4);
    expect(opened.length).toBe(MESSAGES);
    for (const o of opened) {
      expect(o.icvGood, JSON.stringify(o)).toBe(true);
      expect(o.src).toEqual([a.ipv4, a.ipv4]);
      expect(o.dst).toEqual([GROUP, GROUP]);
      expect(o.innerDstPort).toBe(APP_PORT);
      expect(o.text).toMatch(/^message \d{4} from an unmodified sender$/);
    }
    expect(new Set(opened.map((o) => o.text)).size).toBe(MESSAGES);
  });
});

interface Opened {
  src: string[];
  dst: string[];
  icvGood: boolean;
  innerDstPort: number;
  text: string;
}

/** tshark decrypts the capture's ESP with the test SA (AES-GCM-128, 16-octet ICV, RFC 4106). */
function decryptWithTshark(file: string, speaker: string): Opened[] {
  const sa = `"IPv4","${speaker}","${GROUP}","0x${SPI.toString(16)}","AES-GCM with 16 octet ICV [RFC4106]","0x${TEST_KEY}","NULL",""`;
  const out = execFileSync(
    'tshark',
    [
      '-r', file,
      '-o', 'esp.enable_encryption_decode:TRUE',
      '-o', 'esp.enable_authentication_check:TRUE',
      '-o', `uat:esp_sa:${sa}`,
      '-Y', 'esp',
      '-T', 'fields', '-E', 'occurrence=a', '-E', 'separator=/t',
      '-e', 'ip.src', '-e', 'ip.dst', '-e', 'esp.icv_good', '-e', 'udp.dstport', '-e', 'data.data',
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60_000 },
  );
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line) => {
      const [src = '', dst = '', icv = '', ports = '', data = ''] = line.split('\t');
      const portList = ports.split(',').filter((p) => p !== '');
      return {
        src: src.split(','),
        dst: dst.split(','),
        icvGood: icv === '1' || icv === 'True',
        innerDstPort: Number(portList[portList.length - 1]),
        text: Buffer.from(data, 'hex').toString('latin1'),
      };
    });
}

interface Frame {
  src: string;
  dst: string;
  proto: number;
  spi: number | undefined;
  payloadHasText: boolean;
}

/** Reads the capture with tcpdump's own parser: one line per frame, hex dump of each packet. */
function readCapture(file: string): Frame[] {
  const text = execFileSync('tcpdump', ['-r', file, '-n', '-x', '-q'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const frames: Frame[] = [];
  let hex = '';
  const flush = () => {
    if (hex.length >= 40) {
      const p = Buffer.from(hex, 'hex');
      if (p[0]! >> 4 === 4) {
        const ihl = (p[0]! & 0x0f) * 4;
        const proto = p[9]!;
        // ESP: protocol 50, or UDP to port 4500 whose payload starts with a non-zero SPI.
        let spi: number | undefined;
        if (proto === 50 && p.length >= ihl + 4) spi = p.readUInt32BE(ihl);
        if (proto === 17 && p.length >= ihl + 12 && p.readUInt16BE(ihl + 2) === UDP_ENCAP_PORT) {
          spi = p.readUInt32BE(ihl + 8) || undefined;
        }
        frames.push({
          src: `${p[12]}.${p[13]}.${p[14]}.${p[15]}`,
          dst: `${p[16]}.${p[17]}.${p[18]}.${p[19]}`,
          proto,
          spi,
          payloadHasText: p.includes('unmodified sender'),
        });
      }
    }
    hex = '';
  };
  for (const line of text.split('\n')) {
    const m = /^\s+0x[0-9a-f]+:\s+((?:[0-9a-f]{2,4}\s?)+)/.exec(line);
    if (m) hex += m[1]!.replace(/\s+/g, '');
    else flush();
  }
  flush();
  return frames;
}

async function waitUntil(cond: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}
