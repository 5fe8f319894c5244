import { IkePayload } from './constants.js';
import { ikePayloadRegistry } from './ike-payload.js';
import { idgPayload, type IdgPayload } from './gike-idg.js';
import { gsaPayload, type GsaPayload } from './gike-gsa.js';
import { kdPayload, type KdPayload } from './gike-kd.js';

/*
 * Plugs the RFC 9838 payload bodies into the IKEv2 payload chain (RFC 9838 §4.2, §4.4, §4.5), so
 * `ikeMessage.decode` returns typed IDg, GSA and KD bodies and `payload(IkePayload.GSA, …)` types.
 * SAg (RFC 9838 §4.3) is payload type 33 and already decodes as an SA payload.
 */
declare module './ike-payload.js' {
  interface IkePayloadBodies {
    50: IdgPayload;
    51: GsaPayload;
    52: KdPayload;
  }
}

ikePayloadRegistry.register(IkePayload.IDg, idgPayload, 'IDg');
ikePayloadRegistry.register(IkePayload.GSA, gsaPayload, 'GSA');
ikePayloadRegistry.register(IkePayload.KD, kdPayload, 'KD');
