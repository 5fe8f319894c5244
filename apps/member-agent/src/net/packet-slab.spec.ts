import { describe, expect, it } from 'vitest';
import { PacketSlab } from './packet-slab.js';

describe('PacketSlab', () => {
  it('hands out packets that stay intact while later reads fill the rest of the slab', () => {
    const sut = new PacketSlab(100, 1024);
    const packets: Buffer[] = [];
    for (let i = 0; i < 40; i++) {
      const tail = sut.tail();
      expect(tail.length).toBe(100);
      const n = 1 + ((i * 37) % 100);
      tail.fill(i, 0, n);
      tail.fill(0xee, n); // what a read did not write must not leak into the packet
      packets.push(sut.take(n));
    }
    packets.forEach((p, i) => {
      expect(p.length).toBe(1 + ((i * 37) % 100));
      expect(p.every((byte) => byte === i)).toBe(true);
    });
    // 40 packets of up to 100 bytes cannot fit one 1024-byte slab: several slabs were used, and
    // packets from different slabs never share memory.
    expect(new Set(packets.map((p) => p.buffer)).size).toBeGreaterThan(1);
  });

  it('never offers less than the largest packet', () => {
    const sut = new PacketSlab(1500, 4096);
    for (let i = 0; i < 10; i++) {
      expect(sut.tail().length).toBe(1500);
      sut.take(1500);
    }
  });
});
