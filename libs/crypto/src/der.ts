/**
 * A minimal DER (X.690) reader and writer: enough for X.509 subjects and extensions, RFC 7427
 * AlgorithmIdentifiers and building certificates. The reader is bounds-checked and iterative.
 */
import { CryptoError } from './errors.js';

export interface DerNode {
  tag: number;
  /** Offset of the tag octet, of the contents, and the end of the contents. */
  start: number;
  contentStart: number;
  end: number;
}

/** Reads one TLV at `offset` within [.., limit). Only definite lengths up to 4 octets. */
export function derRead(buf: Uint8Array, offset: number, limit = buf.length): DerNode {
  const bad = (why: string) => new CryptoError('BAD_CERTIFICATE', `DER: ${why} at ${offset}`);
  if (offset + 2 > limit) throw bad('truncated header');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw bad('multi-octet tag');
  let len = buf[offset + 1]!;
  let o = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || o + n > limit) throw bad('length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[o + i]!;
    o += n;
  }
  if (o + len > limit) throw bad('content beyond frame');
  return { tag, start: offset, contentStart: o, end: o + len };
}

/** The children of a constructed node. */
export function derChildren(buf: Uint8Array, node: DerNode): DerNode[] {
  const out: DerNode[] = [];
  let o = node.contentStart;
  while (o < node.end) {
    const c = derRead(buf, o, node.end);
    out.push(c);
    o = c.end;
    if (out.length > 4096) throw new CryptoError('BAD_CERTIFICATE', 'DER: too many elements');
  }
  return out;
}

export const derBytes = (buf: Uint8Array, n: DerNode): Uint8Array => buf.subarray(n.start, n.end);
export const derContent = (buf: Uint8Array, n: DerNode): Uint8Array => buf.subarray(n.contentStart, n.end);

// ---- writer ---------------------------------------------------------------------------------

export function tlv(tag: number, ...content: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const c of content) len += c.length;
  const lenOctets: number[] = [];
  if (len < 0x80) lenOctets.push(len);
  else {
    const b: number[] = [];
    for (let l = len; l > 0; l = Math.floor(l / 256)) b.unshift(l & 0xff);
    lenOctets.push(0x80 | b.length, ...b);
  }
  const out = new Uint8Array(1 + lenOctets.length + len);
  out[0] = tag;
  out.set(lenOctets, 1);
  let o = 1 + lenOctets.length;
  for (const c of content) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

export const seq = (...c: Uint8Array[]) => tlv(0x30, ...c);
export const set = (...c: Uint8Array[]) => tlv(0x31, ...c);
export const octetString = (b: Uint8Array) => tlv(0x04, b);
export const bitString = (b: Uint8Array) => tlv(0x03, Uint8Array.of(0), b);
export const utf8 = (s: string) => tlv(0x0c, new TextEncoder().encode(s));
export const boolTrue = () => tlv(0x01, Uint8Array.of(0xff));
export const explicit = (n: number, ...c: Uint8Array[]) => tlv(0xa0 | n, ...c);

/** A non-negative INTEGER from big-endian magnitude octets. */
export function integer(mag: Uint8Array): Uint8Array {
  let i = 0;
  while (i < mag.length - 1 && mag[i] === 0) i++;
  const m = mag.subarray(i);
  return m[0]! & 0x80 ? tlv(0x02, Uint8Array.of(0), m) : tlv(0x02, m);
}

export function oid(dotted: string): Uint8Array {
  const parts = dotted.split('.').map(Number);
  const out: number[] = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const b: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) b.unshift(0x80 | (v & 0x7f));
    out.push(...b);
  }
  return tlv(0x06, Uint8Array.from(out));
}

/** UTCTime before 2050, GeneralizedTime after (RFC 5280 §4.1.2.5). */
export function time(d: Date): Uint8Array {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  return d.getUTCFullYear() < 2050
    ? tlv(0x17, new TextEncoder().encode(iso.slice(2)))
    : tlv(0x18, new TextEncoder().encode(iso));
}
