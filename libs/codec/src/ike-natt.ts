/**
 * UDP port 4500 framing for IKE (RFC 3948 §2.2, §2.3): IKE messages are preceded by the 4-octet
 * non-ESP marker (zero); a single 0xFF octet is a NAT-keepalive; anything else starts with a
 * non-zero ESP SPI. The classification itself is the datapath's `classifyUdpEncap`, so IKE and
 * ESP agree on what a datagram is.
 */
import { NON_ESP_MARKER_LENGTH } from './constants.js';
import { classifyUdpEncap, type UdpEncapKind } from './udp-encap.js';

export type Port4500Kind = UdpEncapKind;

/** Tells the kinds of datagram on port 4500 apart by their first octets (RFC 3948 §2.2-2.3). */
export function classifyPort4500(datagram: Uint8Array): Port4500Kind {
  return classifyUdpEncap(datagram);
}

/** A new buffer: the non-ESP marker followed by the IKE message. */
export function addNonEspMarker(ikeMessage: Uint8Array): Uint8Array {
  const out = new Uint8Array(NON_ESP_MARKER_LENGTH + ikeMessage.length);
  out.set(ikeMessage, NON_ESP_MARKER_LENGTH);
  return out;
}

/** A view of the IKE message after the marker, or undefined if the datagram is not IKE. */
export function stripNonEspMarker(datagram: Uint8Array): Uint8Array | undefined {
  return classifyUdpEncap(datagram) === 'ike' ? datagram.subarray(NON_ESP_MARKER_LENGTH) : undefined;
}
