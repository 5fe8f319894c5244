/**
 * Loopback UDP helpers for the socket-mode tests (agent end to end, application ports, binds):
 * free ports, polling with a deadline, and applications on 127.0.0.1 that number their datagrams.
 */
import dgram from 'node:dgram';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A UDP port on 127.0.0.1 nobody holds right now (bound to 0, then released). */
export async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

/** Polls `cond` every 20 ms until it holds; rejects after `ms` with `what`. */
export async function waitFor(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** The first 32-bit number of a datagram (what the numbered apps send), -1 if it is shorter. */
const numberOf = (m: Buffer): number => (m.length >= 4 ? m.readUInt32BE(0) : -1);

/**
 * An application on 127.0.0.1 using an agent's application port: it sends numbered 64-octet
 * datagrams there, subscribes with an empty one, and records the number of every datagram it gets.
 */
export class LoopbackApp {
  readonly got: number[] = [];
  private constructor(
    readonly socket: dgram.Socket,
    readonly agentPort: number,
  ) {}

  static async open(agentPort: number): Promise<LoopbackApp> {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const app = new LoopbackApp(s, agentPort);
    s.on('message', (m) => app.got.push(numberOf(m)));
    return app;
  }

  subscribe(): void {
    this.socket.send(Buffer.alloc(0), this.agentPort, '127.0.0.1');
  }

  send(n: number): void {
    const b = Buffer.alloc(64);
    b.writeUInt32BE(n, 0);
    this.socket.send(b, this.agentPort, '127.0.0.1');
  }

  close(): Promise<void> {
    return new Promise((r) => this.socket.close(() => r()));
  }
}

/** An ordinary listener on a multicast group's port (joined on 127.0.0.1), recording numbers. */
export async function groupListener(group: string, port: number): Promise<{ socket: dgram.Socket; got: number[] }> {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  const got: number[] = [];
  socket.on('message', (m) => got.push(numberOf(m)));
  await new Promise<void>((r) => socket.bind(port, group, () => r()));
  socket.addMembership(group, '127.0.0.1');
  return { socket, got };
}
