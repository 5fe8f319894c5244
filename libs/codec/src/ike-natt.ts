/**
 * UDP port 4500 framing (RFC 3948 §2.2, §2.3): IKE messages are preceded by the 4-octet
 * non-ESP marker (zero); a single 0xFF octet is a NAT-keepalive; anything else starts with a
 * non-zero ESP SPI.
 */
import { NAT_KEEPALIVE_OCTET, NON_ESP_MARKER_LENGTH } from './constants.js';

export type Port4500Kind = 'ike' | 'esp' | 'keepalive' | 'invalid';

/** Tells the kinds of datagram apart by their first octets (RFC 3948 §2.2-2.3). */
export function classifyPort4500(datagram: Uint8Array): Port4500Kind {
  if (datagram.length === 1 && datagram[0] === NAT_KEEPALIVE_OCTET) return 'keepalive';
  if (datagram.length < NON_ESP_MARKER_LENGTH) return 'invalid';
  const zero = datagram[0] === 0 && datagram[1] === 0 && datagram[2] === 0 && datagram[3] === 0;
  return zero ? (datagram.length > NON_ESP_MARKER_LENGTH ? 'ike' : 'invalid') : 'esp';
}

/** A new buffer: the non-ESP marker followed by the IKE message. */
export function addNonEspMarker(ikeMessage: Uint8Array): Uint8Array {
  const out = new Uint8Array(NON_ESP_MARKER_LENGTH + ikeMessage.length);
  out.set(ikeMessage, NON_ESP_MARKER_LENGTH);
  return out;
}

/** A view of the IKE message after the marker, or undefined if the datagram is not IKE. */
export function stripNonEspMarker(datagram: Uint8Array): Uint8Array | undefined {
  return classifyPort4500(datagram) === 'ike' ? datagram.subarray(NON_ESP_MARKER_LENGTH) : undefined;
}
