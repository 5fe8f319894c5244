// Barrel of @app/codec: import this library only through '@app/codec'.
export * from './errors.js';
export * from './cursor.js';
export * from './constants.js';
// IKEv2 (RFC 7296): header, payload chain and registry, payload bodies, messages, port 4500 framing.
export * from './ike-body.js';
export * from './ike-header.js';
export * from './ike-sa.js';
export * from './ike-simple.js';
export * from './ike-payload.js';
export * from './ike-message.js';
export * from './ike-natt.js';
// G-IKEv2 (RFC 9838): IDg, GSA, KD payload bodies (registered in ikePayloadRegistry) and policy views.
export * from './gike-attribute.js';
export * from './gike-transform.js';
export * from './gike-traffic-selector.js';
export * from './gike-idg.js';
export * from './gike-gsa.js';
export * from './gike-kd.js';
export * from './gike-policy.js';
import './gike-payloads.js';
// IP and ESP (RFC 791, RFC 8200, RFC 4303, RFC 3948): addresses, checksums, headers, ESP, UDP encapsulation.
export * from './ip.js';
export * from './ipv4.js';
export * from './ipv6.js';
export * from './esp.js';
export * from './udp-encap.js';
// Wrapped Key (RFC 9838 §4.5.3): the value of SA_KEY and WRAP_KEY attributes.
export * from './wrapped-key.js';
