/**
 * The FFI binds against the real kernel, in two namespaces on a bridge (root only): the TUN
 * device reads what an unmodified sender multicasts and injects packets a plain receiver gets;
 * the raw ESP bind sends headers as written (a foreign source survives: IP_HDRINCL) and honours
 * ASM and SSM joins; the UDP bind carries IPv6 multicast with an SSM join.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, JsonLines, NetnsLab, netnsSkipReason, type LabHost } from '../support/netns.js';
import { PY_RECEIVER, PY_SENDER, PYTHON } from '../support/netns-apps.js';
import { ipv4Packet, ipv6Packet, parseIpv4, PROTO_ESP, PROTO_UDP, udp4Packet, udp6Packet } from '../support/netns-packets.js';

const skip = netnsSkipReason();
if (skip) console.log(`[netns] binds.test.ts skipped: ${skip}`);

const PROBE = fileURLToPath(new URL('../../dist/test/support/netns-bind-probe.js', import.meta.url));
function espPayload(spi: number, seq: number, text: string): Buffer {
  const b = Buffer.alloc(8 + text.length);
  b.writeUInt32BE(spi, 0);
  b.writeUInt32BE(seq, 4);
  b.write(text, 8);
  return b;
}

describe.skipIf(skip !== undefined)('FFI and UDP binds in network namespaces', () => {
  const lab = new NetnsLab('b');
  let a: LabHost;
  let b: LabHost;
  let probeA: JsonLines;
  let probeB: JsonLines;

  beforeAll(async () => {
    assertBuilt(PROBE);
    [a, b] = (await lab.bridge([
      { suffix: 'a', ipv4: '192.0.2.1', ipv6: '2001:db8::1' },
      { suffix: 'b', ipv4: '192.0.2.2', ipv6: '2001:db8::2' },
    ])) as [LabHost, LabHost];
    for (const h of [a, b]) {
      await lab.sysctl(h.ns, { 'net.ipv4.conf.all.rp_filter': '0', 'net.ipv4.conf.default.rp_filter': '0' });
    }
    probeA = new JsonLines(lab.spawn(a.ns, process.execPath, [PROBE]));
    probeB = new JsonLines(lab.spawn(b.ns, process.execPath, [PROBE]));
    await probeA.next((l) => l.ev === 'ready');
    await probeB.next((l) => l.ev === 'ready');
  });

  afterAll(async () => {
    await lab.cleanup();
  });

  it('TUN: an unmodified sender’s multicast is read from the device as one IP packet', async () => {
    await probeA.request({ op: 'tun-open', name: 'gst0', routes: ['239.1.2.3/32'], disableIpv6: true });
    await lab.run(a.ns, PYTHON, ['-c', PY_SENDER, '239.1.2.3', '5000', '1', 'hello-tun']);
    const line = await probeA.next((l) => {
      if (l.ev !== 'tun') return false;
      const ip = parseIpv4(Buffer.from(String(l.hex), 'hex'));
      return ip.dst === '239.1.2.3' && ip.protocol === PROTO_UDP;
    });
    const ip = parseIpv4(Buffer.from(String(line.hex), 'hex'));
    // With no address on the TUN the kernel takes the source from eth0: the host's own address.
    expect(ip.src).toBe(a.ipv4);
    expect(ip.totalLength).toBe(Buffer.from(String(line.hex), 'hex').length);
    expect(ip.payload.readUInt16BE(2)).toBe(5000);
    expect(ip.payload.subarray(8).toString()).toBe('hello-tun 0000');
  });

  it('TUN: a packet written to the device reaches a plain receiver bound to 0.0.0.0', async () => {
    const receiver = new JsonLines(lab.spawn(a.ns, PYTHON, ['-u', '-c', PY_RECEIVER, '239.1.2.3', '5001']));
    await receiver.next((l) => l.ev === 'ready');
    const packet = udp4Packet({ src: b.ipv4, dst: '239.1.2.3', srcPort: 40000, dstPort: 5001, payload: Buffer.from('from-tun') });
    const reply = await probeA.request({ op: 'tun-write', hex: packet.toString('hex') });
    expect(reply.stats).toMatchObject({ txPackets: 1, txErrors: 0 });
    const msg = await receiver.next((l) => l.ev === 'msg');
    expect(msg).toMatchObject({ from: b.ipv4, data: 'from-tun' });
  });

  it('TUN over IPv6: multicast routed into the device (local table) is read, and written packets are delivered', async () => {
    const group = 'ff3e::7777';
    // The host's global address goes on the TUN too: for multicast, Linux picks the source among
    // the outgoing interface's addresses only (else the sender would use the TUN's link-local).
    await probeB.request({ op: 'tun-open', name: 'gst1', routes: [`${group}/128`], addresses: [`${b.ipv6}/128`] });
    await lab.run(b.ns, PYTHON, ['-c', PY_SENDER, group, '5002', '1', 'hello-tun6']);
    const line = await probeB.next((l) => {
      if (l.ev !== 'tun') return false;
      const p = Buffer.from(String(l.hex), 'hex');
      return p[0]! >> 4 === 6 && p[6] === PROTO_UDP && p.subarray(24, 40).equals(ipv6Packet({ src: '::', dst: group, nextHeader: 0, payload: Buffer.alloc(0) }).subarray(24, 40));
    });
    const p = Buffer.from(String(line.hex), 'hex');
    expect(p.subarray(8, 24)).toEqual(ipv6Packet({ src: b.ipv6!, dst: group, nextHeader: 0, payload: Buffer.alloc(0) }).subarray(8, 24));
    expect(p.readUInt16BE(42)).toBe(5002);
    expect(p.subarray(48).toString()).toBe('hello-tun6 0000');

    const receiver = new JsonLines(lab.spawn(b.ns, PYTHON, ['-u', '-c', PY_RECEIVER, group, '5003']));
    await receiver.next((l) => l.ev === 'ready');
    const packet = udp6Packet({ src: a.ipv6!, dst: group, srcPort: 40000, dstPort: 5003, payload: Buffer.from('from-tun6') });
    const reply = await probeB.request({ op: 'tun-write', hex: packet.toString('hex') });
    expect(reply.stats).toMatchObject({ txErrors: 0 });
    expect(await receiver.next((l) => l.ev === 'msg')).toMatchObject({ from: a.ipv6, data: 'from-tun6' });
  });

  it('TUN: a malformed write is counted, not thrown', async () => {
    const reply = await probeA.request({ op: 'tun-write', hex: 'ffff' });
    expect(reply.stats).toMatchObject({ txErrors: 1 });
  });

  it('raw ESP: a header with a foreign source crosses the bridge byte for byte', async () => {
    await probeB.request({ op: 'raw-open', groups: [{ group: '239.1.2.3', interface: 'eth0' }] });
    // A routes 239.1.2.3 into its TUN (previous test); IP_MULTICAST_IF sends ESP out of eth0 anyway.
    await probeA.request({ op: 'raw-open', multicastInterface: 'eth0' });
    const packet = ipv4Packet({ src: '192.0.2.77', dst: '239.1.2.3', protocol: PROTO_ESP, payload: espPayload(0x4242, 1, 'raw') });
    const sent = await probeA.request({ op: 'raw-send', hex: packet.toString('hex') });
    expect(sent.stats).toMatchObject({ sentPackets: 1, sendErrors: 0 });
    const got = await probeB.next((l) => l.ev === 'raw');
    expect(got).toMatchObject({ src: '192.0.2.77', dst: '239.1.2.3' });
    expect(got.hex).toBe(packet.toString('hex'));
  });

  it('raw ESP: an SSM join delivers the chosen source only', async () => {
    await probeB.request({ op: 'raw-join', group: '232.1.2.3', interface: 'eth0', source: a.ipv4 });
    const spoofed = ipv4Packet({ src: '192.0.2.77', dst: '232.1.2.3', protocol: PROTO_ESP, payload: espPayload(0x4343, 1, 'no') });
    const wanted = ipv4Packet({ src: a.ipv4, dst: '232.1.2.3', protocol: PROTO_ESP, payload: espPayload(0x4343, 2, 'yes') });
    // Sent in this order over one path: had the spoofed one passed the filter it would come first.
    await probeA.request({ op: 'raw-send', hex: spoofed.toString('hex') });
    await probeA.request({ op: 'raw-send', hex: wanted.toString('hex') });
    const got = await probeB.next((l) => l.ev === 'raw' && l.dst === '232.1.2.3');
    expect(got.hex).toBe(wanted.toString('hex'));
  });

  it('raw ESP: what the bind cannot send is counted, not thrown', async () => {
    const reply = await probeA.request({ op: 'raw-send', hex: '6000000000003a40' });
    expect(reply.stats).toMatchObject({ sendRejected: 1 });
  });

  it('raw ESP over IPv6: the header (foreign source, hop limit) arrives as written', async () => {
    await probeB.request({ op: 'raw-open', family: 6, groups: [{ group: 'ff3e::5151', interface: 'eth0' }] });
    await probeA.request({ op: 'raw-open', family: 6, multicastInterface: 'eth0' });
    const packet = ipv6Packet({ src: '2001:db8::77', dst: 'ff3e::5151', nextHeader: PROTO_ESP, hopLimit: 5, payload: espPayload(0x6161, 1, 'six') });
    const sent = await probeA.request({ op: 'raw-send', family: 6, hex: packet.toString('hex') });
    expect(sent.stats).toMatchObject({ sentPackets: 1, sendErrors: 0 });
    const got = await probeB.next((l) => l.ev === 'raw' && l.dst === 'ff3e::5151');
    expect(got).toMatchObject({ src: '2001:db8::77', dst: 'ff3e::5151' });
    expect(got.hex).toBe(packet.toString('hex'));
  });

  it('raw ESP over IPv6: an SSM join delivers the chosen source only', async () => {
    await probeB.request({ op: 'raw-join', family: 6, group: 'ff3e::5252', interface: 'eth0', source: a.ipv6 });
    const spoofed = ipv6Packet({ src: '2001:db8::77', dst: 'ff3e::5252', nextHeader: PROTO_ESP, payload: espPayload(0x6262, 1, 'no') });
    const wanted = ipv6Packet({ src: a.ipv6!, dst: 'ff3e::5252', nextHeader: PROTO_ESP, payload: espPayload(0x6262, 2, 'yes') });
    await probeA.request({ op: 'raw-send', family: 6, hex: spoofed.toString('hex') });
    await probeA.request({ op: 'raw-send', family: 6, hex: wanted.toString('hex') });
    const got = await probeB.next((l) => l.ev === 'raw' && l.dst === 'ff3e::5252');
    expect(got.hex).toBe(wanted.toString('hex'));
    // The kernel let the spoofed one reach the unbound raw socket; the bind's own filter dropped it.
    const stats = await probeB.request({ op: 'stats' });
    expect(stats.raw6).toMatchObject({ sourceFiltered: 1 });
  });

  it('UDP: IPv6 multicast with an SSM join between namespaces', async () => {
    await probeB.request({
      op: 'udp-open',
      family: 6,
      localAddress: b.ipv6,
      port: 4500,
      groups: [{ group: 'ff3e::4242', source: a.ipv6, interface: '::%eth0' }],
    });
    await probeA.request({ op: 'udp-open', family: 6, localAddress: a.ipv6, port: 4500, multicastInterface: '::%eth0' });
    const esp = espPayload(0x5151, 1, 'v6');
    await probeA.request({ op: 'udp-send', family: 6, hex: esp.toString('hex'), dst: 'ff3e::4242', port: 4500 });
    const got = await probeB.next((l) => l.ev === 'udp');
    expect(got).toMatchObject({ src: a.ipv6, dst: 'ff3e::4242', srcPort: 4500, dstPort: 4500, hex: esp.toString('hex') });
    const stats = await probeB.request({ op: 'stats' });
    expect(stats.udp).toMatchObject({ esp: 1, receivedPackets: 1 });
  });

  it('UDP: a link-scope IPv6 group (ff02::/16) is bound with the join interface as zone', async () => {
    await probeB.request({ op: 'udp-join', group: 'ff02::4242', interface: '::%eth0' });
    const esp = espPayload(0x5252, 1, 'link');
    await probeA.request({ op: 'udp-send', family: 6, hex: esp.toString('hex'), dst: 'ff02::4242', port: 4500 });
    const got = await probeB.next((l) => l.ev === 'udp' && l.hex === esp.toString('hex'));
    expect(got).toMatchObject({ src: a.ipv6, dst: 'ff02::4242' });
  });
});
