import { ipPrefixContains, isCodecError, parseIpPrefix, type IpPacketInfo, type IpPrefix } from '@app/codec';
import { DatapathConfigError } from './errors.js';
import type { Directionality, GspdEntry, PolicyAction, PortSelector } from './types.js';

/** A GSPD entry compiled for matching. */
export interface CompiledEntry {
  readonly id: string;
  readonly index: number;
  readonly action: PolicyAction;
  readonly direction: Directionality;
  readonly groupId: string | undefined;
  /** Textual destination selector (for the registration event). */
  readonly destinationText: string | undefined;
  readonly source: IpPrefix | undefined;
  readonly destination: IpPrefix | undefined;
  readonly protocol: number;
  readonly srcFrom: number;
  readonly srcTo: number;
  readonly dstFrom: number;
  readonly dstTo: number;
}

const ANY = -1;

function compilePorts(p: PortSelector | undefined, what: string): [number, number] {
  if (p === undefined) return [ANY, ANY];
  const [from, to] = typeof p === 'number' ? [p, p] : [p.from, p.to];
  for (const v of [from, to]) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new DatapathConfigError('BAD_POLICY', `${what} port ${v}`);
  }
  if (from > to) throw new DatapathConfigError('BAD_POLICY', `${what} port range ${from}..${to}`);
  return [from, to];
}

function compilePrefix(text: string | undefined, id: string): IpPrefix | undefined {
  if (text === undefined) return undefined;
  try {
    return parseIpPrefix(text);
  } catch (e) {
    if (isCodecError(e)) throw new DatapathConfigError('BAD_ADDRESS', `entry ${id}: ${e.message}`);
    throw e;
  }
}

/**
 * The Group Security Policy Database (RFC 5374 §4.1.1): ordered entries, each symmetric,
 * sender-only or receiver-only. Symmetric entries sit in both GSPD-O and GSPD-I, sender-only ones
 * in GSPD-O only, receiver-only ones in GSPD-I only. Outbound matching includes the destination
 * address, so sender-only entries for a multicast group match on it (the §4.1.1 MUST). The first
 * matching entry in order decides (RFC 4301 §4.4.1).
 */
export class Gspd {
  private all: CompiledEntry[] = [];
  private outbound: CompiledEntry[] = [];
  private inbound: CompiledEntry[] = [];
  private byId = new Map<string, CompiledEntry>();

  /** Validates every entry first, then replaces the database (all or nothing). */
  install(entries: readonly GspdEntry[]): void {
    const compiled: CompiledEntry[] = [];
    const ids = new Set<string>();
    entries.forEach((e, index) => {
      if (typeof e.id !== 'string' || e.id.length === 0) throw new DatapathConfigError('BAD_POLICY', `entry ${index} has no id`);
      if (ids.has(e.id)) throw new DatapathConfigError('BAD_POLICY', `duplicate entry id ${e.id}`);
      ids.add(e.id);
      if (e.action !== 'protect' && e.action !== 'bypass' && e.action !== 'discard') {
        throw new DatapathConfigError('BAD_POLICY', `entry ${e.id}: action ${String(e.action)}`);
      }
      const direction = e.direction ?? 'symmetric';
      if (direction !== 'symmetric' && direction !== 'sender-only' && direction !== 'receiver-only') {
        throw new DatapathConfigError('BAD_POLICY', `entry ${e.id}: direction ${String(direction)}`);
      }
      if (e.action === 'protect' && !e.groupId) {
        throw new DatapathConfigError('BAD_POLICY', `protect entry ${e.id} names no group`);
      }
      const sel = e.selector ?? {};
      if (direction === 'sender-only' && sel.destination === undefined) {
        // RFC 5374 §4.1.1: outbound matching MUST use the destination against sender-only entries.
        throw new DatapathConfigError('BAD_POLICY', `sender-only entry ${e.id} needs a destination selector`);
      }
      const source = compilePrefix(sel.source, e.id);
      const destination = compilePrefix(sel.destination, e.id);
      if (source && destination && source.address.length !== destination.address.length) {
        throw new DatapathConfigError('BAD_ADDRESS', `entry ${e.id} mixes IPv4 and IPv6`);
      }
      const protocol = sel.protocol ?? ANY;
      if (protocol !== ANY && (!Number.isInteger(protocol) || protocol < 0 || protocol > 255)) {
        throw new DatapathConfigError('BAD_POLICY', `entry ${e.id}: protocol ${protocol}`);
      }
      const [srcFrom, srcTo] = compilePorts(sel.sourcePort, 'source');
      const [dstFrom, dstTo] = compilePorts(sel.destinationPort, 'destination');
      compiled.push({
        id: e.id,
        index,
        action: e.action,
        direction,
        groupId: e.groupId,
        destinationText: sel.destination,
        source,
        destination,
        protocol,
        srcFrom,
        srcTo,
        dstFrom,
        dstTo,
      });
    });
    this.all = compiled;
    this.outbound = compiled.filter((e) => e.direction !== 'receiver-only');
    this.inbound = compiled.filter((e) => e.direction !== 'sender-only');
    this.byId = new Map(compiled.map((e) => [e.id, e]));
  }

  get(id: string): CompiledEntry | undefined {
    return this.byId.get(id);
  }

  get size(): number {
    return this.all.length;
  }

  /** First GSPD-O entry matching the packet, or undefined. */
  matchOutbound(buf: Uint8Array, p: IpPacketInfo): CompiledEntry | undefined {
    return first(this.outbound, buf, p);
  }

  /** First GSPD-I entry matching the packet, or undefined. */
  matchInbound(buf: Uint8Array, p: IpPacketInfo): CompiledEntry | undefined {
    return first(this.inbound, buf, p);
  }

  /** First entry of the other direction's database only (for telling direction violations apart). */
  matchOnly(direction: 'sender-only' | 'receiver-only', buf: Uint8Array, p: IpPacketInfo): CompiledEntry | undefined {
    for (const e of this.all) if (e.direction === direction && matches(e, buf, p)) return e;
    return undefined;
  }
}

function first(list: readonly CompiledEntry[], buf: Uint8Array, p: IpPacketInfo): CompiledEntry | undefined {
  for (let i = 0; i < list.length; i++) {
    const e = list[i]!;
    if (matches(e, buf, p)) return e;
  }
  return undefined;
}

function matches(e: CompiledEntry, buf: Uint8Array, p: IpPacketInfo): boolean {
  if (e.destination && !ipPrefixContains(e.destination, buf, p.dstOffset, p.addressLength)) return false;
  if (e.source && !ipPrefixContains(e.source, buf, p.srcOffset, p.addressLength)) return false;
  if (e.protocol !== ANY && e.protocol !== p.protocol) return false;
  // Ports are unknown (-1) for fragments and port-less protocols: such packets never match a port selector.
  if (e.srcFrom !== ANY && (p.srcPort < e.srcFrom || p.srcPort > e.srcTo)) return false;
  if (e.dstFrom !== ANY && (p.dstPort < e.dstFrom || p.dstPort > e.dstTo)) return false;
  return true;
}
