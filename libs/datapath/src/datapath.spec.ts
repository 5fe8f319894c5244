import { describe, expect, it } from 'vitest';
import { formatIpAddress, IpPacketInfo, parseIpPacket } from '@app/codec';
import {
  Datapath,
  DatapathConfigError,
  MemoryNetworkBind,
  MemoryPlaintextPort,
  toInbound,
  type AuditEvent,
  type ExpireEvent,
  type GspdEntry,
  type InboundDatagram,
  type NetworkFraming,
  type RegistrationNeededEvent,
  type SaConfig,
} from '@app/datapath';
import { gcmSa, udpPacket } from './testing/packets.js';

const GROUP = '239.1.1.1';
const SPEAKER = '10.0.0.1';

class ManualClock {
  constructor(public t = 1_000_000) {}
  now(): number {
    return this.t;
  }
}

const policy = (extra: Partial<GspdEntry> = {}): GspdEntry[] => [
  { id: 'p1', action: 'protect', groupId: 'g1', selector: { destination: `${GROUP}/32` }, ...extra },
];

function host(opts: { framings?: NetworkFraming[]; holdQueue?: number; entries?: GspdEntry[]; clock?: ManualClock } = {}) {
  const clock = opts.clock ?? new ManualClock();
  const bind = new MemoryNetworkBind({ framings: opts.framings });
  const port = new MemoryPlaintextPort();
  const sut = new Datapath({ clock, bind, port, holdQueue: opts.holdQueue });
  sut.installPolicy(opts.entries ?? policy());
  return { sut, bind, port, clock };
}

function pair(sa: SaConfig, framings?: NetworkFraming[]) {
  const clock = new ManualClock();
  const a = host({ framings, clock });
  const b = host({ framings, clock });
  a.sut.installSa(sa);
  b.sut.installSa(sa);
  const deliver = () => {
    for (const d of a.bind.sent.splice(0)) b.bind.inject(toInbound(d));
  };
  return { a, b, clock, deliver };
}

const udpSa = (o: Partial<SaConfig> & { spi: number }) => gcmSa({ udpEncapsulation: {}, ...o });

const app = (payload = 'hello group', src = SPEAKER, dst = GROUP) => udpPacket({ src, dst, payload });

describe('Datapath send/receive', () => {
  it('protects in tunnel mode with address preservation and delivers the identical inner packet', () => {
    const { a, b, deliver } = pair(gcmSa({ spi: 0x1001 }), ['raw-ip']);
    const pkt = app();
    expect(a.sut.send(pkt)).toBe('sent');
    const out = a.bind.sent[0]!;
    expect(out.framing).toBe('raw-ip');
    const info = parseIpPacket(out.data, 0, out.data.length, new IpPacketInfo());
    expect(info.protocol).toBe(50);
    expect(formatIpAddress(out.data, info.srcOffset, 4)).toBe(SPEAKER);
    expect(formatIpAddress(out.data, info.dstOffset, 4)).toBe(GROUP);
    expect(out.dstAddress).toBe(GROUP);
    expect(info.ttl).toBe(16); // copied with the preserved destination
    deliver();
    expect(b.port.delivered).toHaveLength(1);
    expect(Buffer.from(b.port.delivered[0]!)).toEqual(Buffer.from(pkt));
    expect(b.sut.stats().delivered).toBe(1);
    const st = b.sut.stats().sas[0]!;
    expect(st.packetsIn).toBe(1);
    expect(st.bytesIn).toBe(pkt.length);
  });

  it('uses counter IVs with the sender ID in the most significant bits (RFC 6054)', () => {
    const { a } = pair(udpSa({ spi: 0x1002, senderId: 5, senderIdBits: 8 }), ['udp']);
    a.sut.send(app('one'));
    a.sut.send(app('two'));
    const iv = (i: number) => Buffer.from(a.bind.sent[i]!.data.subarray(8, 16)).toString('hex');
    expect(iv(0)).toBe('0500000000000001');
    expect(iv(1)).toBe('0500000000000002');
    expect(Buffer.from(a.bind.sent[1]!.data.subarray(4, 8)).toString('hex')).toBe('00000002');
  });

  it('frames UDP-encapsulated SAs as a UDP payload when the bind speaks UDP, else as IP/UDP/ESP', () => {
    const sa = gcmSa({ spi: 0x1003, udpEncapsulation: {} });
    const u = pair(sa, ['udp']);
    u.a.sut.send(app());
    expect(u.a.bind.sent[0]!.framing).toBe('udp');
    expect(u.a.bind.sent[0]!.dstPort).toBe(4500);
    expect(Buffer.from(u.a.bind.sent[0]!.data).readUInt32BE(0)).toBe(0x1003);
    u.deliver();
    expect(u.b.port.delivered).toHaveLength(1);

    const r = pair(sa, ['raw-ip']);
    r.a.sut.send(app());
    const d = r.a.bind.sent[0]!;
    const info = parseIpPacket(d.data, 0, d.data.length, new IpPacketInfo());
    expect(info.protocol).toBe(17);
    expect(info.dstPort).toBe(4500);
    r.deliver();
    expect(r.b.port.delivered).toHaveLength(1);
  });

  it('round-trips IPv6 transport mode and AES-CBC + HMAC-SHA-256-128', () => {
    const sa: SaConfig = {
      spi: 0x2001,
      policyId: 'p6',
      destination: 'ff3e::1234',
      mode: 'transport',
      transform: { kind: 'aes-cbc-hmac-sha256', keyBits: 256 },
      encryptionKey: new Uint8Array(32).fill(3),
      integrityKey: new Uint8Array(32).fill(4),
      replayWindow: 128,
    };
    const entries: GspdEntry[] = [{ id: 'p6', action: 'protect', groupId: 'g6', selector: { destination: 'ff3e::/16' } }];
    const clock = new ManualClock();
    const a = host({ entries, clock, framings: ['raw-ip'] });
    const b = host({ entries, clock, framings: ['raw-ip'] });
    a.sut.installSa(sa);
    b.sut.installSa(sa);
    const pkt = udpPacket({ src: '2001:db8::1', dst: 'ff3e::1234', payload: 'v6 transport' });
    expect(a.sut.send(pkt)).toBe('sent');
    const out = a.bind.sent[0]!;
    expect(out.data.length % 1).toBe(0);
    b.bind.inject(toInbound(out));
    expect(b.port.delivered).toHaveLength(1);
    expect(Buffer.from(b.port.delivered[0]!)).toEqual(Buffer.from(pkt));
  });

  it('drops a replay, and a forged packet does not move the window', () => {
    const { a, b } = pair(gcmSa({ spi: 0x1004 }), ['raw-ip']);
    a.sut.send(app('first'));
    const d = toInbound(a.bind.sent[0]!);
    const forged = Uint8Array.from(d.data);
    forged[forged.length - 1]! ^= 1;
    expect(b.sut.receive({ ...d, data: forged })).toBe('dropped');
    expect(b.sut.stats().drops.icv).toBe(1);
    expect(b.sut.receive(d)).toBe('delivered');
    expect(b.sut.receive(d)).toBe('dropped');
    expect(b.sut.stats().drops.replay).toBe(1);
  });

  it('drops and audits a tunnel packet whose outer source differs from the inner one (RFC 5374 §5.2)', () => {
    const { a, b } = pair(udpSa({ spi: 0x1005 }), ['udp']);
    const audits: AuditEvent[] = [];
    b.sut.onAudit((e) => audits.push(e));
    a.sut.send(app());
    const d = toInbound(a.bind.sent[0]!);
    expect(b.sut.receive({ ...d, srcAddress: '10.0.0.99' })).toBe('dropped');
    expect(b.sut.stats().drops.preservationMismatch).toBe(1);
    expect(audits).toHaveLength(1);
    expect(audits[0]!.kind).toBe('preservation-mismatch');
    expect(audits[0]!.detail).toContain('10.0.0.99');
    // With preservation off the same outer source is fine.
    const n = pair(udpSa({ spi: 0x1006, addressPreservation: 'none' }), ['udp']);
    n.a.sut.send(app());
    expect(n.b.sut.receive({ ...toInbound(n.a.bind.sent[0]!), srcAddress: '10.0.0.99' })).toBe('delivered');
  });

  it('requires the inner packet to match the GSPD-I protect entry bound to the SA', () => {
    const clock = new ManualClock();
    const a = host({ clock, framings: ['udp'] });
    const b = host({
      clock,
      framings: ['udp'],
      entries: [
        { id: 'other', action: 'protect', groupId: 'g2', selector: { destination: `${GROUP}/32`, destinationPort: 7000 } },
        ...policy(),
      ],
    });
    a.sut.installSa(udpSa({ spi: 0x1007 }));
    b.sut.installSa(udpSa({ spi: 0x1007 }));
    a.sut.send(udpPacket({ src: SPEAKER, dst: GROUP, dport: 7000, payload: 'x' }));
    const audits: AuditEvent[] = [];
    b.sut.onAudit((e) => audits.push(e));
    expect(b.sut.receive(toInbound(a.bind.sent[0]!))).toBe('dropped');
    expect(b.sut.stats().drops.policyMismatch).toBe(1);
    expect(audits[0]!.kind).toBe('policy-mismatch');
  });

  it('puts sender-only entries in GSPD-O only and receiver-only entries in GSPD-I only', () => {
    const clock = new ManualClock();
    const sender = host({ clock, framings: ['udp'], entries: policy({ direction: 'sender-only' }) });
    const receiver = host({ clock, framings: ['udp'], entries: policy({ direction: 'receiver-only' }) });
    const sa = udpSa({ spi: 0x1008 });
    sender.sut.installSa(sa);
    receiver.sut.installSa(sa);
    expect(sender.sut.send(app())).toBe('sent');
    const d = toInbound(sender.bind.sent[0]!);
    expect(receiver.sut.receive(d)).toBe('delivered');
    // The receiver may not send on a receiver-only entry; the sender does not accept on its own.
    expect(receiver.sut.send(app())).toBe('dropped');
    expect(receiver.sut.stats().drops.directionViolation).toBe(1);
    expect(sender.sut.receive(d)).toBe('dropped');
    expect(sender.sut.stats().drops.directionViolation).toBe(1);
  });

  it('an SA marked receiver-only is never used to send', () => {
    const { a } = pair(udpSa({ spi: 0x1009, direction: 'receiver-only' }), ['udp']);
    expect(a.sut.send(app())).toBe('dropped');
    expect(a.sut.stats().drops.directionViolation).toBe(1);
  });

  it('raises registration-needed for a protect entry without SA, holds a bounded queue, then sends', () => {
    const { sut, bind } = host({ holdQueue: 2, framings: ['udp'] });
    const events: RegistrationNeededEvent[] = [];
    sut.onRegistrationNeeded((e) => events.push(e));
    expect(sut.send(app('a'))).toBe('held');
    expect(sut.send(app('b'))).toBe('held');
    expect(sut.send(app('c'))).toBe('dropped');
    expect(events).toEqual([{ groupId: 'g1', policyId: 'p1', destination: GROUP, at: 1_000_000 }]);
    expect(sut.stats().drops.queueFull).toBe(1);
    expect(sut.stats().held).toBe(2);
    expect(bind.sent).toHaveLength(0);
    sut.installSa(udpSa({ spi: 0x100a }));
    expect(bind.sent).toHaveLength(2);
    expect(sut.stats().held).toBe(0);
  });

  it('without a hold queue the packet is dropped as noRegistration', () => {
    const { sut } = host({ holdQueue: 0 });
    sut.send(app());
    expect(sut.stats().drops.noRegistration).toBe(1);
  });

  it('rolls over: trailing edge until the leading edge activates, both accepted until deleteAt', () => {
    const { a, b, clock } = pair(udpSa({ spi: 0x3001 }), ['udp']);
    const lead = udpSa({ spi: 0x3002 });
    a.sut.installSa(lead, { activateAt: clock.t + 15_000 });
    b.sut.installSa(lead, { activateAt: clock.t + 15_000 });
    a.sut.send(app());
    const spiOf = (i: number) => Buffer.from(a.bind.sent[i]!.data).readUInt32BE(0);
    expect(spiOf(0)).toBe(0x3001);
    clock.t += 15_000;
    a.sut.retireSa(0x3001, { deleteAt: clock.t + 30_000 });
    b.sut.retireSa(0x3001, { deleteAt: clock.t + 30_000 });
    a.sut.send(app());
    expect(spiOf(1)).toBe(0x3002);
    // A trailing-edge packet still in flight is accepted...
    expect(b.sut.receive(toInbound(a.bind.sent[0]!))).toBe('delivered');
    expect(b.sut.receive(toInbound(a.bind.sent[1]!))).toBe('delivered');
    // ...until its delete time.
    clock.t += 30_000;
    b.sut.tick();
    expect(b.sut.stats().sas.map((s) => s.spi)).toEqual([0x3002]);
  });

  it('raises soft and hard lifetime events and stops using a hard-expired SA', () => {
    const { a } = pair(udpSa({ spi: 0x4001, lifetime: { soft: { packets: 2 }, hard: { packets: 3 } } }), ['udp']);
    const soft: ExpireEvent[] = [];
    const hard: ExpireEvent[] = [];
    a.sut.onSoftExpire((e) => soft.push(e));
    a.sut.onHardExpire((e) => hard.push(e));
    for (let i = 0; i < 4; i++) a.sut.send(app());
    expect(soft.map((e) => [e.spi, e.cause])).toEqual([[0x4001, 'packets']]);
    expect(hard.map((e) => [e.spi, e.cause])).toEqual([[0x4001, 'packets']]);
    expect(a.bind.sent).toHaveLength(3);
    expect(a.sut.stats().held).toBe(1);
  });

  it('expires by time through tick()', () => {
    const { a, clock } = pair(udpSa({ spi: 0x4002, lifetime: { hard: { seconds: 60 } } }), ['udp']);
    const hard: ExpireEvent[] = [];
    a.sut.onHardExpire((e) => hard.push(e));
    clock.t += 59_999;
    a.sut.tick();
    expect(hard).toHaveLength(0);
    clock.t += 1;
    a.sut.tick();
    expect(hard).toEqual([{ spi: 0x4002, policyId: 'p1', cause: 'seconds', at: clock.t }]);
  });

  it('demultiplexes SPI + destination + source before SPI + destination (RFC 4301 §4.1)', () => {
    const clock = new ManualClock();
    const s1 = host({ clock, framings: ['udp'] });
    const s2 = host({ clock, framings: ['udp'] });
    const r = host({ clock, framings: ['udp'] });
    const shared = udpSa({ spi: 0x5000 });
    const perSpeaker = { ...udpSa({ spi: 0x5000 }), source: '10.0.0.2', encryptionKey: new Uint8Array(20).fill(9) };
    s1.sut.installSa(shared);
    s2.sut.installSa(perSpeaker);
    r.sut.installSa(shared);
    r.sut.installSa(perSpeaker);
    s1.sut.send(app('from 1', '10.0.0.1'));
    s2.sut.send(app('from 2', '10.0.0.2'));
    expect(r.sut.receive(toInbound(s1.bind.sent[0]!))).toBe('delivered');
    expect(r.sut.receive(toInbound(s2.bind.sent[0]!))).toBe('delivered');
    const byKey = r.sut.stats().sas.map((s) => s.packetsIn);
    expect(byKey).toEqual([1, 1]);
  });

  it('reports unknown SPIs and classifies keepalives and IKE on the shared port', () => {
    const { sut } = host();
    const unknown: number[] = [];
    const ike: Uint8Array[] = [];
    sut.onUnknownSpi((e) => unknown.push(e.spi));
    sut.onIke((e) => ike.push(e.message));
    const base: InboundDatagram = { framing: 'udp', data: new Uint8Array(0), srcAddress: SPEAKER, dstAddress: GROUP, srcPort: 4500, dstPort: 4500 };
    expect(sut.receive({ ...base, data: Uint8Array.of(0xff) })).toBe('keepalive');
    expect(sut.receive({ ...base, data: Uint8Array.of(0, 0, 0, 0, 1, 2, 3) })).toBe('ike');
    expect(Array.from(ike[0]!)).toEqual([1, 2, 3]);
    expect(sut.receive({ ...base, data: new Uint8Array(40).fill(0x77) })).toBe('dropped');
    expect(unknown).toEqual([0x77777777]);
    expect(sut.stats().drops.noSa).toBe(1);
    expect(sut.receive({ ...base, data: Uint8Array.of(1, 2) })).toBe('dropped');
    expect(sut.stats().drops.malformed).toBe(1);
  });

  it('refuses bad SAs and policies with typed errors and no key bytes', () => {
    const { sut } = host();
    const bad = (sa: Partial<SaConfig>) => () => sut.installSa({ ...udpSa({ spi: 0x6000 }), ...sa });
    expect(bad({ spi: 255 })).toThrowError(DatapathConfigError);
    expect(bad({ replayWindow: 32 })).toThrow(/BAD_REPLAY_WINDOW/);
    expect(bad({ encryptionKey: new Uint8Array(16).fill(0xab) })).toThrow(/BAD_KEY/);
    try {
      bad({ encryptionKey: new Uint8Array(16).fill(0xab) })();
    } catch (e) {
      expect(String(e)).not.toMatch(/ab|171/);
    }
    expect(bad({ senderId: 256, senderIdBits: 8 })).toThrow(/BAD_SENDER_ID/);
    expect(bad({ mode: 'transport', addressPreservation: 'both' })).toThrow(/BAD_POLICY/);
    sut.installSa(udpSa({ spi: 0x6000 }));
    expect(() => sut.installSa(udpSa({ spi: 0x6000 }))).toThrow(/DUPLICATE_SA/);
    expect(() => sut.installPolicy([{ id: 'x', action: 'protect', selector: {} }])).toThrow(/BAD_POLICY/);
    expect(() =>
      sut.installPolicy([{ id: 'x', action: 'bypass', direction: 'sender-only', selector: {} }]),
    ).toThrow(/destination/);
  });

  it('holds packets for a pending SA without a new registration event, sends them at activation', () => {
    const { sut, bind, clock } = host({ framings: ['udp'] });
    const events: RegistrationNeededEvent[] = [];
    sut.onRegistrationNeeded((e) => events.push(e));
    sut.installSa(udpSa({ spi: 0x100b }), { activateAt: clock.t + 1000 });
    expect(sut.send(app())).toBe('held');
    expect(events).toHaveLength(0);
    clock.t += 999;
    sut.tick();
    expect(bind.sent).toHaveLength(0);
    clock.t += 1;
    sut.tick();
    expect(bind.sent).toHaveLength(1);
    expect(sut.stats().held).toBe(0);
  });

  it('rate-limits registration events per group and drops held packets after holdMs', () => {
    const clock = new ManualClock();
    const bind = new MemoryNetworkBind({ framings: ['udp'] });
    const sut = new Datapath({ clock, bind, port: new MemoryPlaintextPort(), holdMs: 2000, registrationRetryMs: 5000 });
    sut.installPolicy(policy());
    const events: number[] = [];
    sut.onRegistrationNeeded((e) => events.push(e.at));
    sut.send(app());
    clock.t += 4999;
    sut.send(app());
    clock.t += 1;
    sut.send(app());
    expect(events).toEqual([1_000_000, 1_005_000]);
    sut.tick(); // only the first is older than 2 s by now
    expect(sut.stats().drops.noRegistration).toBe(1);
    expect(sut.stats().held).toBe(2);
    clock.t += 2000;
    sut.tick();
    expect(sut.stats().drops.noRegistration).toBe(3);
    expect(sut.stats().held).toBe(0);
    expect(bind.sent).toHaveLength(0);
  });

  it('sends BYPASS traffic as is and delivers inbound plaintext only through a GSPD-I BYPASS entry', () => {
    const entries: GspdEntry[] = [
      { id: 'bp', action: 'bypass', selector: { destination: '239.9.9.9' } },
      { id: 'dc', action: 'discard', selector: { destination: '239.9.9.8' } },
      ...policy(),
    ];
    const { sut, bind, port } = host({ entries, framings: ['raw-ip'] });
    const plain = app('clear', SPEAKER, '239.9.9.9');
    expect(sut.send(plain)).toBe('bypassed');
    expect(Buffer.from(bind.sent[0]!.data)).toEqual(Buffer.from(plain));
    expect(sut.send(app('x', SPEAKER, '239.9.9.8'))).toBe('dropped');
    expect(sut.send(app('x', SPEAKER, '239.9.9.7'))).toBe('dropped');
    expect(sut.stats().drops.discard).toBe(1);
    expect(sut.stats().drops.noPolicy).toBe(1);
    const raw = (data: Uint8Array): InboundDatagram => ({ framing: 'raw-ip', data, srcAddress: SPEAKER, dstAddress: GROUP, srcPort: 0, dstPort: 0 });
    expect(sut.receive(raw(plain))).toBe('delivered');
    expect(Buffer.from(port.delivered[0]!)).toEqual(Buffer.from(plain));
    // Clear text where the policy says PROTECT is refused.
    expect(sut.receive(raw(app()))).toBe('dropped');
    expect(sut.stats().drops.policyMismatch).toBe(1);
  });

  it('transport mode over a UDP bind rebuilds the header from the datagram addresses', () => {
    const sa = udpSa({ spi: 0x100c, mode: 'transport', addressPreservation: 'none' });
    const { a, b, deliver } = pair(sa, ['udp']);
    const pkt = udpPacket({ src: SPEAKER, dst: GROUP, payload: 'transport over udp', ttl: 64 });
    a.sut.send(pkt);
    expect(a.bind.sent[0]!.framing).toBe('udp');
    deliver();
    const got = b.port.delivered[0]!;
    const info = parseIpPacket(got, 0, got.length, new IpPacketInfo());
    expect(formatIpAddress(got, info.srcOffset, 4)).toBe(SPEAKER);
    expect(formatIpAddress(got, info.dstOffset, 4)).toBe(GROUP);
    expect(Buffer.from(got.subarray(20))).toEqual(Buffer.from(pkt.subarray(20)));
  });

  it('carries IPv6 inside an IPv4 tunnel with constructed outer addresses (preservation needs equal versions)', () => {
    const clock = new ManualClock();
    const entries: GspdEntry[] = [{ id: 'p1', action: 'protect', groupId: 'g1', selector: { destination: 'ff3e::/16' } }];
    const mk = () => {
      const bind = new MemoryNetworkBind({ framings: ['raw-ip'] });
      const port = new MemoryPlaintextPort();
      const sut = new Datapath({ clock, bind, port, localAddresses: { v4: '192.0.2.1' } });
      sut.installPolicy(entries);
      sut.installSa(gcmSa({ spi: 0x100d }));
      return { sut, bind, port };
    };
    const a = mk();
    const b = mk();
    const pkt = udpPacket({ src: '2001:db8::1', dst: 'ff3e::1', payload: 'six in four' });
    expect(a.sut.send(pkt)).toBe('sent');
    const out = a.bind.sent[0]!;
    expect([out.family, out.srcAddress, out.dstAddress]).toEqual([4, '192.0.2.1', GROUP]);
    expect(b.sut.receive(toInbound(out))).toBe('delivered');
    expect(Buffer.from(b.port.delivered[0]!)).toEqual(Buffer.from(pkt));
  });

  it('derives CBC IVs by encrypting the counter: distinct per packet, not the counter itself', () => {
    const sa: SaConfig = {
      ...udpSa({ spi: 0x100e, senderId: 2, senderIdBits: 4 }),
      transform: { kind: 'aes-cbc-hmac-sha256', keyBits: 128 },
      encryptionKey: new Uint8Array(16).fill(5),
      integrityKey: new Uint8Array(32).fill(6),
    };
    const { a, b, deliver } = pair(sa, ['udp']);
    for (let i = 0; i < 3; i++) a.sut.send(app(`cbc ${i}`));
    const ivs = a.bind.sent.map((d) => Buffer.from(d.data.subarray(8, 24)).toString('hex'));
    expect(new Set(ivs).size).toBe(3);
    for (const iv of ivs) expect(iv.startsWith('20000000')).toBe(false);
    deliver();
    expect(b.port.delivered).toHaveLength(3);
  });

  it('fail-open sends a protected group in clear until its SA arrives, still asking to register', () => {
    const clock = new ManualClock();
    const bind = new MemoryNetworkBind({ framings: ['raw-ip'] });
    const sut = new Datapath({ clock, bind, port: new MemoryPlaintextPort(), failOpen: true });
    sut.installPolicy(policy());
    const events: RegistrationNeededEvent[] = [];
    sut.onRegistrationNeeded((e) => events.push(e));
    const pkt = app();
    expect(sut.send(pkt)).toBe('sentClear');
    expect(Buffer.from(bind.sent[0]!.data)).toEqual(Buffer.from(pkt));
    expect(events).toHaveLength(1);
    sut.installSa(gcmSa({ spi: 0x100f }));
    expect(sut.send(pkt)).toBe('sent');
    expect(sut.stats()).toMatchObject({ sentClear: 1, sent: 1, bypassed: 0, held: 0 });
  });

  it('round-trips with extended sequence numbers (GCM and CBC), the high half authenticated', () => {
    for (const transform of [
      { kind: 'aes-gcm-16', keyBits: 128 },
      { kind: 'aes-cbc-hmac-sha256', keyBits: 256 },
    ] as const) {
      const gcm = transform.kind === 'aes-gcm-16';
      const sa: SaConfig = {
        ...udpSa({ spi: 0x1010 }),
        transform,
        encryptionKey: new Uint8Array(gcm ? 20 : 32).fill(7),
        integrityKey: gcm ? undefined : new Uint8Array(32).fill(8),
        extendedSequenceNumbers: true,
      };
      const { a, b, deliver } = pair(sa, ['udp']);
      a.sut.send(app('esn 1'));
      a.sut.send(app('esn 2'));
      deliver();
      expect(b.port.delivered).toHaveLength(2);
      // A receiver without ESN computes a different ICV for the same packets.
      const c = pair({ ...sa, extendedSequenceNumbers: false }, ['udp']);
      a.sut.send(app('esn 3'));
      expect(c.b.sut.receive(toInbound(a.bind.sent[0]!))).toBe('dropped');
      expect(c.b.sut.stats().drops.icv).toBe(1);
    }
  });

  it('transport mode over IPv6 keeps extension headers outside ESP and restores them on receipt', () => {
    const entries: GspdEntry[] = [{ id: 'p1', action: 'protect', groupId: 'g1', selector: { destination: 'ff3e::/16' } }];
    const clock = new ManualClock();
    const mk = () => {
      const bind = new MemoryNetworkBind({ framings: ['raw-ip'] });
      const port = new MemoryPlaintextPort();
      const sut = new Datapath({ clock, bind, port });
      sut.installPolicy(entries);
      sut.installSa(gcmSa({ spi: 0x1011, destination: 'ff3e::9', mode: 'transport', addressPreservation: 'none' }));
      return { sut, bind, port };
    };
    const a = mk();
    const b = mk();
    // IPv6 | Hop-by-Hop (Router Alert) | UDP
    const plain = udpPacket({ src: '2001:db8::1', dst: 'ff3e::9', payload: 'with hop-by-hop' });
    const pkt = new Uint8Array(plain.length + 8);
    pkt.set(plain.subarray(0, 40), 0);
    pkt[6] = 0; // next header: Hop-by-Hop
    const pl = plain.length - 40 + 8;
    pkt[4] = pl >> 8;
    pkt[5] = pl & 0xff;
    pkt.set([17, 0, 5, 2, 0, 0, 1, 0], 40); // next UDP, len 0, Router Alert, PadN
    pkt.set(plain.subarray(40), 48);
    expect(a.sut.send(pkt)).toBe('sent');
    const out = a.bind.sent[0]!.data;
    expect(out[6]).toBe(0); // Hop-by-Hop still first
    expect(out[40]).toBe(50); // ...and it now announces ESP
    expect(b.sut.receive(toInbound(a.bind.sent[0]!))).toBe('delivered');
    expect(Buffer.from(b.port.delivered[0]!)).toEqual(Buffer.from(pkt));
  });
});
