import { Cursor } from './cursor.js';
import { CodecError } from './errors.js';
import { checkUint, outBuffer, writeU16, type PayloadBodyCodec } from './ike-body.js';
import {
  IKE_MAX_ATTRIBUTES,
  IKE_MAX_PROPOSALS,
  IKE_MAX_TRANSFORMS,
  SA_LAST,
  SA_MORE_PROPOSAL,
  SA_MORE_TRANSFORM,
  TRANSFORM_ATTR_TV,
} from './constants.js';

/** A transform attribute (RFC 7296 §3.3.5): a number is TV (16-bit value), bytes are TLV. */
export interface TransformAttribute {
  type: number;
  value: number | Uint8Array;
}

/** A transform substructure (§3.3.2). */
export interface Transform {
  type: number;
  id: number;
  attributes: TransformAttribute[];
}

/** A proposal substructure (§3.3.1). `spi` is empty in IKE_SA_INIT. */
export interface Proposal {
  num: number;
  protocolId: number;
  spi: Uint8Array;
  transforms: Transform[];
}

/** The SA payload body (§3.3): proposals, most preferred first. */
export interface SaPayload {
  proposals: Proposal[];
}

const PROPOSAL_HEADER = 8;
const TRANSFORM_HEADER = 8;
const ATTR_HEADER = 4;

function attrLength(a: TransformAttribute): number {
  return typeof a.value === 'number' ? ATTR_HEADER : ATTR_HEADER + a.value.length;
}

function transformLength(t: Transform): number {
  let n = TRANSFORM_HEADER;
  for (const a of t.attributes) n += attrLength(a);
  return n;
}

function proposalLength(p: Proposal): number {
  let n = PROPOSAL_HEADER + p.spi.length;
  for (const t of p.transforms) n += transformLength(t);
  return n;
}

export const saPayload: PayloadBodyCodec<SaPayload> = {
  encodingLength(v) {
    let n = 0;
    for (const p of v.proposals) n += proposalLength(p);
    return n;
  },

  encode(v, buf, offset = 0) {
    const out = outBuffer(this.encodingLength(v), buf, offset, 'SA payload');
    if (v.proposals.length === 0 || v.proposals.length > IKE_MAX_PROPOSALS) {
      throw new CodecError('BAD_VALUE', `SA payload with ${v.proposals.length} proposals`, offset);
    }
    let o = offset;
    v.proposals.forEach((p, pi) => {
      const plen = proposalLength(p);
      checkUint(plen, 0xffff, 'proposal length', o);
      checkUint(p.num, 0xff, 'proposal number', o);
      checkUint(p.protocolId, 0xff, 'protocol ID', o);
      checkUint(p.spi.length, 0xff, 'SPI size', o);
      if (p.transforms.length > 0xff) throw new CodecError('BAD_VALUE', 'too many transforms', o);
      out[o] = pi === v.proposals.length - 1 ? SA_LAST : SA_MORE_PROPOSAL;
      out[o + 1] = 0;
      writeU16(out, o + 2, plen);
      out[o + 4] = p.num;
      out[o + 5] = p.protocolId;
      out[o + 6] = p.spi.length;
      out[o + 7] = p.transforms.length;
      out.set(p.spi, o + 8);
      o += PROPOSAL_HEADER + p.spi.length;
      p.transforms.forEach((t, ti) => {
        checkUint(t.type, 0xff, 'transform type', o);
        checkUint(t.id, 0xffff, 'transform ID', o);
        out[o] = ti === p.transforms.length - 1 ? SA_LAST : SA_MORE_TRANSFORM;
        out[o + 1] = 0;
        writeU16(out, o + 2, transformLength(t));
        out[o + 4] = t.type;
        out[o + 5] = 0;
        writeU16(out, o + 6, t.id);
        o += TRANSFORM_HEADER;
        for (const a of t.attributes) {
          checkUint(a.type, 0x7fff, 'attribute type', o);
          if (typeof a.value === 'number') {
            checkUint(a.value, 0xffff, 'attribute value', o);
            writeU16(out, o, TRANSFORM_ATTR_TV | a.type);
            writeU16(out, o + 2, a.value);
            o += ATTR_HEADER;
          } else {
            checkUint(a.value.length, 0xffff, 'attribute length', o);
            writeU16(out, o, a.type);
            writeU16(out, o + 2, a.value.length);
            out.set(a.value, o + 4);
            o += ATTR_HEADER + a.value.length;
          }
        }
      });
    });
    return out;
  },

  /** Checks every length and count against its frame and the "last" markers (§3.3). */
  decode(buf, offset = 0, end = buf.length) {
    const c = new Cursor(buf, offset, end);
    const proposals: Proposal[] = [];
    let last = false;
    while (!last) {
      if (proposals.length >= IKE_MAX_PROPOSALS) throw new CodecError('LIMIT_EXCEEDED', 'too many proposals', c.offset);
      const start = c.offset;
      const more = c.u8('proposal last');
      if (more !== SA_LAST && more !== SA_MORE_PROPOSAL) {
        throw new CodecError('BAD_VALUE', `proposal last-substruc ${more}`, start);
      }
      last = more === SA_LAST;
      c.u8('reserved');
      const plen = c.u16('proposal length');
      if (plen < PROPOSAL_HEADER) throw new CodecError('BAD_LENGTH', `proposal length ${plen}`, start + 2);
      const pc = c.frame(plen - 4, 'proposal');
      const num = pc.u8('proposal number');
      const protocolId = pc.u8('protocol ID');
      const spiSize = pc.u8('SPI size');
      const numTransforms = pc.u8('transform count');
      if (numTransforms > IKE_MAX_TRANSFORMS) throw new CodecError('LIMIT_EXCEEDED', 'too many transforms', pc.offset);
      const spi = pc.bytes(spiSize, 'SPI');
      const transforms: Transform[] = [];
      for (let i = 0; i < numTransforms; i++) {
        const tstart = pc.offset;
        const tmore = pc.u8('transform last');
        const expect = i === numTransforms - 1 ? SA_LAST : SA_MORE_TRANSFORM;
        if (tmore !== expect) throw new CodecError('BAD_VALUE', `transform last-substruc ${tmore}`, tstart);
        pc.u8('reserved');
        const tlen = pc.u16('transform length');
        if (tlen < TRANSFORM_HEADER) throw new CodecError('BAD_LENGTH', `transform length ${tlen}`, tstart + 2);
        const tc = pc.frame(tlen - 4, 'transform');
        const type = tc.u8('transform type');
        tc.u8('reserved');
        const id = tc.u16('transform ID');
        const attributes: TransformAttribute[] = [];
        while (tc.remaining > 0) {
          if (attributes.length >= IKE_MAX_ATTRIBUTES) {
            throw new CodecError('LIMIT_EXCEEDED', 'too many transform attributes', tc.offset);
          }
          const at = tc.u16('attribute type');
          if (at & TRANSFORM_ATTR_TV) {
            attributes.push({ type: at & ~TRANSFORM_ATTR_TV, value: tc.u16('attribute value') });
          } else {
            const alen = tc.u16('attribute length');
            attributes.push({ type: at, value: tc.bytes(alen, 'attribute value') });
          }
        }
        transforms.push({ type, id, attributes });
      }
      pc.done('proposal');
      proposals.push({ num, protocolId, spi, transforms });
    }
    c.done('SA payload');
    return { proposals };
  },
};
