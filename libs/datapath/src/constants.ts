/**
 * Datapath constants. Specification values carry their RFC section; implementation limits
 * (queue depths, cache sizes) are grouped below them.
 */

// Specification -------------------------------------------------------------------------------

/** Smallest anti-replay window when the check is on (RFC 4303 §3.4.3: 32 minimum, 64 default). */
export const REPLAY_WINDOW_MIN = 64;
/** Largest window we keep (RFC 6479 bitmaps scale; 4096 is this datapath's cap). */
export const REPLAY_WINDOW_MAX = 4096;
/** Without ESN a sender must not cycle the 32-bit counter (RFC 4303 §3.3.3). */
export const SEQUENCE_MAX = 0xffffffff;
/** RFC 6054 §3 / RFC 9838 GWP_SENDER_ID_BITS: the sender ID occupies at most 32 IV bits here. */
export const SENDER_ID_BITS_MAX = 32;

// Implementation limits -----------------------------------------------------------------------

/** Default packets held per group while registration runs (RFC 5374 §4.1.1 trigger). */
export const DEFAULT_HOLD_QUEUE = 8;
/** Upper bound on a configured hold queue. */
export const MAX_HOLD_QUEUE = 256;
/** Most groups with held packets at once. */
export const MAX_HOLD_GROUPS = 64;
/** Held packets older than this are dropped. */
export const DEFAULT_HOLD_MS = 10_000;
/** A group's registration-needed event is raised at most this often. */
export const DEFAULT_REGISTRATION_RETRY_MS = 5_000;
/** An unknown SPI is reported at most this often, per SPI. */
export const UNKNOWN_SPI_REPORT_MS = 1_000;
/** Bound on the rate-limit map of unknown SPIs. */
export const MAX_UNKNOWN_SPI_TRACKED = 1024;
/**
 * Output buffers are carved from slabs of this size (like Buffer's pool, but 256 KiB): one
 * ArrayBuffer per ~180 full-size packets instead of one per few, which is what the GC pays for.
 */
export const OUTPUT_SLAB_BYTES = 256 * 1024;
/** Bound on the textual-address cache. */
export const ADDRESS_CACHE_SIZE = 4096;
