import { describe, expect, it } from 'vitest';
import { CodecError, Cursor } from '@app/codec';

describe('Cursor', () => {
  it('reads big-endian integers and refuses to read past its frame', () => {
    const sut = new Cursor(Uint8Array.from([1, 2, 3, 4, 5, 6, 0xff, 0xff, 0xff, 0xff]));
    expect(sut.u16()).toBe(0x0102);
    const child = sut.frame(4);
    expect(child.u32()).toBe(0x03040506);
    expect(() => child.u8()).toThrowError(CodecError);
    expect(sut.u32()).toBe(0xffffffff);
    expect(() => sut.u8()).toThrow(/TRUNCATED/);
  });

  it('reports unread bytes as TRAILING_BYTES with the offset', () => {
    const sut = new Cursor(new Uint8Array(3));
    sut.u8();
    try {
      sut.done('test');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(CodecError);
      expect((e as CodecError).code).toBe('TRAILING_BYTES');
      expect((e as CodecError).offset).toBe(1);
    }
  });
});
