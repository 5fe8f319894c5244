import { describe, expect, it } from 'vitest';
import { IpPacketInfo, parseIpPacket } from '@app/codec';
import { Gspd } from '@app/datapath';
import { udpPacket } from './testing/packets.js';

const info = (p: Uint8Array) => parseIpPacket(p, 0, p.length, new IpPacketInfo());

describe('Gspd', () => {
  const sut = new Gspd();
  sut.install([
    { id: 'rtp', action: 'protect', groupId: 'g1', direction: 'sender-only', selector: { destination: '239.1.0.0/16', protocol: 17, destinationPort: { from: 5000, to: 5010 } } },
    { id: 'recv', action: 'protect', groupId: 'g2', direction: 'receiver-only', selector: { destination: '239.1.0.0/16', source: '10.9.0.0/16' } },
    { id: 'other', action: 'discard', selector: { destination: '239.1.0.0/16' } },
    { id: 'any', action: 'bypass', selector: {} },
  ]);

  it('matches in order, with sender-only entries in GSPD-O only and receiver-only in GSPD-I only', () => {
    const rtp = udpPacket({ src: '10.9.1.1', dst: '239.1.2.3', dport: 5004, payload: 'x' });
    const p = info(rtp);
    expect(sut.matchOutbound(rtp, p)?.id).toBe('rtp');
    expect(sut.matchInbound(rtp, p)?.id).toBe('recv');
    const notRtp = udpPacket({ src: '10.8.1.1', dst: '239.1.2.3', dport: 6000, payload: 'x' });
    expect(sut.matchOutbound(notRtp, info(notRtp))?.id).toBe('other');
    expect(sut.matchInbound(notRtp, info(notRtp))?.id).toBe('other');
    const elsewhere = udpPacket({ src: '10.8.1.1', dst: '239.2.2.3', payload: 'x' });
    expect(sut.matchOutbound(elsewhere, info(elsewhere))?.id).toBe('any');
    const v6 = udpPacket({ src: '2001:db8::1', dst: 'ff3e::1', payload: 'x' });
    expect(sut.matchOutbound(v6, info(v6))?.id).toBe('any');
    expect(sut.matchOnly('sender-only', rtp, p)?.id).toBe('rtp');
  });

  it('replaces the database only when every entry is valid', () => {
    const g = new Gspd();
    g.install([{ id: 'a', action: 'bypass', selector: {} }]);
    expect(() =>
      g.install([
        { id: 'b', action: 'bypass', selector: {} },
        { id: 'b', action: 'bypass', selector: {} },
      ]),
    ).toThrow(/duplicate/);
    expect(() => g.install([{ id: 'c', action: 'bypass', selector: { destination: '1.2.3.4/40' } }])).toThrow(/BAD_ADDRESS/);
    expect(() => g.install([{ id: 'c', action: 'bypass', selector: { source: '::1', destination: '1.2.3.4' } }])).toThrow(/mixes/);
    expect(() => g.install([{ id: 'c', action: 'bypass', selector: { destinationPort: { from: 9, to: 1 } } }])).toThrow(/range/);
    expect(g.get('a')?.id).toBe('a');
    expect(g.size).toBe(1);
  });
});
