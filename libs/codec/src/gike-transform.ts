import { GIKE_MAX_TRANSFORMS, GIKE_MAX_TRANSFORM_ATTRIBUTES, SA_LAST, SA_MORE_TRANSFORM } from './constants.js';
import { CodecError } from './errors.js';
import type { Cursor } from './cursor.js';
import { checkUint, writeU16 } from './ike-body.js';
import type { Transform } from './ike-sa.js';
import { attributesEncodingLength, readAttributesToEnd, writeAttributes } from './gike-attribute.js';

/**
 * The transform substructures of a GSA policy (RFC 9838 §4.4.2, §4.4.2.1; format RFC 7296 §3.3.2):
 *
 *   | Last Substruc |   RESERVED    |        Transform Length       |
 *   |Transform Type |   RESERVED    |          Transform ID         |
 *   ~                      Transform Attributes                     ~
 *
 * Unlike an SA proposal there is no transform count: the list ends at the transform whose Last
 * Substruc is 0, and the GSA attributes follow it inside the same policy frame.
 */
const TRANSFORM_HEADER = 8;

export function transformsEncodingLength(list: readonly Transform[]): number {
  let n = 0;
  for (const t of list) n += TRANSFORM_HEADER + attributesEncodingLength(t.attributes);
  return n;
}

export function writeTransforms(list: readonly Transform[], buf: Uint8Array, offset: number): number {
  if (list.length === 0) throw new CodecError('BAD_VALUE', 'a GSA policy needs at least one transform', offset);
  if (list.length > GIKE_MAX_TRANSFORMS) {
    throw new CodecError('LIMIT_EXCEEDED', `${list.length} transforms, at most ${GIKE_MAX_TRANSFORMS}`, offset);
  }
  let o = offset;
  list.forEach((t, i) => {
    checkUint(t.type, 0xff, 'transform type', o);
    checkUint(t.id, 0xffff, 'transform ID', o);
    if (t.attributes.length > GIKE_MAX_TRANSFORM_ATTRIBUTES) {
      throw new CodecError('LIMIT_EXCEEDED', `transform with ${t.attributes.length} attributes`, o);
    }
    const len = TRANSFORM_HEADER + attributesEncodingLength(t.attributes);
    checkUint(len, 0xffff, 'transform length', o);
    buf[o] = i === list.length - 1 ? SA_LAST : SA_MORE_TRANSFORM;
    buf[o + 1] = 0;
    writeU16(buf, o + 2, len);
    buf[o + 4] = t.type;
    buf[o + 5] = 0;
    writeU16(buf, o + 6, t.id);
    o = writeAttributes(t.attributes, buf, o + TRANSFORM_HEADER);
  });
  return o;
}

/** Reads transforms up to and including the one marked last. */
export function readTransforms(c: Cursor): Transform[] {
  const out: Transform[] = [];
  for (;;) {
    if (out.length >= GIKE_MAX_TRANSFORMS) {
      throw new CodecError('LIMIT_EXCEEDED', `more than ${GIKE_MAX_TRANSFORMS} transforms`, c.offset);
    }
    const start = c.offset;
    const last = c.u8('transform Last Substruc');
    if (last !== SA_LAST && last !== SA_MORE_TRANSFORM) {
      throw new CodecError('BAD_VALUE', `transform Last Substruc ${last}`, start);
    }
    c.u8('transform RESERVED');
    const len = c.u16('transform length');
    if (len < TRANSFORM_HEADER) throw new CodecError('BAD_LENGTH', `transform length ${len}`, start + 2);
    const t = c.frame(len - 4, 'transform');
    const type = t.u8('transform type');
    t.u8('transform RESERVED');
    const id = t.u16('transform ID');
    out.push({ type, id, attributes: readAttributesToEnd(t, GIKE_MAX_TRANSFORM_ATTRIBUTES, 'transform') });
    if (last === SA_LAST) return out;
  }
}
