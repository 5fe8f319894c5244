import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { InboundDatagram, OutboundDatagram } from '@app/datapath';
import { UdpBind } from './udp-bind.js';

/** A UDP port that was free a moment ago (the kernel's ephemeral choice). */
async function freePort(type: 'udp4' | 'udp6' = 'udp4'): Promise<number> {
  const s = dgram.createSocket(type);
  await new Promise<void>((r) => s.bind(0, type === 'udp4' ? '127.0.0.1' : '::1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Resolves with the first `count` datagrams handed to the bind's receive handler. */
function collect(bind: UdpBind, count: number): Promise<InboundDatagram[]> {
  const got: InboundDatagram[] = [];
  return new Promise((resolve) => {
    bind.onReceive((d) => {
      got.push(d);
      if (got.length === count) resolve(got);
    });
  });
}

function esp(spi: number, seq: number, body: string): Buffer {
  const b = Buffer.alloc(8 + body.length);
  b.writeUInt32BE(spi, 0);
  b.writeUInt32BE(seq, 4);
  b.write(body, 8);
  return b;
}

function out(data: Uint8Array, dstAddress: string, dstPort: number, family: 4 | 6 = 4): OutboundDatagram {
  return { framing: 'udp', data, family, srcAddress: '', dstAddress, srcPort: 0, dstPort };
}

const GROUP = '239.77.0.1';
const opened: UdpBind[] = [];
async function open(...args: Parameters<typeof UdpBind.open>): Promise<UdpBind> {
  const b = await UdpBind.open(...args);
  opened.push(b);
  return b;
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((b) => b.close()));
});

describe('UdpBind over IPv4 loopback multicast (no root)', () => {
  it('delivers a sender’s ESP datagrams to a member joined on 127.0.0.1, in order, with the group as destination', async () => {
    const port = await freePort();
    const loopback = { family: 4, localAddress: '127.0.0.1', localPort: 0, port, multicastInterface: '127.0.0.1' } as const;
    const receiver = await open({ ...loopback, groups: [{ group: GROUP, interface: '127.0.0.1' }] });
    const sender = await open({ ...loopback, groups: [{ group: GROUP, interface: '127.0.0.1' }] });
    const received = collect(receiver, 3);
    for (let i = 1; i <= 3; i++) sender.send(out(esp(0x1000, i, `msg${i}`), GROUP, port));
    const got = await received;
    expect(got.map((d) => Buffer.from(d.data).readUInt32BE(4))).toEqual([1, 2, 3]);
    expect(Buffer.from(got[2]!.data).subarray(8).toString()).toBe('msg3');
    expect(got[0]).toMatchObject({
      framing: 'udp',
      srcAddress: '127.0.0.1',
      srcPort: sender.local.port,
      dstAddress: GROUP,
      dstPort: port,
    });
    expect(receiver.stats).toMatchObject({ receivedPackets: 3, esp: 3, ike: 0 });
    // The sender is a member too and saw its own three datagrams come back: dropped as its own.
    await waitFor(() => sender.stats.ownDropped === 3);
    expect(sender.stats).toMatchObject({ sentPackets: 3, receivedPackets: 0, sendErrors: 0 });
  });

  it('classifies the shared port as RFC 3948 says: ESP, IKE behind the marker, keepalive, invalid', async () => {
    const port = await freePort();
    const receiver = await open({ family: 4, localAddress: '127.0.0.1', port, localPort: port });
    const sender = await open({ family: 4, localAddress: '127.0.0.1', port: 0, localPort: 0 });
    const received = collect(receiver, 5);
    sender.send(out(esp(0x700, 1, 'x'), '127.0.0.1', port));
    sender.sendIke(Buffer.from('0123456789abcdef0123456789abcdef'), '127.0.0.1', port);
    sender.send(out(Buffer.from([0xff]), '127.0.0.1', port));
    sender.send(out(Buffer.from([0, 0]), '127.0.0.1', port));
    sender.send(out(esp(7, 1, 'reserved SPI'), '127.0.0.1', port)); // SPIs 1..255 are reserved (RFC 4303 §2.1)
    const got = await received;
    expect(receiver.stats).toMatchObject({ esp: 1, ike: 1, keepalive: 1, invalid: 2, receivedPackets: 5 });
    // IKE keeps its marker on the way in: the datapath strips it and hands the message on.
    expect(Buffer.from(got[1]!.data).subarray(0, 4)).toEqual(Buffer.alloc(4));
    expect(got[1]!.dstAddress).toBe('127.0.0.1');
    expect(got[1]!.dstPort).toBe(port);
  });

  it('honours a source-specific join: a second source on the same group is not delivered', async () => {
    const port = await freePort();
    const ssm = '232.77.0.1';
    const receiver = await open({
      family: 4,
      localAddress: '127.0.0.1',
      localPort: 0,
      port,
      groups: [{ group: ssm, source: '127.0.0.1', interface: '127.0.0.1' }],
    });
    const wanted = await open({ family: 4, localAddress: '127.0.0.1', localPort: 0, port, multicastInterface: '127.0.0.1' });
    const other = await open({ family: 4, localAddress: '127.0.0.2', localPort: 0, port, multicastInterface: '127.0.0.1' });
    const received = collect(receiver, 1);
    // Both leave by lo in this order; had the unwanted one passed the filter it would arrive first.
    other.send(out(esp(9, 1, 'unwanted'), ssm, port));
    await waitFor(() => other.stats.sentPackets === 1);
    wanted.send(out(esp(9, 2, 'wanted'), ssm, port));
    const [d] = await received;
    expect(d!.srcAddress).toBe('127.0.0.1');
    expect(Buffer.from(d!.data).subarray(8).toString()).toBe('wanted');
  });

  it('refuses what it cannot carry and counts it, without throwing', async () => {
    const sut = await open({ family: 4, localAddress: '127.0.0.1', localPort: 0, port: 0 });
    sut.send({ ...out(esp(1, 1, 'x'), GROUP, 4500), framing: 'raw-ip' });
    sut.send(out(esp(1, 1, 'x'), 'ff3e::1', 4500, 6));
    expect(sut.stats.sendRejected).toBe(2);
    await expect(sut.join({ group: '10.0.0.1' })).rejects.toThrow(RangeError);
    await expect(UdpBind.open({ family: 6, localAddress: '127.0.0.1' })).rejects.toThrow(RangeError);
  });

  it('refuses groups on a wildcard unicast socket sharing the group port (each datagram would arrive twice)', async () => {
    const port = await freePort();
    await expect(
      UdpBind.open({ family: 4, localAddress: '0.0.0.0', localPort: port, port, groups: [{ group: GROUP, interface: '127.0.0.1' }] }),
    ).rejects.toThrow(/wildcard/);
    const sut = await open({ family: 4, localAddress: '0.0.0.0', localPort: 0, port, groups: [{ group: GROUP, interface: '127.0.0.1' }] });
    expect(sut.local.address).toBe('0.0.0.0');
  });

  it('counts a kernel send error instead of throwing (oversized datagram)', async () => {
    const sut = await open({ family: 4, localAddress: '127.0.0.1', localPort: 0, port: 0 });
    sut.send(out(Buffer.alloc(70_000, 1), '127.0.0.1', 9));
    await waitFor(() => sut.stats.sendErrors === 1);
    expect(sut.lastError).toMatch(/EMSGSIZE/);
  });

  it('counts a throwing receive handler and keeps receiving', async () => {
    const port = await freePort();
    const receiver = await open({ family: 4, localAddress: '127.0.0.1', port, localPort: port });
    const sender = await open({ family: 4, localAddress: '127.0.0.1', port: 0, localPort: 0 });
    const seen: number[] = [];
    receiver.onReceive((d) => {
      const seq = Buffer.from(d.data).readUInt32BE(4);
      seen.push(seq);
      if (seq === 1) throw new Error('consumer bug');
    });
    sender.send(out(esp(0x900, 1, 'a'), '127.0.0.1', port));
    sender.send(out(esp(0x900, 2, 'b'), '127.0.0.1', port));
    await waitFor(() => seen.length === 2);
    expect(seen).toEqual([1, 2]);
    expect(receiver.stats.handlerErrors).toBe(1);
  });

  it('rejects opening on a port another exclusive socket holds', async () => {
    const holder = dgram.createSocket({ type: 'udp4' });
    await new Promise<void>((r) => holder.bind(0, '127.0.0.1', r));
    const { port } = holder.address() as AddressInfo;
    try {
      await expect(UdpBind.open({ family: 4, localAddress: '127.0.0.1', localPort: port })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      holder.close();
    }
  });
});

describe('UdpBind over IPv6 loopback (no root)', () => {
  it('sends and receives unicast ESP on ::1', async () => {
    const port = await freePort('udp6');
    const receiver = await open({ family: 6, localAddress: '::1', localPort: port, port });
    const sender = await open({ family: 6, localAddress: '::1', localPort: 0, port });
    const received = collect(receiver, 1);
    sender.send(out(esp(0xabcdef, 1, 'six'), '::1', port, 6));
    const [d] = await received;
    expect(d).toMatchObject({ srcAddress: '::1', dstAddress: '::1', srcPort: sender.local.port, dstPort: port });
    expect(Buffer.from(d!.data).subarray(8).toString()).toBe('six');
  });
});

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 5));
  }
}
