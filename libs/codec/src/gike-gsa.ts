import {
  GIKE_IPSEC_SPI_LENGTH,
  GIKE_MAX_ATTRIBUTES,
  GIKE_MAX_POLICIES,
  GIKE_PROTOCOL_NONE,
  GIKE_REKEY_SPI_LENGTH,
  GIKE_SUBSTRUCTURE_HEADER_LENGTH,
  GikeProtocol,
} from './constants.js';
import { Cursor } from './cursor.js';
import { CodecError } from './errors.js';
import { checkUint, outBuffer, writeU16, type PayloadBodyCodec } from './ike-body.js';
import { attributesEncodingLength, readAttributesToEnd, writeAttributes, type GikeAttribute } from './gike-attribute.js';
import type { Transform } from './ike-sa.js';
import type { TrafficSelector } from './ike-simple.js';
import { readTrafficSelector, trafficSelectorEncodingLength, writeTrafficSelector } from './gike-traffic-selector.js';
import { readTransforms, transformsEncodingLength, writeTransforms } from './gike-transform.js';

/**
 * Body of the Group Security Association payload GSA (payload type 51, RFC 9838 §4.4): the Group
 * Policies, i.e. a sequence of substructures whose first octet tells them apart (§4.4.1):
 *
 * GSA policy (§4.4.2), Protocol = GIKE_UPDATE (Rekey SA, "GSA KEK") or AH/ESP ("GSA TEK"):
 *   |   Protocol    |   SPI Size    |            Length             |
 *   ~  SPI  ~  Source TS  ~  Destination TS  ~  <GSA Transforms>  ~  <GSA Attributes>  ~
 *
 * Group-wide policy (§4.4.3), Protocol = 0:
 *   |   Protocol=0  |   RESERVED    |            Length             |
 *   ~                      <GW Policy Attributes>                   ~
 *
 * Structural rules enforced on decode and encode: zero or one KEK policy, zero or one GW policy,
 * and at least one KEK or TEK policy (§4.4.1). Attribute semantics live in gike-policy.ts.
 * Decoded SPIs, addresses and TLV values alias the input buffer.
 */
export interface GsaSaPolicy {
  kind: 'sa';
  /** GikeProtocol.GIKE_UPDATE, AH or ESP. */
  protocol: number;
  /** 16 octets (IKE SPI pair) for GIKE_UPDATE, 4 for AH/ESP. */
  spi: Uint8Array;
  source: TrafficSelector;
  destination: TrafficSelector;
  transforms: Transform[];
  attributes: GikeAttribute[];
}

export interface GsaGwPolicy {
  kind: 'gw';
  attributes: GikeAttribute[];
}

export type GsaPolicy = GsaSaPolicy | GsaGwPolicy;

export interface GsaPayload {
  policies: GsaPolicy[];
}


export function gikeSpiLength(protocol: number): number | undefined {
  if (protocol === GikeProtocol.GIKE_UPDATE) return GIKE_REKEY_SPI_LENGTH;
  if (protocol === GikeProtocol.AH || protocol === GikeProtocol.ESP) return GIKE_IPSEC_SPI_LENGTH;
  return undefined;
}

function policyLength(p: GsaPolicy): number {
  if (p.kind === 'gw') return GIKE_SUBSTRUCTURE_HEADER_LENGTH + attributesEncodingLength(p.attributes);
  return (
    GIKE_SUBSTRUCTURE_HEADER_LENGTH +
    p.spi.length +
    trafficSelectorEncodingLength(p.source) +
    trafficSelectorEncodingLength(p.destination) +
    transformsEncodingLength(p.transforms) +
    attributesEncodingLength(p.attributes)
  );
}

function checkPolicySet(policies: readonly GsaPolicy[], offset: number): void {
  if (policies.length > GIKE_MAX_POLICIES) {
    throw new CodecError('LIMIT_EXCEEDED', `${policies.length} policies, at most ${GIKE_MAX_POLICIES}`, offset);
  }
  let kek = 0;
  let tek = 0;
  let gw = 0;
  for (const p of policies) {
    if (p.kind === 'gw') gw++;
    else if (p.protocol === GikeProtocol.GIKE_UPDATE) kek++;
    else tek++;
  }
  if (kek > 1) throw new CodecError('BAD_VALUE', 'more than one GSA KEK policy', offset);
  if (gw > 1) throw new CodecError('BAD_VALUE', 'more than one GW policy', offset);
  if (kek + tek === 0) throw new CodecError('BAD_VALUE', 'GSA payload without a KEK or TEK policy', offset);
}

function writePolicy(p: GsaPolicy, buf: Uint8Array, offset: number): number {
  const len = policyLength(p);
  checkUint(len, 0xffff, 'policy length', offset);
  if (p.kind === 'gw') {
    buf[offset] = GIKE_PROTOCOL_NONE;
    buf[offset + 1] = 0;
    writeU16(buf, offset + 2, len);
    return writeAttributes(p.attributes, buf, offset + GIKE_SUBSTRUCTURE_HEADER_LENGTH);
  }
  const spiLen = gikeSpiLength(p.protocol);
  if (spiLen === undefined) throw new CodecError('UNKNOWN_TYPE', `GSA policy protocol ${p.protocol}`, offset);
  if (p.spi.length !== spiLen) {
    throw new CodecError('BAD_LENGTH', `SPI of ${p.spi.length} octets for protocol ${p.protocol}`, offset);
  }
  if (p.attributes.length > GIKE_MAX_ATTRIBUTES) {
    throw new CodecError('LIMIT_EXCEEDED', `${p.attributes.length} GSA attributes`, offset);
  }
  buf[offset] = p.protocol;
  buf[offset + 1] = spiLen;
  writeU16(buf, offset + 2, len);
  let o = offset + GIKE_SUBSTRUCTURE_HEADER_LENGTH;
  buf.set(p.spi, o);
  o += spiLen;
  o = writeTrafficSelector(p.source, buf, o);
  o = writeTrafficSelector(p.destination, buf, o);
  o = writeTransforms(p.transforms, buf, o);
  return writeAttributes(p.attributes, buf, o);
}

function readPolicy(c: Cursor): GsaPolicy {
  const start = c.offset;
  const protocol = c.u8('policy protocol');
  const spiSize = c.u8('policy SPI size');
  const len = c.u16('policy length');
  if (len < GIKE_SUBSTRUCTURE_HEADER_LENGTH) throw new CodecError('BAD_LENGTH', `policy length ${len}`, start + 2);
  const f = c.frame(len - GIKE_SUBSTRUCTURE_HEADER_LENGTH, 'policy');
  if (protocol === GIKE_PROTOCOL_NONE) {
    // RESERVED (the SPI Size position) MUST be ignored on receipt (§4.4.3).
    return { kind: 'gw', attributes: readAttributesToEnd(f, GIKE_MAX_ATTRIBUTES, 'GW policy') };
  }
  const want = gikeSpiLength(protocol);
  if (want === undefined) throw new CodecError('UNKNOWN_TYPE', `GSA policy protocol ${protocol}`, start);
  if (spiSize !== want) throw new CodecError('BAD_LENGTH', `SPI size ${spiSize} for protocol ${protocol}`, start + 1);
  const spi = f.bytes(spiSize, 'policy SPI');
  const source = readTrafficSelector(f);
  const destination = readTrafficSelector(f);
  const transforms = readTransforms(f);
  const attributes = readAttributesToEnd(f, GIKE_MAX_ATTRIBUTES, 'GSA policy');
  return { kind: 'sa', protocol, spi, source, destination, transforms, attributes };
}

export const gsaPayload: PayloadBodyCodec<GsaPayload> = {
  encodingLength(v) {
    let n = 0;
    for (const p of v.policies) n += policyLength(p);
    return n;
  },
  encode(v, buf, offset = 0) {
    checkPolicySet(v.policies, offset);
    const out = outBuffer(gsaPayload.encodingLength(v), buf, offset, 'GSA payload');
    let o = offset;
    for (const p of v.policies) o = writePolicy(p, out, o);
    return out;
  },
  /** Decodes the body filling [offset, end) exactly (the generic payload header's length frames it). */
  decode(buf, offset = 0, end = buf.length) {
    const c = new Cursor(buf, offset, end);
    const policies: GsaPolicy[] = [];
    while (c.remaining > 0) {
      if (policies.length >= GIKE_MAX_POLICIES) {
        throw new CodecError('LIMIT_EXCEEDED', `more than ${GIKE_MAX_POLICIES} policies`, c.offset);
      }
      policies.push(readPolicy(c));
    }
    checkPolicySet(policies, offset);
    return { policies };
  },
};
