/**
 * Receive buffers for the FFI binds. Each packet is read into the free tail of a large slab and
 * handed on as a view of it, so a packet stays valid for as long as anyone holds it (the datapath
 * may queue it) while the bind allocates one slab per few hundred packets instead of one buffer
 * per packet. When the tail is too short for a maximal packet, a fresh slab is started; the old
 * one is freed by the garbage collector once its last view is gone.
 */
export class PacketSlab {
  private slab: Buffer;
  private used = 0;

  constructor(
    /** The largest packet a single read may return (the read is offered this many bytes). */
    readonly maxPacket: number,
    private readonly slabSize = Math.max(256 * 1024, maxPacket * 4),
  ) {
    this.slab = Buffer.allocUnsafeSlow(this.slabSize);
  }

  /** Space for the next read: at least `maxPacket` bytes, not yet handed out. */
  tail(): Buffer {
    if (this.slabSize - this.used < this.maxPacket) {
      this.slab = Buffer.allocUnsafeSlow(this.slabSize);
      this.used = 0;
    }
    return this.slab.subarray(this.used, this.used + this.maxPacket);
  }

  /** Hands out the first `length` bytes of the last `tail()` as a packet (8-byte aligned next). */
  take(length: number): Buffer {
    const packet = this.slab.subarray(this.used, this.used + length);
    this.used += (length + 7) & ~7;
    return packet;
  }
}
