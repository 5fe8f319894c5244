/**
 * Constants of @app/lkh. Specification values cite their source; the rest are our choices.
 *
 * Key IDs (the 32-bit Key ID / KWK ID of RFC 9838 §4.5.4). RFC 9838 Appendix A leaves their
 * assignment to the GCKS; ours are structured so that a member can tell which node of the tree a
 * key belongs to and which version of that node it is:
 *
 *     Key ID = (node + 1) * 2^8 + (version mod 2^8)
 *
 * `node` is the node's index in the tree layout (see layout.ts: leaves first, level by level,
 * indices stable when the tree grows a new root) and `version` counts the node's key replacements
 * (1 for its first key). Because node + 1 >= 1, no LKH Key ID is 0, which RFC 9838 reserves for the
 * SA keying material, and node + 1 < 2^24 bounds the tree to 16,777,215 nodes. Eight version bits are
 * enough because rekeys are also numbered by an epoch: a member never compares versions more than
 * one rekey apart, and RFC 1982 serial arithmetic on the low byte tells "next" from "older".
 */

/** Bits of the Key ID that carry the key's version (low bits). */
export const KEY_ID_VERSION_BITS = 8;
/** Mask of the version bits. */
export const KEY_ID_VERSION_MASK = (1 << KEY_ID_VERSION_BITS) - 1;
/** Multiplier of (node + 1) in a Key ID. */
export const KEY_ID_NODE_FACTOR = 1 << KEY_ID_VERSION_BITS;
/** Largest node + 1 that fits (24 bits): the tree holds at most this many nodes. */
export const KEY_ID_MAX_NODES = 2 ** (32 - KEY_ID_VERSION_BITS) - 1;
/** Serial-number window (RFC 1982 §3.2 with SERIAL_BITS = 8): differences below it are "newer". */
export const KEY_ID_VERSION_HALF = 1 << (KEY_ID_VERSION_BITS - 1);

/** Tree degree limits and default (issue 4: d in 2..16, default 4). */
export const LKH_MIN_DEGREE = 2;
export const LKH_MAX_DEGREE = 16;
export const LKH_DEFAULT_DEGREE = 4;

/** Node key sizes: AES-128/192/256, matching KW_5649_128/192/256 (RFC 9838 §4.4.2.1.2). */
export const LKH_KEY_SIZES = [16, 24, 32] as const;
export type LkhKeySize = (typeof LKH_KEY_SIZES)[number];
export const LKH_DEFAULT_KEY_SIZE: LkhKeySize = 16;

/** The root starts one level above the leaves, so an empty tree has room for d members. */
export const LKH_MIN_HEIGHT = 1;

/** Most wraps a member accepts in one rekey (a bound against hostile input, not a spec value). */
export const LKH_MAX_WRAPS_PER_REKEY = 1 << 22;

/** Sealing of node keys at rest: AES-256-GCM (NIST SP 800-38D) with a 96-bit IV and 128-bit tag. */
export const SEAL_KEK_LENGTH = 32;
export const SEAL_IV_LENGTH = 12;
export const SEAL_TAG_LENGTH = 16;
/** Domain label bound into the AAD of every sealed node key. */
export const SEAL_AAD_LABEL = 'groupsec lkh node key v1';
