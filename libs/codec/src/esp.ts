import {
  ESP_ALIGNMENT,
  ESP_HEADER_LENGTH,
  ESP_MAX_PAD_LENGTH,
  ESP_SPI_MIN,
  ESP_TRAILER_LENGTH,
} from './constants.js';
import { Cursor } from './cursor.js';
import { CodecError } from './errors.js';

/** The ESP header (RFC 4303 §2.1, §2.2). */
export interface EspHeader {
  readonly spi: number;
  /** Low 32 bits of the sequence number. */
  readonly sequence: number;
}

const checkSpi = (spi: number, offset: number) => {
  if (!Number.isInteger(spi) || spi < ESP_SPI_MIN || spi > 0xffffffff) {
    throw new CodecError('BAD_VALUE', `SPI ${spi} (0 and 1..255 are reserved)`, offset);
  }
};

export const espHeader = {
  encodingLength(_v: EspHeader): number {
    return ESP_HEADER_LENGTH;
  },
  encode(v: EspHeader, buf?: Uint8Array, offset = 0): Uint8Array {
    checkSpi(v.spi, offset);
    if (!Number.isInteger(v.sequence) || v.sequence < 0 || v.sequence > 0xffffffff) {
      throw new CodecError('BAD_VALUE', `sequence ${v.sequence}`, offset + 4);
    }
    const out = buf ?? new Uint8Array(offset + ESP_HEADER_LENGTH);
    if (out.length - offset < ESP_HEADER_LENGTH) throw new CodecError('TRUNCATED', 'ESP header output', offset);
    writeU32(out, offset, v.spi);
    writeU32(out, offset + 4, v.sequence);
    return out;
  },
  decode(buf: Uint8Array, offset = 0): EspHeader {
    const c = new Cursor(buf, offset);
    const spi = c.u32('SPI');
    checkSpi(spi, offset);
    return { spi, sequence: c.u32('sequence number') };
  },
};

/**
 * A whole ESP packet as it travels (RFC 4303 §2): header, IV, ciphertext, ICV. The IV and ICV
 * lengths are properties of the SA's transform, so the codec is made per transform.
 */
export interface EspPacket extends EspHeader {
  readonly iv: Uint8Array;
  /** Encrypted payload, padding and trailer. */
  readonly ciphertext: Uint8Array;
  readonly icv: Uint8Array;
}

export function espPacketCodec(ivLength: number, icvLength: number, blockLength = ESP_ALIGNMENT) {
  const fixed = ESP_HEADER_LENGTH + ivLength + icvLength;
  return {
    encodingLength(v: EspPacket): number {
      return fixed + v.ciphertext.length;
    },
    encode(v: EspPacket, buf?: Uint8Array, offset = 0): Uint8Array {
      if (v.iv.length !== ivLength || v.icv.length !== icvLength) {
        throw new CodecError('BAD_LENGTH', 'IV or ICV length does not match the transform', offset);
      }
      if (v.ciphertext.length < ESP_TRAILER_LENGTH || v.ciphertext.length % blockLength !== 0) {
        throw new CodecError('BAD_LENGTH', `ciphertext of ${v.ciphertext.length} bytes`, offset);
      }
      const len = fixed + v.ciphertext.length;
      const out = buf ?? new Uint8Array(offset + len);
      if (out.length - offset < len) throw new CodecError('TRUNCATED', 'ESP output', offset);
      espHeader.encode(v, out, offset);
      out.set(v.iv, offset + ESP_HEADER_LENGTH);
      out.set(v.ciphertext, offset + ESP_HEADER_LENGTH + ivLength);
      out.set(v.icv, offset + len - icvLength);
      return out;
    },
    /** Decodes buf[offset, end): the whole frame is one ESP packet. */
    decode(buf: Uint8Array, offset = 0, end = buf.length): EspPacket {
      const c = new Cursor(buf, offset, end);
      const spi = c.u32('SPI');
      checkSpi(spi, offset);
      const sequence = c.u32('sequence number');
      const iv = c.bytes(ivLength, 'ESP IV');
      const ctLength = c.remaining - icvLength;
      if (ctLength < ESP_TRAILER_LENGTH) throw new CodecError('TRUNCATED', 'ESP payload and ICV', c.offset);
      if (ctLength % blockLength !== 0) {
        throw new CodecError('BAD_LENGTH', `ciphertext of ${ctLength} bytes is not aligned`, c.offset);
      }
      const ciphertext = c.bytes(ctLength);
      const icv = c.bytes(icvLength);
      c.done('ESP packet');
      return { spi, sequence, iv, ciphertext, icv };
    },
  };
}

/** The ESP trailer as found at the end of the decrypted payload (RFC 4303 §2.4, §2.6). */
export interface EspTrailer {
  /** Length of the protected payload before the padding. */
  readonly payloadLength: number;
  readonly padLength: number;
  readonly nextHeader: number;
}

/**
 * Reads the trailer at the end of plaintext[start, end) and checks the padding holds the
 * default monotonic values 1, 2, 3, ... (RFC 4303 §2.4; the only padding we send).
 */
export function decodeEspTrailer(plaintext: Uint8Array, start: number, end: number): EspTrailer {
  if (end - start < ESP_TRAILER_LENGTH) throw new CodecError('TRUNCATED', 'ESP trailer', start);
  const padLength = plaintext[end - 2]!;
  const nextHeader = plaintext[end - 1]!;
  const payloadLength = end - start - ESP_TRAILER_LENGTH - padLength;
  if (payloadLength < 0) throw new CodecError('BAD_LENGTH', `pad length ${padLength}`, end - 2);
  const padStart = start + payloadLength;
  for (let i = 0; i < padLength; i++) {
    if (plaintext[padStart + i] !== i + 1) throw new CodecError('BAD_VALUE', 'ESP padding', padStart + i);
  }
  return { payloadLength, padLength, nextHeader };
}

/** Bytes of padding so payload + padding + trailer is a multiple of `blockLength` (RFC 4303 §2.4). */
export function espPadLength(payloadLength: number, blockLength = ESP_ALIGNMENT): number {
  const align = Math.max(blockLength, ESP_ALIGNMENT);
  const pad = (align - ((payloadLength + ESP_TRAILER_LENGTH) % align)) % align;
  if (pad > ESP_MAX_PAD_LENGTH) throw new CodecError('LIMIT_EXCEEDED', `padding ${pad}`, 0);
  return pad;
}

/** Writes padding 1, 2, 3, ... and the trailer at `offset`; returns the offset after it. */
export function writeEspTrailer(out: Uint8Array, offset: number, padLength: number, nextHeader: number): number {
  for (let i = 0; i < padLength; i++) out[offset + i] = i + 1;
  out[offset + padLength] = padLength;
  out[offset + padLength + 1] = nextHeader;
  return offset + padLength + ESP_TRAILER_LENGTH;
}

/** Big-endian 32-bit store (shared by the ESP writers). */
function writeU32(out: Uint8Array, offset: number, v: number): void {
  out[offset] = (v >>> 24) & 0xff;
  out[offset + 1] = (v >>> 16) & 0xff;
  out[offset + 2] = (v >>> 8) & 0xff;
  out[offset + 3] = v & 0xff;
}
