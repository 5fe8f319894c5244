/**
 * The member agent's network side: one NetworkBind over up to four sockets' worth of binds, so
 * that one datapath can carry every group of a host whatever its family and framing.
 *
 *   - ESP in UDP (RFC 3948 §2.1): a UdpBind per address family (IPv4 and/or IPv6), no root.
 *   - 'raw-ip' (TUN mode, root): a RawIpBind per family. It sends what the datapath frames as a
 *     whole IP packet, which is native ESP (IP protocol 50, RFC 4303) for an SA without UDP
 *     encapsulation and plain IP for BYPASS traffic (fail-open), both with the outer source copied
 *     from the inner packet (RFC 5374 §3.1). It receives native ESP for the joined groups.
 *   - 'raw-ip' without raw sockets (socket mode, fail-open): a BYPASS packet that is UDP leaves as
 *     its bare UDP payload, multicast from the family's UdpBind socket to the same destination
 *     address and port ("plain UDP"). Its source port is that socket's, not the application's;
 *     any other protocol, a fragment, or ESP cannot be carried this way and is counted. In the
 *     other direction `listenPlain` receives the group's plain UDP on its data port and hands each
 *     datagram to the datapath as an IP packet rebuilt from the socket's addresses ('raw-ip'), so
 *     GSPD-I decides: delivered while the group's entry is BYPASS, dropped (counted) once it is
 *     PROTECT.
 *
 * A datagram goes to the bind of its framing and family; one this network cannot carry is counted
 * under `rejected`. Joins go to every bind of the group's family.
 */
import dgram from 'node:dgram';
import { networkInterfaces } from 'node:os';
import type { InboundDatagram, NetworkBind, NetworkFraming, OutboundDatagram } from '@app/datapath';
import { IpPacketInfo } from '@app/codec';
import { buildInnerUdpPacket, innerUdpPayload, maxInnerUdpPayload } from '../plaintext/inner-udp.js';
import { addressBytes, addressFamily } from './ip-address.js';
import { RawIpBind } from './raw-ip-bind.js';
import { UdpBind } from './udp-bind.js';

export interface AgentNetworkFamily {
  /** This host's unicast address of the family (the outer source of what leaves). */
  readonly localAddress: string;
  /**
   * Outgoing multicast interface in node:dgram's form: an IPv4 address, or `::%ifname` for IPv6.
   * Default: derived from `interfaceName` (IPv6) or `localAddress` (IPv4).
   */
  readonly multicastInterface?: string;
  /** The link's interface name (raw sockets, IPv6 joins). Default: the one holding localAddress. */
  readonly interfaceName?: string;
}

export interface AgentNetworkOptions {
  /** The groups' ESP-in-UDP port (RFC 3948 §2.1). */
  readonly espPort: number;
  readonly v4?: AgentNetworkFamily;
  readonly v6?: AgentNetworkFamily;
  /** Open raw IP binds (needs root or CAP_NET_RAW): native ESP and plain IP bypass. */
  readonly raw: boolean;
  /** Without raw binds, carry UDP bypass traffic as plain UDP (socket-mode fail-open). */
  readonly plainUdp: boolean;
  /** Receive buffer for every socket, bytes. */
  readonly receiveBuffer?: number;
}

export interface AgentNetworkStats {
  /** Datagrams no bind here can carry (framing or family not opened, non-UDP plain bypass). */
  rejected: number;
  /** UDP bypass datagrams sent as plain UDP (socket mode, fail-open). */
  plainUdpSent: number;
  /** Plain UDP datagrams received for a group (socket mode, fail-open), handed to the datapath. */
  plainUdpReceived: number;
  /** Our own plain UDP looped back and skipped. */
  plainUdpOwn: number;
  plainSocketErrors: number;
  udp4?: UdpBind['stats'];
  udp6?: UdpBind['stats'];
  raw4?: RawIpBind['stats'];
  raw6?: RawIpBind['stats'];
}

export interface GroupJoin {
  readonly group: string;
  /** SSM (RFC 4607): only this source. */
  readonly source?: string;
}

/** The name of the interface that holds `address`, or undefined. */
function interfaceOf(address: string): string | undefined {
  const want = addressBytes(address);
  for (const [name, list] of Object.entries(networkInterfaces())) {
    for (const a of list ?? []) {
      try {
        if (addressBytes(a.address).equals(want)) return name;
      } catch {
        // an address node reports in a form we do not parse (zone id): not ours
      }
    }
  }
  return undefined;
}

interface Family {
  readonly udp: UdpBind;
  readonly raw: RawIpBind | undefined;
  /** node:dgram's join interface (an IPv4 address or `::%ifname`). */
  readonly joinInterface: string | undefined;
  /** Interface name for the raw bind's joins. */
  readonly interfaceName: string | undefined;
}

export class AgentNetwork implements NetworkBind {
  private readonly counters = { rejected: 0, plainUdpSent: 0 };
  private readonly joined = new Set<string>();
  private readonly plainSockets = new Map<string, dgram.Socket>();
  private handler: ((datagram: InboundDatagram) => void) | undefined;
  private readonly plainCounters = { plainUdpReceived: 0, plainUdpOwn: 0, plainSocketErrors: 0 };

  private constructor(
    private readonly families: { 4?: Family; 6?: Family },
    private readonly plainUdp: boolean,
  ) {}

  /** Opens every bind the options name; closes what it opened if one fails, and rethrows. */
  static async open(options: AgentNetworkOptions): Promise<AgentNetwork> {
    const opened: Family[] = [];
    const rawErrors: string[] = [];
    const families: { 4?: Family; 6?: Family } = {};
    try {
      for (const family of [4, 6] as const) {
        const f = family === 4 ? options.v4 : options.v6;
        if (!f) continue;
        if (addressFamily(f.localAddress) !== family) throw new RangeError(`${f.localAddress} is not an IPv${family} address`);
        const interfaceName = f.interfaceName ?? interfaceOf(f.localAddress);
        const joinInterface = f.multicastInterface ?? (family === 4 ? f.localAddress : interfaceName !== undefined ? `::%${interfaceName}` : undefined);
        const udp = await UdpBind.open({
          family,
          localAddress: f.localAddress,
          port: options.espPort,
          localPort: 0,
          ...(joinInterface !== undefined ? { multicastInterface: joinInterface } : {}),
          ...(options.receiveBuffer !== undefined ? { receiveBufferSize: options.receiveBuffer } : {}),
        });
        let raw: RawIpBind | undefined;
        if (options.raw) {
          try {
            raw = RawIpBind.open({
              family,
              ...(interfaceName !== undefined ? { multicastInterface: interfaceName } : {}),
              ...(options.receiveBuffer !== undefined ? { receiveBuffer: options.receiveBuffer } : {}),
            });
          } catch (e) {
            // Without CAP_NET_RAW the network still carries ESP in UDP; native ESP and plain IP
            // bypass are then counted under `rejected`. The caller reports `rawErrors`.
            rawErrors.push(`IPv${family}: ${(e as Error).message}`);
          }
        }
        const fam: Family = { udp, raw, joinInterface, interfaceName };
        opened.push(fam);
        families[family] = fam;
      }
    } catch (e) {
      await Promise.all(opened.flatMap((f) => [f.udp.close(), f.raw?.close()]));
      throw e;
    }
    const network = new AgentNetwork(families, options.plainUdp);
    network.rawErrors = rawErrors;
    return network;
  }

  /** Why raw binds asked for could not be opened (empty when they were, or were not asked for). */
  rawErrors: readonly string[] = [];

  /** Whether native ESP and plain IP can leave (raw binds are open). */
  get hasRaw(): boolean {
    return this.families[4]?.raw !== undefined || this.families[6]?.raw !== undefined;
  }

  supports(framing: NetworkFraming): boolean {
    const fams = [this.families[4], this.families[6]];
    if (framing === 'udp') return fams.some((f) => f !== undefined);
    return fams.some((f) => f?.raw !== undefined) || (this.plainUdp && fams.some((f) => f !== undefined));
  }

  send(d: OutboundDatagram): void {
    const f = this.families[d.family];
    if (!f) {
      this.counters.rejected++;
      return;
    }
    if (d.framing === 'udp') return f.udp.send(d);
    if (f.raw) return f.raw.send(d);
    if (this.plainUdp) return this.sendPlainUdp(f, d);
    this.counters.rejected++;
  }

  /** A whole IP packet that is unfragmented UDP leaves as its payload from the UDP socket. */
  private sendPlainUdp(f: Family, d: OutboundDatagram): void {
    const payload = innerUdpPayload(d.data, this.plainInfo);
    if (!payload) return void this.counters.rejected++;
    this.counters.plainUdpSent++;
    f.udp.send({ framing: 'udp', data: payload, family: d.family, srcAddress: d.srcAddress, dstAddress: d.dstAddress, srcPort: 0, dstPort: this.plainInfo.dstPort });
  }

  /** Scratch for `sendPlainUdp`'s parse (the send path is synchronous). */
  private readonly plainInfo = new IpPacketInfo();

  onReceive(handler: (datagram: InboundDatagram) => void): void {
    this.handler = handler;
    for (const f of [this.families[4], this.families[6]]) {
      f?.udp.onReceive(handler);
      f?.raw?.onReceive(handler);
    }
  }

  /**
   * Joins a group on every bind of its family (ESP in UDP on the group port, native ESP on the
   * raw socket), on the configured interface. Idempotent. Rejects for a family not opened.
   */
  async join(join: GroupJoin): Promise<void> {
    const family = addressFamily(join.group);
    const f = this.families[family];
    if (!f) throw new RangeError(`no IPv${family} address configured for group ${join.group}`);
    const key = `${join.group}|${join.source ?? ''}`;
    if (this.joined.has(key)) return;
    this.joined.add(key);
    try {
      const source = join.source !== undefined ? { source: join.source } : {};
      await f.udp.join({ group: join.group, ...source, ...(f.joinInterface !== undefined ? { interface: f.joinInterface } : {}) });
      f.raw?.join({ group: join.group, ...source, ...(f.interfaceName !== undefined ? { interface: f.interfaceName } : {}) });
    } catch (e) {
      this.joined.delete(key);
      throw e;
    }
  }

  /**
   * Socket mode, fail-open: receive the group's plain UDP multicast on its data port (ASM, or SSM
   * with `source`), each datagram handed to the receive handler as a rebuilt IP/UDP packet. Our
   * own plain sends (looped back) are skipped. Idempotent per group and port.
   */
  async listenPlain(join: GroupJoin & { readonly port: number }): Promise<void> {
    const family = addressFamily(join.group);
    const f = this.families[family];
    if (!f) throw new RangeError(`no IPv${family} address configured for group ${join.group}`);
    const key = `${join.group}|${join.port}|${join.source ?? ''}`;
    if (this.plainSockets.has(key)) return;
    const socket = dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6', reuseAddr: true });
    this.plainSockets.set(key, socket);
    socket.on('error', () => void this.plainCounters.plainSocketErrors++);
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ port: join.port, address: join.group, exclusive: false }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    if (join.source !== undefined) socket.addSourceSpecificMembership(join.source, join.group, f.joinInterface);
    else socket.addMembership(join.group, f.joinInterface);
    const own = f.udp.local;
    const group = addressBytes(join.group);
    socket.on('message', (msg, rinfo) => {
      if (rinfo.port === own.port && rinfo.address === own.address) {
        this.plainCounters.plainUdpOwn++;
        return;
      }
      let src: Buffer;
      try {
        src = addressBytes(rinfo.address);
      } catch {
        this.plainCounters.plainSocketErrors++;
        return;
      }
      this.plainCounters.plainUdpReceived++;
      if (msg.length > maxInnerUdpPayload(src.length)) return void this.counters.rejected++;
      // As it was on the wire, one hop from its sender: TTL / hop limit 1.
      const packet = buildInnerUdpPacket({ source: src, destination: group, sourcePort: rinfo.port, destinationPort: join.port, ttl: 1, identification: 0 }, msg);
      try {
        this.handler?.({ framing: 'raw-ip', data: packet, srcAddress: rinfo.address, dstAddress: join.group, srcPort: 0, dstPort: 0 });
      } catch {
        this.plainCounters.plainSocketErrors++; // a throwing consumer must not become an uncaught exception
      }
    });
  }

  /** The family's ESP-in-UDP bind, if that family is open. */
  udp(family: 4 | 6): UdpBind | undefined {
    return this.families[family]?.udp;
  }

  /** node:dgram's interface for joins of this family (an IPv4 address or `::%ifname`). */
  joinInterface(family: 4 | 6): string | undefined {
    return this.families[family]?.joinInterface;
  }

  /** The local address and port of the family's UDP socket. */
  local(family: 4 | 6): { address: string; port: number } | undefined {
    return this.families[family]?.udp.local;
  }

  get stats(): AgentNetworkStats {
    const out: AgentNetworkStats = { ...this.counters, ...this.plainCounters };
    if (this.families[4]) out.udp4 = this.families[4].udp.stats;
    if (this.families[6]) out.udp6 = this.families[6].udp.stats;
    if (this.families[4]?.raw) out.raw4 = this.families[4].raw.stats;
    if (this.families[6]?.raw) out.raw6 = this.families[6].raw.stats;
    return out;
  }

  async close(): Promise<void> {
    const plain = [...this.plainSockets.values()];
    this.plainSockets.clear();
    await Promise.all(plain.map((p) => new Promise<void>((resolve) => p.close(() => resolve()))));
    await Promise.all([this.families[4], this.families[6]].flatMap((f) => (f ? [f.udp.close(), f.raw?.close()] : [])));
  }
}
