/**
 * One IKE socket shared by a responder and any number of initiators (a GCKS that also initiates,
 * a member that answers the GCKS's requests): routes each datagram by the header's I flag and
 * SPIs (RFC 7296 §2.6, §3.1). Messages sent by an original responder (I flag clear) go to the
 * initiator owning the initiator SPI; everything else goes to the responder. Never throws.
 */
import { ikeHeader, isFromInitiator, stripNonEspMarker } from '@app/codec';
import type { IkeInitiator } from './ike-initiator.js';
import type { IkeResponder } from './ike-responder.js';
import { IkeCounters } from './ike-sa.js';
import type { IkeInputOutcome, IkePath } from './ike-types.js';

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

export class IkeDispatcher {
  readonly counters = new IkeCounters();
  private readonly initiators = new Map<string, IkeInitiator>();

  constructor(private readonly responder?: IkeResponder) {}

  addInitiator(initiator: IkeInitiator): void {
    this.initiators.set(hex(initiator.spiI), initiator);
  }

  removeInitiator(initiator: IkeInitiator): void {
    this.initiators.delete(hex(initiator.spiI));
  }

  get initiatorCount(): number {
    return this.initiators.size;
  }

  receive(datagram: Uint8Array, path: IkePath): IkeInputOutcome {
    const raw = path.marker ? stripNonEspMarker(datagram) : datagram;
    if (raw && raw.length >= 28) {
      try {
        const h = ikeHeader.decode(raw);
        if (!isFromInitiator(h)) {
          const initiator = this.initiators.get(hex(h.spiI));
          if (initiator) return initiator.receive(datagram, path);
        }
      } catch {
        // Not a valid header: the responder (or our own counter) accounts for it.
      }
    }
    if (this.responder) return this.responder.receive(datagram, path);
    this.counters.inc('drop_no_owner');
    return 'dropped';
  }
}
