import dgram from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../apps/member-agent/src/config/agent-config.js';
import { MemberAgent } from '../../apps/member-agent/src/control/agent.js';
import { jsonLogger } from '../../apps/member-agent/src/control/logger.js';
import { onDemandEntry } from '../../apps/member-agent/src/control/sa-mapping.js';
import { TestGcks } from '../support/agent-gcks.js';
import { LoopbackApp, freeUdpPort, groupListener, sleep, waitFor } from '../support/udp-loopback.js';

/**
 * Fail-open in socket mode (no root), on loopback, with a GCKS that does not answer: a fail-open
 * speaker's application payload leaves as plain UDP multicast to the group's data port (seen by
 * an ordinary listener on the group), and a fail-open receiver's agent takes that plain UDP in and
 * delivers it to its subscribed application through the datapath's BYPASS entry; a fail-close
 * speaker's payload never leaves (held, then dropped). Nothing is ESP because nobody registered.
 */

const PSK = 'correct horse battery staple';
const GROUP = `239.78.${process.pid % 250}.${(process.pid >> 8) % 250}`;
const REKEY_GROUP = `239.79.${process.pid % 250}.${(process.pid >> 8) % 250}`;

describe('member agent fail-open in socket mode (GCKS not answering)', () => {
  let gcks: TestGcks; // only its Group Owner key (the trust anchor); the agents talk to `silent`
  let silent: dgram.Socket; // a GCKS address that never answers
  let dataPort = 0;
  let espPort = 0;
  const agents: MemberAgent[] = [];
  const sockets: dgram.Socket[] = [];

  async function agent(id: string, role: 'speaker' | 'receiver', failMode: 'open' | 'close') {
    const applicationPort = await freeUdpPort();
    const config = parseAgentConfig(
      {
        identity: { kind: 'psk', id, secret: PSK },
        trustAnchor: 'unused.pem',
        gcks: [{ address: '127.0.0.1', port: (silent.address() as { port: number }).port }],
        groups: [{ name: 'fo', role, registration: 'on-demand', applicationPort, address: GROUP, dataPort }],
        failMode,
        ikeTimeoutMs: 100,
        ikeTries: 1,
      },
      '/',
    );
    const a = await MemberAgent.start({ config, secrets: { trustAnchorPem: gcks.anchorPem, psk: new TextEncoder().encode(PSK) }, log: jsonLogger('error', () => undefined), espPort });
    agents.push(a);
    const app = await LoopbackApp.open(applicationPort);
    sockets.push(app.socket);
    return { a, app, send: (n: number) => app.send(n), subscribe: () => app.subscribe() };
  }

  beforeAll(async () => {
    dataPort = await freeUdpPort();
    espPort = await freeUdpPort();
    gcks = await TestGcks.start({ group: 'fo', groupAddress: GROUP, dataPort, rekeyAddress: REKEY_GROUP, rekeyPort: await freeUdpPort(), atd: 1, dtd: 1, psk: PSK, speakers: '*.speakers.test', receivers: '*.rx.test' });
    silent = dgram.createSocket('udp4');
    await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
    sockets.push(silent);
  });
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    for (const s of sockets) s.close();
    await gcks?.close();
  });

  it('the fail-open speaker reaches the wire and the fail-open receiver in clear; the fail-close speaker reaches nobody', async () => {
    const COUNT = 20;
    const wire = await groupListener(GROUP, dataPort);
    sockets.push(wire.socket);
    const open = await agent('open.speakers.test', 'speaker', 'open');
    const closed = await agent('closed.speakers.test', 'speaker', 'close');
    const rx = await agent('rx.rx.test', 'receiver', 'open');
    rx.subscribe();
    await sleep(200);
    for (let i = 0; i < COUNT; i++) {
      open.send(i);
      closed.send(1000 + i);
      await sleep(2);
    }
    await waitFor('clear delivery', () => rx.app.got.length >= COUNT && wire.got.length >= COUNT).catch(() => undefined);
    await sleep(300);
    const figures = {
      sent: { open: COUNT, closed: COUNT },
      wire_plain_udp: { from_open: wire.got.filter((n) => n < 1000).length, from_closed: wire.got.filter((n) => n >= 1000).length },
      rx_app: { from_open: rx.app.got.filter((n) => n < 1000).length, from_closed: rx.app.got.filter((n) => n >= 1000).length },
      open_network: { plainUdpSent: open.a.net.stats.plainUdpSent, espSent: open.a.datapath.stats().sent },
      rx_network: { plainUdpReceived: rx.a.net.stats.plainUdpReceived, delivered: rx.a.datapath.stats().delivered },
      closed_datapath: { sent: closed.a.datapath.stats().sent, held: closed.a.datapath.stats().held, drops: closed.a.datapath.stats().drops.queueFull },
      states: agents.map((a) => a.sessions.get('fo')!.state),
    };
    console.log(`[e2e] fail-open, socket mode: ${JSON.stringify(figures)}`);
    expect(agents.every((a) => a.sessions.get('fo')!.state !== 'registered')).toBe(true);
    expect(wire.got.filter((n) => n < 1000).sort((x, y) => x - y)).toEqual([...Array(COUNT).keys()]);
    expect(rx.app.got.filter((n) => n < 1000).sort((x, y) => x - y)).toEqual([...Array(COUNT).keys()]);
    expect(wire.got.filter((n) => n >= 1000)).toEqual([]);
    expect(rx.app.got.filter((n) => n >= 1000)).toEqual([]);
    expect(open.a.datapath.stats().sent).toBe(0); // nothing protected: no SA exists
    expect(open.a.net.stats.plainUdpSent).toBe(COUNT);
    expect(closed.a.datapath.stats().sent).toBe(0);

    // Once the group's entry is PROTECT (as registration makes it), the same clear traffic is
    // refused by the receiver's GSPD-I and counted, instead of reaching its application.
    rx.a.datapath.installPolicy([onDemandEntry('fo', 'receiver', GROUP, dataPort)]);
    const mismatches = rx.a.datapath.stats().drops.policyMismatch;
    const delivered = rx.app.got.length;
    for (let i = 0; i < COUNT; i++) open.send(2000 + i);
    await waitFor('clear refused', () => rx.a.datapath.stats().drops.policyMismatch === mismatches + COUNT);
    await sleep(100);
    console.log(`[e2e] fail-open, socket mode, entry now PROTECT: sent ${COUNT} in clear, rx app received ${rx.app.got.length - delivered}, refused by GSPD-I ${rx.a.datapath.stats().drops.policyMismatch - mismatches}`);
    expect(rx.app.got.length).toBe(delivered);
  }, 30_000);
});
