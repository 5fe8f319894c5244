import { randomFillSync } from 'node:crypto';

/** Fills a buffer with cryptographically strong random bytes. Injected so tests can seed it. */
export type RandomFill = (buf: Uint8Array) => void;

/** The production source: node:crypto's CSPRNG. */
export const cryptoRandomFill: RandomFill = (buf) => {
  randomFillSync(buf);
};
