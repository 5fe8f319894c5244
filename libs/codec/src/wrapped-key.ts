import {
  WRAPPED_KEY_HEADER_LENGTH,
  WRAPPED_KEY_MAX_ENCRYPTED_LENGTH,
} from './constants.js';
import { Cursor } from './cursor.js';
import { CodecError } from './errors.js';
import { checkUint, outBuffer, writeU32 } from './ike-body.js';

/**
 * Wrapped Key (RFC 9838 §4.5.4), the value of the SA_KEY and WRAP_KEY key bag attributes:
 *
 *   |                            Key ID                             |
 *   |                            KWK ID                             |
 *   ~                         Encrypted Key                         ~
 *
 * Key ID names the key inside (0 = the SA keying material), KWK ID the key it is wrapped under
 * (0 = the default KWK GSK_w). The Encrypted Key runs to the end of the enclosing attribute, so
 * `decode` takes the frame end. Its format belongs to the key wrap algorithm (for KW_5649_* a
 * multiple of 8 octets, at least 16: checked by the unwrapper, not here). `encryptedKey` aliases
 * the input buffer after decode.
 */
export interface WrappedKey {
  keyId: number;
  kwkId: number;
  encryptedKey: Uint8Array;
}

const U32_MAX = 0xffff_ffff;

export const wrappedKey = {
  encodingLength(v: WrappedKey): number {
    return WRAPPED_KEY_HEADER_LENGTH + v.encryptedKey.length;
  },

  encode(v: WrappedKey, buf?: Uint8Array, offset = 0): Uint8Array {
    checkUint(v.keyId, U32_MAX, 'Key ID', offset);
    checkUint(v.kwkId, U32_MAX, 'KWK ID', offset);
    if (v.encryptedKey.length < 1 || v.encryptedKey.length > WRAPPED_KEY_MAX_ENCRYPTED_LENGTH) {
      throw new CodecError('BAD_LENGTH', `Encrypted Key of ${v.encryptedKey.length} octets`, offset);
    }
    const len = wrappedKey.encodingLength(v);
    const out = outBuffer(len, buf, offset, 'Wrapped Key');
    writeU32(out, offset, v.keyId);
    writeU32(out, offset + 4, v.kwkId);
    out.set(v.encryptedKey, offset + WRAPPED_KEY_HEADER_LENGTH);
    return out;
  },

  /** Reads exactly [offset, end): the attribute value frame. */
  decode(buf: Uint8Array, offset = 0, end = buf.length): WrappedKey {
    const c = new Cursor(buf, offset, end);
    const keyId = c.u32('Key ID');
    const kwkId = c.u32('KWK ID');
    if (c.remaining < 1) throw new CodecError('TRUNCATED', 'Wrapped Key has no Encrypted Key', c.offset);
    if (c.remaining > WRAPPED_KEY_MAX_ENCRYPTED_LENGTH) {
      throw new CodecError('LIMIT_EXCEEDED', `Encrypted Key of ${c.remaining} octets`, c.offset);
    }
    const encryptedKey = c.bytes(c.remaining, 'Encrypted Key');
    c.done('Wrapped Key');
    return { keyId, kwkId, encryptedKey };
  },
};
