import { GIKE_MAX_IDG_LENGTH, IdType } from './constants.js';
import { CodecError } from './errors.js';
import type { PayloadBodyCodec } from './ike-body.js';
import { idPayload, type IdPayload } from './ike-simple.js';

/**
 * Body of the Group Identification payload IDg (payload type 50, RFC 9838 §4.2): the IKEv2
 * Identification payload body (RFC 7296 §3.5) naming the group a GM wants to join.
 *
 *   |   ID Type     |                 RESERVED                      |
 *   ~                   Identification Data                         ~
 *
 * ID_KEY_ID MUST be supported; ID_IPV4_ADDR, ID_FQDN, ID_RFC822_ADDR and ID_IPV6_ADDR SHOULD be;
 * ID_DER_ASN1_DN/GN "are not expected" and are refused here (UNKNOWN_TYPE).
 */
export type IdgPayload = IdPayload;

const IDG_TYPES: ReadonlySet<number> = new Set([
  IdType.ID_IPV4_ADDR,
  IdType.ID_FQDN,
  IdType.ID_RFC822_ADDR,
  IdType.ID_IPV6_ADDR,
  IdType.ID_KEY_ID,
]);
const ADDRESS_LENGTH: ReadonlyMap<number, number> = new Map([
  [IdType.ID_IPV4_ADDR, 4],
  [IdType.ID_IPV6_ADDR, 16],
]);

function check(v: IdgPayload, offset: number): IdgPayload {
  if (!IDG_TYPES.has(v.idType)) throw new CodecError('UNKNOWN_TYPE', `IDg ID type ${v.idType}`, offset);
  const fixed = ADDRESS_LENGTH.get(v.idType);
  if (fixed !== undefined && v.data.length !== fixed) {
    throw new CodecError('BAD_LENGTH', `IDg address of ${v.data.length} octets, expected ${fixed}`, offset);
  }
  if (v.data.length === 0) throw new CodecError('BAD_LENGTH', 'empty IDg identification data', offset);
  if (v.data.length > GIKE_MAX_IDG_LENGTH) {
    throw new CodecError('LIMIT_EXCEEDED', `IDg of ${v.data.length} octets, at most ${GIKE_MAX_IDG_LENGTH}`, offset);
  }
  return v;
}

export const idgPayload: PayloadBodyCodec<IdgPayload> = {
  encodingLength: (v) => idPayload.encodingLength(v),
  encode: (v, buf, offset = 0) => idPayload.encode(check(v, offset), buf, offset),
  decode: (buf, offset = 0, end = buf.length) => check(idPayload.decode(buf, offset, end), offset),
};

/** An IDg naming a group by an opaque key id (ID_KEY_ID, the type every GM must support). */
export function idgKeyId(groupId: string): IdgPayload {
  return { idType: IdType.ID_KEY_ID, data: new TextEncoder().encode(groupId) };
}
