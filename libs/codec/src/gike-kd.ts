import { GIKE_MAX_ATTRIBUTES, GIKE_MAX_KEY_BAGS, GIKE_PROTOCOL_NONE, GIKE_SUBSTRUCTURE_HEADER_LENGTH } from './constants.js';
import { Cursor } from './cursor.js';
import { CodecError } from './errors.js';
import { checkUint, outBuffer, writeU16, type PayloadBodyCodec } from './ike-body.js';
import { attributesEncodingLength, readAttributesToEnd, writeAttributes, type GikeAttribute } from './gike-attribute.js';
import { gikeSpiLength } from './gike-gsa.js';

/**
 * Body of the Key Download payload KD (payload type 52, RFC 9838 §4.5): a sequence of key bags whose
 * first octet tells them apart (§4.5.1):
 *
 * Group Key Bag (§4.5.2), keys of one SA named by Protocol + SPI:
 *   |   Protocol    |   SPI Size    |            Length             |
 *   ~  SPI  ~  <Group Key Bag Attributes> (SA_KEY = Wrapped Key)  ~
 *
 * Member Key Bag (§4.5.3), Protocol = 0, keys and parameters of one GM:
 *   |   Protocol=0  |   RESERVED    |            Length             |
 *   ~  <Member Key Bag Attributes> (WRAP_KEY, AUTH_KEY, GM_SENDER_ID)  ~
 *
 * SA_KEY and WRAP_KEY values are in the Wrapped Key format of §4.5.4; this codec keeps them as
 * bytes (the Wrapped Key codec reads them). Attribute semantics live in gike-policy.ts. Decoded
 * SPIs and values alias the input buffer: copy key material out before the buffer is reused.
 */
export interface GroupKeyBag {
  kind: 'group';
  protocol: number;
  spi: Uint8Array;
  attributes: GikeAttribute[];
}

export interface MemberKeyBag {
  kind: 'member';
  attributes: GikeAttribute[];
}

export type KeyBag = GroupKeyBag | MemberKeyBag;

export interface KdPayload {
  keyBags: KeyBag[];
}


function bagLength(b: KeyBag): number {
  return GIKE_SUBSTRUCTURE_HEADER_LENGTH + (b.kind === 'group' ? b.spi.length : 0) + attributesEncodingLength(b.attributes);
}

function writeBag(b: KeyBag, buf: Uint8Array, offset: number): number {
  const len = bagLength(b);
  checkUint(len, 0xffff, 'key bag length', offset);
  if (b.attributes.length > GIKE_MAX_ATTRIBUTES) {
    throw new CodecError('LIMIT_EXCEEDED', `${b.attributes.length} key bag attributes`, offset);
  }
  if (b.kind === 'member') {
    buf[offset] = GIKE_PROTOCOL_NONE;
    buf[offset + 1] = 0;
    writeU16(buf, offset + 2, len);
    return writeAttributes(b.attributes, buf, offset + GIKE_SUBSTRUCTURE_HEADER_LENGTH);
  }
  const spiLen = gikeSpiLength(b.protocol);
  if (spiLen === undefined) throw new CodecError('UNKNOWN_TYPE', `group key bag protocol ${b.protocol}`, offset);
  if (b.spi.length !== spiLen) {
    throw new CodecError('BAD_LENGTH', `SPI of ${b.spi.length} octets for protocol ${b.protocol}`, offset);
  }
  buf[offset] = b.protocol;
  buf[offset + 1] = spiLen;
  writeU16(buf, offset + 2, len);
  buf.set(b.spi, offset + GIKE_SUBSTRUCTURE_HEADER_LENGTH);
  return writeAttributes(b.attributes, buf, offset + GIKE_SUBSTRUCTURE_HEADER_LENGTH + spiLen);
}

function readBag(c: Cursor): KeyBag {
  const start = c.offset;
  const protocol = c.u8('key bag protocol');
  const spiSize = c.u8('key bag SPI size');
  const len = c.u16('key bag length');
  if (len < GIKE_SUBSTRUCTURE_HEADER_LENGTH) throw new CodecError('BAD_LENGTH', `key bag length ${len}`, start + 2);
  const f = c.frame(len - GIKE_SUBSTRUCTURE_HEADER_LENGTH, 'key bag');
  if (protocol === GIKE_PROTOCOL_NONE) {
    // RESERVED MUST be ignored on receipt (§4.5.3).
    return { kind: 'member', attributes: readAttributesToEnd(f, GIKE_MAX_ATTRIBUTES, 'member key bag') };
  }
  const want = gikeSpiLength(protocol);
  if (want === undefined) throw new CodecError('UNKNOWN_TYPE', `group key bag protocol ${protocol}`, start);
  if (spiSize !== want) throw new CodecError('BAD_LENGTH', `SPI size ${spiSize} for protocol ${protocol}`, start + 1);
  const spi = f.bytes(spiSize, 'key bag SPI');
  return { kind: 'group', protocol, spi, attributes: readAttributesToEnd(f, GIKE_MAX_ATTRIBUTES, 'group key bag') };
}

export const kdPayload: PayloadBodyCodec<KdPayload> = {
  encodingLength(v) {
    let n = 0;
    for (const b of v.keyBags) n += bagLength(b);
    return n;
  },
  encode(v, buf, offset = 0) {
    if (v.keyBags.length === 0) throw new CodecError('BAD_VALUE', 'KD payload without key bags', offset);
    if (v.keyBags.length > GIKE_MAX_KEY_BAGS) {
      throw new CodecError('LIMIT_EXCEEDED', `${v.keyBags.length} key bags, at most ${GIKE_MAX_KEY_BAGS}`, offset);
    }
    const out = outBuffer(kdPayload.encodingLength(v), buf, offset, 'KD payload');
    let o = offset;
    for (const b of v.keyBags) o = writeBag(b, out, o);
    return out;
  },
  /** Decodes the body filling [offset, end) exactly (the generic payload header's length frames it). */
  decode(buf, offset = 0, end = buf.length) {
    const c = new Cursor(buf, offset, end);
    const keyBags: KeyBag[] = [];
    while (c.remaining > 0) {
      if (keyBags.length >= GIKE_MAX_KEY_BAGS) {
        throw new CodecError('LIMIT_EXCEEDED', `more than ${GIKE_MAX_KEY_BAGS} key bags`, c.offset);
      }
      keyBags.push(readBag(c));
    }
    if (keyBags.length === 0) throw new CodecError('TRUNCATED', 'KD payload without key bags', offset);
    return { keyBags };
  },
};
