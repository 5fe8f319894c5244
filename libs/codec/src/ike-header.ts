import { Cursor } from './cursor.js';
import { CodecError } from './errors.js';
import { checkUint, outBuffer, writeU32 } from './ike-body.js';
import {
  IKE_FLAG_INITIATOR,
  IKE_FLAG_RESPONSE,
  IKE_FLAG_VERSION,
  IKE_HEADER_LENGTH,
  IKE_MAJOR_VERSION,
  IKE_MAX_MESSAGE_LENGTH,
  IKE_SPI_LENGTH,
} from './constants.js';

/** The fixed IKE header (RFC 7296 §3.1). SPIs are 8 octets; `length` is the whole message. */
export interface IkeHeader {
  spiI: Uint8Array;
  spiR: Uint8Array;
  nextPayload: number;
  majorVersion: number;
  minorVersion: number;
  exchangeType: number;
  /** Raw flags octet; see `IKE_FLAG_*` and the helpers below. */
  flags: number;
  messageId: number;
  length: number;
}

export const isResponse = (h: Pick<IkeHeader, 'flags'>): boolean => (h.flags & IKE_FLAG_RESPONSE) !== 0;
export const isFromInitiator = (h: Pick<IkeHeader, 'flags'>): boolean => (h.flags & IKE_FLAG_INITIATOR) !== 0;

/** Flags for a message: I set when the original initiator sends, R set for responses (§3.1). */
export function ikeFlags(opts: { initiator: boolean; response: boolean }): number {
  return (opts.initiator ? IKE_FLAG_INITIATOR : 0) | (opts.response ? IKE_FLAG_RESPONSE : 0);
}

export const ikeHeader = {
  encodingLength: (_h?: IkeHeader): number => IKE_HEADER_LENGTH,

  encode(h: IkeHeader, buf?: Uint8Array, offset = 0): Uint8Array {
    const out = outBuffer(IKE_HEADER_LENGTH, buf, offset, 'IKE header');
    if (h.spiI.length !== IKE_SPI_LENGTH || h.spiR.length !== IKE_SPI_LENGTH) {
      throw new CodecError('BAD_VALUE', 'IKE SPIs must be 8 octets', offset);
    }
    checkUint(h.nextPayload, 0xff, 'next payload', offset);
    checkUint(h.majorVersion, 0xf, 'major version', offset);
    checkUint(h.minorVersion, 0xf, 'minor version', offset);
    checkUint(h.exchangeType, 0xff, 'exchange type', offset);
    checkUint(h.flags, 0xff, 'flags', offset);
    checkUint(h.messageId, 0xffffffff, 'message ID', offset);
    checkUint(h.length, 0xffffffff, 'length', offset);
    out.set(h.spiI, offset);
    out.set(h.spiR, offset + 8);
    out[offset + 16] = h.nextPayload;
    out[offset + 17] = (h.majorVersion << 4) | h.minorVersion;
    out[offset + 18] = h.exchangeType;
    out[offset + 19] = h.flags;
    writeU32(out, offset + 20, h.messageId);
    writeU32(out, offset + 24, h.length);
    return out;
  },

  /**
   * Decodes the header and checks the version (major 2; a higher major is INVALID_MAJOR_VERSION's
   * business, reported as BAD_VALUE), the reserved flag bits are ignored as §3.1 says, and the
   * Length field against the bytes available.
   */
  decode(buf: Uint8Array, offset = 0): IkeHeader {
    const c = new Cursor(buf, offset);
    const spiI = c.bytes(IKE_SPI_LENGTH, 'initiator SPI');
    const spiR = c.bytes(IKE_SPI_LENGTH, 'responder SPI');
    const nextPayload = c.u8('next payload');
    const ver = c.u8('version');
    const exchangeType = c.u8('exchange type');
    const flags = c.u8('flags') & (IKE_FLAG_INITIATOR | IKE_FLAG_VERSION | IKE_FLAG_RESPONSE);
    const messageId = c.u32('message ID');
    const length = c.u32('length');
    const majorVersion = ver >> 4;
    if (majorVersion !== IKE_MAJOR_VERSION) {
      throw new CodecError('BAD_VALUE', `IKE major version ${majorVersion}`, offset + 17);
    }
    if (length < IKE_HEADER_LENGTH || length > IKE_MAX_MESSAGE_LENGTH) {
      throw new CodecError('BAD_LENGTH', `IKE length ${length}`, offset + 24);
    }
    if (length > buf.length - offset) {
      throw new CodecError('TRUNCATED', `IKE length ${length} > ${buf.length - offset} available`, offset + 24);
    }
    return { spiI, spiR, nextPayload, majorVersion, minorVersion: ver & 0xf, exchangeType, flags, messageId, length };
  },
};

