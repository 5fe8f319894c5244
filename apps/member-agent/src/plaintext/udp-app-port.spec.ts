import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { IPPROTO_UDP, IpPacketInfo, formatIpAddress, internetChecksum, parseIpPacket, pseudoHeaderSum } from '@app/codec';
import { freeUdpPort, sleep } from '../../../../test/support/udp-loopback.js';
import { MAX_SUBSCRIBERS, UdpAppPort } from './udp-app-port.js';

async function client(): Promise<{ s: dgram.Socket; got: Buffer[] }> {
  const s = dgram.createSocket('udp4');
  const got: Buffer[] = [];
  s.on('message', (m) => got.push(m));
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return { s, got };
}

describe('UdpAppPort (socket mode application side)', () => {
  const open: { close(): unknown }[] = [];
  afterEach(async () => {
    for (const o of open.splice(0)) await o.close();
  });

  it('wraps an application datagram into a valid inner IPv4/UDP packet to the group', async () => {
    const port0 = await freeUdpPort();
    const sut = await UdpAppPort.open({ localAddress: '127.0.0.1', applicationAddress: '127.0.0.1', groups: [{ name: 'g', address: '239.5.5.5', dataPort: 5000, applicationPort: port0 }] });
    open.push(sut);
    const packets: Uint8Array[] = [];
    sut.onPacket((p) => packets.push(p));
    const app = await client();
    open.push({ close: () => new Promise<void>((r) => app.s.close(() => r())) });
    app.s.send(Buffer.from('hello group'), port0, '127.0.0.1');
    await sleep(100);
    expect(packets).toHaveLength(1);
    const p = parseIpPacket(packets[0]!, 0, packets[0]!.length, new IpPacketInfo());
    expect(p.protocol).toBe(IPPROTO_UDP);
    expect(formatIpAddress(packets[0]!, p.srcOffset, 4)).toBe('127.0.0.1');
    expect(formatIpAddress(packets[0]!, p.dstOffset, 4)).toBe('239.5.5.5');
    expect([p.srcPort, p.dstPort]).toEqual([5000, 5000]);
    const udpLen = p.end - p.upperOffset;
    // A correct UDP checksum sums (with the pseudo-header) to zero.
    expect(internetChecksum(packets[0]!, p.upperOffset, p.end, pseudoHeaderSum(packets[0]!, p.srcOffset, p.dstOffset, 4, udpLen, IPPROTO_UDP))).toBe(0);
    expect(Buffer.from(packets[0]!.subarray(p.upperOffset + 8)).toString()).toBe('hello group');
    expect(sut.stats.fromApps).toBe(1);
  });

  it('delivers verified packets for the group to each subscriber as the bare payload; other packets are counted', async () => {
    const port0 = (await freeUdpPort()) - 1;
    const sut = await UdpAppPort.open({ localAddress: '127.0.0.1', applicationAddress: '127.0.0.1', groups: [{ name: 'g', address: '239.5.5.6', dataPort: 5000, applicationPort: port0 + 1 }] });
    open.push(sut);
    const a = await client();
    const b = await client();
    open.push({ close: () => Promise.all([a, b].map((c) => new Promise<void>((r) => c.s.close(() => r())))) });
    a.s.send(Buffer.alloc(0), port0 + 1, '127.0.0.1');
    b.s.send(Buffer.alloc(0), port0 + 1, '127.0.0.1');
    b.s.send(Buffer.alloc(0), port0 + 1, '127.0.0.1'); // subscribing twice counts once
    await sleep(100);
    expect(sut.subscribers('239.5.5.6')).toBe(2);
    let built: Uint8Array | undefined;
    sut.onPacket((p) => (built = p));
    a.s.send(Buffer.from('payload'), port0 + 1, '127.0.0.1');
    await sleep(50);
    sut.deliver(built!);
    sut.deliver(Uint8Array.from([0x45, 0, 0])); // malformed
    const other = Uint8Array.from(built!);
    other[19] = 7; // another group address (header checksum now wrong: malformed as well)
    sut.deliver(other);
    await sleep(100);
    expect(a.got.map(String)).toEqual(['payload']);
    expect(b.got.map(String)).toEqual(['payload']);
    expect(sut.stats.undeliverable).toBe(2);
  });

  it('keeps at most MAX_SUBSCRIBERS per group, the oldest giving way', async () => {
    const port0 = (await freeUdpPort()) - 2;
    const sut = await UdpAppPort.open({ localAddress: '127.0.0.1', applicationAddress: '127.0.0.1', groups: [{ name: 'g', address: '239.5.5.7', dataPort: 5000, applicationPort: port0 + 2 }] });
    open.push(sut);
    const clients = await Promise.all(Array.from({ length: MAX_SUBSCRIBERS + 2 }, () => client()));
    open.push({ close: () => Promise.all(clients.map((c) => new Promise<void>((r) => c.s.close(() => r())))) });
    for (const c of clients) c.s.send(Buffer.alloc(0), port0 + 2, '127.0.0.1');
    await sleep(150);
    expect(sut.subscribers('239.5.5.7')).toBe(MAX_SUBSCRIBERS);
    expect(sut.stats.subscriptions).toBe(MAX_SUBSCRIBERS + 2);
  });

  it('refuses a port already in use (typed socket error, nothing left open)', async () => {
    const port0 = (await freeUdpPort()) - 2;
    const blocker = dgram.createSocket('udp4');
    await new Promise<void>((r) => blocker.bind(port0 + 2, '127.0.0.1', () => r()));
    open.push({ close: () => new Promise<void>((r) => blocker.close(() => r())) });
    await expect(UdpAppPort.open({ localAddress: '127.0.0.1', applicationAddress: '127.0.0.1', groups: [{ name: 'g', address: '239.5.5.8', dataPort: 5000, applicationPort: port0 + 2 }] })).rejects.toThrow(/EADDRINUSE/);
  });
});
