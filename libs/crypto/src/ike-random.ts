/**
 * Randomness drawn in blocks: IKE needs many short random strings per exchange (SPI, nonce, KE
 * private value, IVs; RFC 7296 §2.10, §3.14), and every call into node's CSPRNG has a fixed cost
 * of a few microseconds. The pool reads `blockSize` octets at a time from the injected source,
 * hands out copies in order, and zeroes what it handed out (in the source's array, which is the
 * pool's to keep: the source must return fresh octets, as node's `randomBytes` does). A request
 * larger than the block is served by the source directly. The output stream is the source's
 * stream, only batched.
 */
import type { RandomBytes } from './errors.js';

export const RANDOM_POOL_BLOCK = 4096;

export function randomPool(source: RandomBytes, blockSize = RANDOM_POOL_BLOCK): RandomBytes {
  if (!Number.isInteger(blockSize) || blockSize < 1) throw new RangeError(`random pool block of ${blockSize}`);
  let pool: Uint8Array = new Uint8Array(0);
  let used = 0;
  return (n: number) => {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`random octets: ${n}`);
    if (n > blockSize) return source(n);
    const out = new Uint8Array(n);
    let o = 0;
    while (o < n) {
      if (used === pool.length) {
        pool = source(blockSize);
        used = 0;
      }
      const take = Math.min(n - o, pool.length - used);
      out.set(pool.subarray(used, used + take), o);
      pool.fill(0, used, used + take);
      used += take;
      o += take;
    }
    return out;
  };
}
