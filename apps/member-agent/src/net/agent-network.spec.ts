import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { buildInnerUdpPacket } from '../plaintext/inner-udp.js';
import { AgentNetwork } from './agent-network.js';
import { addressBytes } from './ip-address.js';

const opened: AgentNetwork[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((n) => n.close()));
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
    const packet = buildInnerUdpPacket({ source: addressBytes('127.0.0.1'), destination: addressBytes('239.77.9.1'), sourcePort: 1234, destinationPort: dataPort, ttl: 1, identification: 0 }, Buffer.from('in clear'));
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
