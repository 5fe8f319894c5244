import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { addNonEspMarker } from '@app/codec';
import type { OutgoingRekey } from './group-key-state.js';

/** RFC 3948 port: IKE traffic on it carries the non-ESP marker. */
const NAT_T_PORT = 4500;

export interface RekeyTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(t: unknown): void;
}

export const realTimers: RekeyTimers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, Math.max(0, Math.min(ms, 2 ** 31 - 1)));
    t.unref();
    return t;
  },
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
};

/**
 * Multicasts GSA_REKEY messages to a group's rekey address (RFC 9838 §2.4.1) and repeats each the
 * policy's number of times, bit-identical. On one host the multicast interface is the bind address
 * (127.0.0.1): nothing leaves loopback. Send errors are counted, never thrown.
 */
export class RekeySender {
  readonly stats = { sent: 0, errors: 0 };
  private v4?: Socket;
  private v6?: Socket;
  private readonly pending = new Set<unknown>();

  constructor(
    private readonly bindAddress: string,
    private readonly timers: RekeyTimers = realTimers,
  ) {}

  private socket(v6: boolean): Socket {
    if (v6) {
      if (!this.v6) {
        this.v6 = createSocket({ type: 'udp6' });
        this.v6.on('error', () => void this.stats.errors++);
        this.v6.unref();
      }
      return this.v6;
    }
    if (!this.v4) {
      const s = createSocket({ type: 'udp4' });
      s.on('error', () => void this.stats.errors++);
      const local = isIPv6(this.bindAddress) ? '127.0.0.1' : this.bindAddress;
      s.bind({ address: local, port: 0 }, () => {
        try {
          s.setMulticastInterface(local);
          s.setMulticastLoopback(true);
          s.setMulticastTTL(1);
        } catch {
          this.stats.errors++;
        }
      });
      s.unref();
      this.v4 = s;
    }
    return this.v4;
  }

  send(address: string, port: number, messages: readonly OutgoingRekey[], o: { copies: number; intervalMs: number }): void {
    const sock = this.socket(isIPv6(address));
    const framed = messages.map((m) => (port === NAT_T_PORT ? addNonEspMarker(m.bytes) : m.bytes));
    const once = () => {
      for (const b of framed) {
        sock.send(b, port, address, (err) => {
          if (err) this.stats.errors++;
          else this.stats.sent++;
        });
      }
    };
    once();
    for (let i = 1; i < o.copies; i++) {
      const t = this.timers.setTimeout(() => {
        this.pending.delete(t);
        once();
      }, i * o.intervalMs);
      this.pending.add(t);
    }
  }

  close(): void {
    for (const t of this.pending) this.timers.clearTimeout(t);
    this.pending.clear();
    this.v4?.close();
    this.v6?.close();
    this.v4 = this.v6 = undefined;
  }
}
