/**
 * Small IKEv2 payload bodies (RFC 7296 §3.4-§3.13): KE, Nonce, IDi/IDr, CERT, CERTREQ, AUTH,
 * Notify, Delete, TSi/TSr. Each is a `PayloadBodyCodec` over exactly the payload's body.
 */
import { Cursor } from './cursor.js';
import { CodecError } from './errors.js';
import { checkUint, outBuffer, writeU16, type PayloadBodyCodec } from './ike-body.js';
import {
  IKE_MAX_DELETE_SPIS,
  IKE_MAX_TRAFFIC_SELECTORS,
  IKE_NONCE_MAX_LENGTH,
  IKE_NONCE_MIN_LENGTH,
  TsType,
} from './constants.js';

/** KE payload (§3.4): key exchange method number and public value. */
export interface KePayload {
  group: number;
  data: Uint8Array;
}

export const kePayload: PayloadBodyCodec<KePayload> = {
  encodingLength: (v) => 4 + v.data.length,
  encode(v, buf, offset = 0) {
    const out = outBuffer(4 + v.data.length, buf, offset, 'KE payload');
    checkUint(v.group, 0xffff, 'KE group', offset);
    writeU16(out, offset, v.group);
    out[offset + 2] = 0;
    out[offset + 3] = 0;
    out.set(v.data, offset + 4);
    return out;
  },
  decode(buf, offset = 0, end = buf.length) {
    const c = new Cursor(buf, offset, end);
    const group = c.u16('KE group');
    c.skip(2, 'reserved');
    return { group, data: c.bytes(c.remaining) };
  },
};

/** Nonce payload (§3.9): 16 to 256 octets. */
export interface NoncePayload {
  nonce: Uint8Array;
}

export const noncePayload: PayloadBodyCodec<NoncePayload> = {
  encodingLength: (v) => v.nonce.length,
  encode(v, buf, offset = 0) {
    const out = outBuffer(v.nonce.length, buf, offset, 'Nonce payload');
    out.set(v.nonce, offset);
    return out;
  },
  decode(buf, offset = 0, end = buf.length) {
    const c = new Cursor(buf, offset, end);
    if (c.remaining < IKE_NONCE_MIN_LENGTH || c.remaining > IKE_NONCE_MAX_LENGTH) {
      throw new CodecError('BAD_LENGTH', `nonce of ${c.remaining} octets`, offset);
    }
    return { nonce: c.bytes(c.remaining) };
  },
};

/**
 * The body shared by IDi/IDr (§3.5) and AUTH (§3.8): a one-octet type (`key`), three reserved
 * octets, then data that may not be empty. `names` label the errors.
 */
function typeOctetPayload<K extends string>(
  key: K,
  names: { payload: string; type: string; data: string },
): PayloadBodyCodec<Record<K, number> & { data: Uint8Array }> {
  return {
    encodingLength: (v) => 4 + v.data.length,
    encode(v, buf, offset = 0) {
      const out = outBuffer(4 + v.data.length, buf, offset, names.payload);
      checkUint(v[key], 0xff, names.type, offset);
      out[offset] = v[key];
      out.fill(0, offset + 1, offset + 4);
      out.set(v.data, offset + 4);
      return out;
    },
    decode(buf, offset = 0, end = buf.length) {
      const c = new Cursor(buf, offset, end);
      const type = c.u8(names.type);
      c.skip(3, 'reserved');
      if (c.remaining === 0) throw new CodecError('BAD_LENGTH', `empty ${names.data}`, c.offset);
      return { [key]: type, data: c.bytes(c.remaining) } as Record<K, number> & { data: Uint8Array };
    },
  };
}

/** IDi / IDr payload (§3.5). `data` is the identification data for `idType`. */
export interface IdPayload {
  idType: number;
  data: Uint8Array;
}

export const idPayload: PayloadBodyCodec<IdPayload> = typeOctetPayload('idType', {
  payload: 'ID payload',
  type: 'ID type',
  data: 'identification data',
});

/** CERT payload (§3.6) and CERTREQ payload (§3.7): encoding and data. */
export interface CertPayload {
  encoding: number;
  data: Uint8Array;
}

export const certPayload: PayloadBodyCodec<CertPayload> = {
  encodingLength: (v) => 1 + v.data.length,
  encode(v, buf, offset = 0) {
    const out = outBuffer(1 + v.data.length, buf, offset, 'CERT payload');
    checkUint(v.encoding, 0xff, 'certificate encoding', offset);
    out[offset] = v.encoding;
    out.set(v.data, offset + 1);
    return out;
  },
  decode(buf, offset = 0, end = buf.length) {
    const c = new Cursor(buf, offset, end);
    const encoding = c.u8('certificate encoding');
    return { encoding, data: c.bytes(c.remaining) };
  },
};

/** CERTREQ has the CERT layout; for X.509 the data is concatenated SHA-1 hashes of CA keys. */
export type CertReqPayload = CertPayload;
export const certReqPayload: PayloadBodyCodec<CertReqPayload> = certPayload;

/** AUTH payload (§3.8). */
export interface AuthPayload {
  method: number;
  data: Uint8Array;
}

export const authPayload: PayloadBodyCodec<AuthPayload> = typeOctetPayload('method', {
  payload: 'AUTH payload',
  type: 'auth method',
  data: 'authentication data',
});

/** Notify payload (§3.10). `protocolId` 0 and an empty SPI for IKE SA notifications. */
export interface NotifyPayload {
  protocolId: number;
  notifyType: number;
  spi: Uint8Array;
  data: Uint8Array;
}

export const notifyPayload: PayloadBodyCodec<NotifyPayload> = {
  encodingLength: (v) => 4 + v.spi.length + v.data.length,
  encode(v, buf, offset = 0) {
    const out = outBuffer(4 + v.spi.length + v.data.length, buf, offset, 'Notify payload');
    checkUint(v.protocolId, 0xff, 'protocol ID', offset);
    checkUint(v.spi.length, 0xff, 'SPI size', offset);
    checkUint(v.notifyType, 0xffff, 'notify type', offset);
    out[offset] = v.protocolId;
    out[offset + 1] = v.spi.length;
    writeU16(out, offset + 2, v.notifyType);
    out.set(v.spi, offset + 4);
    out.set(v.data, offset + 4 + v.spi.length);
    return out;
  },
  decode(buf, offset = 0, end = buf.length) {
    const c = new Cursor(buf, offset, end);
    const protocolId = c.u8('protocol ID');
    const spiSize = c.u8('SPI size');
    const notifyType = c.u16('notify type');
    const spi = c.bytes(spiSize, 'SPI');
    return { protocolId, notifyType, spi, data: c.bytes(c.remaining) };
  },
};

/** Delete payload (§3.11). For the IKE SA: protocol 1, no SPIs. */
export interface DeletePayload {
  protocolId: number;
  spiSize: number;
  spis: Uint8Array[];
}

export const deletePayload: PayloadBodyCodec<DeletePayload> = {
  encodingLength: (v) => 4 + v.spiSize * v.spis.length,
  encode(v, buf, offset = 0) {
    const out = outBuffer(4 + v.spiSize * v.spis.length, buf, offset, 'Delete payload');
    checkUint(v.protocolId, 0xff, 'protocol ID', offset);
    checkUint(v.spiSize, 0xff, 'SPI size', offset);
    checkUint(v.spis.length, 0xffff, 'SPI count', offset);
    out[offset] = v.protocolId;
    out[offset + 1] = v.spiSize;
    writeU16(out, offset + 2, v.spis.length);
    let o = offset + 4;
    for (const spi of v.spis) {
      if (spi.length !== v.spiSize) throw new CodecError('BAD_VALUE', 'SPI length differs from SPI size', o);
      out.set(spi, o);
      o += spi.length;
    }
    return out;
  },
  decode(buf, offset = 0, end = buf.length) {
    const c = new Cursor(buf, offset, end);
    const protocolId = c.u8('protocol ID');
    const spiSize = c.u8('SPI size');
    const n = c.u16('SPI count');
    if (n > IKE_MAX_DELETE_SPIS) throw new CodecError('LIMIT_EXCEEDED', `${n} SPIs`, c.offset - 2);
    const spis: Uint8Array[] = [];
    for (let i = 0; i < n; i++) spis.push(c.bytes(spiSize, 'SPI'));
    c.done('Delete payload');
    return { protocolId, spiSize, spis };
  },
};

/** One traffic selector (§3.13.1). Addresses are 4 octets (IPv4) or 16 (IPv6) by `tsType`. */
export interface TrafficSelector {
  tsType: number;
  ipProtocol: number;
  startPort: number;
  endPort: number;
  startAddress: Uint8Array;
  endAddress: Uint8Array;
}

/** TSi / TSr payload (§3.13). */
export interface TsPayload {
  selectors: TrafficSelector[];
}

function tsAddrLen(tsType: number, offset: number): number {
  if (tsType === TsType.TS_IPV4_ADDR_RANGE) return 4;
  if (tsType === TsType.TS_IPV6_ADDR_RANGE) return 16;
  throw new CodecError('UNKNOWN_TYPE', `traffic selector type ${tsType}`, offset);
}

export const tsPayload: PayloadBodyCodec<TsPayload> = {
  encodingLength(v) {
    let n = 4;
    for (const s of v.selectors) n += 8 + 2 * tsAddrLen(s.tsType, 0);
    return n;
  },
  encode(v, buf, offset = 0) {
    const out = outBuffer(this.encodingLength(v), buf, offset, 'TS payload');
    checkUint(v.selectors.length, 0xff, 'TS count', offset);
    out[offset] = v.selectors.length;
    out.fill(0, offset + 1, offset + 4);
    let o = offset + 4;
    for (const s of v.selectors) {
      const al = tsAddrLen(s.tsType, o);
      if (s.startAddress.length !== al || s.endAddress.length !== al) {
        throw new CodecError('BAD_VALUE', 'selector address length', o);
      }
      checkUint(s.ipProtocol, 0xff, 'IP protocol', o);
      checkUint(s.startPort, 0xffff, 'start port', o);
      checkUint(s.endPort, 0xffff, 'end port', o);
      out[o] = s.tsType;
      out[o + 1] = s.ipProtocol;
      writeU16(out, o + 2, 8 + 2 * al);
      writeU16(out, o + 4, s.startPort);
      writeU16(out, o + 6, s.endPort);
      out.set(s.startAddress, o + 8);
      out.set(s.endAddress, o + 8 + al);
      o += 8 + 2 * al;
    }
    return out;
  },
  decode(buf, offset = 0, end = buf.length) {
    const c = new Cursor(buf, offset, end);
    const n = c.u8('TS count');
    c.skip(3, 'reserved');
    if (n > IKE_MAX_TRAFFIC_SELECTORS) throw new CodecError('LIMIT_EXCEEDED', `${n} selectors`, offset);
    const selectors: TrafficSelector[] = [];
    for (let i = 0; i < n; i++) {
      const start = c.offset;
      const tsType = c.u8('TS type');
      const ipProtocol = c.u8('IP protocol');
      const len = c.u16('selector length');
      const al = tsAddrLen(tsType, start);
      if (len !== 8 + 2 * al) throw new CodecError('BAD_LENGTH', `selector length ${len}`, start + 2);
      const startPort = c.u16('start port');
      const endPort = c.u16('end port');
      const startAddress = c.bytes(al, 'start address');
      const endAddress = c.bytes(al, 'end address');
      selectors.push({ tsType, ipProtocol, startPort, endPort, startAddress, endAddress });
    }
    c.done('TS payload');
    return { selectors };
  },
};
