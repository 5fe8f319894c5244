import { TRANSFORM_ATTR_TV } from './constants.js';
import { CodecError } from './errors.js';
import type { Cursor } from './cursor.js';
import { checkUint, writeU16 } from './ike-body.js';
import type { TransformAttribute } from './ike-sa.js';

/**
 * IKEv2 data attribute (RFC 7296 §3.3.5), the format RFC 9838 reuses for transform attributes,
 * GSA attributes, GW policy attributes and key bag attributes (RFC 9838 §4.4.2.2, §4.4.3.1, §4.5):
 *
 *   |A|       Attribute Type        |    AF=0  Attribute Length       |
 *   |F|                             |    AF=1  Attribute Value        |
 *   |                   AF=0  Attribute Value (variable)              |
 *
 * Same shape as the SA payload's TransformAttribute: a number `value` is TV (AF=1, 16 bits), a byte
 * `value` is TLV. Decoded TLV values alias the input buffer: copy key material out before reuse.
 */
export type GikeAttribute = TransformAttribute;

const ATTR_HEADER = 4;
const ATTR_TYPE_MAX = 0x7fff;

export function attributesEncodingLength(list: readonly GikeAttribute[]): number {
  let n = 0;
  for (const a of list) n += typeof a.value === 'number' ? ATTR_HEADER : ATTR_HEADER + a.value.length;
  return n;
}

/** Writes the attributes at `offset`; returns the offset after them. */
export function writeAttributes(list: readonly GikeAttribute[], buf: Uint8Array, offset: number): number {
  let o = offset;
  for (const a of list) {
    checkUint(a.type, ATTR_TYPE_MAX, 'attribute type', o);
    if (typeof a.value === 'number') {
      checkUint(a.value, 0xffff, 'TV attribute value', o);
      writeU16(buf, o, TRANSFORM_ATTR_TV | a.type);
      writeU16(buf, o + 2, a.value);
      o += ATTR_HEADER;
    } else {
      if (a.value.length > 0xffff) throw new CodecError('BAD_LENGTH', `TLV attribute of ${a.value.length} octets`, o);
      writeU16(buf, o, a.type);
      writeU16(buf, o + 2, a.value.length);
      buf.set(a.value, o + ATTR_HEADER);
      o += ATTR_HEADER + a.value.length;
    }
  }
  return o;
}

/** Reads attributes until the cursor's frame ends, at most `max` of them; none may overrun the frame. */
export function readAttributesToEnd(c: Cursor, max: number, what: string): GikeAttribute[] {
  const out: GikeAttribute[] = [];
  while (c.remaining > 0) {
    if (out.length >= max) throw new CodecError('LIMIT_EXCEEDED', `more than ${max} attributes in ${what}`, c.offset);
    const head = c.u16('attribute type');
    const type = head & ATTR_TYPE_MAX;
    if (head & TRANSFORM_ATTR_TV) out.push({ type, value: c.u16('TV attribute value') });
    else out.push({ type, value: c.bytes(c.u16('TLV attribute length'), 'TLV attribute value') });
  }
  return out;
}
