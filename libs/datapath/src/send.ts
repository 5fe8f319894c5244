/**
 * Outbound processing (RFC 4301 §5.1 with RFC 5374 §5.1). Stages, in order:
 *
 *   1. parse     the application's IP packet (bounds-checked; malformed -> drop)
 *   2. GSPD-O    first matching sender-only/symmetric entry, destination included (RFC 5374 §4.1.1):
 *                none -> drop noPolicy; DISCARD -> drop; BYPASS -> out as is ('raw-ip');
 *                PROTECT -> on
 *   3. SA        the speaker's active SA for that entry: among sendable SAs whose activation time
 *                has come, the latest (leading edge once active, trailing edge until then,
 *                RFC 5374 §4.2.1). None -> "registration needed" event + bounded hold queue;
 *                only a not-yet-active SA -> the hold queue without the event. With
 *                `failOpen` (an operator's choice) such packets go out in clear instead.
 *   4. lifetime  hard limits delete the SA (event), soft limits raise an event once
 *   5. build     one output buffer: [outer IP [UDP]] ESP header, IV, payload, padding, trailer, ICV.
 *                Tunnel mode copies the outer source/destination from the inner header when the SA
 *                preserves them (RFC 5374 §5.1); transport mode keeps the packet's own header.
 *   6. seal      counter IV (sender ID in the high bits, RFC 6054), encrypt, ICV
 *   7. hand      the datagram to the bind: 'udp' framing (ESP is the UDP payload) when the SA uses
 *                UDP encapsulation and the bind can, otherwise a complete 'raw-ip' packet.
 *
 * The only per-packet allocation of our own is the output buffer; node:crypto adds its cipher
 * object and the ciphertext it returns.
 */
import {
  ESP_HEADER_LENGTH,
  ESP_TRAILER_LENGTH,
  formatIpAddress,
  IP_DEFAULT_TTL,
  IP_MAX_LENGTH_FIELD,
  IPPROTO_ESP,
  IPPROTO_IPV4,
  IPPROTO_IPV6,
  IPPROTO_UDP,
  IPV4_MIN_HEADER_LENGTH,
  IPV6_HEADER_LENGTH,
  IpPacketInfo,
  internetChecksum,
  isCodecError,
  parseIpPacket,
  pseudoHeaderSum,
  UDP_HEADER_LENGTH,
  writeIpv4Header,
  writeIpv6Header,
  writeUdpHeader,
} from '@app/codec';
import type { NetworkFraming } from './bind.js';
import type { DatapathContext } from './context.js';
import type { CompiledEntry } from './gspd.js';
import type { SaEntry } from './sa-table.js';
import { copyIpHeader, put32 } from './wire.js';

/** What happened to one outbound packet. */
export type SendOutcome = 'sent' | 'bypassed' | 'sentClear' | 'dropped' | 'held';

const TWO32 = 0x1_0000_0000;

function bytesAt(a: Uint8Array, buf: Uint8Array, off: number, len: number): boolean {
  if (a.length !== len) return false;
  for (let i = 0; i < len; i++) if (a[i] !== buf[off + i]) return false;
  return true;
}

export class SendPipeline {
  private readonly inner = new IpPacketInfo();

  constructor(private readonly ctx: DatapathContext) {}

  /**
   * Protects one application packet. With `fromHoldQueue`, a packet that still has no SA stays
   * queued ('held') without a new registration event.
   */
  send(packet: Uint8Array, fromHoldQueue = false): SendOutcome {
    const ctx = this.ctx;
    const p = this.inner;
    // 1. parse
    try {
      parseIpPacket(packet, 0, packet.length, p);
    } catch (e) {
      if (!isCodecError(e)) throw e;
      ctx.drop('malformed');
      return 'dropped';
    }
    // 2. GSPD-O
    const entry = ctx.gspd.matchOutbound(packet, p);
    if (!entry) {
      ctx.drop(ctx.gspd.matchOnly('receiver-only', packet, p) ? 'directionViolation' : 'noPolicy');
      return 'dropped';
    }
    if (entry.action === 'discard') {
      ctx.drop('discard');
      return 'dropped';
    }
    if (entry.action === 'bypass') return this.bypass(packet, p);
    // 3. SA (4. lifetime inside)
    const now = ctx.clock.now();
    const sa = this.select(entry, packet, p, now);
    if (sa === 'direction') {
      ctx.drop('directionViolation');
      return 'dropped';
    }
    if (sa === 'pending' || !sa) {
      if (fromHoldQueue) return 'held';
      if (ctx.options.failOpen) {
        // Operator's choice (fail-open): traffic flows in clear until the SA is there.
        if (sa !== 'pending') ctx.raiseRegistration(entry, packet, p.dstOffset, p.addressLength);
        const outcome = this.bypass(packet, p, false);
        if (outcome === 'bypassed') ctx.sentClear++;
        return outcome === 'bypassed' ? 'sentClear' : outcome;
      }
      // 'pending': an SA is installed but not yet active, so registration is not what is missing.
      return ctx.holdForSa(entry, packet, p.dstOffset, p.addressLength, sa !== 'pending') ? 'held' : 'dropped';
    }
    return this.protect(sa, packet, p, now);
  }

  private bypass(packet: Uint8Array, p: IpPacketInfo, count = true): SendOutcome {
    const ctx = this.ctx;
    const bind = ctx.bind;
    if (!bind || !bind.supports('raw-ip')) {
      ctx.drop('unsupported');
      return 'dropped';
    }
    const data = packet.subarray(p.start, p.end);
    try {
      bind.send({
        framing: 'raw-ip',
        data,
        family: p.version,
        srcAddress: formatIpAddress(packet, p.srcOffset, p.addressLength),
        dstAddress: formatIpAddress(packet, p.dstOffset, p.addressLength),
        srcPort: 0,
        dstPort: 0,
      });
    } catch {
      ctx.drop('bindError');
      return 'dropped';
    }
    if (count) ctx.bypassed++;
    return 'bypassed';
  }

  /** Step 3: the sending SA for this entry and speaker, or why there is none. */
  private select(entry: CompiledEntry, buf: Uint8Array, p: IpPacketInfo, now: number): SaEntry | 'direction' | 'pending' | undefined {
    const list = this.ctx.sad.forPolicy(entry.id);
    let best: SaEntry | undefined;
    let receiveOnly = false;
    let pending = false;
    // Backwards: `alive` may delete the SA being looked at from this very list.
    for (let i = list.length - 1; i >= 0; i--) {
      const sa = list[i]!;
      if (!sa.canSend) {
        receiveOnly = true;
        continue;
      }
      if (sa.src && !bytesAt(sa.src, buf, p.srcOffset, p.addressLength)) continue;
      if (sa.activateAt > now) {
        pending = true;
        continue;
      }
      if (!sa.tunnel && sa.dst.length !== p.addressLength) continue;
      if (!this.ctx.alive(sa, now)) continue;
      if (
        !best ||
        (best.retired && !sa.retired) ||
        (best.retired === sa.retired &&
          (sa.activateAt > best.activateAt || (sa.activateAt === best.activateAt && sa.serial > best.serial)))
      ) {
        best = sa;
      }
    }
    if (best) return best;
    if (pending) return 'pending';
    return receiveOnly ? 'direction' : undefined;
  }

  /** Steps 5-7. */
  private protect(sa: SaEntry, packet: Uint8Array, p: IpPacketInfo, now: number): SendOutcome {
    const ctx = this.ctx;
    const bind = ctx.bind;
    if (sa.seqOut >= sa.seqLimit) {
      // RFC 4303 §3.3.3: the counter must not cycle; the SA is spent.
      ctx.expireHard(sa, 'sequence', now);
      ctx.drop('expired');
      return 'dropped';
    }
    let framing: NetworkFraming;
    if (sa.udp && bind?.supports('udp')) framing = 'udp';
    else if (bind?.supports('raw-ip')) framing = 'raw-ip';
    else {
      ctx.drop('unsupported');
      return 'dropped';
    }
    if (!sa.tunnel && p.fragment) {
      // Transport mode cannot protect a fragment (RFC 4301 §7).
      ctx.drop('unsupported');
      return 'dropped';
    }
    const cipher = sa.cipher;
    const payloadStart = sa.tunnel ? p.start : p.upperOffset;
    const payloadLength = p.end - payloadStart;
    const nextHeader = sa.tunnel ? (p.version === 4 ? IPPROTO_IPV4 : IPPROTO_IPV6) : p.protocol;
    const block = cipher.blockLength;
    const pad = (block - ((payloadLength + ESP_TRAILER_LENGTH) % block)) % block;
    const espLength = ESP_HEADER_LENGTH + cipher.ivLength + payloadLength + pad + ESP_TRAILER_LENGTH + cipher.icvLength;
    const outerFamily: 4 | 6 = sa.tunnel ? sa.family : p.version;
    // Transport mode keeps the packet's own header (IPv4 options, IPv6 extension headers).
    const ipLength = framing === 'udp' ? 0 : sa.tunnel ? (outerFamily === 4 ? IPV4_MIN_HEADER_LENGTH : IPV6_HEADER_LENGTH) : p.upperOffset - p.start;
    const udpLength = framing === 'raw-ip' && sa.udp ? UDP_HEADER_LENGTH : 0;
    const total = ipLength + udpLength + espLength;
    const ipPayload = total - (outerFamily === 6 && framing === 'raw-ip' ? IPV6_HEADER_LENGTH : 0);
    if (total > IP_MAX_LENGTH_FIELD + (outerFamily === 6 ? IPV6_HEADER_LENGTH : 0) || ipPayload > IP_MAX_LENGTH_FIELD) {
      ctx.drop('unsupported');
      return 'dropped';
    }
    const out = ctx.allocOut(total);
    const esp = ipLength + udpLength;
    const seq = ++sa.seqOut;
    // With ESN only the low half travels; the high half is authenticated and sits in the IV.
    const seqLow = sa.esn ? seq % TWO32 : seq;
    const seqHigh = sa.esn ? Math.floor(seq / TWO32) : -1;
    put32(out, esp, sa.spi);
    put32(out, esp + 4, seqLow);
    const ptStart = esp + ESP_HEADER_LENGTH + cipher.ivLength;
    out.set(packet.subarray(payloadStart, p.end), ptStart);
    let t = ptStart + payloadLength;
    for (let i = 1; i <= pad; i++) out[t++] = i;
    out[t++] = pad;
    out[t++] = nextHeader;
    cipher.seal(out, esp, sa.esn ? (sa.ivHigh | seqHigh) >>> 0 : sa.ivHigh, seqLow, ptStart, t, seqHigh);

    // Outer addresses: RFC 5374 §5.1 "copied from inner hdr" when preserved, else constructed.
    let srcBuf: Uint8Array;
    let srcOff: number;
    let dstBuf: Uint8Array;
    let dstOff: number;
    if (!sa.tunnel) {
      srcBuf = dstBuf = packet;
      srcOff = p.srcOffset;
      dstOff = p.dstOffset;
    } else {
      const sameFamily = outerFamily === p.version; // preservation needs equal versions (§3.1)
      if (sa.preserveDst && sameFamily) {
        dstBuf = packet;
        dstOff = p.dstOffset;
      } else {
        dstBuf = sa.dst;
        dstOff = 0;
      }
      if (sa.preserveSrc && sameFamily) {
        srcBuf = packet;
        srcOff = p.srcOffset;
      } else {
        srcBuf =
          sa.tunnelSrc ??
          sa.src ??
          (outerFamily === 4 ? ctx.options.localAddresses.v4 ?? ctx.zero4 : ctx.options.localAddresses.v6 ?? ctx.zero6);
        srcOff = 0;
      }
    }
    const addrLen = outerFamily === 4 ? 4 : 16;

    if (framing === 'raw-ip') {
      const proto = sa.udp ? IPPROTO_UDP : IPPROTO_ESP;
      if (sa.tunnel) {
        const ttl = sa.preserveDst && outerFamily === p.version ? p.ttl : IP_DEFAULT_TTL;
        if (outerFamily === 4) {
          ctx.ipv4Id = (ctx.ipv4Id + 1) & 0xffff;
          const df = p.version === 4 && p.dontFragment;
          writeIpv4Header(out, 0, p.trafficClass, total, ctx.ipv4Id, df, ttl, proto, srcBuf, srcOff, dstBuf, dstOff);
        } else {
          writeIpv6Header(out, 0, p.trafficClass, total - IPV6_HEADER_LENGTH, proto, ttl, srcBuf, srcOff, dstBuf, dstOff);
        }
      } else {
        // Transport: the packet's own header, with the protocol field and lengths rewritten.
        copyIpHeader(out, packet, p, proto, total);
      }
      if (sa.udp) {
        const ulen = udpLength + espLength;
        writeUdpHeader(out, ipLength, sa.udpSrcPort, sa.udpDstPort, ulen, 0);
        if (outerFamily === 6) {
          // RFC 8200 §8.1: the UDP checksum is mandatory over IPv6 (RFC 3948 §2.1 zero is IPv4 only).
          const pseudo = pseudoHeaderSum(out, 8, 24, 16, ulen, IPPROTO_UDP);
          const sum = internetChecksum(out, ipLength, ipLength + ulen, pseudo) || 0xffff;
          out[ipLength + 6] = sum >> 8;
          out[ipLength + 7] = sum & 0xff;
        }
      }
    }

    try {
      bind!.send({
        framing,
        data: out,
        family: outerFamily,
        srcAddress: this.text(sa, srcBuf, srcOff, addrLen),
        dstAddress: bytesAt(sa.dst, dstBuf, dstOff, addrLen) ? sa.dstText : formatIpAddress(dstBuf, dstOff, addrLen),
        srcPort: framing === 'udp' ? sa.udpSrcPort : 0,
        dstPort: framing === 'udp' ? sa.udpDstPort : 0,
      });
    } catch {
      ctx.drop('bindError');
      return 'dropped';
    }
    sa.packetsOut++;
    sa.bytesOut += payloadLength;
    sa.lastUsed = now;
    ctx.sent++;
    return 'sent';
  }

  /** The outer source as text, cached per SA (a speaker's source rarely changes). */
  private text(sa: SaEntry, buf: Uint8Array, off: number, len: number): string {
    const last = sa.lastSrcBytes;
    if (last && bytesAt(last, buf, off, len)) return sa.lastSrcText;
    const copy = Uint8Array.from(buf.subarray(off, off + len));
    sa.lastSrcBytes = copy;
    sa.lastSrcText = formatIpAddress(copy);
    return sa.lastSrcText;
  }
}
