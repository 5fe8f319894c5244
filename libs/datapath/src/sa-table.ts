import { ESP_SPI_MIN, formatIpAddress, isCodecError, parseIpAddress, UDP_ENCAP_PORT } from '@app/codec';
import { REPLAY_WINDOW_MAX, REPLAY_WINDOW_MIN, SENDER_ID_BITS_MAX, SEQUENCE_MAX } from './constants.js';
import { createEspCipher, type EspCipher } from './esp-crypto.js';
import { DatapathConfigError } from './errors.js';
import { ReplayWindow } from './replay-window.js';
import type { Directionality, ExpireEvent, LifetimeBound, SaConfig, SaStats } from './types.js';

function address(text: string, what: string): Uint8Array {
  try {
    return parseIpAddress(text);
  } catch (e) {
    if (isCodecError(e)) throw new DatapathConfigError('BAD_ADDRESS', `${what}: ${e.message}`);
    throw e;
  }
}

function checkBound(b: LifetimeBound | undefined, what: string): void {
  if (!b) return;
  for (const [k, v] of Object.entries(b)) {
    if (v !== undefined && (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v))) {
      throw new DatapathConfigError('BAD_LIFETIME', `${what}.${k} = ${String(v)}`);
    }
  }
}

/** One installed SA with its runtime state (sequence, window, counters, lifetimes). */
export class SaEntry {
  readonly spi: number;
  readonly policyId: string;
  readonly dst: Uint8Array;
  readonly dstText: string;
  readonly src: Uint8Array | undefined;
  readonly srcText: string | undefined;
  readonly tunnelSrc: Uint8Array | undefined;
  readonly family: 4 | 6;
  readonly direction: Directionality;
  readonly canSend: boolean;
  readonly canReceive: boolean;
  readonly tunnel: boolean;
  readonly preserveSrc: boolean;
  readonly preserveDst: boolean;
  readonly udp: boolean;
  readonly udpSrcPort: number;
  readonly udpDstPort: number;
  readonly cipher: EspCipher;
  readonly replay: ReplayWindow | undefined;
  /** The IV's high 32 bits: the sender ID in its most significant bits (RFC 6054 §3). */
  readonly ivHigh: number;
  /** Extended Sequence Numbers (RFC 4303 §2.2.1). */
  readonly esn: boolean;
  /** The last sequence number this SA may send: the counter must not cycle (RFC 4303 §3.3.3). */
  readonly seqLimit: number;
  /** With ESN and no replay window: the highest authenticated number, for inference. */
  esnTop = 0;
  readonly soft: LifetimeBound | undefined;
  readonly hard: LifetimeBound | undefined;
  readonly installedAt: number;
  activateAt: number;
  /** Install order, to break ties between SAs activating at the same time. */
  readonly serial: number;
  retired = false;
  deleteAt = Number.POSITIVE_INFINITY;
  /** Last sequence number sent (the next is +1). */
  seqOut = 0;
  packetsOut = 0;
  bytesOut = 0;
  packetsIn = 0;
  bytesIn = 0;
  lastUsed: number | undefined;
  softFired = false;
  hardFired = false;
  /** Cache of the last outer source formatted for a 'udp' datagram. */
  lastSrcBytes: Uint8Array | undefined;
  lastSrcText = '';

  constructor(sa: SaConfig, activateAt: number, now: number, serial: number) {
    if (!Number.isInteger(sa.spi) || sa.spi < ESP_SPI_MIN || sa.spi > 0xffffffff) {
      throw new DatapathConfigError('BAD_SPI', `SPI ${sa.spi}`);
    }
    if (typeof sa.policyId !== 'string' || sa.policyId.length === 0) {
      throw new DatapathConfigError('BAD_POLICY', `SA ${sa.spi} names no policy entry`);
    }
    this.spi = sa.spi;
    this.policyId = sa.policyId;
    this.dst = address(sa.destination, 'destination');
    this.dstText = formatIpAddress(this.dst);
    this.family = this.dst.length === 4 ? 4 : 6;
    this.src = sa.source === undefined ? undefined : address(sa.source, 'source');
    this.srcText = this.src && formatIpAddress(this.src);
    this.tunnelSrc = sa.tunnelSource === undefined ? undefined : address(sa.tunnelSource, 'tunnel source');
    for (const [a, what] of [
      [this.src, 'source'],
      [this.tunnelSrc, 'tunnel source'],
    ] as const) {
      if (a && a.length !== this.dst.length) throw new DatapathConfigError('BAD_ADDRESS', `${what} family differs from destination`);
    }
    this.direction = sa.direction ?? 'symmetric';
    if (!['symmetric', 'sender-only', 'receiver-only'].includes(this.direction)) {
      throw new DatapathConfigError('BAD_POLICY', `SA direction ${String(this.direction)}`);
    }
    this.canSend = this.direction !== 'receiver-only';
    this.canReceive = this.direction !== 'sender-only';
    if (sa.mode !== 'tunnel' && sa.mode !== 'transport') throw new DatapathConfigError('BAD_POLICY', `mode ${String(sa.mode)}`);
    this.tunnel = sa.mode === 'tunnel';
    const ap = sa.addressPreservation ?? (this.tunnel ? 'both' : 'none');
    if (!['none', 'source', 'destination', 'both'].includes(ap)) {
      throw new DatapathConfigError('BAD_POLICY', `address preservation ${String(ap)}`);
    }
    if (!this.tunnel && ap !== 'none') {
      throw new DatapathConfigError('BAD_POLICY', 'address preservation applies to tunnel mode only (RFC 5374 §3.1)');
    }
    this.preserveSrc = ap === 'source' || ap === 'both';
    this.preserveDst = ap === 'destination' || ap === 'both';
    this.udp = !!sa.udpEncapsulation;
    const ue = sa.udpEncapsulation || {};
    this.udpSrcPort = ue.sourcePort ?? UDP_ENCAP_PORT;
    this.udpDstPort = ue.destinationPort ?? UDP_ENCAP_PORT;
    for (const p of [this.udpSrcPort, this.udpDstPort]) {
      if (!Number.isInteger(p) || p < 1 || p > 0xffff) throw new DatapathConfigError('BAD_POLICY', `UDP port ${p}`);
    }
    this.cipher = createEspCipher(sa.transform, sa.encryptionKey, sa.integrityKey);
    const w = sa.replayWindow;
    if (w !== 0 && !(Number.isInteger(w) && w >= REPLAY_WINDOW_MIN && w <= REPLAY_WINDOW_MAX)) {
      throw new DatapathConfigError('BAD_REPLAY_WINDOW', `window ${w}: 0 or ${REPLAY_WINDOW_MIN}..${REPLAY_WINDOW_MAX}`);
    }
    this.replay = w === 0 ? undefined : new ReplayWindow(w);
    const bits = sa.senderIdBits ?? 0;
    const id = sa.senderId ?? 0;
    if (!Number.isInteger(bits) || bits < 0 || bits > SENDER_ID_BITS_MAX) {
      throw new DatapathConfigError('BAD_SENDER_ID', `sender ID bits ${bits}`);
    }
    if (!Number.isInteger(id) || id < 0 || id >= 2 ** bits) {
      throw new DatapathConfigError('BAD_SENDER_ID', `sender ID ${id} does not fit ${bits} bits`);
    }
    this.ivHigh = bits === 0 ? 0 : (id * 2 ** (32 - bits)) >>> 0;
    this.esn = sa.extendedSequenceNumbers === true;
    // With ESN the IV is sender ID || 64-bit counter, so the counter has 64 - bits bits (and JS
    // numbers are exact to 2^53); without, the 32-bit counter ends the SA.
    this.seqLimit = this.esn ? Math.min(Number.MAX_SAFE_INTEGER, 2 ** (64 - bits) - 1) : SEQUENCE_MAX;
    checkBound(sa.lifetime?.soft, 'soft');
    checkBound(sa.lifetime?.hard, 'hard');
    this.soft = sa.lifetime?.soft;
    this.hard = sa.lifetime?.hard;
    this.installedAt = now;
    if (!Number.isFinite(activateAt)) throw new DatapathConfigError('BAD_LIFETIME', 'activateAt must be a finite time');
    this.activateAt = activateAt;
    this.serial = serial;
  }

  /** Which bound of `b` the SA has reached, if any (sequence exhaustion counts as hard). */
  reached(b: LifetimeBound | undefined, now: number): ExpireEvent['cause'] | undefined {
    if (!b) return undefined;
    if (b.seconds !== undefined && now - this.installedAt >= b.seconds * 1000) return 'seconds';
    const packets = this.packetsIn + this.packetsOut;
    if (b.packets !== undefined && packets >= b.packets) return 'packets';
    if (b.bytes !== undefined && this.bytesIn + this.bytesOut >= b.bytes) return 'bytes';
    return undefined;
  }

  stats(now: number): SaStats {
    return {
      spi: this.spi,
      policyId: this.policyId,
      state: this.retired ? 'retiring' : this.activateAt <= now ? 'active' : 'pending',
      packetsOut: this.packetsOut,
      bytesOut: this.bytesOut,
      packetsIn: this.packetsIn,
      bytesIn: this.bytesIn,
      lastUsed: this.lastUsed,
    };
  }
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function bytesAt(sa: Uint8Array, buf: Uint8Array, off: number): boolean {
  for (let i = 0; i < sa.length; i++) if (sa[i] !== buf[off + i]) return false;
  return true;
}

/**
 * The SAD (RFC 4301 §4.4.2 with RFC 5374 §4.1.2): SPIs come from the GCKS, so several SAs may
 * share one; inbound lookup follows RFC 4301 §4.1: SPI + destination + source, then SPI +
 * destination, then SPI alone. Outbound, SAs are found through their GSPD entry.
 */
export class SaTable {
  private readonly bySpi = new Map<number, SaEntry[]>();
  private readonly byPolicy = new Map<string, SaEntry[]>();
  private serial = 0;

  get size(): number {
    let n = 0;
    for (const l of this.bySpi.values()) n += l.length;
    return n;
  }

  nextSerial(): number {
    return ++this.serial;
  }

  add(sa: SaEntry): void {
    const list = this.bySpi.get(sa.spi) ?? [];
    for (const o of list) {
      if (sameBytes(o.dst, sa.dst) && sameBytes(o.src, sa.src)) {
        throw new DatapathConfigError('DUPLICATE_SA', `SPI ${sa.spi} to ${sa.dstText} is installed`);
      }
    }
    list.push(sa);
    this.bySpi.set(sa.spi, list);
    const p = this.byPolicy.get(sa.policyId) ?? [];
    p.push(sa);
    this.byPolicy.set(sa.policyId, p);
  }

  remove(sa: SaEntry): void {
    const list = this.bySpi.get(sa.spi);
    if (list) {
      const i = list.indexOf(sa);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.bySpi.delete(sa.spi);
    }
    const p = this.byPolicy.get(sa.policyId);
    if (p) {
      const i = p.indexOf(sa);
      if (i >= 0) p.splice(i, 1);
      if (p.length === 0) this.byPolicy.delete(sa.policyId);
    }
  }

  withSpi(spi: number): readonly SaEntry[] {
    return this.bySpi.get(spi) ?? [];
  }

  forPolicy(policyId: string): readonly SaEntry[] {
    return this.byPolicy.get(policyId) ?? [];
  }

  all(): SaEntry[] {
    const out: SaEntry[] = [];
    for (const l of this.bySpi.values()) out.push(...l);
    return out;
  }

  /**
   * RFC 4301 §4.1 inbound demultiplexing: the longest match among SPI+dst+src, SPI+dst, SPI.
   * An SA with a source only matches packets from that source. Addresses are byte ranges of
   * `buf` (lengths per `addressLength`); `srcOff`/`dstOff` < 0 means unknown.
   */
  lookupInbound(spi: number, buf: Uint8Array, dstOff: number, srcOff: number, addressLength: number): SaEntry | undefined {
    const list = this.bySpi.get(spi);
    if (!list) return undefined;
    let best: SaEntry | undefined;
    let bestRank = 0;
    for (let i = 0; i < list.length; i++) {
      const sa = list[i]!;
      const dstOk = dstOff >= 0 && sa.dst.length === addressLength && bytesAt(sa.dst, buf, dstOff);
      const srcKnown = srcOff >= 0 && addressLength === sa.dst.length;
      if (sa.src) {
        // A per-speaker SA only accepts its speaker.
        if (!srcKnown || !bytesAt(sa.src, buf, srcOff)) continue;
        const rank = dstOk ? 4 : 2;
        if (rank > bestRank) {
          best = sa;
          bestRank = rank;
        }
      } else {
        const rank = dstOk ? 3 : 1;
        if (rank > bestRank) {
          best = sa;
          bestRank = rank;
        }
      }
    }
    return best;
  }
}
