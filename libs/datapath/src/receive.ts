/**
 * Inbound processing (RFC 4301 §5.2 with RFC 5374 §5.2). Stages, in order; unauthenticated input
 * never moves state before stage 6:
 *
 *   1. classify  'udp' framing: RFC 3948 (ESP / IKE behind the non-ESP marker / 0xFF keepalive);
 *                'raw-ip': parse the outer header; protocol 50 is ESP, UDP to the encapsulation
 *                port is classified as above, anything else is checked against GSPD-I as plaintext
 *   2. parse     ESP header and lengths (bounds-checked; malformed -> drop)
 *   3. SAD       RFC 4301 §4.1: SPI+destination+source, then SPI+destination, then SPI.
 *                None -> drop noSa + onUnknownSpi. An SA we may only send on -> directionViolation.
 *   4. lifetime  trailing edge past its delete time or hard limit -> drop expired; replay
 *                pre-check (read only)
 *   5. ICV       verify and decrypt (fails -> drop icv), then check padding and trailer
 *   6. replay    move the anti-replay window (RFC 4303 §3.4.3), count the packet on the SA
 *   7. inner     tunnel: parse the inner packet; each preserved outer address must equal the
 *                inner one (RFC 5374 §5.2: else drop + audit). Transport: rebuild the packet
 *   8. GSPD-I    the first matching GSPD-I entry must be the PROTECT entry bound to this SA
 *                (RFC 4301 §5.2 step 4; else drop + audit)
 *   9. deliver   to the plaintext port
 *
 * Every input ends as exactly one of: delivered, one drop counter, an IKE message handed on, or a
 * NAT keepalive. Nothing here throws for any input bytes.
 */
import {
  classifyUdpEncap,
  decodeEspTrailer,
  ESP_HEADER_LENGTH,
  formatIpAddress,
  IP_DEFAULT_TTL,
  IPPROTO_ESP,
  IPPROTO_IPV4,
  IPPROTO_IPV6,
  IPPROTO_NONE,
  IPPROTO_UDP,
  IPV4_MIN_HEADER_LENGTH,
  IPV6_HEADER_LENGTH,
  ipAddressEquals,
  IpPacketInfo,
  isCodecError,
  NON_ESP_MARKER_LENGTH,
  parseIpPacket,
  UDP_ENCAP_PORT,
  UDP_HEADER_LENGTH,
  writeIpv4Header,
  writeIpv6Header,
} from '@app/codec';
import type { InboundDatagram } from './bind.js';
import type { DatapathContext } from './context.js';
import { inferEsn } from './replay-window.js';
import type { SaEntry } from './sa-table.js';
import { copyIpHeader } from './wire.js';

/** ESN inference without an anti-replay window: accept up to half the space behind the top. */
const ESN_UNWINDOWED = 0x8000_0000;

/** What happened to one inbound datagram. */
export type ReceiveOutcome = 'delivered' | 'dropped' | 'ike' | 'keepalive';

export class ReceivePipeline {
  private readonly outer = new IpPacketInfo();
  private readonly inner = new IpPacketInfo();
  /** Encapsulation ports recognised inside 'raw-ip' framing (RFC 3948 §2). */
  readonly encapPorts = new Set<number>([UDP_ENCAP_PORT]);

  constructor(private readonly ctx: DatapathContext) {}

  receive(d: InboundDatagram): ReceiveOutcome {
    try {
      return this.process(d);
    } catch (e) {
      // Defence in depth: a parser bug must not take the agent down. Codec errors are malformed
      // input; anything else is still counted, never rethrown.
      this.ctx.drop('malformed');
      if (!isCodecError(e)) this.ctx.internalErrors++;
      return 'dropped';
    }
  }

  private process(d: InboundDatagram): ReceiveOutcome {
    const ctx = this.ctx;
    const data = d.data;
    // 1. classify
    let espStart: number;
    let espEnd: number;
    let addrBuf: Uint8Array;
    let srcOff: number;
    let dstOff: number;
    let addrLen: number;
    let outerFromIp: boolean;
    if (d.framing === 'udp') {
      const kind = classifyUdpEncap(data, 0, data.length);
      if (kind !== 'esp') return this.nonEsp(kind, data, 0, d.srcAddress, d.srcPort, d.dstAddress, d.dstPort);
      espStart = 0;
      espEnd = data.length;
      const src = ctx.addressBytes(d.srcAddress);
      const dst = ctx.addressBytes(d.dstAddress);
      if (!src || !dst || src.length !== dst.length) {
        ctx.drop('malformed');
        return 'dropped';
      }
      // Two addresses side by side in one small scratch so the lookup can use one buffer.
      addrLen = src.length;
      const scratch = addrLen === 4 ? this.addr4 : this.addr16;
      scratch.set(src, 0);
      scratch.set(dst, addrLen);
      addrBuf = scratch;
      srcOff = 0;
      dstOff = addrLen;
      outerFromIp = false;
    } else if (d.framing === 'raw-ip') {
      const o = this.outer;
      parseIpPacket(data, 0, data.length, o);
      if (o.fragment) {
        ctx.drop('unsupported'); // no reassembly here: tunnel senders must fit the path MTU
        return 'dropped';
      }
      addrBuf = data;
      srcOff = o.srcOffset;
      dstOff = o.dstOffset;
      addrLen = o.addressLength;
      outerFromIp = true;
      if (o.protocol === IPPROTO_ESP) {
        espStart = o.upperOffset;
        espEnd = o.end;
      } else if (o.protocol === IPPROTO_UDP && o.dstPort >= 0 && this.encapPorts.has(o.dstPort)) {
        const u = o.upperOffset;
        if (o.end - u < UDP_HEADER_LENGTH) {
          ctx.drop('malformed');
          return 'dropped';
        }
        const ulen = (data[u + 4]! << 8) | data[u + 5]!;
        if (ulen < UDP_HEADER_LENGTH || ulen > o.end - u) {
          ctx.drop('malformed');
          return 'dropped';
        }
        espStart = u + UDP_HEADER_LENGTH;
        espEnd = u + ulen;
        const kind = classifyUdpEncap(data, espStart, espEnd);
        if (kind !== 'esp') {
          return this.nonEsp(
            kind,
            data.subarray(0, espEnd),
            espStart,
            formatIpAddress(data, srcOff, addrLen),
            o.srcPort,
            formatIpAddress(data, dstOff, addrLen),
            o.dstPort,
          );
        }
      } else {
        return this.plaintext(data, o);
      }
    } else {
      ctx.drop('unsupported');
      return 'dropped';
    }

    // 2. parse
    const sa0 = this.lookup(data, espStart, espEnd, addrBuf, dstOff, srcOff, addrLen, d);
    if (!sa0) return 'dropped';
    const sa = sa0;
    const now = ctx.clock.now();
    // 4. lifetime, replay pre-check
    if (!ctx.alive(sa, now)) {
      ctx.drop('expired');
      return 'dropped';
    }
    const seqLow =
      ((data[espStart + 4]! << 24) >>> 0) + ((data[espStart + 5]! << 16) | (data[espStart + 6]! << 8) | data[espStart + 7]!);
    let seq = seqLow;
    let seqHigh = -1;
    if (sa.esn) {
      // RFC 4303 Appendix A2: the high half from the window (or half the space without one).
      seq = sa.replay ? inferEsn(sa.replay.highest, sa.replay.size, seqLow) : inferEsn(sa.esnTop, ESN_UNWINDOWED, seqLow);
      if (seq < 0) {
        ctx.drop('replay');
        return 'dropped';
      }
      seqHigh = Math.floor(seq / 0x1_0000_0000);
    }
    if (sa.replay && !sa.replay.check(seq)) {
      ctx.drop('replay');
      return 'dropped';
    }
    // 5. ICV and decrypt
    const cipher = sa.cipher;
    const ctLength = espEnd - espStart - ESP_HEADER_LENGTH - cipher.ivLength - cipher.icvLength;
    if (ctLength < 2 || ctLength % cipher.blockLength !== 0) {
      ctx.drop('malformed');
      return 'dropped';
    }
    const pt = cipher.open(data, espStart, espEnd, seqHigh);
    if (!pt) {
      ctx.drop('icv');
      return 'dropped';
    }
    let payloadLength: number;
    let nextHeader: number;
    try {
      const t = decodeEspTrailer(pt, 0, pt.length);
      payloadLength = t.payloadLength;
      nextHeader = t.nextHeader;
    } catch (e) {
      if (!isCodecError(e)) throw e;
      ctx.drop('malformed');
      return 'dropped';
    }
    // 6. replay window (authenticated now) and SA counters
    if (sa.replay && !sa.replay.update(seq)) {
      ctx.drop('replay');
      return 'dropped';
    }
    if (sa.esn && !sa.replay && seq > sa.esnTop) sa.esnTop = seq;
    sa.packetsIn++;
    sa.bytesIn += payloadLength;
    sa.lastUsed = now;
    if (nextHeader === IPPROTO_NONE) {
      ctx.drop('discard'); // a dummy packet (RFC 4303 §2.6): silently discarded
      return 'dropped';
    }
    // 7. inner packet
    let packet: Uint8Array;
    const inner = this.inner;
    if (sa.tunnel) {
      if (nextHeader !== IPPROTO_IPV4 && nextHeader !== IPPROTO_IPV6) {
        ctx.drop('malformed');
        return 'dropped';
      }
      packet = pt.subarray(0, payloadLength);
      try {
        parseIpPacket(packet, 0, payloadLength, inner);
      } catch (e) {
        if (!isCodecError(e)) throw e;
        ctx.drop('malformed');
        return 'dropped';
      }
      if (inner.end !== payloadLength || inner.version !== (nextHeader === IPPROTO_IPV4 ? 4 : 6)) {
        ctx.drop('malformed');
        return 'dropped';
      }
      // RFC 5374 §5.2: each preserved outer address must equal the inner one.
      if (addrLen === inner.addressLength) {
        const badSrc = sa.preserveSrc && !ipAddressEquals(addrBuf, srcOff, packet, inner.srcOffset, addrLen);
        const badDst = sa.preserveDst && !ipAddressEquals(addrBuf, dstOff, packet, inner.dstOffset, addrLen);
        if (badSrc || badDst) {
          ctx.drop('preservationMismatch');
          ctx.emitAudit(
            'preservation-mismatch',
            sa.spi,
            `outer ${formatIpAddress(addrBuf, srcOff, addrLen)} -> ${formatIpAddress(addrBuf, dstOff, addrLen)}, ` +
              `inner ${formatIpAddress(packet, inner.srcOffset, addrLen)} -> ${formatIpAddress(packet, inner.dstOffset, addrLen)}`,
          );
          return 'dropped';
        }
      }
    } else {
      const rebuilt = this.rebuildTransport(data, outerFromIp, pt, payloadLength, nextHeader, addrBuf, srcOff, dstOff, addrLen);
      if (!rebuilt) {
        ctx.drop('malformed');
        return 'dropped';
      }
      packet = rebuilt;
      try {
        parseIpPacket(packet, 0, packet.length, inner);
      } catch (e) {
        if (!isCodecError(e)) throw e;
        ctx.drop('malformed');
        return 'dropped';
      }
    }
    // 8. GSPD-I
    const entry = ctx.gspd.matchInbound(packet, inner);
    if (!entry || entry.action !== 'protect' || entry.id !== sa.policyId) {
      const direction = !entry && ctx.gspd.matchOnly('sender-only', packet, inner);
      ctx.drop(direction ? 'directionViolation' : 'policyMismatch');
      ctx.emitAudit(
        direction ? 'direction-violation' : 'policy-mismatch',
        sa.spi,
        `inner ${formatIpAddress(packet, inner.srcOffset, inner.addressLength)} -> ` +
          `${formatIpAddress(packet, inner.dstOffset, inner.addressLength)} protocol ${inner.protocol}` +
          (entry ? ` matched entry ${entry.id} (${entry.action}), SA is bound to ${sa.policyId}` : ' matched no GSPD-I entry'),
      );
      return 'dropped';
    }
    // 9. deliver
    const port = ctx.port;
    if (!port) {
      ctx.drop('unsupported');
      return 'dropped';
    }
    port.deliver(packet);
    ctx.delivered++;
    return 'delivered';
  }

  private readonly addr4 = new Uint8Array(8);
  private readonly addr16 = new Uint8Array(32);

  /** Steps 2 and 3: ESP header bounds, SAD lookup, direction. */
  private lookup(
    data: Uint8Array,
    espStart: number,
    espEnd: number,
    addrBuf: Uint8Array,
    dstOff: number,
    srcOff: number,
    addrLen: number,
    d: InboundDatagram,
  ): SaEntry | undefined {
    const ctx = this.ctx;
    if (espEnd - espStart < ESP_HEADER_LENGTH) {
      ctx.drop('malformed');
      return undefined;
    }
    const spi =
      ((data[espStart]! << 24) >>> 0) + ((data[espStart + 1]! << 16) | (data[espStart + 2]! << 8) | data[espStart + 3]!);
    const sa = ctx.sad.lookupInbound(spi, addrBuf, dstOff, srcOff, addrLen);
    if (!sa) {
      ctx.drop('noSa');
      const raw = d.framing === 'raw-ip';
      ctx.reportUnknownSpi(
        spi,
        raw ? formatIpAddress(addrBuf, srcOff, addrLen) : d.srcAddress,
        raw ? formatIpAddress(addrBuf, dstOff, addrLen) : d.dstAddress,
      );
      return undefined;
    }
    if (!sa.canReceive) {
      ctx.drop('directionViolation');
      ctx.emitAudit('direction-violation', sa.spi, 'ESP received on an SA this member may only send on');
      return undefined;
    }
    return sa;
  }

  /** IKE behind the marker, keepalives, and junk on the encapsulation port. */
  private nonEsp(
    kind: 'ike' | 'keepalive' | 'invalid',
    buf: Uint8Array,
    start: number,
    srcAddress: string,
    srcPort: number,
    dstAddress: string,
    dstPort: number,
  ): ReceiveOutcome {
    const ctx = this.ctx;
    if (kind === 'keepalive') {
      ctx.keepalives++;
      return 'keepalive';
    }
    if (kind === 'ike') {
      ctx.ike++;
      ctx.ikeMessage.emit({ message: buf.subarray(start + NON_ESP_MARKER_LENGTH), srcAddress, srcPort, dstAddress, dstPort });
      return 'ike';
    }
    ctx.drop('malformed');
    return 'dropped';
  }

  /** A non-ESP packet on the raw side: allowed only by a GSPD-I BYPASS entry (RFC 4301 §5.2). */
  private plaintext(data: Uint8Array, o: IpPacketInfo): ReceiveOutcome {
    const ctx = this.ctx;
    const entry = ctx.gspd.matchInbound(data, o);
    if (!entry) {
      ctx.drop(ctx.gspd.matchOnly('sender-only', data, o) ? 'directionViolation' : 'noPolicy');
      return 'dropped';
    }
    if (entry.action === 'discard') {
      ctx.drop('discard');
      return 'dropped';
    }
    if (entry.action === 'protect') {
      // Clear text where policy demands protection.
      ctx.drop('policyMismatch');
      return 'dropped';
    }
    if (!ctx.port) {
      ctx.drop('unsupported');
      return 'dropped';
    }
    ctx.port.deliver(data.subarray(o.start, o.end));
    ctx.delivered++;
    return 'delivered';
  }

  /**
   * Transport mode: the received header (raw-ip) or one built from the datagram's addresses
   * (udp framing, where the kernel consumed the header), with the protocol restored from the
   * ESP trailer, followed by the decrypted payload.
   */
  private rebuildTransport(
    data: Uint8Array,
    fromIp: boolean,
    pt: Buffer,
    payloadLength: number,
    nextHeader: number,
    addrBuf: Uint8Array,
    srcOff: number,
    dstOff: number,
    addrLen: number,
  ): Uint8Array | undefined {
    if (fromIp) {
      const o = this.outer;
      const hdrLength = o.upperOffset - o.start;
      const total = hdrLength + payloadLength;
      if (o.version === 4 ? total > 0xffff : total - IPV6_HEADER_LENGTH > 0xffff) return undefined;
      const out = this.ctx.allocOut(total);
      copyIpHeader(out, data, o, nextHeader, total);
      out.set(pt.subarray(0, payloadLength), hdrLength);
      return out;
    }
    const hdrLength = addrLen === 4 ? IPV4_MIN_HEADER_LENGTH : IPV6_HEADER_LENGTH;
    const total = hdrLength + payloadLength;
    if (addrLen === 4 ? total > 0xffff : payloadLength > 0xffff) return undefined;
    const out = this.ctx.allocOut(total);
    if (addrLen === 4) {
      writeIpv4Header(out, 0, 0, total, 0, false, IP_DEFAULT_TTL, nextHeader, addrBuf, srcOff, addrBuf, dstOff);
    } else {
      writeIpv6Header(out, 0, 0, payloadLength, nextHeader, IP_DEFAULT_TTL, addrBuf, srcOff, addrBuf, dstOff);
    }
    out.set(pt.subarray(0, payloadLength), hdrLength);
    return out;
  }
}
