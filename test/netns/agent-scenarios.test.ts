/**
 * Issue 6, the member agent's remaining network scenarios (root only), each with the compiled
 * GCKS and compiled TUN-mode agents in namespaces on one bridge, unmodified Python programs as
 * the applications:
 *
 *   8. tunnel mode with address preservation: a capture on the bridge shows the group traffic only
 *      as ESP (once ESP in UDP 4500, once native ESP, IP protocol 50), the outer source and
 *      destination equal to the inner ones, and tshark opens every packet with the keys the
 *      speaker's agent wrote to its debug key log (Wireshark esp_sa records), ICV good;
 *   4. an SSM group (the receiver joins (S,G) for the authorized speaker: the speaker reaches it,
 *      another source's ESP never does) and an IPv6 group (one speaker, two receivers, IPv6
 *      addresses on the bridge, IPv6 ESP), carried by the same agents as the IPv4 groups;
 *   fail-open: with the GCKS down, a fail-open speaker's traffic reaches a receiver in clear and a
 *      fail-close speaker's does not; once the GCKS is back and the agents registered, the same
 *      traffic is ESP.
 * Each prints its figures (sent, received per host, lost, duplicates, and what the wire showed).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PY_JUNK_SENDER, PY_RECEIVER, PY_SENDER, PYTHON } from '../support/netns-apps.js';
import { AGENT_HOST_SYSCTLS, agentStatus, AGENT_MAIN, GCKS_MAIN, NetnsGcks, sleep, startAgent, waitFor, type AgentStatusView } from '../support/netns-agents.js';
import { bridgeCapture, decryptWithTshark, onPath, readCapture, tsharkSasFromKeyLog } from '../support/netns-capture.js';
import { assertBuilt, JsonLines, NetnsLab, netnsSkipReason, type LabHost } from '../support/netns.js';

const reason =
  netnsSkipReason() ??
  (onPath('tcpdump') ? undefined : 'the capture needs tcpdump') ??
  (onPath('tshark') ? undefined : 'decrypting the capture needs tshark');
if (reason) console.log(`[netns] agent-scenarios.test.ts skipped: ${reason}`);

const DATA_PORT = 5000;
const ESP_PORT = 4500;
const STATUS_PORT = 7480;
const PROTO_UDP = 17;
const PROTO_ESP = 50;
const PSK = (name: string) => `netns-scenario-psk-${name}-0123456789`;
const all = (n: number) => [...Array(n).keys()];

/** A receiving application: PY_RECEIVER's lines, and the numbers of the messages with a given text. */
class Receiver {
  constructor(readonly lines: JsonLines) {}
  numbers(text: string): number[] {
    return this.lines.lines.filter((l) => l['ev'] === 'msg' && String(l['data']).startsWith(`${text} `)).map((l) => Number(String(l['data']).slice(text.length + 1)));
  }
}

/** received, lost and duplicates of `count` numbered messages. */
function tally(got: number[], count: number): { received: number; lost: number; duplicates: number } {
  const unique = new Set(got);
  return { received: got.length, lost: count - unique.size, duplicates: got.length - unique.size };
}

async function startReceiver(lab: NetnsLab, ns: string, group: string): Promise<Receiver> {
  const lines = new JsonLines(lab.spawn(ns, PYTHON, ['-u', '-c', PY_RECEIVER, group, String(DATA_PORT)]));
  await lines.next((l) => l['ev'] === 'ready');
  return new Receiver(lines);
}

describe.skipIf(reason !== undefined)('agent scenarios 8 and 4: address-preserving ESP on the wire, an SSM group and an IPv6 group', () => {
  const lab = new NetnsLab('sc');
  let work = '';
  let gcks: NetnsGcks;
  let hosts: LabHost[] = [];
  const names = ['a', 'b', 'c'] as const;
  const GROUPS = {
    udp: { name: 'esp-udp', address: '239.195.0.1', rekey: '239.195.0.11', udpEncapsulation: true },
    native: { name: 'esp-native', address: '239.195.0.2', rekey: '239.195.0.12', udpEncapsulation: false },
    ssm: { name: 'ssm', address: '232.1.95.1', rekey: '239.195.0.13', udpEncapsulation: true },
    v6: { name: 'v6', address: 'ff0e::195:1', rekey: 'ff0e::195:9', udpEncapsulation: true },
  } as const;
  const rx = new Map<string, Receiver>(); // `${host}|${group}`
  const status = (i: number) => agentStatus(lab, hosts[i]!.ns, STATUS_PORT);
  const send = (i: number, group: string, count: number, text: string, gapMs = 2) =>
    lab.run(hosts[i]!.ns, PYTHON, ['-c', PY_SENDER, group, String(DATA_PORT), String(count), text, String(gapMs)]);

  beforeAll(async () => {
    assertBuilt(GCKS_MAIN);
    assertBuilt(AGENT_MAIN);
    work = mkdtempSync(join(tmpdir(), 'groupsec-scenarios-'));
    const made = await lab.bridge([
      { suffix: 'g', ipv4: '198.51.100.10', ipv6: '2001:db8:95::10' },
      { suffix: 'a', ipv4: '198.51.100.1', ipv6: '2001:db8:95::1' },
      { suffix: 'b', ipv4: '198.51.100.2', ipv6: '2001:db8:95::2' },
      { suffix: 'c', ipv4: '198.51.100.3', ipv6: '2001:db8:95::3' },
    ]);
    hosts = made.slice(1);
    for (const h of made) await lab.sysctl(h.ns, { 'net.ipv4.conf.all.rp_filter': '0', 'net.ipv4.conf.default.rp_filter': '0' });
    gcks = new NetnsGcks(lab, made[0]!, join(work, 'gcks'));
    await gcks.start();
    const a = hosts[0]!;
    for (const g of Object.values(GROUPS)) {
      const ssm = g === GROUPS.ssm ? { sourceMode: 'ssm', ssmSources: [a.ipv4] } : {};
      const { id } = await gcks.ok<{ id: string }>('POST', '/groups', { name: g.name, address: g.address, serviceModel: 'any-to-any', rekeyAddress: g.rekey, rekeyPort: 4600, ...ssm });
      await gcks.ok('POST', `/groups/${id}/policies`, { name: `${g.name}-data`, protocol: PROTO_UDP, destinationPort: DATA_PORT, udpEncapsulation: g.udpEncapsulation, atd: 2, dtd: 2 });
      for (const [i, name] of names.entries()) {
        if (g === GROUPS.ssm && name === 'c') continue; // c is the SSM group's "another source", not a member
        await gcks.ok('POST', `/groups/${id}/pad-rules`, { kind: 'member', idType: 'psk', pattern: `${name}.sc`, role: i === 0 ? 'speaker' : 'receiver', psk: PSK(name) });
      }
    }
    await gcks.saveAnchor(join(work, 'owner.pem'));
    for (const [i, h] of hosts.entries()) {
      const name = names[i]!;
      const role = i === 0 ? 'speaker' : 'receiver';
      const groups = Object.values(GROUPS).flatMap((g) => {
        if (g === GROUPS.ssm && name === 'c') return [];
        return [{ name: g.name, role, address: g.address, dataPort: DATA_PORT, ...(g === GROUPS.ssm && name === 'b' ? { source: a.ipv4 } : {}) }];
      });
      await startAgent(lab, h.ns, join(work, `${name}.json`), {
        identity: { kind: 'psk', id: `${name}.sc`, secret: PSK(name) },
        trustAnchor: join(work, 'owner.pem'),
        gcks: [{ address: made[0]!.ipv4, port: 4500 }],
        groups,
        datapath: { mode: 'tun', localAddress: h.ipv4, localAddress6: h.ipv6, multicastInterface: h.ipv4, interface: 'eth0', tunName: 'gstun0' },
        status: { port: STATUS_PORT },
        debug: { espKeyLog: join(work, `${name}.keys`) },
      });
    }
    for (const [i, h] of hosts.entries()) {
      let last: AgentStatusView | undefined;
      await waitFor(`registration in ${h.ns}`, async () => (last = await status(i)).groups.every((g) => g.state === 'registered')).catch((e: Error) => {
        throw new Error(`${e.message}: ${JSON.stringify(last?.groups.map((g) => [g.name, g.state]))}`);
      });
    }
    for (const [i, h] of hosts.entries()) {
      if (i === 0) continue;
      for (const g of Object.values(GROUPS)) {
        if (g === GROUPS.ssm && names[i] === 'c') continue;
        rx.set(`${names[i]}|${g.name}`, await startReceiver(lab, h.ns, g.address));
      }
    }
  }, 150_000);

  afterAll(async () => {
    await lab.cleanup();
    if (work !== '' && process.env.GROUPSEC_KEEP_PCAP !== '1') rmSync(work, { recursive: true, force: true });
    else if (work !== '') console.log(`[netns] scenario files kept in ${work}`);
  });

  for (const variant of ['udp', 'native'] as const) {
    it(`scenario 8 (${variant === 'udp' ? 'ESP in UDP 4500, RFC 3948' : 'native ESP, IP protocol 50'}): the bridge carries only ESP with outer = inner addresses; tshark opens all of it with the key log, ICV good`, async () => {
      const g = GROUPS[variant];
      const COUNT = 200;
      const TEXT = `scenario8-${variant}`;
      const speaker = hosts[0]!.ipv4;
      const pcap = join(work, `s8-${variant}.pcap`);
      const stop = await bridgeCapture(lab, pcap);
      await send(0, g.address, COUNT, TEXT);
      await waitFor('delivery', () => ['b', 'c'].every((n) => rx.get(`${n}|${g.name}`)!.numbers(TEXT).length >= COUNT), 20_000).catch(() => undefined);
      await stop();

      const frames = readCapture(pcap, { text: TEXT, espPort: ESP_PORT });
      const toGroup = frames.filter((f) => f.dst === g.address);
      const esp = toGroup.filter((f) => f.spi !== undefined && f.proto === (variant === 'udp' ? PROTO_UDP : PROTO_ESP));
      const keys = tsharkSasFromKeyLog(readFileSync(join(work, 'a.keys'), 'utf8')).filter((k) => k.dst === g.address);
      const opened = decryptWithTshark(pcap, keys);
      const preserved = opened.filter((o) => o.src.length === 2 && o.src[0] === o.src[1] && o.dst[0] === o.dst[1] && o.src[0] === speaker && o.dst[0] === g.address);
      const counts = Object.fromEntries(['b', 'c'].map((n) => [n, tally(rx.get(`${n}|${g.name}`)!.numbers(TEXT), COUNT)]));
      const figures = {
        encapsulation: variant === 'udp' ? 'ESP in UDP 4500' : 'native ESP (protocol 50)',
        sent: COUNT,
        ...counts,
        captured_frames: frames.length,
        frames_to_group: toGroup.length,
        esp: esp.length,
        clear_with_text: frames.filter((f) => f.payloadHasText).length,
        keys_in_log: keys.length,
        decrypted: opened.length,
        icv_good: opened.filter((o) => o.icvGood).length,
        address_preserved: preserved.length,
      };
      console.log(`[netns] scenario 8, ${figures.encapsulation}: ${JSON.stringify(figures)}`);
      for (const n of ['b', 'c']) expect(rx.get(`${n}|${g.name}`)!.numbers(TEXT)).toEqual(all(COUNT));
      expect(toGroup.length).toBe(COUNT);
      expect(esp.length).toBe(COUNT);
      expect(toGroup.every((f) => f.src === speaker)).toBe(true);
      expect(figures.clear_with_text).toBe(0);
      expect(opened.length).toBe(COUNT);
      expect(figures.icv_good).toBe(COUNT);
      expect(preserved.length).toBe(COUNT);
      expect(opened.every((o) => o.innerDstPort === DATA_PORT)).toBe(true);
      expect(new Set(opened.map((o) => o.text)).size).toBe(COUNT);
      // The key log is the only place key bytes went: the status endpoint never shows them.
      const shown = JSON.stringify(await status(0));
      for (const k of keys) expect(shown).not.toContain(k.key);
    }, 90_000);
  }

  it('scenario 4, SSM: the receiver gets the authorized source; another source never reaches its agent', async () => {
    const g = GROUPS.ssm;
    const COUNT = 200;
    const JUNK = 100;
    const TEXT = 'scenario4-ssm';
    const bBefore = await status(1);
    await send(0, g.address, COUNT, TEXT);
    await waitFor('delivery', () => rx.get(`b|${g.name}`)!.numbers(TEXT).length >= COUNT, 20_000).catch(() => undefined);
    // Another source (c, not a member): ESP-looking datagrams to the group's ESP-in-UDP port,
    // and native ESP, from c's own address on the link.
    const c = hosts[2]!;
    await lab.run(c.ns, PYTHON, ['-c', PY_JUNK_SENDER, 'udp', g.address, String(ESP_PORT), String(JUNK), c.ipv4, '4096', '7', 'eth0']);
    await lab.run(c.ns, PYTHON, ['-c', PY_JUNK_SENDER, 'raw', g.address, '0', String(JUNK), c.ipv4, '4096', '8', 'eth0']);
    await sleep(500);
    const bAfter = await status(1);
    const udpIn = (s: AgentStatusView) => (s.network['udp4'] as Record<string, number>)['receivedPackets']!;
    const rawIn = (s: AgentStatusView) => (s.network['raw4'] as Record<string, number>)['receivedPackets']!;
    const t = tally(rx.get(`b|${g.name}`)!.numbers(TEXT), COUNT);
    const figures = {
      sent_by_speaker: COUNT,
      b: t,
      sent_by_other_source: { esp_in_udp: JUNK, native_esp: JUNK },
      b_agent_received: { esp_in_udp: udpIn(bAfter) - udpIn(bBefore), native_esp: rawIn(bAfter) - rawIn(bBefore) },
      b_drops: Object.fromEntries(Object.entries(bAfter.datapath.drops).map(([k, v]) => [k, v - (bBefore.datapath.drops[k] ?? 0)]).filter(([, v]) => v !== 0)),
    };
    console.log(`[netns] scenario 4, SSM (S=${hosts[0]!.ipv4}, G=${g.address}): ${JSON.stringify(figures)}`);
    expect(rx.get(`b|${g.name}`)!.numbers(TEXT)).toEqual(all(COUNT));
    // Only the speaker's packets reached b's agent: the (S,G) join filtered c at b's interface.
    expect(figures.b_agent_received.esp_in_udp).toBe(COUNT);
    expect(figures.b_agent_received.native_esp).toBe(0);
  }, 60_000);

  it('scenario 4, IPv6: one speaker and two receivers on an IPv6 group over IPv6 ESP, exactly once', async () => {
    const g = GROUPS.v6;
    const COUNT = 300;
    const TEXT = 'scenario4-v6';
    const pcap = join(work, 's4-v6.pcap');
    const stop = await bridgeCapture(lab, pcap);
    await send(0, g.address, COUNT, TEXT);
    await waitFor('delivery', () => ['b', 'c'].every((n) => rx.get(`${n}|${g.name}`)!.numbers(TEXT).length >= COUNT), 20_000).catch(() => undefined);
    await stop();
    const frames = readCapture(pcap, { text: TEXT, espPort: ESP_PORT }).filter((f) => f.dst === g.address);
    const counts = Object.fromEntries(['b', 'c'].map((n) => [n, tally(rx.get(`${n}|${g.name}`)!.numbers(TEXT), COUNT)]));
    const from = new Set(['b', 'c'].flatMap((n) => rx.get(`${n}|${g.name}`)!.lines.lines.filter((l) => l['ev'] === 'msg').map((l) => String(l['from']))));
    const keys = tsharkSasFromKeyLog(readFileSync(join(work, 'a.keys'), 'utf8')).filter((k) => k.dst === g.address);
    const opened = decryptWithTshark(pcap, keys);
    const speaker = hosts[0]!.ipv6!;
    const preserved = opened.filter((o) => o.icvGood && o.src.length === 2 && o.src.every((x) => x === speaker) && o.dst.every((x) => x === g.address));
    const figures = {
      group: g.address,
      sent: COUNT,
      ...counts,
      ipv6_esp_frames: frames.filter((f) => f.spi !== undefined).length,
      clear_with_text: frames.filter((f) => f.payloadHasText).length,
      sources_seen: [...from],
      decrypted: opened.length,
      icv_good_and_address_preserved: preserved.length,
    };
    console.log(`[netns] scenario 4, IPv6: ${JSON.stringify(figures)}`);
    for (const n of ['b', 'c']) expect(rx.get(`${n}|${g.name}`)!.numbers(TEXT)).toEqual(all(COUNT));
    expect(figures.ipv6_esp_frames).toBe(COUNT);
    expect(frames.every((f) => f.src === hosts[0]!.ipv6)).toBe(true);
    expect(figures.clear_with_text).toBe(0);
    expect([...from]).toEqual([hosts[0]!.ipv6]);
    expect(opened.length).toBe(COUNT);
    expect(preserved.length).toBe(COUNT);
  }, 60_000);
});

describe.skipIf(reason !== undefined)('fail-open: with the GCKS down, protected-but-unregistered traffic passes in clear only from a fail-open agent', () => {
  const lab = new NetnsLab('fo');
  let work = '';
  let gcks: NetnsGcks;
  let hosts: LabHost[] = [];
  let receiver: Receiver;
  const GROUP = '239.196.0.1';
  // a: fail-open speaker, b: fail-open receiver, c: fail-close speaker.
  const members = [
    { name: 'a', role: 'speaker', failMode: 'open' },
    { name: 'b', role: 'receiver', failMode: 'open' },
    { name: 'c', role: 'speaker', failMode: 'close' },
  ] as const;
  const status = (i: number) => agentStatus(lab, hosts[i]!.ns, STATUS_PORT);
  const send = (i: number, count: number, text: string) => lab.run(hosts[i]!.ns, PYTHON, ['-c', PY_SENDER, GROUP, String(DATA_PORT), String(count), text, '5']);

  beforeAll(async () => {
    assertBuilt(GCKS_MAIN);
    assertBuilt(AGENT_MAIN);
    work = mkdtempSync(join(tmpdir(), 'groupsec-failopen-'));
    const made = await lab.bridge([
      { suffix: 'g', ipv4: '198.51.100.10' },
      { suffix: 'a', ipv4: '198.51.100.1' },
      { suffix: 'b', ipv4: '198.51.100.2' },
      { suffix: 'c', ipv4: '198.51.100.3' },
    ]);
    hosts = made.slice(1);
    for (const h of made) await lab.sysctl(h.ns, AGENT_HOST_SYSCTLS);
    gcks = new NetnsGcks(lab, made[0]!, join(work, 'gcks'));
    await gcks.start();
    const { id } = await gcks.ok<{ id: string }>('POST', '/groups', { name: 'fo', address: GROUP, serviceModel: 'any-to-any', rekeyAddress: '239.196.0.11', rekeyPort: 4600 });
    await gcks.ok('POST', `/groups/${id}/policies`, { name: 'fo-data', protocol: PROTO_UDP, destinationPort: DATA_PORT, udpEncapsulation: true, atd: 1, dtd: 1 });
    for (const m of members) await gcks.ok('POST', `/groups/${id}/pad-rules`, { kind: 'member', idType: 'psk', pattern: `${m.name}.fo`, role: m.role, psk: PSK(m.name) });
    await gcks.saveAnchor(join(work, 'owner.pem'));
    await gcks.stop(); // the agents start while no GCKS answers
    for (const [i, h] of hosts.entries()) {
      const m = members[i]!;
      await startAgent(lab, h.ns, join(work, `${m.name}.json`), {
        identity: { kind: 'psk', id: `${m.name}.fo`, secret: PSK(m.name) },
        trustAnchor: join(work, 'owner.pem'),
        gcks: [{ address: made[0]!.ipv4, port: 4500 }],
        groups: [{ name: 'fo', role: m.role, registration: m.failMode === 'open' ? 'at-start' : 'on-demand', address: GROUP, dataPort: DATA_PORT }],
        datapath: { mode: 'tun', localAddress: h.ipv4, multicastInterface: h.ipv4, tunName: 'gstun0' },
        failMode: m.failMode,
        ikeTimeoutMs: 200,
        ikeTries: 1,
        status: { port: STATUS_PORT },
      });
    }
    receiver = await startReceiver(lab, hosts[1]!.ns, GROUP);
  }, 120_000);

  afterAll(async () => {
    await lab.cleanup();
    if (work !== '' && process.env.GROUPSEC_KEEP_PCAP !== '1') rmSync(work, { recursive: true, force: true });
    else if (work !== '') console.log(`[netns] fail-open files kept in ${work}`);
  });

  it('GCKS down: the fail-open speaker reaches the receiver in clear, the fail-close one does not; once registered it is ESP', async () => {
    const COUNT = 100;
    const [a, , c] = hosts as [LabHost, LabHost, LabHost];
    const before = await Promise.all([0, 1, 2].map(status));
    expect(before.map((s) => s.groups[0]!.state)).not.toContain('registered');

    const pcap1 = join(work, 'unregistered.pcap');
    let stop = await bridgeCapture(lab, pcap1);
    await send(0, COUNT, 'open');
    await send(2, COUNT, 'closed');
    await waitFor('clear delivery', () => receiver.numbers('open').length >= COUNT, 20_000).catch(() => undefined);
    await sleep(500);
    await stop();
    const down = await Promise.all([0, 1, 2].map(status));
    const frames1 = readCapture(pcap1, { text: 'open', espPort: ESP_PORT }).filter((f) => f.dst === GROUP);
    const phase1 = {
      states: Object.fromEntries(members.map((m, i) => [m.name, down[i]!.groups[0]!.state])),
      sent: { a_open: COUNT, c_close: COUNT },
      b_received: { a: tally(receiver.numbers('open'), COUNT), c: receiver.numbers('closed').length },
      wire: {
        from_a_clear_udp: frames1.filter((f) => f.src === a.ipv4 && f.proto === PROTO_UDP && f.spi === undefined && f.payloadHasText).length,
        from_a_esp: frames1.filter((f) => f.src === a.ipv4 && f.spi !== undefined).length,
        from_c: frames1.filter((f) => f.src === c.ipv4).length,
      },
      a_datapath: { bypassed: down[0]!.datapath.bypassed - before[0]!.datapath.bypassed, raw_sent: (down[0]!.network['raw4'] as Record<string, number>)['sentPackets'] },
      // In TUN mode b's kernel hands clear group traffic to the application sockets itself (the
      // host joined the group on its link); b's datapath is not on that path.
      b_datapath_delivered: down[1]!.datapath.delivered - before[1]!.datapath.delivered,
      c_datapath: { sent: down[2]!.datapath.sent, held: down[2]!.datapath.held, drops: Object.fromEntries(Object.entries(down[2]!.datapath.drops).filter(([, v]) => v > 0)) },
    };
    console.log(`[netns] fail-open, GCKS down: ${JSON.stringify(phase1)}`);
    expect(receiver.numbers('open')).toEqual(all(COUNT));
    expect(receiver.numbers('closed')).toEqual([]);
    expect(phase1.wire.from_a_clear_udp).toBe(COUNT);
    expect(phase1.wire.from_c).toBe(0);
    expect(phase1.a_datapath.bypassed).toBe(COUNT);

    // The GCKS comes back: the fail-open agents' retries register them (the fail-close
    // speaker's first packet already asked for registration).
    await gcks.start();
    for (const [i, h] of hosts.entries()) {
      await waitFor(`registration in ${h.ns}`, async () => (await status(i)).groups[0]!.state === 'registered', 90_000);
    }
    const pcap2 = join(work, 'registered.pcap');
    stop = await bridgeCapture(lab, pcap2);
    await send(0, COUNT, 'sealed');
    await waitFor('protected delivery', () => receiver.numbers('sealed').length >= COUNT, 20_000).catch(() => undefined);
    await stop();
    const frames2 = readCapture(pcap2, { text: 'sealed', espPort: ESP_PORT }).filter((f) => f.dst === GROUP);
    const phase2 = {
      sent: COUNT,
      b_received: tally(receiver.numbers('sealed'), COUNT),
      wire: { from_a_esp: frames2.filter((f) => f.src === a.ipv4 && f.spi !== undefined).length, clear_with_text: frames2.filter((f) => f.payloadHasText).length },
      c_late_closed_at_b: receiver.numbers('closed').length,
    };
    console.log(`[netns] fail-open, registered: ${JSON.stringify(phase2)}`);
    expect(receiver.numbers('sealed')).toEqual(all(COUNT));
    expect(phase2.wire.from_a_esp).toBe(COUNT);
    expect(phase2.wire.clear_with_text).toBe(0);
  }, 180_000);
});
