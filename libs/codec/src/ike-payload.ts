/**
 * The IKEv2 payload chain (RFC 7296 §3.2) with a registry of payload BODY codecs.
 *
 * A message's payloads form a chain: each generic payload header names the type of the NEXT
 * payload; the IKE header names the first. The SK payload (§3.14) must be last; its "next payload"
 * field names the first payload INSIDE the encrypted data, which the chain keeps in
 * `SkPayload.firstInner`. Unknown payloads are kept as raw bytes (`unknown: true`) and skipped
 * when the critical bit is clear; with it set the whole message is refused with
 * `UnsupportedCriticalPayloadError` (§2.5), whose `payloadType` is what the
 * UNSUPPORTED_CRITICAL_PAYLOAD notification carries.
 *
 * Extension: another module adds a body codec with
 *   `ikePayloadRegistry.register(IkePayload.IDg, idgPayload, 'IDg')`
 * and types it by augmenting `IkePayloadBodies`:
 *   `declare module './ike-payload.js' { interface IkePayloadBodies { 50: IdgPayload } }`.
 */
import { Cursor } from './cursor.js';
import { CodecError } from './errors.js';
import { checkUint, outBuffer, rawBody, writeU16, type PayloadBodyCodec } from './ike-body.js';
import { saPayload, type SaPayload } from './ike-sa.js';
import {
  authPayload,
  certPayload,
  certReqPayload,
  deletePayload,
  idPayload,
  kePayload,
  noncePayload,
  notifyPayload,
  tsPayload,
  type AuthPayload,
  type CertPayload,
  type CertReqPayload,
  type DeletePayload,
  type IdPayload,
  type KePayload,
  type NoncePayload,
  type NotifyPayload,
  type TsPayload,
} from './ike-simple.js';
import { IKE_MAX_PAYLOADS, IKE_PAYLOAD_CRITICAL, IKE_PAYLOAD_HEADER_LENGTH, IkePayload } from './constants.js';

/** The SK payload body (§3.14): IV, ciphertext and ICV as one opaque run, plus the inner chain's first type. */
export interface SkPayload {
  firstInner: number;
  data: Uint8Array;
}

/** Body type per payload type. Augment this interface to type payloads you register. */
export interface IkePayloadBodies {
  33: SaPayload;
  34: KePayload;
  35: IdPayload;
  36: IdPayload;
  37: CertPayload;
  38: CertReqPayload;
  39: AuthPayload;
  40: NoncePayload;
  41: NotifyPayload;
  42: DeletePayload;
  43: Uint8Array;
  44: TsPayload;
  45: TsPayload;
  46: SkPayload;
}

export type KnownPayloadType = keyof IkePayloadBodies & number;

/** One payload of a message. `unknown` payloads carry their raw body. */
export interface IkePayloadEntry {
  type: number;
  critical?: boolean;
  body: unknown;
  unknown?: boolean;
}

/** A typed payload entry constructor: `payload(IkePayload.NONCE, { nonce })`. */
export function payload<K extends KnownPayloadType>(
  type: K,
  body: IkePayloadBodies[K],
  critical = false,
): IkePayloadEntry {
  return { type, critical, body };
}

/** The first payload of `type`, typed, or undefined. */
export function getPayload<K extends KnownPayloadType>(
  payloads: readonly IkePayloadEntry[],
  type: K,
): IkePayloadBodies[K] | undefined {
  const p = payloads.find((x) => x.type === type && !x.unknown);
  return p?.body as IkePayloadBodies[K] | undefined;
}

/** Every payload of `type`, typed, in message order. */
export function getPayloads<K extends KnownPayloadType>(
  payloads: readonly IkePayloadEntry[],
  type: K,
): IkePayloadBodies[K][] {
  return payloads.filter((x) => x.type === type && !x.unknown).map((x) => x.body as IkePayloadBodies[K]);
}

/** The first Notify payload of `notifyType`, or undefined. */
export function getNotify(payloads: readonly IkePayloadEntry[], notifyType: number): NotifyPayload | undefined {
  return getPayloads(payloads, IkePayload.NOTIFY).find((n) => n.notifyType === notifyType);
}

/** Refusal of a message that holds an unknown payload with the critical bit set (§2.5). */
export class UnsupportedCriticalPayloadError extends CodecError {
  constructor(
    readonly payloadType: number,
    offset: number,
  ) {
    super('UNKNOWN_TYPE', `unsupported critical payload type ${payloadType}`, offset);
  }
}

const skBody: PayloadBodyCodec<SkPayload> = {
  encodingLength: (v) => v.data.length,
  encode: (v, buf, offset = 0) => rawBody.encode(v.data, buf, offset),
  decode: (buf, offset = 0, end = buf.length) => ({ firstInner: 0, data: rawBody.decode(buf, offset, end) }),
};

/** Payload body codecs by type; see the module comment for how to extend it. */
export class IkePayloadRegistry {
  private readonly codecs = new Map<number, { codec: PayloadBodyCodec<unknown>; name: string }>();

  register<T>(type: number, codec: PayloadBodyCodec<T>, name: string): void {
    checkUint(type, 0xff, 'payload type');
    if (type === IkePayload.NONE || type === IkePayload.SK) {
      throw new CodecError('BAD_VALUE', `payload type ${type} cannot be registered`, 0);
    }
    this.codecs.set(type, { codec: codec as PayloadBodyCodec<unknown>, name });
  }

  has(type: number): boolean {
    return type === IkePayload.SK || this.codecs.has(type);
  }

  name(type: number): string {
    if (type === IkePayload.SK) return 'SK';
    return this.codecs.get(type)?.name ?? `payload ${type}`;
  }

  codec(type: number): PayloadBodyCodec<unknown> | undefined {
    if (type === IkePayload.SK) return skBody as PayloadBodyCodec<unknown>;
    return this.codecs.get(type)?.codec;
  }

  /** Total length of the chain including generic headers. */
  chainLength(payloads: readonly IkePayloadEntry[]): number {
    let n = 0;
    for (const p of payloads) n += IKE_PAYLOAD_HEADER_LENGTH + this.bodyCodec(p).encodingLength(p.body);
    return n;
  }

  /** Type to put in the field that precedes the chain (IKE header or SK header). */
  firstType(payloads: readonly IkePayloadEntry[]): number {
    return payloads.length === 0 ? IkePayload.NONE : payloads[0]!.type;
  }

  /** Writes the chain at `offset`; returns the buffer. SK, if present, must be last. */
  encodeChain(payloads: readonly IkePayloadEntry[], buf?: Uint8Array, offset = 0): Uint8Array {
    const out = outBuffer(this.chainLength(payloads), buf, offset, 'payload chain');
    let o = offset;
    payloads.forEach((p, i) => {
      const codec = this.bodyCodec(p);
      const bodyLen = codec.encodingLength(p.body);
      const isLast = i === payloads.length - 1;
      let next: number;
      if (p.type === IkePayload.SK) {
        if (!isLast) throw new CodecError('BAD_VALUE', 'SK payload must be last', o);
        next = (p.body as SkPayload).firstInner;
      } else {
        next = isLast ? IkePayload.NONE : payloads[i + 1]!.type;
      }
      checkUint(next, 0xff, 'next payload', o);
      checkUint(IKE_PAYLOAD_HEADER_LENGTH + bodyLen, 0xffff, 'payload length', o);
      out[o] = next;
      out[o + 1] = p.critical ? IKE_PAYLOAD_CRITICAL : 0;
      writeU16(out, o + 2, IKE_PAYLOAD_HEADER_LENGTH + bodyLen);
      codec.encode(p.body, out, o + IKE_PAYLOAD_HEADER_LENGTH);
      o += IKE_PAYLOAD_HEADER_LENGTH + bodyLen;
    });
    return out;
  }

  /**
   * Decodes the chain that starts with payload type `first` and must fill [offset, end) exactly.
   * An SK payload ends the chain. With `allowSk` false an SK payload is BAD_VALUE (inner chains).
   */
  decodeChain(first: number, buf: Uint8Array, offset = 0, end = buf.length, allowSk = true): IkePayloadEntry[] {
    const c = new Cursor(buf, offset, end);
    const out: IkePayloadEntry[] = [];
    let type = first;
    while (type !== IkePayload.NONE) {
      if (out.length >= IKE_MAX_PAYLOADS) throw new CodecError('LIMIT_EXCEEDED', 'too many payloads', c.offset);
      const start = c.offset;
      const next = c.u8('next payload');
      const critical = (c.u8('payload flags') & IKE_PAYLOAD_CRITICAL) !== 0;
      const len = c.u16('payload length');
      if (len < IKE_PAYLOAD_HEADER_LENGTH) throw new CodecError('BAD_LENGTH', `payload length ${len}`, start + 2);
      const body = c.frame(len - IKE_PAYLOAD_HEADER_LENGTH, this.name(type));
      if (type === IkePayload.SK) {
        if (!allowSk) throw new CodecError('BAD_VALUE', 'SK payload inside SK payload', start);
        out.push({ type, critical, body: { firstInner: next, data: body.bytes(body.remaining) } satisfies SkPayload });
        break;
      }
      const codec = this.codecs.get(type)?.codec;
      if (codec) {
        out.push({ type, critical, body: codec.decode(buf, body.offset, body.end) });
      } else if (critical) {
        throw new UnsupportedCriticalPayloadError(type, start);
      } else {
        out.push({ type, critical, body: body.bytes(body.remaining), unknown: true });
      }
      type = next;
    }
    c.done('payload chain');
    return out;
  }

  private bodyCodec(p: IkePayloadEntry): PayloadBodyCodec<unknown> {
    if (p.unknown) return rawBody as PayloadBodyCodec<unknown>;
    const codec = this.codec(p.type);
    if (!codec) throw new CodecError('UNKNOWN_TYPE', `no codec for payload type ${p.type}`, 0);
    return codec;
  }
}

/** The registry with every RFC 7296 payload this library knows. */
export const ikePayloadRegistry = new IkePayloadRegistry();
ikePayloadRegistry.register(IkePayload.SA, saPayload, 'SA');
ikePayloadRegistry.register(IkePayload.KE, kePayload, 'KE');
ikePayloadRegistry.register(IkePayload.IDi, idPayload, 'IDi');
ikePayloadRegistry.register(IkePayload.IDr, idPayload, 'IDr');
ikePayloadRegistry.register(IkePayload.CERT, certPayload, 'CERT');
ikePayloadRegistry.register(IkePayload.CERTREQ, certReqPayload, 'CERTREQ');
ikePayloadRegistry.register(IkePayload.AUTH, authPayload, 'AUTH');
ikePayloadRegistry.register(IkePayload.NONCE, noncePayload, 'Nonce');
ikePayloadRegistry.register(IkePayload.NOTIFY, notifyPayload, 'Notify');
ikePayloadRegistry.register(IkePayload.DELETE, deletePayload, 'Delete');
ikePayloadRegistry.register(IkePayload.VENDOR_ID, rawBody, 'Vendor ID');
ikePayloadRegistry.register(IkePayload.TSi, tsPayload, 'TSi');
ikePayloadRegistry.register(IkePayload.TSr, tsPayload, 'TSr');
