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
