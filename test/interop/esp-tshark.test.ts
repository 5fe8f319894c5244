/**
 * Interop: tshark (an independent ESP implementation) decrypts what our send pipeline produced,
 * given only the SA's keys, checks every ICV, and its decrypted bytes equal what we protected.
 * Matrix: tunnel (preservation none/both) and transport, AES-GCM-128/-256 (plus AES-CBC +
 * HMAC-SHA-256-128), plain ESP and ESP in UDP 4500, IPv4 and IPv6. One tshark run for all.
 */
import { describe, expect, it } from 'vitest';
import { formatIpAddress, IpPacketInfo, parseIpPacket } from '@app/codec';
import { Datapath, MemoryNetworkBind, MemoryPlaintextPort, type SaConfig } from '@app/datapath';
import { udpPacket } from '../../libs/datapath/src/testing/packets.js';
import { espSaUat, toolAvailable, tsharkDecrypt, tsharkVersion } from './esp-tools.js';

interface Case {
  name: string;
  sa: SaConfig;
  family: 4 | 6;
}

const cases: Case[] = [];
let spi = 0x00a10000;
for (const family of [4, 6] as const) {
  for (const udp of [false, true]) {
    const transforms: SaConfig['transform'][] = [
      { kind: 'aes-gcm-16', keyBits: 128 },
      { kind: 'aes-gcm-16', keyBits: 256 },
      { kind: 'aes-cbc-hmac-sha256', keyBits: 128 },
    ];
    for (const transform of transforms) {
      const modes: Array<['tunnel' | 'transport', SaConfig['addressPreservation']]> = [
        ['tunnel', 'none'],
        ['tunnel', 'both'],
        ['transport', 'none'],
      ];
      for (const [mode, preservation] of modes) {
        spi++;
        const gcm = transform.kind === 'aes-gcm-16';
        const keyLength = transform.keyBits / 8 + (gcm ? 4 : 0);
        cases.push({
          name: `IPv${family} ${mode}${mode === 'tunnel' ? `/${preservation}` : ''} ${transform.kind}-${transform.keyBits}${udp ? ' in UDP' : ''}`,
          family,
          sa: {
            spi,
            policyId: 'p',
            destination: family === 4 ? '239.5.5.5' : 'ff3e::5:5',
            mode,
            addressPreservation: preservation,
            transform,
            encryptionKey: Uint8Array.from({ length: keyLength }, (_, i) => (spi * 31 + i * 17) & 0xff),
            integrityKey: gcm ? undefined : Uint8Array.from({ length: 32 }, (_, i) => (spi + i * 5) & 0xff),
            replayWindow: 64,
            senderId: 3,
            senderIdBits: 8,
            udpEncapsulation: udp ? {} : false,
          },
        });
      }
    }
  }
}

describe('ESP interop with tshark', () => {
  const available = toolAvailable('tshark');

  it.runIf(available)(`tshark verifies every ICV and decrypts byte-identical payloads (${cases.length} SAs)`, () => {
    console.log(`interop: ${tsharkVersion()}`);
    const packets: Uint8Array[] = [];
    const uats: string[] = [];
    const expected: Array<{ name: string; spi: number; seq: number; bytes: string; nextHeader: number }> = [];
    for (const c of cases) {
      const bind = new MemoryNetworkBind({ framings: ['raw-ip'] });
      const sut = new Datapath({
        clock: { now: () => 0 },
        bind,
        port: new MemoryPlaintextPort(),
        localAddresses: { v4: '192.0.2.7', v6: '2001:db8::7' },
      });
      sut.installPolicy([{ id: 'p', action: 'protect', groupId: 'g', selector: { destination: c.sa.destination } }]);
      sut.installSa(c.sa);
      const src = c.family === 4 ? '10.1.2.3' : '2001:db8::1:2:3';
      const sizes = [0, 1, 13, 200, 1400 - (c.family === 4 ? 28 : 48)];
      sizes.forEach((n, i) => {
        const inner = udpPacket({
          src,
          dst: c.sa.destination,
          payload: Uint8Array.from({ length: n }, (_, k) => (k * 13 + i) & 0xff),
          tos: 0x28,
        });
        expect(sut.send(inner), c.name).toBe('sent');
        const info = parseIpPacket(inner, 0, inner.length, new IpPacketInfo());
        const tunnel = c.sa.mode === 'tunnel';
        expected.push({
          name: c.name,
          spi: c.sa.spi,
          seq: i + 1,
          bytes: Buffer.from(tunnel ? inner : inner.subarray(info.upperOffset)).toString('hex'),
          nextHeader: tunnel ? (c.family === 4 ? 4 : 41) : 17,
        });
      });
      const first = bind.sent[0]!.data;
      const o = parseIpPacket(first, 0, first.length, new IpPacketInfo());
      const outerSrc = formatIpAddress(first, o.srcOffset, o.addressLength);
      const outerDst = formatIpAddress(first, o.dstOffset, o.addressLength);
      // Preservation "both" copies the inner addresses; "none" constructs them from the SA.
      if (c.sa.mode === 'tunnel') {
        expect(outerSrc, c.name).toBe(c.sa.addressPreservation === 'both' ? src : c.family === 4 ? '192.0.2.7' : '2001:db8::7');
      }
      expect(outerDst, c.name).toBe(c.sa.destination);
      uats.push(espSaUat(c.sa, outerSrc, outerDst));
      packets.push(...bind.sent.map((d) => d.data));
    }

    const { rows } = tsharkDecrypt(packets, uats);
    expect(rows).toHaveLength(expected.length);
    rows.forEach((row, i) => {
      const e = expected[i]!;
      expect({ name: e.name, spi: row.spi, seq: row.sequence }).toEqual({ name: e.name, spi: e.spi, seq: e.seq });
      expect(row.icvGood, `${e.name} #${e.seq} icv`).toBe(true);
      expect(row.nextHeader, `${e.name} #${e.seq} next header`).toBe(e.nextHeader);
      expect(row.decrypted, `${e.name} #${e.seq} decrypted bytes`).toBe(e.bytes);
    });
  });

  it.runIf(available)('tshark reports a bad ICV for a packet we did not seal (the check can fail)', () => {
    const c = cases[0]!;
    const bind = new MemoryNetworkBind({ framings: ['raw-ip'] });
    const sut = new Datapath({ clock: { now: () => 0 }, bind, port: new MemoryPlaintextPort() });
    sut.installPolicy([{ id: 'p', action: 'protect', groupId: 'g', selector: {} }]);
    sut.installSa(c.sa);
    sut.send(udpPacket({ src: '10.1.2.3', dst: c.sa.destination, payload: 'tamper me' }));
    const pkt = Uint8Array.from(bind.sent[0]!.data);
    pkt[pkt.length - 20]! ^= 0x40;
    const { rows } = tsharkDecrypt([pkt], [espSaUat(c.sa, '*', '*')]);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.icvGood).toBe(false);
  });
});
