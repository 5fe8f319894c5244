import { sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import {
  AuthMethod,
  CodecError,
  GIKE_REKEY_SPI_LENGTH,
  IKE_FLAG_RESPONSE,
  IKE_PAYLOAD_HEADER_LENGTH,
  IkeExchange,
  IkePayload,
  ikeMessage,
  ikePayloadRegistry,
  layoutSkMessage,
  type AuthPayload,
  type IkePayloadEntry,
  type SkPayload,
} from '@app/codec';
import { CryptoError, protectIkeMessage, unprotectIkeMessage, type RandomBytes, type SkDirectionKeys, type SkSuite } from '@app/crypto';

/**
 * The GSA_REKEY pseudo-exchange (RFC 9838 §2.4.1): one message from the GCKS to the group,
 *
 *   HDR(Rekey SA SPI, GSA_REKEY, Message ID), SK{ GSA, KD, [D,] [N,] AUTH }
 *
 * protected with the current KEK (GSK_e/GSK_a) and, with the Digital Signature GCAUTH, signed with
 * the GCKS's rekey key (AUTH method 14, RFC 7427) over A | P (RFC 9838 §2.4.1.1):
 *   A = the IKE header and every octet up to the end of the SK payload header, with the IKE Length
 *       and the SK Payload Length counting only A and P (no IV, padding, pad length, ICV);
 *   P = the inner payloads in plaintext, the AUTH signature value zeroed (its ASN.1 length and
 *       AlgorithmIdentifier filled in).
 *
 * A DER ECDSA signature's length varies (70-72 octets for P-256), and P must contain the final AUTH
 * length before signing; the signer therefore re-signs until the length it reserved comes out.
 * The receiver re-encodes the decrypted inner payloads to rebuild P, so only canonical encodings
 * (RESERVED fields zero, as our codecs write them) verify.
 */

/** AlgorithmIdentifier DER values of RFC 7427 Appendix A.3 / A.4.3 (with RFC 5480 / RFC 4055 OIDs). */
export const SIG_ALG_ECDSA_SHA256 = Uint8Array.from([0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]);
export const SIG_ALG_RSA_SHA256 = Uint8Array.from([
  0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
]);
/** The most common DER length of an ECDSA P-256 signature (both integers 32 or 33 octets: 70-72). */
const ECDSA_P256_SIG_GUESS = 71;
/** Bound on re-signing for a DER length (each try hits 71 with probability 1/2). */
const MAX_SIGN_ATTEMPTS = 64;

export function signatureAlgorithmFor(key: KeyObject): Uint8Array {
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return SIG_ALG_ECDSA_SHA256;
  if (key.asymmetricKeyType === 'rsa') return SIG_ALG_RSA_SHA256;
  throw new CryptoError('UNSUPPORTED', `rekey signing key type ${String(key.asymmetricKeyType)}`);
}

function signatureLength(key: KeyObject): number {
  if (key.asymmetricKeyType === 'rsa') return Math.ceil((key.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
  return ECDSA_P256_SIG_GUESS;
}

/** RFC 7427 §3 Authentication Data: ASN.1 Length (1 octet) | AlgorithmIdentifier | Signature Value. */
function authData(algId: Uint8Array, signature: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + algId.length + signature.length);
  out[0] = algId.length;
  out.set(algId, 1);
  out.set(signature, 1 + algId.length);
  return out;
}

/** A | P of RFC 9838 §2.4.1.1 for a message without unencrypted payloads before SK. */
function dataToAuthenticate(header: Parameters<typeof layoutSkMessage>[0], inner: readonly IkePayloadEntry[]): Uint8Array {
  const pLen = ikePayloadRegistry.chainLength(inner);
  const layout = layoutSkMessage(header, ikePayloadRegistry.firstType(inner), pLen);
  ikePayloadRegistry.encodeChain(inner, layout.buf, layout.bodyOffset);
  return layout.buf;
}

export interface GsaRekeyOptions {
  /** The Rekey SA SPI (16 octets): initiator SPI | responder SPI of the header. */
  rekeySpi: Uint8Array;
  messageId: number;
  /** Inner payloads before AUTH: GSA, KD, optional Delete and Notify. */
  payloads: readonly IkePayloadEntry[];
  /** The Rekey SA's SK protection and its keys (GSK_e, GSK_a). */
  suite: SkSuite;
  kek: SkDirectionKeys;
  /** The GCKS's rekey signing key (Digital Signature GCAUTH); omit for Implicit authentication. */
  signingKey?: KeyObject;
  random: RandomBytes;
}

function headerFields(spi: Uint8Array, messageId: number) {
  if (spi.length !== GIKE_REKEY_SPI_LENGTH) throw new CodecError('BAD_LENGTH', `Rekey SA SPI of ${spi.length} octets`, 0);
  return {
    spiI: spi.subarray(0, 8),
    spiR: spi.subarray(8, 16),
    majorVersion: 2,
    minorVersion: 0,
    exchangeType: IkeExchange.GSA_REKEY,
    flags: 0,
    messageId,
  };
}

/** Builds the protected GSA_REKEY message (what is multicast, retransmitted bit-identical). */
export function buildGsaRekey(o: GsaRekeyOptions): Uint8Array {
  const header = headerFields(o.rekeySpi, o.messageId);
  if (!o.signingKey) return protectIkeMessage(header, o.payloads, o.suite, o.kek, o.random);
  const algId = signatureAlgorithmFor(o.signingKey);
  const sigLen = signatureLength(o.signingKey);
  const placeholder: AuthPayload = { method: AuthMethod.DIGITAL_SIGNATURE, data: authData(algId, new Uint8Array(sigLen)) };
  const tbs = dataToAuthenticate(header, [...o.payloads, { type: IkePayload.AUTH, body: placeholder }]);
  for (let i = 0; i < MAX_SIGN_ATTEMPTS; i++) {
    const sig = nodeSign('sha256', tbs, o.signingKey);
    if (sig.length !== sigLen) continue;
    const auth: AuthPayload = { method: AuthMethod.DIGITAL_SIGNATURE, data: authData(algId, sig) };
    return protectIkeMessage(header, [...o.payloads, { type: IkePayload.AUTH, body: auth }], o.suite, o.kek, o.random);
  }
  throw new CryptoError('UNSUPPORTED', 'could not produce a signature of the reserved length');
}

export type GsaRekeyRefusal =
  | 'MALFORMED' // not a well-formed IKE message with an SK payload
  | 'NOT_REKEY' // another exchange type, or a response
  | 'WRONG_SPI' // not this group's current Rekey SA
  | 'INTEGRITY' // the KEK does not decrypt / authenticate it
  | 'NO_AUTH' // a signature was required and the last inner payload is no RFC 7427 AUTH
  | 'BAD_SIGNATURE' // the AUTH does not verify with the GCKS's AUTH_KEY
  | 'REPLAY'; // Message ID not above the last accepted one (RFC 9838 §2.4.1.4)

export type GsaRekeyResult =
  | {
      ok: true;
      messageId: number;
      /**
       * Message IDs skipped since `minMessageId` (IDs grow by one per message on a Rekey SA, RFC 9838
       * §2.4.1.3): non-zero means rekeys were lost, and a GM holding LKH keys must re-register or
       * get an in-band rekey rather than apply this one on a stale key path.
       */
      skipped: number;
      payloads: IkePayloadEntry[];
    }
  | { ok: false; reason: GsaRekeyRefusal; detail: string };

export interface OpenGsaRekeyOptions {
  rekeySpi: Uint8Array;
  suite: SkSuite;
  kek: SkDirectionKeys;
  /** The AUTH_KEY (public) from registration; omit only for Implicit authentication. */
  authKey?: KeyObject;
  /** The AlgorithmIdentifier of the GCAUTH transform; defaults to the one that fits authKey. */
  signatureAlgorithm?: Uint8Array;
  /** Lowest Message ID acceptable: GSA_INITIAL_MESSAGE_ID, then last accepted + 1. */
  minMessageId: number;
}

const refuse = (reason: GsaRekeyRefusal, detail: string): GsaRekeyResult => ({ ok: false, reason, detail });

/**
 * Decrypts and authenticates a received GSA_REKEY (a member's side). Never throws: every refusal
 * is a typed reason the caller counts. On success the AUTH payload is removed from `payloads`.
 */
export function openGsaRekey(raw: Uint8Array, o: OpenGsaRekeyOptions): GsaRekeyResult {
  let msg;
  try {
    msg = ikeMessage.decode(raw);
  } catch (e) {
    return refuse('MALFORMED', e instanceof Error ? e.message : 'undecodable');
  }
  const h = msg.header;
  if (h.exchangeType !== IkeExchange.GSA_REKEY || (h.flags & IKE_FLAG_RESPONSE) !== 0) return refuse('NOT_REKEY', `exchange ${h.exchangeType}`);
  if (o.rekeySpi.length !== GIKE_REKEY_SPI_LENGTH || !equal(h.spiI, o.rekeySpi.subarray(0, 8)) || !equal(h.spiR, o.rekeySpi.subarray(8))) {
    return refuse('WRONG_SPI', 'not the current Rekey SA');
  }
  let inner: IkePayloadEntry[];
  try {
    inner = unprotectIkeMessage(raw, msg, o.suite, o.kek);
  } catch (e) {
    if (e instanceof CryptoError) return refuse('INTEGRITY', e.message);
    return refuse('MALFORMED', e instanceof Error ? e.message : 'undecodable');
  }
  let payloads = inner;
  if (o.authKey) {
    const last = inner[inner.length - 1];
    if (!last || last.type !== IkePayload.AUTH || last.unknown) return refuse('NO_AUTH', 'last inner payload is not AUTH');
    const auth = last.body as AuthPayload;
    const algId = o.signatureAlgorithm ?? signatureAlgorithmFor(o.authKey);
    const n = auth.data[0]!;
    if (auth.method !== AuthMethod.DIGITAL_SIGNATURE || n !== algId.length || auth.data.length <= 1 + n) {
      return refuse('NO_AUTH', 'AUTH is not an RFC 7427 signature of the expected algorithm');
    }
    if (!equal(auth.data.subarray(1, 1 + n), algId)) return refuse('BAD_SIGNATURE', 'AlgorithmIdentifier differs from GCAUTH');
    const sig = auth.data.slice(1 + n);
    const zeroed: AuthPayload = { method: auth.method, data: authData(algId, new Uint8Array(sig.length)) };
    const header = { ...h };
    let good = false;
    try {
      const tbs = dataToAuthenticate(header, [...inner.slice(0, -1), { type: IkePayload.AUTH, critical: last.critical, body: zeroed }]);
      // The received SK header's critical bit and reserved octet are part of A as sent.
      const skHeaderOffset = tbs.length - ikePayloadRegistry.chainLength(inner) - IKE_PAYLOAD_HEADER_LENGTH;
      const skRaw = raw.length - (msg.payloads[msg.payloads.length - 1]!.body as SkPayload).data.length - IKE_PAYLOAD_HEADER_LENGTH;
      tbs[skHeaderOffset + 1] = raw[skRaw + 1]!;
      good = nodeVerify('sha256', tbs, o.authKey, sig);
    } catch {
      good = false;
    }
    if (!good) return refuse('BAD_SIGNATURE', 'GSA_REKEY signature does not verify');
    payloads = inner.slice(0, -1);
  }
  // Replay is judged only after authentication, so forged messages cannot move the window.
  if (h.messageId < o.minMessageId) return refuse('REPLAY', `Message ID ${h.messageId} below ${o.minMessageId}`);
  return { ok: true, messageId: h.messageId, skipped: h.messageId - o.minMessageId, payloads };
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
}
