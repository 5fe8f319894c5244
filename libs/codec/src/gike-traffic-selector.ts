import { TsType } from './constants.js';
import { CodecError } from './errors.js';
import type { Cursor } from './cursor.js';
import { checkUint, writeU16 } from './ike-body.js';
import type { TrafficSelector } from './ike-simple.js';

/**
 * One traffic selector substructure (RFC 7296 §3.13.1) as used for the Source and Destination
 * Traffic Selectors of a GSA policy (RFC 9838 §4.4.2): no TS payload header and no count.
 *
 *   |   TS Type     |IP Protocol ID |       Selector Length         |
 *   |           Start Port          |           End Port            |
 *   ~                         Starting Address                      ~
 *   ~                         Ending Address                        ~
 */
const TS_HEADER = 8;

function addressLength(tsType: number, offset: number): number {
  if (tsType === TsType.TS_IPV4_ADDR_RANGE) return 4;
  if (tsType === TsType.TS_IPV6_ADDR_RANGE) return 16;
  throw new CodecError('UNKNOWN_TYPE', `traffic selector type ${tsType}`, offset);
}

export function trafficSelectorEncodingLength(ts: TrafficSelector): number {
  return TS_HEADER + 2 * addressLength(ts.tsType, 0);
}

export function writeTrafficSelector(ts: TrafficSelector, buf: Uint8Array, offset: number): number {
  const al = addressLength(ts.tsType, offset);
  if (ts.startAddress.length !== al || ts.endAddress.length !== al) {
    throw new CodecError('BAD_LENGTH', `traffic selector addresses must be ${al} octets`, offset);
  }
  checkUint(ts.ipProtocol, 0xff, 'IP protocol', offset);
  checkUint(ts.startPort, 0xffff, 'start port', offset);
  checkUint(ts.endPort, 0xffff, 'end port', offset);
  buf[offset] = ts.tsType;
  buf[offset + 1] = ts.ipProtocol;
  writeU16(buf, offset + 2, TS_HEADER + 2 * al);
  writeU16(buf, offset + 4, ts.startPort);
  writeU16(buf, offset + 6, ts.endPort);
  buf.set(ts.startAddress, offset + TS_HEADER);
  buf.set(ts.endAddress, offset + TS_HEADER + al);
  return offset + TS_HEADER + 2 * al;
}

export function readTrafficSelector(c: Cursor): TrafficSelector {
  const start = c.offset;
  const tsType = c.u8('TS type');
  const al = addressLength(tsType, start);
  const ipProtocol = c.u8('TS IP protocol');
  const len = c.u16('TS selector length');
  if (len !== TS_HEADER + 2 * al) throw new CodecError('BAD_LENGTH', `selector length ${len}`, start + 2);
  const startPort = c.u16('TS start port');
  const endPort = c.u16('TS end port');
  const startAddress = c.bytes(al, 'TS starting address');
  const endAddress = c.bytes(al, 'TS ending address');
  return { tsType, ipProtocol, startPort, endPort, startAddress, endAddress };
}
