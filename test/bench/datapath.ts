/**
 * Datapath benchmark (issue 3): `npm run bench:datapath`. Not a test: it prints figures, and its
 * last line is one JSON object.
 *
 *   ceiling   node:crypto AES-GCM-128 with a new cipher object per 1400-byte packet: encrypt
 *             (setAAD, update, final, getAuthTag) and decrypt+verify (setAAD, setAuthTag,
 *             update, final). The best of a raw-Buffer key and a KeyObject key.
 *   send      our send pipeline: parse, GSPD-O lookup, SA choice, tunnel mode with address
 *             preservation, ESP (counter IV), UDP framing, into an in-memory bind.
 *   recv      our receive pipeline from the datagram's bytes: classify, SAD lookup, lifetime,
 *             ICV+decrypt, replay window, preservation check, GSPD-I check, delivery.
 *   loopback  5 seconds of protected multicast over 127.0.0.1 between two processes, with the
 *             member agent's UDP bind: packets/s delivered and the share lost.
 *
 * Each in-process figure is packets per second of process CPU time, the best of several rounds
 * whose batches interleave all methods (the machine is shared; see `time`).
 */
import { fork } from 'node:child_process';
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import { IPPROTO_UDP, ipv4Header, parseIpAddress, writeUdpHeader } from '@app/codec';
import {
  Datapath,
  MemoryNetworkBind,
  MemoryPlaintextPort,
  type InboundDatagram,
  type OutboundDatagram,
  type SaConfig,
} from '@app/datapath';
import { UdpBind } from '../../apps/member-agent/src/net/udp-bind.js';

const PACKET = 1400;
const N = 20_000;
/** Distinct sealed packets kept for the decrypt side (small, so the live heap stays small). */
const SET = 4_000;
const ROUNDS = 5;
const GROUP = '239.77.0.1';
const SPEAKER = '127.0.0.1';
const LOOPBACK_MS = 5_000;
/** Datagrams the loopback sender may have in flight beyond the receiver's last report. */
const LOOPBACK_WINDOW = 256;
/** How often the loopback receiver reports progress. */
const PROGRESS_MS = 5;

const KEY = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
const SALT = Buffer.from('a0a1a2a3', 'hex');

const SA: SaConfig = {
  spi: 0x0badcafe,
  policyId: 'bench',
  destination: GROUP,
  mode: 'tunnel',
  addressPreservation: 'both',
  transform: { kind: 'aes-gcm-16', keyBits: 128 },
  encryptionKey: Buffer.concat([KEY, SALT]),
  replayWindow: 1024,
  senderId: 1,
  senderIdBits: 8,
  udpEncapsulation: {},
};
const POLICY = [{ id: 'bench', action: 'protect' as const, groupId: 'bench-group', selector: { destination: `${GROUP}/32` } }];

/** A 1400-byte IPv4/UDP application packet to the group. */
function appPacket(): Uint8Array {
  const out = new Uint8Array(PACKET);
  ipv4Header.encode(
    {
      tos: 0,
      totalLength: PACKET,
      identification: 1,
      dontFragment: true,
      moreFragments: false,
      fragmentOffset: 0,
      ttl: 8,
      protocol: IPPROTO_UDP,
      source: parseIpAddress(SPEAKER),
      destination: parseIpAddress(GROUP),
      options: new Uint8Array(0),
    },
    out,
    0,
  );
  writeUdpHeader(out, 20, 5000, 5004, PACKET - 20, 0);
  for (let i = 28; i < PACKET; i++) out[i] = i & 0xff;
  return out;
}

function pps(n: number, us: number): number {
  return Math.round((n * 1e6) / Math.max(us, 1));
}

/**
 * CPU time (user + system, microseconds) the process spends in `fn`. On a shared machine wall time
 * mostly measures the neighbours; CPU time measures the work (GC threads included). Wall time is
 * summed beside it for the log.
 */
let wallNs = 0n;
function time(fn: () => void): number {
  const w0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  fn();
  const c = process.cpuUsage(c0);
  wallNs += process.hrtime.bigint() - w0;
  return c.user + c.system;
}

/** One batch of the ceiling: encrypt `count` packets starting at `from`, a new cipher each. */
function ceilingEnc(key: Buffer | KeyObject, payload: Buffer, nonce: Buffer, aad: Buffer, from: number, count: number): number {
  let sink = 0;
  for (let i = from; i < from + count; i++) {
    nonce.writeUInt32BE(i, 8);
    const c = createCipheriv('aes-128-gcm', key, nonce, { authTagLength: 16 });
    c.setAAD(aad);
    const ct = c.update(payload);
    c.final();
    sink += ct[0]! + c.getAuthTag()[0]!;
  }
  return sink;
}

function ceilingDec(key: Buffer | KeyObject, sealed: Array<{ nonce: Buffer; ct: Buffer; tag: Buffer }>, aad: Buffer, from: number, count: number): number {
  let sink = 0;
  for (let i = from; i < from + count; i++) {
    const s = sealed[i % SET]!;
    const d = createDecipheriv('aes-128-gcm', key, s.nonce, { authTagLength: 16 });
    d.setAAD(aad);
    d.setAuthTag(s.tag);
    const pt = d.update(s.ct);
    d.final();
    sink += pt[0]!;
  }
  return sink;
}

function sealForCeiling(payload: Buffer, aad: Buffer) {
  const out = [];
  for (let i = 0; i < SET; i++) {
    const nonce = Buffer.concat([SALT, Buffer.alloc(8)]);
    nonce.writeUInt32BE(i, 8);
    const c = createCipheriv('aes-128-gcm', KEY, nonce, { authTagLength: 16 });
    c.setAAD(aad);
    const ct = c.update(payload);
    c.final();
    out.push({ nonce, ct, tag: c.getAuthTag() });
  }
  return out;
}

function sender(onSend?: (d: OutboundDatagram) => void) {
  const bind = new MemoryNetworkBind({ framings: ['udp'], capture: false, onSend });
  const port = new MemoryPlaintextPort(false);
  const sut = new Datapath({ clock: { now: () => 0 }, bind, port });
  sut.installPolicy(POLICY);
  sut.installSa(SA);
  return { sut, bind };
}

function receiverPath() {
  const port = new MemoryPlaintextPort(false);
  const sut = new Datapath({ clock: { now: () => 0 }, bind: new MemoryNetworkBind({ capture: false }), port });
  sut.installPolicy(POLICY);
  sut.installSa(SA);
  return { sut, port };
}

// ---------------------------------------------------------------------------------------------
// Loopback: two processes
// ---------------------------------------------------------------------------------------------

/** The benchmark SA on an unprivileged port of its own (not 4500, which a member agent may hold). */
function loopbackSa(port: number): SaConfig {
  return { ...SA, udpEncapsulation: { sourcePort: port, destinationPort: port } };
}

async function loopbackReceiver(port: number): Promise<void> {
  const bind = await UdpBind.open({
    family: 4,
    localAddress: '127.0.0.1',
    localPort: 0,
    port,
    groups: [{ group: GROUP, interface: '127.0.0.1' }],
    receiveBufferSize: 8 << 20,
  });
  const plain = new MemoryPlaintextPort(false);
  const dp = new Datapath({ clock: { now: () => Date.now() }, bind, port: plain });
  dp.installPolicy(POLICY);
  dp.installSa(loopbackSa(port));
  process.send!({ ready: true });
  // Progress reports let the sender keep a bounded number of datagrams in flight.
  const progress = setInterval(() => process.send!({ progress: plain.deliveredCount }), PROGRESS_MS);
  process.on('message', (m: { stop?: boolean }) => {
    if (!m.stop) return;
    clearInterval(progress);
    // Let in-flight datagrams land before counting.
    setTimeout(() => {
      process.send!({ delivered: plain.deliveredCount, drops: dp.stats().drops }, () => {
        void bind.close().then(() => process.exit(0));
      });
    }, 200);
  });
}

async function loopback(): Promise<{ pps: number; loss: number; sent: number; delivered: number }> {
  const port = 20000 + (process.pid % 20000);
  const child = fork(process.argv[1]!, ['--loopback-receiver', String(port)], { stdio: 'inherit' });
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`receiver exited ${code}`)));
    });
    const bind = await UdpBind.open({
      family: 4,
      localAddress: '127.0.0.1',
      localPort: 0,
      port,
      multicastInterface: '127.0.0.1',
      sendBufferSize: 8 << 20,
    });
    const dp = new Datapath({ clock: { now: () => Date.now() }, bind, port: new MemoryPlaintextPort(false) });
    dp.installPolicy(POLICY);
    dp.installSa(loopbackSa(port));
    const packet = appPacket();
    let acked = 0;
    child.on('message', (m: { progress?: number }) => {
      if (m.progress !== undefined) acked = m.progress;
    });
    let sentByUs = 0;
    const t0 = Date.now();
    // Bounded: at most LOOPBACK_MS. Flow control: at most WINDOW datagrams beyond what the
    // receiver last reported delivered (a socket receive buffer holds ~300 of them), sent in
    // bursts that let the event loop flush the socket.
    while (Date.now() - t0 < LOOPBACK_MS) {
      if (sentByUs - acked >= LOOPBACK_WINDOW) {
        await new Promise((r) => setTimeout(r, 1));
        continue;
      }
      for (let i = 0; i < 32; i++) if (dp.send(packet) === 'sent') sentByUs++;
      await yieldLoop();
    }
    const elapsed = Date.now() - t0;
    await new Promise((r) => setTimeout(r, 100));
    const sent = bind.stats.sentPackets;
    const result = new Promise<{ delivered: number; drops: Record<string, number> }>((resolve) =>
      child.on('message', (m: { delivered?: number; drops?: Record<string, number> }) => {
        if (m.delivered !== undefined) resolve(m as { delivered: number; drops: Record<string, number> });
      }),
    );
    child.send({ stop: true });
    const { delivered, drops } = await result;
    const counted = Object.entries(drops).filter(([, n]) => n > 0);
    if (counted.length > 0) console.log(`loopback receiver drops: ${JSON.stringify(Object.fromEntries(counted))}`);
    if (bind.stats.sendErrors > 0) console.log(`loopback sender errors: ${bind.stats.sendErrors} (${bind.lastError})`);
    await bind.close();
    return {
      pps: Math.round((delivered * 1000) / elapsed),
      loss: sent === 0 ? 1 : Math.max(0, 1 - delivered / sent),
      sent,
      delivered,
    };
  } finally {
    if (child.exitCode === null) child.kill();
  }
}

async function main(): Promise<void> {
  const packet = appPacket();
  const payload = Buffer.from(packet);
  const aad = Buffer.from('0badcafe00000001', 'hex');
  const keyObject = createSecretKey(KEY);
  const sealed = sealForCeiling(payload, aad);

  // Datagrams for the receive benchmark, made by our own send pipeline (seq 1..N).
  const datagrams: InboundDatagram[] = [];
  const gen = sender((d) =>
    datagrams.push({ ...d, srcAddress: d.srcAddress, dstAddress: d.dstAddress, srcPort: d.srcPort, dstPort: d.dstPort }),
  );
  for (let i = 0; i < SET; i++) gen.sut.send(packet);
  const s = sender();

  // Each method runs N packets in one block after a full GC (so it pays for its own garbage),
  // timed in process CPU time; rounds repeat the methods in turn and the best round counts.
  const nonce = Buffer.concat([SALT, Buffer.alloc(8)]);
  const best = { enc: 0, dec: 0, send: 0, recv: 0 };
  let sink = 0;
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
  const block = (fn: () => void): number => {
    gc();
    return time(fn);
  };
  for (let round = 0; round <= ROUNDS; round++) {
    const ns = { encRaw: 0, encKo: 0, decRaw: 0, decKo: 0, send: 0, recv: 0 };
    const sentBefore = s.sut.stats().sent;
    ns.encRaw = block(() => (sink += ceilingEnc(KEY, payload, nonce, aad, 0, N)));
    ns.send = block(() => {
      for (let i = 0; i < N; i++) s.sut.send(packet);
    });
    ns.encKo = block(() => (sink += ceilingEnc(keyObject, payload, nonce, aad, 0, N)));
    ns.decRaw = block(() => (sink += ceilingDec(KEY, sealed, aad, 0, N)));
    // The replay window accepts each sequence number once: a fresh receiver per pass of SET.
    let delivered = 0;
    const receivers = Array.from({ length: N / SET }, () => receiverPath());
    ns.recv = block(() => {
      for (const r of receivers) for (let i = 0; i < SET; i++) r.sut.receive(datagrams[i]!);
    });
    for (const r of receivers) delivered += r.port.deliveredCount;
    ns.decKo = block(() => (sink += ceilingDec(keyObject, sealed, aad, 0, N)));
    if (s.sut.stats().sent - sentBefore !== N) throw new Error('send pipeline dropped packets');
    if (delivered !== N) throw new Error(`receive pipeline delivered ${delivered} of ${N}`);
    const enc = Math.max(pps(N, ns.encRaw), pps(N, ns.encKo));
    const dec = Math.max(pps(N, ns.decRaw), pps(N, ns.decKo));
    const snd = pps(N, ns.send);
    const rcv = pps(N, ns.recv);
    console.log(
      `round ${round}${round === 0 ? ' (warm-up)' : ''}: ceiling enc ${enc} pps, dec ${dec} pps; ` +
        `send ${snd} pps (${(snd / enc).toFixed(3)}), recv ${rcv} pps (${(rcv / dec).toFixed(3)})`,
    );
    if (round === 0) continue;
    best.enc = Math.max(best.enc, enc);
    best.dec = Math.max(best.dec, dec);
    best.send = Math.max(best.send, snd);
    best.recv = Math.max(best.recv, rcv);
  }
  if (sink === -1) console.log(sink);
  console.log(
    `best: ceiling enc ${best.enc}, dec ${best.dec}; send ${best.send}, recv ${best.recv} ` +
      `(packets per CPU-second, ${PACKET} bytes; ${(Number(wallNs) / 1e9).toFixed(1)} s wall in total)`,
  );
  if (process.argv.includes('--no-loopback')) return;

  const lb = await loopback();
  console.log(`loopback multicast, 2 processes, ${LOOPBACK_MS / 1000} s: sent ${lb.sent}, delivered ${lb.delivered}`);

  const result = {
    packet_bytes: PACKET,
    timing: 'process cpu time',
    ceiling_enc_pps: best.enc,
    ceiling_dec_pps: best.dec,
    send_pps: best.send,
    recv_pps: best.recv,
    send_ratio: Number((best.send / best.enc).toFixed(3)),
    recv_ratio: Number((best.recv / best.dec).toFixed(3)),
    loopback_pps: lb.pps,
    loopback_loss: Number(lb.loss.toFixed(4)),
    loopback_sent: lb.sent,
    loopback_delivered: lb.delivered,
  };
  console.log(JSON.stringify(result));
}

if (process.argv[2] === '--loopback-receiver') {
  void loopbackReceiver(Number(process.argv[3]));
} else {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
