import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyWrapError, aesKeyUnwrapPad, aesKeyWrapPad, keyWrapLength } from './key-wrap.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// RFC 5649 §6, both examples use this 192-bit KEK.
const KEK = hex('5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8');

describe('RFC 5649 AES key wrap with padding', () => {
  it('wraps the 20-octet key of RFC 5649 §6 to the published ciphertext', () => {
    const key = hex('c37b7e6492584340 bed1220780894115 5068f738');
    const expected = hex('138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a');
    const sut = aesKeyWrapPad(KEK, key);
    expect(sut.toString('hex')).toBe(expected.toString('hex'));
    expect(aesKeyUnwrapPad(KEK, expected).toString('hex')).toBe(key.toString('hex'));
  });

  it('wraps the 7-octet key of RFC 5649 §6 (single-block case) to the published ciphertext', () => {
    const key = hex('466f7250617369');
    const expected = hex('afbeb0f07dfbf541 9200f2ccb50bb24f');
    const sut = aesKeyWrapPad(KEK, key);
    expect(sut.toString('hex')).toBe(expected.toString('hex'));
    expect(aesKeyUnwrapPad(KEK, expected).toString('hex')).toBe(key.toString('hex'));
  });

  it.each([16, 24, 32])('round-trips keys under a %i-octet KEK with the RFC 5649 length', (kekLen) => {
    const kek = randomBytes(kekLen);
    for (const len of [1, 7, 8, 9, 16, 24, 32, 36]) {
      const key = randomBytes(len);
      const wrapped = aesKeyWrapPad(kek, key);
      expect(wrapped.length).toBe(keyWrapLength(len));
      expect(aesKeyUnwrapPad(kek, wrapped).equals(key)).toBe(true);
    }
  });

  it('rejects a wrong KEK and every single-bit change with INTEGRITY', () => {
    const kek = randomBytes(16);
    const wrapped = aesKeyWrapPad(kek, randomBytes(16));
    expect(() => aesKeyUnwrapPad(randomBytes(16), wrapped)).toThrow(KeyWrapError);
    for (let bit = 0; bit < wrapped.length * 8; bit += 7) {
      const bad = Buffer.from(wrapped);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      try {
        aesKeyUnwrapPad(kek, bad);
        expect.unreachable('tampered wrap accepted');
      } catch (e) {
        expect((e as KeyWrapError).code).toBe('INTEGRITY');
      }
    }
  });

  it('rejects bad sizes with typed errors', () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as KeyWrapError).code;
      }
      return 'none';
    };
    expect(code(() => aesKeyWrapPad(randomBytes(20), randomBytes(16)))).toBe('BAD_KEK_SIZE');
    expect(code(() => aesKeyWrapPad(randomBytes(16), new Uint8Array(0)))).toBe('BAD_LENGTH');
    expect(code(() => aesKeyUnwrapPad(randomBytes(16), randomBytes(8)))).toBe('BAD_LENGTH');
    expect(code(() => aesKeyUnwrapPad(randomBytes(16), randomBytes(23)))).toBe('BAD_LENGTH');
    expect(code(() => aesKeyUnwrapPad(randomBytes(16), hex('138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b')))).toBe('BAD_LENGTH');
  });
});
