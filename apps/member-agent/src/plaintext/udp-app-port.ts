/**
 * Socket mode's application side (no root): a PlaintextPort that talks to unmodified UDP
 * applications on localhost, one local UDP port per group.
 *
 *  - An application sends a datagram to the group's application port: its payload becomes the UDP
 *    payload of an inner IP packet (our local address -> the group address, the group's data port)
 *    handed to the datapath, which protects it (GSPD-O, SA, ESP) or drops it (fail-close).
 *  - An application that wants to receive sends one empty datagram to the port (a subscription);
 *    every verified packet the datapath delivers for that group is sent to each subscriber as its
 *    UDP payload alone. Subscribers are bounded per group; the oldest gives way.
 *
 * This file touches node:dgram although it is not under net/ (owned elsewhere): it is the
 * application's side of the agent, not the network's, and carries only plaintext on loopback.
 */
import dgram from 'node:dgram';
import { IP_DEFAULT_TTL, IpPacketInfo, formatIpAddress, parseIpAddress } from '@app/codec';
import type { PlaintextPort } from '@app/datapath';
import { buildInnerUdpPacket, innerUdpPayload } from './inner-udp.js';

/** Subscribers kept per group. */
export const MAX_SUBSCRIBERS = 16;
/** Largest application payload carried (keeps the inner packet within an IPv4 total length). */
export const MAX_APP_PAYLOAD = 65_000;

export interface AppGroup {
  /** Group name (for stats). */
  readonly name: string;
  /** The group's multicast address and data port (inner destination). */
  readonly address: string;
  readonly dataPort: number;
  /** Local port where applications send to and subscribe. */
  readonly applicationPort: number;
}

export interface AppPortStats {
  fromApps: number;
  toApps: number;
  subscriptions: number;
  /** Delivered packets that match no group, or are not UDP. */
  undeliverable: number;
  oversize: number;
  socketErrors: number;
}

interface GroupSocket {
  group: AppGroup;
  socket: dgram.Socket;
  subscribers: { address: string; port: number }[];
  addressBytes: Uint8Array;
}

export class UdpAppPort implements PlaintextPort {
  readonly stats: AppPortStats = { fromApps: 0, toApps: 0, subscriptions: 0, undeliverable: 0, oversize: 0, socketErrors: 0 };
  private handler: ((packet: Uint8Array) => void) | undefined;
  private readonly byAddress = new Map<string, GroupSocket>();
  private readonly local: Uint8Array;
  private readonly info = new IpPacketInfo();
  private ident = 0;

  private constructor(
    private readonly localAddress: string,
    private readonly applicationAddress: string,
  ) {
    this.local = parseIpAddress(localAddress);
  }

  /** Binds one socket per group on `applicationAddress` (127.0.0.1). Rejects with the socket error. */
  static async open(o: { localAddress: string; applicationAddress: string; groups: readonly AppGroup[] }): Promise<UdpAppPort> {
    const port = new UdpAppPort(o.localAddress, o.applicationAddress);
    try {
      for (const g of o.groups) await port.addGroup(g);
    } catch (e) {
      await port.close();
      throw e;
    }
    return port;
  }

  private async addGroup(group: AppGroup): Promise<void> {
    const addressBytes = parseIpAddress(group.address);
    if (addressBytes.length !== this.local.length) throw new RangeError(`group ${group.name}: ${group.address} is not of the local address's family`);
    const type = this.applicationAddress.includes(':') ? 'udp6' : 'udp4';
    const socket = dgram.createSocket({ type });
    const gs: GroupSocket = { group, socket, subscribers: [], addressBytes };
    socket.on('error', () => void this.stats.socketErrors++);
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(group.applicationPort, this.applicationAddress, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('message', (msg, rinfo) => this.fromApp(gs, msg, rinfo));
    this.byAddress.set(formatIpAddress(addressBytes), gs);
  }

  /** The subscribers of a group (for status). */
  subscribers(groupAddress: string): number {
    return this.byAddress.get(groupAddress)?.subscribers.length ?? 0;
  }

  onPacket(handler: (packet: Uint8Array) => void): void {
    this.handler = handler;
  }

  private fromApp(gs: GroupSocket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (msg.length === 0) {
      if (!gs.subscribers.some((s) => s.address === rinfo.address && s.port === rinfo.port)) {
        if (gs.subscribers.length >= MAX_SUBSCRIBERS) gs.subscribers.shift();
        gs.subscribers.push({ address: rinfo.address, port: rinfo.port });
        this.stats.subscriptions++;
      }
      return;
    }
    if (msg.length > MAX_APP_PAYLOAD) {
      this.stats.oversize++;
      return;
    }
    this.stats.fromApps++;
    this.handler?.(this.buildPacket(gs, msg));
  }

  /** Inner IP/UDP packet: local address -> group, data port both ways, checksummed (RFC 768). */
  buildPacket(gs: GroupSocket, payload: Uint8Array): Uint8Array {
    if (this.local.length === 4) this.ident = (this.ident + 1) & 0xffff;
    return buildInnerUdpPacket(
      { source: this.local, destination: gs.addressBytes, sourcePort: gs.group.dataPort, destinationPort: gs.group.dataPort, ttl: IP_DEFAULT_TTL, identification: this.ident },
      payload,
    );
  }

  deliver(packet: Uint8Array): void {
    const p = this.info;
    const payload = innerUdpPayload(packet, p);
    const gs = payload && this.byAddress.get(formatIpAddress(packet, p.dstOffset, p.addressLength));
    if (!payload || !gs) {
      this.stats.undeliverable++;
      return;
    }
    for (const s of gs.subscribers) {
      gs.socket.send(payload, s.port, s.address, (err) => {
        if (err) this.stats.socketErrors++;
      });
      this.stats.toApps++;
    }
  }

  async close(): Promise<void> {
    const all = [...this.byAddress.values()];
    this.byAddress.clear();
    await Promise.all(all.map((g) => new Promise<void>((r) => g.socket.close(() => r()))));
  }
}
