/** Injected time and randomness, so services can be tested with fixed values. */
export interface Clock {
  now(): Date;
}
export const CLOCK = Symbol('CLOCK');
export const systemClock: Clock = { now: () => new Date() };

export type RandomBytes = (n: number) => Buffer;
export const RANDOM_BYTES = Symbol('RANDOM_BYTES');
/**
 * RANDOM_BYTES drawn in 4 KB blocks (`randomPool`): for the many short draws of the registration
 * path (SPIs, nonces, KE private values, IVs, member ids, TEKs) and sealing IVs. One per app.
 */
export const RANDOM_POOL = Symbol('RANDOM_POOL');
