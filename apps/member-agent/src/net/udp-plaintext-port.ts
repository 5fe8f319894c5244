/**
 * Socket mode (no root): the datapath's application side as local UDP ports, one per group.
 *
 * Outbound: an application sends a plaintext datagram to its group's local port. This port wraps it
 * in the IP/UDP packet the application would have multicast itself (source: this member's address
 * and the application's source port; destination: the group address and the group's port) and
 * hands it to the datapath, which applies the GSPD and protects it like any TUN packet.
 *
 * Inbound: a verified inner packet is unwrapped and its UDP payload sent to the group's local
 * subscribers: the configured `deliverTo` endpoints, and every local endpoint that sent to the
 * group's port within `subscriberTtlMs` — so an application that sends also receives, as a
 * multicast member would; a listen-only application subscribes with an empty datagram (which is
 * not forwarded). The receiving application sees the agent's port as the source: the speaker's
 * address is not conveyed (tun mode keeps it). Nothing here throws on the packet path; every
 * refusal is counted in `stats`.
 */
import dgram from 'node:dgram';
import { formatIpAddress, IpPacketInfo, parseIpAddress } from '@app/codec';
import type { PlaintextPort } from '@app/datapath';
import { buildInnerUdpPacket, innerUdpPayload, maxInnerUdpPayload } from '../plaintext/inner-udp.js';
import { addressFamily, isMulticast } from './ip-address.js';

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

export interface SocketGroup {
  /** The group's address (the inner packet's destination) and the UDP port its applications use. */
  readonly group: string;
  readonly groupPort: number;
  /** The local endpoint applications send this group's plaintext to (e.g. 127.0.0.1:15000). */
  readonly listen: Endpoint;
  /** Local endpoints that always receive this group's plaintext. */
  readonly deliverTo?: readonly Endpoint[];
}

export interface UdpPlaintextPortOptions {
  /** This member's address in the groups: the inner packets' source (IPv4 or IPv6, like the groups). */
  readonly sourceAddress: string;
  readonly groups: readonly SocketGroup[];
  /** Inner TTL / hop limit, as an application's multicast default. Default 1. */
  readonly ttl?: number;
  /** How long an endpoint that sent to a group's port stays subscribed (ms). Default 60 s. */
  readonly subscriberTtlMs?: number;
  /** Subscribers kept per group; the least recently seen is evicted beyond it. Default 64. */
  readonly maxSubscribers?: number;
  /**
   * Also hand an application's datagram to the group's other local subscribers, as the kernel's
   * multicast loopback would (IP_MULTICAST_LOOP). Default true.
   */
  readonly loopback?: boolean;
  /** The clock for subscriber expiry (ms). Default Date.now. */
  readonly now?: () => number;
}

export interface UdpPlaintextPortStats {
  /** Datagrams applications sent to a group's port. */
  fromApps: number;
  /** Of those, empty ones (subscriptions only, not forwarded). */
  subscribeOnly: number;
  /** Too large to wrap in one IP packet: dropped. */
  tooLarge: number;
  /** Packets built and handed to the datapath. */
  built: number;
  /** Inner packets the datapath delivered here. */
  delivered: number;
  /** Datagrams sent to local applications (one per subscriber per packet). */
  toApps: number;
  /** Delivered packets that were not a well-formed unfragmented UDP packet: dropped. */
  deliverMalformed: number;
  /** Delivered packets for a group/port this port does not serve: dropped. */
  deliverNoGroup: number;
  /** Subscribers evicted because a group had `maxSubscribers` already. */
  subscribersEvicted: number;
  sendErrors: number;
  socketErrors: number;
  handlerErrors: number;
}

interface GroupState {
  readonly config: SocketGroup;
  readonly socket: dgram.Socket;
  readonly groupBytes: Uint8Array;
  /** Insertion order = least recently seen first (re-inserted on every datagram). */
  readonly subscribers: Map<string, { address: string; port: number; seen: number }>;
}

export class UdpPlaintextPort implements PlaintextPort {
  readonly stats: UdpPlaintextPortStats = {
    fromApps: 0,
    subscribeOnly: 0,
    tooLarge: 0,
    built: 0,
    delivered: 0,
    toApps: 0,
    deliverMalformed: 0,
    deliverNoGroup: 0,
    subscribersEvicted: 0,
    sendErrors: 0,
    socketErrors: 0,
    handlerErrors: 0,
  };
  lastError = '';
  private handler: ((packet: Uint8Array) => void) | undefined;
  private readonly groups = new Map<string, GroupState>();
  private readonly info = new IpPacketInfo();
  private ipv4Id = 0;
  private closed = false;
  private readonly onSent = (err: Error | null): void => {
    if (err) {
      this.stats.sendErrors++;
      this.lastError = err.message;
    }
  };

  private constructor(
    private readonly options: UdpPlaintextPortOptions,
    private readonly source: Uint8Array,
  ) {}

  /** Binds every group's local port. Rejects with RangeError on bad options or the socket's error. */
  static async open(options: UdpPlaintextPortOptions): Promise<UdpPlaintextPort> {
    const family = addressFamily(options.sourceAddress);
    const seen = new Set<string>();
    for (const g of options.groups) {
      if (addressFamily(g.group) !== family || !isMulticast(g.group)) {
        throw new RangeError(`group ${g.group} is not an IPv${family} multicast address like the source`);
      }
      if (!validPort(g.groupPort) || g.groupPort === 0) throw new RangeError(`bad group port ${g.groupPort}`);
      if (!validPort(g.listen.port)) throw new RangeError(`bad listen port ${g.listen.port}`);
      addressFamily(g.listen.address);
      const key = groupKey(formatIpAddress(parseIpAddress(g.group)), g.groupPort);
      if (seen.has(key)) throw new RangeError(`group ${g.group} port ${g.groupPort} listed twice`);
      seen.add(key);
    }
    const port = new UdpPlaintextPort(options, parseIpAddress(options.sourceAddress));
    try {
      for (const g of options.groups) await port.addGroup(g);
      return port;
    } catch (err) {
      await port.close();
      throw err;
    }
  }

  /** The local endpoint a group's applications use (useful with listen port 0). */
  listenEndpoint(group: string, groupPort: number): Endpoint | undefined {
    const state = this.groups.get(groupKey(formatIpAddress(parseIpAddress(group)), groupPort));
    if (!state) return undefined;
    const a = state.socket.address();
    return { address: a.address, port: a.port };
  }

  onPacket(handler: (packet: Uint8Array) => void): void {
    this.handler = handler;
  }

  /** A verified inner packet from the datapath: its UDP payload goes to the group's local apps. */
  deliver(packet: Uint8Array): void {
    if (this.closed) return;
    this.stats.delivered++;
    const info = this.info;
    const payload = innerUdpPayload(packet, info);
    if (!payload) {
      this.stats.deliverMalformed++;
      return;
    }
    const state = this.groups.get(groupKey(formatIpAddress(packet, info.dstOffset, info.addressLength), info.dstPort));
    if (!state) {
      this.stats.deliverNoGroup++;
      return;
    }
    this.toLocalApps(state, payload, undefined);
  }

  /** Sends a payload to the group's `deliverTo` endpoints and live subscribers, except `except`. */
  private toLocalApps(state: GroupState, payload: Uint8Array, except: string | undefined): void {
    const sent = new Set<string>();
    if (except !== undefined) sent.add(except);
    for (const endpoint of state.config.deliverTo ?? []) {
      const key = `${endpoint.address}|${endpoint.port}`;
      if (sent.has(key)) continue;
      sent.add(key);
      this.sendToApp(state, payload, endpoint.address, endpoint.port);
    }
    const oldest = this.now() - (this.options.subscriberTtlMs ?? 60_000);
    for (const [key, sub] of state.subscribers) {
      if (sub.seen < oldest) state.subscribers.delete(key);
      else if (!sent.has(key)) this.sendToApp(state, payload, sub.address, sub.port);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const sockets = [...this.groups.values()].map((g) => g.socket);
    this.groups.clear();
    await Promise.all(
      sockets.map(
        (s) =>
          new Promise<void>((resolve) => {
            try {
              s.close(() => resolve());
            } catch {
              resolve();
            }
          }),
      ),
    );
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private async addGroup(config: SocketGroup): Promise<void> {
    const socket = dgram.createSocket(addressFamily(config.listen.address) === 4 ? 'udp4' : 'udp6');
    const groupBytes = parseIpAddress(config.group);
    const state: GroupState = { config, socket, groupBytes, subscribers: new Map() };
    this.groups.set(groupKey(formatIpAddress(groupBytes), config.groupPort), state);
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(config.listen.port, config.listen.address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', (err) => {
      this.stats.socketErrors++;
      this.lastError = err.message;
    });
    socket.on('message', (msg, rinfo) => this.fromApp(state, msg, rinfo));
  }

  private fromApp(state: GroupState, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    this.stats.fromApps++;
    this.subscribe(state, rinfo);
    if (msg.length === 0) {
      this.stats.subscribeOnly++;
      return;
    }
    if (msg.length > maxInnerUdpPayload(this.source.length)) {
      this.stats.tooLarge++;
      return;
    }
    if (this.source.length === 4) this.ipv4Id = (this.ipv4Id + 1) & 0xffff;
    const packet = buildInnerUdpPacket(
      {
        source: this.source,
        destination: state.groupBytes,
        sourcePort: rinfo.port,
        destinationPort: state.config.groupPort,
        ttl: this.options.ttl ?? 1,
        identification: this.ipv4Id,
      },
      msg,
    );
    this.stats.built++;
    if (this.options.loopback ?? true) this.toLocalApps(state, msg, `${rinfo.address}|${rinfo.port}`);
    try {
      this.handler?.(packet);
    } catch {
      this.stats.handlerErrors++;
    }
  }

  private subscribe(state: GroupState, rinfo: dgram.RemoteInfo): void {
    const key = `${rinfo.address}|${rinfo.port}`;
    state.subscribers.delete(key); // re-inserted last: most recently seen
    const max = this.options.maxSubscribers ?? 64;
    while (state.subscribers.size >= max) {
      const oldest = state.subscribers.keys().next().value as string;
      state.subscribers.delete(oldest);
      this.stats.subscribersEvicted++;
    }
    state.subscribers.set(key, { address: rinfo.address, port: rinfo.port, seen: this.now() });
  }

  private sendToApp(state: GroupState, payload: Uint8Array, address: string, port: number): void {
    this.stats.toApps++;
    state.socket.send(payload, port, address, this.onSent);
  }
}

function groupKey(group: string, port: number): string {
  return `${group}|${port}`;
}

function validPort(port: number): boolean {
  return Number.isInteger(port) && port >= 0 && port <= 0xffff;
}
