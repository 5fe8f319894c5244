/**
 * One ESP case as test/interop/esp-scapy.py builds it and as test/vectors/esp/scapy-vectors.json
 * stores it, and the SA our receive side installs for it. Shared by the scapy interop test that
 * writes the vectors and the golden-vector test that replays them.
 */
import type { SaConfig } from '@app/datapath';

export interface ScapyCase {
  spi: number;
  mode: 'tunnel' | 'transport';
  preservation: 'none' | 'both';
  family: 4 | 6;
  transform: 'gcm' | 'cbc';
  keyBits: 128 | 256;
  encKey: string;
  intKey: string;
  innerSrc: string;
  innerDst: string;
  outerSrc: string;
  outerDst: string;
  udp: boolean;
  seq: number;
  iv: string;
  payload: string;
  sport: number;
  dport: number;
  /** ESN high half (RFC 4303 §2.2.1); absent = 32-bit sequence numbers. */
  esn?: number;
}

/** What of a case the SA depends on (the stored vectors keep no seq, IV or payload in the type). */
export type ScapySaFields = Pick<ScapyCase, 'spi' | 'mode' | 'preservation' | 'transform' | 'keyBits' | 'encKey' | 'intKey' | 'innerDst' | 'udp' | 'esn'>;

/** The SA our side installs for a scapy case (same keys), with `extra` fields overriding. */
export function saForScapyCase(c: ScapySaFields, extra: Partial<SaConfig> = {}): SaConfig {
  return {
    spi: c.spi,
    policyId: 'p',
    destination: c.innerDst,
    mode: c.mode,
    addressPreservation: c.preservation,
    transform: { kind: c.transform === 'gcm' ? 'aes-gcm-16' : 'aes-cbc-hmac-sha256', keyBits: c.keyBits },
    encryptionKey: Buffer.from(c.encKey, 'hex'),
    integrityKey: c.transform === 'cbc' ? Buffer.from(c.intKey, 'hex') : undefined,
    replayWindow: 64,
    udpEncapsulation: c.udp ? {} : false,
    extendedSequenceNumbers: c.esn !== undefined,
    ...extra,
  };
}
