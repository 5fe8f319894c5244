/** Injected time and randomness, so services can be tested with fixed values. */
export interface Clock {
  now(): Date;
}
export const CLOCK = Symbol('CLOCK');
export const systemClock: Clock = { now: () => new Date() };

export type RandomBytes = (n: number) => Buffer;
export const RANDOM_BYTES = Symbol('RANDOM_BYTES');
