// Barrel of @app/crypto: import this library only through '@app/crypto'.
export {};
// Group Owner policy token (RFC 4534 after RFC 5374 §4.1.3.1) and the Group Owner's keys and CA.
export * from './policy-token.js';
export * from './group-owner.js';
// RFC 5649 AES key wrap with padding (KW_5649_128/192/256 of RFC 9838).
export * from './key-wrap.js';
// IKEv2 core (RFC 7296, RFC 5282, RFC 7427, RFC 4754, RFC 5903, RFC 8031) and X.509 chains.
export * from './errors.js';
export * from './ike-prf.js';
export * from './ike-dh.js';
export * from './ike-sk.js';
export * from './ike-auth.js';
export * from './ike-random.js';
export * as der from './der.js';
export * from './x509.js';
export * from './spki.js';
export * from './signature-check.js';
