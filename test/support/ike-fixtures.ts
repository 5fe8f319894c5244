/**
 * Fixtures for IKEv2 tests: a manual clock, an in-memory datagram network between state
 * machines, the two interop proposals, and an ECDSA P-256 CA with member certificates.
 */
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { EncrId, IdType, IntegId, KeGroup, PrfId, type IdPayload } from '@app/codec';
import { issueCertificate, parseCertificate, type Certificate } from '@app/crypto';
import type { IkeClock, IkePath, IkeProposalConfig, IkeTimer } from '@app/gkm';

export const random = (n: number): Uint8Array => new Uint8Array(randomBytes(n));

/** AES-GCM-16-256 / PRF-HMAC-SHA2-256 / ECP-256. */
export const PROPOSAL_GCM_ECP256: IkeProposalConfig = {
  encrId: EncrId.ENCR_AES_GCM_16,
  keyBits: 256,
  prfId: PrfId.PRF_HMAC_SHA2_256,
  group: KeGroup.ECP_256,
};

/** AES-CBC-256 / HMAC-SHA2-256-128 / PRF-HMAC-SHA2-256 / Curve25519. */
export const PROPOSAL_CBC_X25519: IkeProposalConfig = {
  encrId: EncrId.ENCR_AES_CBC,
  keyBits: 256,
  integId: IntegId.AUTH_HMAC_SHA2_256_128,
  prfId: PrfId.PRF_HMAC_SHA2_256,
  group: KeGroup.CURVE25519,
};

export const fqdn = (name: string): IdPayload => ({ idType: IdType.ID_FQDN, data: new TextEncoder().encode(name) });

/** A clock that only moves when told to. */
export class ManualClock implements IkeClock {
  t = Date.parse('2026-06-01T00:00:00Z');
  private timers: { at: number; fn: () => void; live: boolean }[] = [];
  now(): number {
    return this.t;
  }
  setTimer(ms: number, fn: () => void): IkeTimer {
    const t = { at: this.t + ms, fn, live: true };
    this.timers.push(t);
    return { cancel: () => void (t.live = false) };
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.live && t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.t = due.at;
      due.live = false;
      due.fn();
    }
    this.t = end;
    this.timers = this.timers.filter((t) => t.live);
  }
}

export interface Datagram {
  bytes: Uint8Array;
  path: IkePath;
}

export function pathBetween(a: string, b: string, port = 500, marker = false): { ab: IkePath; ba: IkePath } {
  return {
    ab: { localAddress: a, localPort: port, remoteAddress: b, remotePort: port, marker },
    ba: { localAddress: b, localPort: port, remoteAddress: a, remotePort: port, marker },
  };
}

/** Swaps local and remote: the path as the receiver sees it. */
export function reversePath(p: IkePath): IkePath {
  return { localAddress: p.remoteAddress, localPort: p.remotePort, remoteAddress: p.localAddress, remotePort: p.localPort, marker: p.marker };
}

export interface TestPki {
  caKey: KeyObject;
  ca: Certificate;
  member(name: string, opts?: { notAfter?: Date; issuerKey?: KeyObject; issuer?: Certificate }): {
    key: KeyObject;
    der: Uint8Array;
  };
}

export function makePki(now: Date, cn = 'GroupSec Test CA'): TestPki {
  const day = 86_400_000;
  const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const caDer = issueCertificate({
    subject: { cn, o: 'GroupSec' },
    publicKey: kp.publicKey,
    issuerKey: kp.privateKey,
    serial: random(8),
    notBefore: new Date(now.getTime() - day),
    notAfter: new Date(now.getTime() + 3650 * day),
    ca: true,
  });
  const ca = parseCertificate(caDer);
  return {
    caKey: kp.privateKey,
    ca,
    member(name, o = {}) {
      const m = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const der = issueCertificate({
        subject: { cn: name, o: 'GroupSec' },
        publicKey: m.publicKey,
        issuerKey: o.issuerKey ?? kp.privateKey,
        issuer: o.issuer ?? ca,
        serial: random(8),
        notBefore: new Date(now.getTime() - day),
        notAfter: o.notAfter ?? new Date(now.getTime() + 365 * day),
        ca: false,
        dns: [name],
      });
      return { key: m.privateKey, der };
    },
  };
}
