import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EncrId, GsaAddressPreservation, GsaDirection, GsaMode, IdType, TsType, parseIpAddress } from '@app/codec';
import { Datapath } from '@app/datapath';
import { dataSaKeyLength, type DataSaParams, type IkeClock, type IkeTimer } from '@app/gkm';
import { TestGcks } from '../../../../test/support/agent-gcks.js';
import { GroupSession, type Logger } from './group-session.js';

/**
 * GroupSession against the libraries' GCKS (real G-IKEv2 over loopback UDP for registration), with
 * a manual clock for everything the session schedules, so rollover times are exact: a leading edge
 * activates ATD after its rekey, the trailing edge is deleted DTD after the switch. Rekeys are fed
 * as the bytes the GCKS multicast; forged, replayed and skipped ones are checked one by one.
 */

class ManualClock implements IkeClock {
  t = Date.now();
  private timers: { at: number; fn: () => void; cancelled: boolean }[] = [];
  now = () => this.t;
  setTimer = (ms: number, fn: () => void): IkeTimer => {
    const timer = { at: this.t + ms, fn, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => void (timer.cancelled = true) };
  };
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => !x.cancelled && x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers.splice(this.timers.indexOf(due), 1);
      this.t = Math.max(this.t, due.at);
      due.fn();
    }
    this.t = end;
  }
}

const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };
const PSK = 'session spec pre-shared key';
const ATD = 3;
const DTD = 5;

/** A speaker session registering with `gcks` over a loopback socket; the caller closes `sock`. */
async function speakerSession(gcks: TestGcks, group: string, clock: ManualClock, datapath: Datapath, policies: string[][], log: Logger = quiet): Promise<{ sut: GroupSession; sock: dgram.Socket }> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const local = sock.address() as AddressInfo;
  const sut = new GroupSession({
    group: { name: group, role: 'speaker' },
    gcks: [{ address: '127.0.0.1', port: gcks.port }],
    datapath,
    clock,
    random: (n) => new Uint8Array(randomBytes(n)),
    sendIke: (d, to) => sock.send(d, to.port, to.address),
    localIke: { address: local.address, port: local.port },
    addInitiator: () => undefined,
    removeInitiator: () => undefined,
    setPolicy: (_g, entries) => {
      datapath.installPolicy(entries);
      policies.push(entries.map((e) => `${e.id} ${e.action} ${e.direction}`));
    },
    listenRekey: async () => undefined,
    ike: {
      proposals: [{ encrId: 20, keyBits: 256, prfId: 5, group: 19 }],
      localId: { idType: IdType.ID_FQDN, data: new TextEncoder().encode('s.speakers.test') },
      localAuth: { kind: 'psk' },
      peer: { psk: new TextEncoder().encode(PSK) },
      retransmit: { timeoutMs: 1000, tries: 3 },
    },
    trustAnchor: gcks.anchorPem,
    kekRenewBeforeMs: 60_000,
    log,
  });
  sock.on('message', (msg, rinfo) => sut.onIkeDatagram(new Uint8Array(msg), { remoteAddress: rinfo.address, remotePort: rinfo.port, localAddress: local.address, localPort: local.port, marker: true }));
  return { sut, sock };
}

describe('GroupSession', () => {
  let gcks: TestGcks;
  let sock: dgram.Socket;
  const clock = new ManualClock();
  const datapath = new Datapath({ clock });
  let sut: GroupSession;
  const policies: string[][] = [];

  beforeAll(async () => {
    gcks = await TestGcks.start({ group: 'spec', groupAddress: '239.77.0.1', dataPort: 5000, rekeyAddress: '239.77.0.2', rekeyPort: 40_000 + (process.pid % 10_000), atd: ATD, dtd: DTD, psk: PSK, speakers: '*.speakers.test', receivers: '*.rx.test' });
    ({ sut, sock } = await speakerSession(gcks, 'spec', clock, datapath, policies));
  });
  afterAll(async () => {
    await new Promise<void>((r) => sock.close(() => r()));
    await gcks.close();
  });

  it('registers: token checked, GSPD applied, the current SA installed and active', async () => {
    expect(await sut.register()).toBe(true);
    expect(sut.state).toBe('registered');
    expect(sut.token?.edition).toBe(1);
    expect(policies.at(-1)).toEqual(['spec|239.77.0.1|17|5000 protect symmetric']);
    expect([...sut.sas.keys()]).toEqual([gcks.currentTekSpi]);
    expect(datapath.stats().sas.map((s) => [s.spi, s.state])).toEqual([[gcks.currentTekSpi, 'active']]);
  });

  it('a rekey: leading edge installed now and activated exactly ATD later; trailing edge deleted DTD after the switch', () => {
    const old = gcks.currentTekSpi;
    const fresh = gcks.forceRekey();
    const t0 = clock.now();
    const mark = sut.timeline.length;
    sut.onRekeyDatagram(gcks.rekeyMessages.at(-1)!);
    expect(sut.counters.rekeysAccepted).toBe(1);
    const state = () => new Map(datapath.stats().sas.map((s) => [s.spi, s.state]));
    expect(state()).toEqual(new Map([[old, 'retiring'], [fresh, 'pending']]));
    clock.advance(ATD * 1000 - 1);
    expect(state().get(fresh)).toBe('pending');
    clock.advance(1);
    expect(state().get(fresh)).toBe('active');
    clock.advance(DTD * 1000 - 1);
    datapath.tick();
    expect(state().has(old)).toBe(true);
    clock.advance(1);
    datapath.tick();
    expect(state().has(old)).toBe(false);
    const events = sut.timeline.slice(mark).map((e) => [e.at - t0, e.spi === fresh ? 'new' : 'old', e.event]);
    expect(events).toEqual([
      [0, 'new', 'installed'],
      [0, 'old', 'retired'],
      [ATD * 1000, 'new', 'activated'],
      [(ATD + DTD) * 1000, 'old', 'deleted'],
    ]);
  });

  it('a copy of the last message is counted as a copy, not opened again; a flipped octet fails integrity; junk is malformed: none changes anything', () => {
    const msg = gcks.rekeyMessages.at(-1)!;
    const before = [...sut.sas.keys()];
    const copies = sut.counters.rekeyCopies;
    const accepted = sut.counters.rekeysAccepted;
    sut.onRekeyDatagram(msg);
    expect(sut.counters.rekeyCopies).toBe(copies + 1);
    expect(sut.counters.rekeysAccepted).toBe(accepted);
    const flipped = Uint8Array.from(msg);
    flipped[flipped.length - 3]! ^= 1;
    sut.onRekeyDatagram(flipped);
    sut.onRekeyDatagram(Uint8Array.from([0, 0, 0, 0, 1, 2, 3]));
    expect(Object.fromEntries(sut.refusals)).toMatchObject({ 'rekey:INTEGRITY': 1, 'rekey:MALFORMED': 1 });
    expect(sut.counters.rekeysRefused).toBe(2);
    expect([...sut.sas.keys()]).toEqual(before);
  });

  it('a skipped Message ID (lost rekey) makes it re-register instead of applying the message', async () => {
    gcks.forceRekey(); // lost
    const next = gcks.forceRekey();
    const regs = sut.counters.registrations;
    sut.onRekeyDatagram(gcks.rekeyMessages.at(-1)!);
    expect(sut.counters.rekeysMissed).toBe(1);
    await (sut as unknown as { registering?: Promise<boolean> }).registering;
    expect(sut.counters.registrations).toBe(regs + 1);
    expect(sut.sas.has(next)).toBe(true); // the registration delivered the current TEK
  });

  it('after eviction the rekey cannot be opened: the group is excluded and keeps no new SA', () => {
    const before = [...sut.sas.keys()];
    gcks.evict('s.speakers.test');
    sut.onRekeyDatagram(gcks.rekeyMessages.at(-2)!); // the KEK message under the old KEK
    expect(sut.state).toBe('excluded');
    sut.onRekeyDatagram(gcks.rekeyMessages.at(-1)!); // the TEK message under the new KEK: ignored
    expect([...sut.sas.keys()]).toEqual(before);
    expect(sut.counters.rekeysUnopenable).toBe(1);
  });
});

describe('GroupSession under the Group Owner’s data policy (RFC 5374 §4.1.3.1)', () => {
  let gcks: TestGcks;
  let sock: dgram.Socket | undefined;
  const clock = new ManualClock();
  const datapath = new Datapath({ clock });
  const policies: string[][] = [];
  const warnings: Record<string, unknown>[] = [];
  const log: Logger = { ...quiet, warn: (msg, fields) => void warnings.push({ msg, ...fields }) };
  const ALIEN_SPI = 0x7e57;
  const GCM = { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 128 };
  const one = (address: string, port?: number) => {
    const a = parseIpAddress(address);
    return { tsType: TsType.TS_IPV4_ADDR_RANGE, ipProtocol: port === undefined ? 0 : 17, startPort: port ?? 0, endPort: port ?? 0xffff, startAddress: a, endAddress: a };
  };
  // A flow the Group Owner never put in the group, with the group's own transform: only the token says no.
  const alien: DataSaParams = {
    spi: ALIEN_SPI,
    source: { ...one('0.0.0.0'), endAddress: Uint8Array.from([255, 255, 255, 255]) },
    destination: one('239.77.9.9', 5000),
    ...GCM,
    sn: 2,
    lifetimeSeconds: 3600,
    direction: GsaDirection.SYMMETRIC,
    addressPreservation: GsaAddressPreservation.SOURCE_AND_DESTINATION,
    keyMaterial: new Uint8Array(randomBytes(dataSaKeyLength(GCM))),
  };

  beforeAll(async () => {
    gcks = await TestGcks.start({
      group: 'scoped',
      groupAddress: '239.77.1.1',
      dataPort: 5000,
      rekeyAddress: '239.77.1.2',
      rekeyPort: 30_000 + (process.pid % 10_000),
      atd: ATD,
      dtd: DTD,
      psk: PSK,
      speakers: '*.speakers.test',
      receivers: '*.rx.test',
      unstatedSas: [alien],
    });
  });
  afterAll(async () => {
    if (sock) await new Promise<void>((r) => sock!.close(() => r()));
    await gcks.close();
  });

  it('a registration with an SA outside the token’s data policy installs the others and not that one, and counts it', async () => {
    const s = await speakerSession(gcks, 'scoped', clock, datapath, policies, log);
    sock = s.sock;
    const sut = s.sut;
    expect(await sut.register()).toBe(true);
    expect(sut.token?.dataPolicy.map((p) => p.destination)).toEqual(['239.77.1.1/32']);
    expect([...sut.sas.keys()]).toEqual([gcks.currentTekSpi]);
    expect(datapath.stats().sas.map((x) => x.spi)).toEqual([gcks.currentTekSpi]);
    expect(sut.counters.saRefusedByToken).toBe(1);
    expect(sut.counters.saInstallErrors).toBe(0);
    // No GSPD entry for the foreign flow either: the group's policy changes stay within its flows.
    expect(policies.at(-1)).toEqual(['scoped|239.77.1.1|17|5000 protect symmetric']);
    expect(warnings).toContainEqual(expect.objectContaining({ msg: 'SA not authorized by the policy token', group: 'scoped', spi: '0x7e57', reason: expect.stringMatching(/^destination 239\.77\.9\.9 outside 239\.77\.1\.1\/32$/) }));
  });

  it('a GSA_REKEY is held to the token too: the new TEK is installed, an SA of the group’s flow in another mode or key length is not', async () => {
    const s = await speakerSession(gcks, 'scoped', clock, datapath, policies, log);
    const sut = s.sut;
    try {
      expect(await sut.register()).toBe(true);
      const refusedBefore = sut.counters.saRefusedByToken;
      // The group's own flow and transform, but transport mode (the token states tunnel) and AES-256 (it states 128).
      const flow = { source: alien.source, destination: one('239.77.1.1', 5000), sn: 2, lifetimeSeconds: 3600, direction: GsaDirection.SYMMETRIC };
      const transport: DataSaParams = { ...flow, spi: 0x7e58, ...GCM, mode: GsaMode.TRANSPORT, addressPreservation: GsaAddressPreservation.NONE, keyMaterial: new Uint8Array(randomBytes(dataSaKeyLength(GCM))) };
      const aes256 = { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 256 };
      const stronger: DataSaParams = { ...flow, spi: 0x7e59, ...aes256, addressPreservation: GsaAddressPreservation.SOURCE_AND_DESTINATION, keyMaterial: new Uint8Array(randomBytes(dataSaKeyLength(aes256))) };
      const next = gcks.forceRekey([transport, stronger]);
      sut.onRekeyDatagram(gcks.rekeyMessages.at(-1)!);
      expect(sut.counters.rekeysAccepted).toBeGreaterThan(0);
      expect(sut.sas.has(next)).toBe(true);
      expect(sut.sas.has(0x7e58)).toBe(false);
      expect(sut.sas.has(0x7e59)).toBe(false);
      expect(datapath.stats().sas.map((x) => x.spi)).not.toContain(0x7e58);
      expect(sut.counters.saRefusedByToken).toBe(refusedBefore + 2);
      expect(warnings).toContainEqual(expect.objectContaining({ spi: '0x7e58', reason: 'mode transport, policy allows tunnel' }));
      expect(warnings).toContainEqual(expect.objectContaining({ spi: '0x7e59', reason: 'ENCR key of 256 bits, policy allows 128' }));
    } finally {
      await new Promise<void>((r) => s.sock.close(() => r()));
    }
  });
});
