/**
 * A JSON-safe record of an established IKE SA, so the GCKS can persist the IKE SAs it needs for
 * in-band rekeys (GSA_INBAND_REKEY) and resume them after a restart. Byte fields are hex. The
 * `keys` are secret: store them only in encrypted columns, never log them.
 */
import { parseCertificate, prfAlgorithm } from '@app/crypto';
import type { IkePath, IkeSaState } from './ike-types.js';

export interface IkeSaRecord {
  spiI: string;
  spiR: string;
  isInitiator: boolean;
  encrId: number;
  keyBits: number;
  integId: number;
  prfId: number;
  group: number;
  ni: string;
  nr: string;
  localId: { idType: number; data: string };
  peerId: { idType: number; data: string };
  /** DER of the peer's certificate, when it authenticated by signature. */
  peerCertificate?: string;
  nextRequestId: number;
  nextPeerRequestId: number;
  path: IkePath;
  /** Secret. */
  keys: { skd: string; skai: string; skar: string; skei: string; sker: string; skpi: string; skpr: string };
}

const h = (b: Uint8Array) => Buffer.from(b).toString('hex');
const b = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));

export function ikeSaToRecord(s: IkeSaState): IkeSaRecord {
  const k = s.keys;
  return {
    spiI: h(s.spiI),
    spiR: h(s.spiR),
    isInitiator: s.isInitiator,
    encrId: s.suite.sk.encrId,
    keyBits: s.suite.sk.keyBits,
    integId: s.suite.sk.integId,
    prfId: s.suite.prf.id,
    group: s.suite.group,
    ni: h(s.ni),
    nr: h(s.nr),
    localId: { idType: s.localId.idType, data: h(s.localId.data) },
    peerId: { idType: s.peerId.idType, data: h(s.peerId.data) },
    ...(s.peerCertificate ? { peerCertificate: h(s.peerCertificate.der) } : {}),
    nextRequestId: s.nextRequestId,
    nextPeerRequestId: s.nextPeerRequestId,
    path: { ...s.path },
    keys: { skd: h(k.skd), skai: h(k.skai), skar: h(k.skar), skei: h(k.skei), sker: h(k.sker), skpi: h(k.skpi), skpr: h(k.skpr) },
  };
}

export function ikeSaFromRecord(r: IkeSaRecord): IkeSaState {
  const k = r.keys;
  return {
    spiI: b(r.spiI),
    spiR: b(r.spiR),
    isInitiator: r.isInitiator,
    suite: { sk: { encrId: r.encrId, keyBits: r.keyBits, integId: r.integId }, prf: prfAlgorithm(r.prfId), group: r.group },
    keys: { skd: b(k.skd), skai: b(k.skai), skar: b(k.skar), skei: b(k.skei), sker: b(k.sker), skpi: b(k.skpi), skpr: b(k.skpr) },
    ni: b(r.ni),
    nr: b(r.nr),
    localId: { idType: r.localId.idType, data: b(r.localId.data) },
    peerId: { idType: r.peerId.idType, data: b(r.peerId.data) },
    ...(r.peerCertificate ? { peerCertificate: parseCertificate(b(r.peerCertificate)) } : {}),
    nextRequestId: r.nextRequestId,
    nextPeerRequestId: r.nextPeerRequestId,
    path: { ...r.path },
  };
}
