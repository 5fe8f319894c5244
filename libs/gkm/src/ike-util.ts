/** Small helpers shared by the IKEv2 state machines (not exported from the barrel except ikeNotify). */
import { IkePayload, payload, type IkePayloadEntry } from '@app/codec';
import { certReqHash as caHash } from '@app/crypto';
import type { IkePeerPolicy } from './ike-types.js';

const EMPTY: Uint8Array = new Uint8Array(0);

/** A Notify payload about the IKE SA (protocol 0, no SPI). */
export function ikeNotify(notifyType: number, data: Uint8Array = EMPTY): IkePayloadEntry {
  return payload(IkePayload.NOTIFY, { protocolId: 0, notifyType, spi: EMPTY, data });
}
export const notify = ikeNotify;

export function hashList(ids: readonly number[]): Uint8Array {
  const out = new Uint8Array(ids.length * 2);
  ids.forEach((v, i) => {
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

export function parseHashList(data: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i + 1 < data.length && out.length < 32; i += 2) out.push((data[i]! << 8) | data[i + 1]!);
  return out;
}

export function certReqHashes(peer: IkePeerPolicy): Uint8Array[] {
  if (!peer.trustAnchors?.length) return [];
  // One CERTREQ with the concatenated SHA-1 key hashes of our anchors (§3.7).
  return [concatAll(peer.trustAnchors.map((a) => caHash(a)))];
}

function concatAll(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function eq(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function h0(spi: Uint8Array): boolean {
  return spi.every((b) => b === 0);
}
