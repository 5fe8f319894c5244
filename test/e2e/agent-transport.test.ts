import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IPPROTO_IPV4, IPPROTO_UDP, decodeEspTrailer } from '@app/codec';
import { createEspCipher } from '@app/datapath';
import { parseAgentConfig } from '../../apps/member-agent/src/config/agent-config.js';
import { MemberAgent } from '../../apps/member-agent/src/control/agent.js';
import { jsonLogger } from '../../apps/member-agent/src/control/logger.js';
import { gkmHelpers } from '../support/gcks-gkm.js';
import { startTestGcks, type TestGcks } from '../support/gcks-test-app.js';
import { tempDir } from '../support/temp-dir.js';
import { LoopbackApp, freeUdpPort, sleep, waitFor } from '../support/udp-loopback.js';

/**
 * Transport mode end to end: the real GCKS (Nest app, SQLite, G-IKEv2 registration) and three
 * socket-mode member agents on loopback, for a policy with `mode: 'transport'` and ESP in UDP.
 * The GSA carries the private MODE attribute; the agents install transport SAs; a speaker's
 * numbered datagrams reach both receivers exactly once; and the ESP captured on the group
 * address, opened with the SA keys from a receiver's key log (debug.espKeyLog), carries the UDP
 * segment itself (Next Header 17), not an inner IP packet as tunnel mode would (Next Header 4).
 */

const GROUP = `239.83.${process.pid % 250}.${(process.pid >> 8) % 250}`;
const REKEY_GROUP = `239.84.${process.pid % 250}.${(process.pid >> 8) % 250}`;
/** The GCKS announces ESP in UDP on the NAT-T port (group-config.ts); agents listen there. */
const ESP_PORT = 4500;
const PSK = 'transport-mode shared secret, long enough';
const COUNT = 100;

let gcks: TestGcks;
const h = gkmHelpers(() => gcks);
const agents: Record<string, MemberAgent> = {};
const apps: Record<string, LoopbackApp> = {};
const dir = tempDir('agent-transport-');
const keyLog = join(dir.path, 'esp_sa');
let capture: dgram.Socket;
const wire: Buffer[] = [];
let dataPort = 0;

const names = { s: 'talker.tr.example', a: 'a.tr.example', b: 'b.tr.example' } as const;

beforeAll(async () => {
  dataPort = await freeUdpPort();
  const rekeyPort = await freeUdpPort();
  gcks = await startTestGcks();
  await h.group(
    'tr',
    REKEY_GROUP,
    rekeyPort,
    Object.entries(names).map(([k, id]) => ({ idType: 'psk', pattern: id, role: k === 's' ? 'both' : 'receiver', psk: PSK })),
    { address: GROUP },
    { destinationPort: dataPort, protocol: 17, mode: 'transport', udpEncapsulation: true },
  );
  capture = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  capture.on('message', (m) => wire.push(m));
  await new Promise<void>((r) => capture.bind(ESP_PORT, GROUP, () => r()));
  capture.addMembership(GROUP, '127.0.0.1');
  for (const [key, id] of Object.entries(names)) {
    const config = parseAgentConfig(
      {
        identity: { kind: 'psk', id, secret: PSK },
        trustAnchor: 'unused.pem',
        gcks: [{ address: '127.0.0.1', port: h.registration().port }],
        groups: [{ name: 'tr', role: key === 's' ? 'speaker' : 'receiver', applicationPort: await freeUdpPort(), address: GROUP, dataPort }],
        status: { port: 0 },
        ikeTimeoutMs: 500,
        ikeTries: 3,
        ...(key === 'a' ? { debug: { espKeyLog: keyLog } } : {}),
      },
      '/',
    );
    agents[key] = await MemberAgent.start({
      config,
      secrets: { trustAnchorPem: h.ownerAnchor(), psk: new TextEncoder().encode(PSK) },
      log: jsonLogger('error', () => undefined),
      espPort: ESP_PORT,
    });
    apps[key] = await LoopbackApp.open(config.groups[0]!.applicationPort!);
  }
}, 30_000);

afterAll(async () => {
  await Promise.all(Object.values(agents).map((a) => a.stop()));
  await Promise.all(Object.values(apps).map((a) => a.close()));
  if (capture) await new Promise<void>((r) => capture.close(() => r()));
  await gcks?.close();
  dir.remove();
});

describe('transport-mode policy with the real GCKS and socket-mode agents on loopback', () => {
  it('registers every agent and delivers each datagram exactly once in transport-mode ESP', async () => {
    await waitFor('registration', () => Object.values(agents).every((a) => a.sessions.get('tr')!.state === 'registered'));
    apps.a!.subscribe();
    apps.b!.subscribe();
    await sleep(200);
    for (let i = 0; i < COUNT; i++) {
      apps.s!.send(i);
      if (i % 20 === 19) await sleep(5);
    }
    await waitFor('delivery', () => apps.a!.got.length >= COUNT && apps.b!.got.length >= COUNT);
    await sleep(200); // a duplicate would arrive by now
    expect(apps.a!.got).toEqual([...Array(COUNT).keys()]);
    expect(apps.b!.got).toEqual([...Array(COUNT).keys()]);
    for (const k of ['a', 'b'] as const) expect(agents[k]!.datapath.stats().drops.preservationMismatch).toBe(0);
  });

  it('the ESP on the wire is transport mode: opened with the SA keys, it holds the UDP segment (Next Header 17)', () => {
    // One record per installed SA: "IPv4","*","<group>","0x<spi>","<encryption>","0x<key>","<integrity>","<key>".
    const records = readFileSync(keyLog, 'utf8')
      .trim()
      .split('\n')
      .map((l) => [...l.matchAll(/"([^"]*)"/g)].map((m) => m[1]!));
    expect(records.length).toBeGreaterThanOrEqual(1);
    const [, , destination, spiHex, encryption, keyHex] = records[0]!;
    expect(destination).toBe(GROUP);
    expect(encryption).toMatch(/AES-GCM/);
    const key = Buffer.from(keyHex!.slice(2), 'hex');
    const cipher = createEspCipher({ kind: 'aes-gcm-16', keyBits: key.length === 36 ? 256 : 128 }, key, undefined);
    const spi = Number.parseInt(spiHex!, 16);
    const esp = wire.filter((m) => m.length > 8 && m.readUInt32BE(0) === spi);
    expect(esp.length).toBe(COUNT); // ESP in UDP (RFC 3948): the SPI first, no non-ESP marker
    const numbers: number[] = [];
    for (const m of esp) {
      const pt = cipher.open(m, 0, m.length, -1);
      expect(pt).toBeDefined();
      const t = decodeEspTrailer(pt!, 0, pt!.length);
      expect(t.nextHeader).toBe(IPPROTO_UDP);
      expect(t.nextHeader).not.toBe(IPPROTO_IPV4);
      // The payload is the application's UDP segment: data port both ways, 8 + 64 octets.
      const udp = pt!.subarray(0, t.payloadLength);
      expect(udp.length).toBe(8 + 64);
      expect(udp.readUInt16BE(0)).toBe(dataPort);
      expect(udp.readUInt16BE(2)).toBe(dataPort);
      expect(udp.readUInt16BE(4)).toBe(8 + 64);
      numbers.push(udp.readUInt32BE(8));
    }
    expect(numbers).toEqual([...Array(COUNT).keys()]);
  });
});
