/**
 * Whole IKEv2 messages (RFC 7296 §3.1): header plus payload chain, and the SK frame layout that
 * libs/crypto fills in when it protects a message (§3.14).
 */
import { CodecError } from './errors.js';
import { ikeHeader, type IkeHeader } from './ike-header.js';
import { ikePayloadRegistry, type IkePayloadEntry, type IkePayloadRegistry } from './ike-payload.js';
import { writeU16, writeU32 } from './ike-body.js';
import { IKE_HEADER_LENGTH, IKE_MAX_MESSAGE_LENGTH, IKE_PAYLOAD_HEADER_LENGTH, IkePayload } from './constants.js';

/** A decoded message. An SK payload, if any, is last and still encrypted. */
export interface IkeMessage {
  header: IkeHeader;
  payloads: IkePayloadEntry[];
}

/** Header fields a caller chooses; `nextPayload` and `length` are computed when encoding. */
export type IkeHeaderFields = Omit<IkeHeader, 'nextPayload' | 'length'>;

export const ikeMessage = {
  encodingLength(m: { payloads: readonly IkePayloadEntry[] }, registry: IkePayloadRegistry = ikePayloadRegistry): number {
    return IKE_HEADER_LENGTH + registry.chainLength(m.payloads);
  },

  /** Encodes header and chain; the header's nextPayload and length are taken from the payloads. */
  encode(
    m: { header: IkeHeaderFields; payloads: readonly IkePayloadEntry[] },
    buf?: Uint8Array,
    offset = 0,
    registry: IkePayloadRegistry = ikePayloadRegistry,
  ): Uint8Array {
    const length = this.encodingLength(m, registry);
    if (length > IKE_MAX_MESSAGE_LENGTH) throw new CodecError('LIMIT_EXCEEDED', `message of ${length} octets`, offset);
    const out = buf ?? new Uint8Array(offset + length);
    const header: IkeHeader = { ...m.header, nextPayload: registry.firstType(m.payloads), length };
    ikeHeader.encode(header, out, offset);
    registry.encodeChain(m.payloads, out, offset + IKE_HEADER_LENGTH);
    return out;
  },

  /** Decodes exactly one message filling [offset, buf.length). */
  decode(buf: Uint8Array, offset = 0, registry: IkePayloadRegistry = ikePayloadRegistry): IkeMessage {
    const header = ikeHeader.decode(buf, offset);
    if (offset + header.length !== buf.length) {
      throw new CodecError('TRAILING_BYTES', `${buf.length - offset - header.length} octets after the message`, offset + header.length);
    }
    const payloads = registry.decodeChain(header.nextPayload, buf, offset + IKE_HEADER_LENGTH, offset + header.length);
    return { header, payloads };
  },
};

/** Where an SK payload sits inside an encoded message (offsets relative to the message buffer). */
export interface SkLayout {
  /** The whole message; the SK body region is zero, ready to be filled. */
  buf: Uint8Array;
  /** Offset of the SK payload's generic header (end of associated data for AEAD, RFC 5282 §5.1). */
  skHeaderOffset: number;
  /** Offset of the SK body (IV | ciphertext | ICV). */
  bodyOffset: number;
}

/**
 * Lays out a message whose last payload is SK with a body of `skBodyLength` octets, after the
 * unencrypted payloads `outer` (usually none). `firstInner` is the type of the first encrypted payload.
 */
export function layoutSkMessage(
  header: IkeHeaderFields,
  firstInner: number,
  skBodyLength: number,
  outer: readonly IkePayloadEntry[] = [],
  registry: IkePayloadRegistry = ikePayloadRegistry,
): SkLayout {
  const outerLen = registry.chainLength(outer);
  const length = IKE_HEADER_LENGTH + outerLen + IKE_PAYLOAD_HEADER_LENGTH + skBodyLength;
  if (length > IKE_MAX_MESSAGE_LENGTH || skBodyLength + IKE_PAYLOAD_HEADER_LENGTH > 0xffff) {
    throw new CodecError('LIMIT_EXCEEDED', `message of ${length} octets`, 0);
  }
  const buf = new Uint8Array(length);
  const first = outer.length === 0 ? IkePayload.SK : outer[0]!.type;
  ikeHeader.encode({ ...header, nextPayload: first, length }, buf, 0);
  // Outer chain: its last payload's next-payload must point at SK, so encode it then patch.
  if (outer.length > 0) {
    registry.encodeChain(outer, buf, IKE_HEADER_LENGTH);
    let o = IKE_HEADER_LENGTH;
    for (let i = 0; i < outer.length - 1; i++) o += (buf[o + 2]! << 8) | buf[o + 3]!;
    buf[o] = IkePayload.SK;
  }
  const skHeaderOffset = IKE_HEADER_LENGTH + outerLen;
  buf[skHeaderOffset] = firstInner;
  buf[skHeaderOffset + 1] = 0;
  writeU16(buf, skHeaderOffset + 2, IKE_PAYLOAD_HEADER_LENGTH + skBodyLength);
  return { buf, skHeaderOffset, bodyOffset: skHeaderOffset + IKE_PAYLOAD_HEADER_LENGTH };
}

/** Rewrites the Message ID of an encoded message in place (used only before protection). */
export function setMessageId(buf: Uint8Array, messageId: number): void {
  writeU32(buf, 20, messageId);
}
