// Barrel of @app/gkm: import this library only through '@app/gkm'.
export {};
// G-IKEv2 group SAs (RFC 9838): key sizes and wrapping, GSA/KD building (GCKS), opening (GM), GSA_REKEY.
export * from './gsa-keys.js';
export * from './gsa-builder.js';
export * from './gsa-member.js';
export * from './gsa-rekey.js';
export * from './group-token.js';
export * from './group-schedule.js';
export * from './group-sender-id.js';
export * from './group-registration.js';
// IKEv2 SA setup (RFC 7296): initiator and responder state machines, established IKE SAs.
export * from './ike-types.js';
export * from './ike-proposal.js';
export * from './ike-sa.js';
export * from './ike-initiator.js';
export * from './ike-responder.js';
export * from './ike-sa-record.js';
export * from './ike-dispatcher.js';
export { ikeNotify } from './ike-util.js';
