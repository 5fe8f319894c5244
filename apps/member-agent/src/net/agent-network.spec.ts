import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentNetwork, udpPacket } from './agent-network.js';
import { addressBytes } from './ip-address.js';

/** RFC 1071 sum of 16-bit words, folded (a correct checksum makes the sum over it 0xffff). */
function onesSum(parts: Uint8Array[]): number {
  const b = Buffer.concat(parts);
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

const opened: AgentNetwork[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((n) => n.close()));
});

describe('udpPacket (plain UDP handed to the datapath in socket-mode fail-open)', () => {
  it('builds an IPv4 packet whose header and UDP checksums verify', () => {
    const src = addressBytes('127.0.0.1');
    const dst = addressBytes('239.1.2.3');
    const sut = udpPacket(src, dst, 40000, 5000, Buffer.from('hello, group'))!;
    expect(sut.length).toBe(20 + 8 + 12);
    expect(sut.readUInt16BE(2)).toBe(sut.length);
    expect(sut[9]).toBe(17);
    expect(onesSum([sut.subarray(0, 20)])).toBe(0xffff);
    const pseudo = Buffer.concat([src, dst, Buffer.from([0, 17]), Buffer.from([0, 20])]);
    expect(onesSum([pseudo, sut.subarray(20)])).toBe(0xffff);
    expect(sut.subarray(28).toString()).toBe('hello, group');
  });

  it('builds an IPv6 packet with a verifying UDP checksum (mandatory there, RFC 8200 §8.1)', () => {
    const src = addressBytes('::1');
    const dst = addressBytes('ff0e::1');
    const sut = udpPacket(src, dst, 1, 2, Buffer.from('odd'))!;
    expect(sut.readUInt16BE(4)).toBe(8 + 3);
    expect(sut[6]).toBe(17);
    const pseudo = Buffer.concat([src, dst, Buffer.from([0, 0, 0, 11, 0, 0, 0, 17])]);
    expect(onesSum([pseudo, sut.subarray(40)])).toBe(0xffff);
  });

  it('refuses a payload that cannot fit one IPv4 packet', () => {
    expect(udpPacket(addressBytes('127.0.0.1'), addressBytes('239.1.2.3'), 1, 2, Buffer.alloc(65535 - 28 + 1))).toBeUndefined();
  });
});

describe('AgentNetwork without raw sockets (socket mode)', () => {
  async function freePort(): Promise<number> {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const { port } = s.address() as AddressInfo;
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  }

  it('sends a bypassed UDP packet as its bare payload to the group port, and counts what it cannot carry', async () => {
    const espPort = await freePort();
    const dataPort = await freePort();
    const sut = await AgentNetwork.open({ espPort, v4: { localAddress: '127.0.0.1', multicastInterface: '127.0.0.1' }, raw: false, plainUdp: true });
    opened.push(sut);
    const listener = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    const got: string[] = [];
    listener.on('message', (m) => got.push(m.toString()));
    await new Promise<void>((r) => listener.bind(dataPort, '239.77.9.1', () => r()));
    listener.addMembership('239.77.9.1', '127.0.0.1');
    expect(sut.supports('raw-ip')).toBe(true);
    const packet = udpPacket(addressBytes('127.0.0.1'), addressBytes('239.77.9.1'), 1234, dataPort, Buffer.from('in clear'))!;
    sut.send({ framing: 'raw-ip', data: packet, family: 4, srcAddress: '127.0.0.1', dstAddress: '239.77.9.1', srcPort: 0, dstPort: 0 });
    const esp = Buffer.from(packet);
    esp[9] = 50; // native ESP cannot leave without a raw socket
    sut.send({ framing: 'raw-ip', data: esp, family: 4, srcAddress: '127.0.0.1', dstAddress: '239.77.9.1', srcPort: 0, dstPort: 0 });
    sut.send({ framing: 'raw-ip', data: packet, family: 6, srcAddress: '::1', dstAddress: 'ff0e::1', srcPort: 0, dstPort: 0 });
    for (let i = 0; i < 50 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    listener.close();
    expect(got).toEqual(['in clear']);
    expect(sut.stats.plainUdpSent).toBe(1);
    expect(sut.stats.rejected).toBe(2);
  });

  it('without plainUdp, raw-ip is not supported at all (fail-open stays impossible, counted)', async () => {
    const sut = await AgentNetwork.open({ espPort: await freePort(), v4: { localAddress: '127.0.0.1', multicastInterface: '127.0.0.1' }, raw: false, plainUdp: false });
    opened.push(sut);
    expect(sut.supports('raw-ip')).toBe(false);
    expect(sut.supports('udp')).toBe(true);
  });
});
