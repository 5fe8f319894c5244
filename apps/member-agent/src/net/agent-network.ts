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
 *     any other protocol, a fragment, or ESP cannot be carried this way and is counted.
 *
 * A datagram goes to the bind of its framing and family; one this network cannot carry is counted
 * under `rejected`. Joins go to every bind of the group's family.
 */
import { networkInterfaces } from 'node:os';
import type { InboundDatagram, NetworkBind, NetworkFraming, OutboundDatagram } from '@app/datapath';
import { addressBytes, addressFamily } from './ip-address.js';
import { RawIpBind } from './raw-ip-bind.js';
import { UdpBind } from './udp-bind.js';

const PROTO_UDP = 17;
const IPV4_MIN_HEADER = 20;
const IPV6_HEADER = 40;
const UDP_HEADER = 8;

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
export function interfaceOf(address: string): string | undefined {
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

  private constructor(
    private readonly families: { 4?: Family; 6?: Family },
    private readonly plainUdp: boolean,
  ) {}

  /** Opens every bind the options name; closes what it opened if one fails, and rethrows. */
  static async open(options: AgentNetworkOptions): Promise<AgentNetwork> {
    const opened: Family[] = [];
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
        try {
          if (options.raw) {
            raw = RawIpBind.open({
              family,
              ...(interfaceName !== undefined ? { multicastInterface: interfaceName } : {}),
              ...(options.receiveBuffer !== undefined ? { receiveBuffer: options.receiveBuffer } : {}),
            });
          }
        } catch (e) {
          await udp.close();
          throw e;
        }
        const fam: Family = { udp, raw, joinInterface, interfaceName };
        opened.push(fam);
        families[family] = fam;
      }
    } catch (e) {
      await Promise.all(opened.flatMap((f) => [f.udp.close(), f.raw?.close()]));
      throw e;
    }
    return new AgentNetwork(families, options.plainUdp);
  }

  /** The families this network carries. */
  get familiesOpen(): (4 | 6)[] {
    return ([4, 6] as const).filter((f) => this.families[f] !== undefined);
  }

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
    const p = d.data;
    let off: number;
    if (d.family === 4) {
      const ihl = p.length >= IPV4_MIN_HEADER ? (p[0]! & 0x0f) * 4 : 0;
      const fragment = p.length >= IPV4_MIN_HEADER ? ((p[6]! << 8) | p[7]!) & 0x3fff : 1; // MF or an offset
      if (p[0]! >> 4 !== 4 || ihl < IPV4_MIN_HEADER || p[9] !== PROTO_UDP || fragment !== 0) off = -1;
      else off = ihl;
    } else {
      off = p.length >= IPV6_HEADER && p[0]! >> 4 === 6 && p[6] === PROTO_UDP ? IPV6_HEADER : -1;
    }
    if (off < 0 || p.length < off + UDP_HEADER) {
      this.counters.rejected++;
      return;
    }
    const udpLength = (p[off + 4]! << 8) | p[off + 5]!;
    if (udpLength < UDP_HEADER || off + udpLength > p.length) {
      this.counters.rejected++;
      return;
    }
    const dstPort = (p[off + 2]! << 8) | p[off + 3]!;
    this.counters.plainUdpSent++;
    f.udp.send({ framing: 'udp', data: p.subarray(off + UDP_HEADER, off + udpLength), family: d.family, srcAddress: d.srcAddress, dstAddress: d.dstAddress, srcPort: 0, dstPort });
  }

  onReceive(handler: (datagram: InboundDatagram) => void): void {
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
    const out: AgentNetworkStats = { ...this.counters };
    if (this.families[4]) out.udp4 = this.families[4].udp.stats;
    if (this.families[6]) out.udp6 = this.families[6].udp.stats;
    if (this.families[4]?.raw) out.raw4 = this.families[4].raw.stats;
    if (this.families[6]?.raw) out.raw6 = this.families[6].raw.stats;
    return out;
  }

  async close(): Promise<void> {
    await Promise.all([this.families[4], this.families[6]].flatMap((f) => (f ? [f.udp.close(), f.raw?.close()] : [])));
  }
}
