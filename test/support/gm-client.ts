import { createSocket, type Socket } from 'node:dgram';
import { randomBytes, type KeyObject } from 'node:crypto';
import { EncrId, IdType, IkeExchange, KeGroup, PrfId, idgKeyId, stripNonEspMarker, type IdPayload, type IkePayloadEntry } from '@app/codec';
import type { Certificate } from '@app/crypto';
import {
  IkeInitiator,
  acceptGroupPolicyToken,
  openGroupPayloads,
  openGsaRekey,
  openRegistrationResponse,
  registrationRequestPayloads,
  deriveGskW,
  type GsaRekeyRefusal,
  type IkeClock,
  type IkePath,
  type IkeProposalConfig,
  type IkeSa,
  type OpenedDataSa,
  type RegistrationResult,
} from '@app/gkm';

/**
 * A minimal G-IKEv2 group member for tests and the load generator (the full agent is issue 6):
 * IKE_SA_INIT + GSA_AUTH over loopback UDP with RFC 3948 framing, the registration response opened
 * and the Group Owner's token checked, then GSA_REKEY received on the group's rekey address and
 * GSA_INBAND_REKEY answered on the IKE SA. Keeps the key path as a map of Key ID -> key.
 */

const rnd = (n: number) => new Uint8Array(randomBytes(n));
const fqdn = (name: string): IdPayload => ({ idType: IdType.ID_FQDN, data: new TextEncoder().encode(name) });
export const GM_PROPOSAL: IkeProposalConfig = { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 256, prfId: PrfId.PRF_HMAC_SHA2_256, group: KeGroup.ECP_256 };
export const realIkeClock: IkeClock = {
  now: () => Date.now(),
  setTimer: (ms, fn) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};
const REKEY_SUITE = { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 256, integId: 0 };

export interface GmCredentials {
  identity: string;
  /** Certificate auth: our key and DER certificate chain (leaf first). */
  key?: KeyObject;
  certificates?: Uint8Array[];
  /** PSK auth. */
  psk?: Uint8Array;
}

export interface GmRegisterOptions {
  gcksPort: number;
  group: string;
  speaker?: boolean;
  /** Group CA (to check the GCKS certificate). */
  ca: Certificate;
  /** Group Owner anchor (PEM) to check the policy token; omitted = token not checked. */
  ownerAnchor?: string;
  proposals?: IkeProposalConfig[];
}

export type RekeyEvent =
  | { ok: true; messageId: number; newRekeySa: boolean; teks: number; edition?: number }
  | { ok: false; reason: GsaRekeyRefusal | 'PAYLOADS' | 'TOKEN'; detail: string };

export class GmClient {
  readonly socket: Socket;
  private initiator?: IkeInitiator;
  sa?: IkeSa;
  private localPort = 0;
  /** Group state after registration. */
  rekeySpi?: Uint8Array;
  private kek?: { enc: Uint8Array; integ: Uint8Array; gskW: Uint8Array };
  minMessageId = 0;
  authKey?: KeyObject;
  readonly known = new Map<number, Uint8Array>();
  teks: OpenedDataSa[] = [];
  senderIds: number[] = [];
  edition?: number;
  readonly rekeys: RekeyEvent[] = [];
  readonly inband: RekeyEvent[] = [];
  private rekeySocket?: Socket;
  private waiters: (() => void)[] = [];

  constructor(readonly creds: GmCredentials) {
    this.socket = createSocket({ type: 'udp4' });
  }

  async open(): Promise<void> {
    await new Promise<void>((res) => this.socket.bind({ address: '127.0.0.1', port: 0 }, () => res()));
    this.localPort = this.socket.address().port;
    this.socket.on('message', (msg, rinfo) => {
      const path: IkePath = { remoteAddress: rinfo.address, remotePort: rinfo.port, localAddress: '127.0.0.1', localPort: this.localPort, marker: true };
      if (this.sa && !this.sa.deleted && this.initiator?.phase === 'established') {
        // Requests from the GCKS (in-band rekey, Delete) on the established SA.
        this.initiator.receive(msg, path);
      } else this.initiator?.receive(msg, path);
    });
  }

  /** Runs IKE_SA_INIT + GSA_AUTH; returns the opened result (refusals included, never throws for them). */
  async register(o: GmRegisterOptions): Promise<RegistrationResult | { ok: false; reason: 'IKE'; notify?: number; detail: string }> {
    const path: IkePath = { remoteAddress: '127.0.0.1', remotePort: o.gcksPort, localAddress: '127.0.0.1', localPort: this.localPort, marker: true };
    const c = this.creds;
    this.initiator = new IkeInitiator({
      transport: { send: (d, p) => this.socket.send(d, p.remotePort, p.remoteAddress) },
      clock: realIkeClock,
      random: rnd,
      path,
      proposals: o.proposals ?? [GM_PROPOSAL],
      localId: fqdn(c.identity),
      localAuth: c.psk ? { kind: 'psk' } : { kind: 'signature', privateKey: c.key!, certificates: c.certificates! },
      peer: c.psk ? { psk: c.psk } : { trustAnchors: [o.ca] },
      authExchangeType: IkeExchange.GSA_AUTH,
      authPayloads: registrationRequestPayloads(idgKeyId(o.group), { speaker: o.speaker ?? false }),
      retransmit: { timeoutMs: 500, tries: 3 },
    });
    let est;
    try {
      est = await this.initiator.start();
    } catch (e) {
      const err = e as { notifyType?: number; message: string };
      return { ok: false, reason: 'IKE', ...(err.notifyType !== undefined ? { notify: err.notifyType } : {}), detail: err.message };
    }
    this.sa = est.sa;
    this.sa.onRequest = (type, payloads) => this.onGcksRequest(type, payloads);
    return this.accept(est.authResponse, o);
  }

  /** GSA_REGISTRATION for another group on the same IKE SA (RFC 9838 §2.3.2). */
  /** The client then follows that group (its keys replace the ones held). */
  async registerMore(o: Omit<GmRegisterOptions, 'gcksPort' | 'ca'>): Promise<RegistrationResult> {
    const resp = await this.sa!.request(IkeExchange.GSA_REGISTRATION, registrationRequestPayloads(idgKeyId(o.group), { speaker: o.speaker ?? false }));
    return this.accept(resp, o);
  }

  private accept(response: IkePayloadEntry[], o: Pick<GmRegisterOptions, 'ownerAnchor' | 'group' | 'speaker'>): RegistrationResult {
    const r = openRegistrationResponse(response, this.sa!.state, {
      ...(o.ownerAnchor
        ? { token: { anchor: o.ownerAnchor, now: new Date(), groupName: o.group, self: { identity: { idType: IdType.ID_FQDN, value: this.creds.identity }, role: o.speaker ? 'speaker' : 'receiver' } } }
        : {}),
    });
    if (!r.ok) return r;
    const g = r.group;
    this.rekeySpi = g.rekey!.spi;
    this.kek = { enc: g.rekey!.gskE, integ: g.rekey!.gskA, gskW: g.rekey!.gskW };
    this.minMessageId = g.rekey!.attributes.initialMessageId ?? 0;
    this.authKey = g.authKey;
    for (const [id, k] of g.wrapKeys) this.known.set(id, k);
    this.teks = g.data;
    this.senderIds = g.senderIds;
    this.edition = r.token?.edition;
    return r;
  }

  /** Listens for GSA_REKEY on the group's rekey address (loopback multicast). */
  async listenRekeys(address: string, port: number, ownerAnchor?: string, groupName?: string): Promise<void> {
    const s = createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((res) => s.bind({ port, address }, () => res()));
    s.addMembership(address, '127.0.0.1');
    s.on('message', (msg) => {
      const raw = port === 4500 ? stripNonEspMarker(msg) : msg;
      if (raw) this.rekeys.push(this.onRekey(raw, ownerAnchor, groupName));
      for (const w of this.waiters.splice(0)) w();
    });
    this.rekeySocket = s;
  }

  /** Feeds one GSA_REKEY (exposed so tests can replay or forge). */
  onRekey(raw: Uint8Array, ownerAnchor?: string, groupName?: string): RekeyEvent {
    if (!this.kek || !this.rekeySpi) return { ok: false, reason: 'WRONG_SPI', detail: 'not registered' };
    const r = openGsaRekey(raw, { rekeySpi: this.rekeySpi, suite: REKEY_SUITE, kek: this.kek, authKey: this.authKey!, minMessageId: this.minMessageId });
    if (!r.ok) return r;
    let g;
    try {
      g = openGroupPayloads(r.payloads, { gskW: this.kek.gskW, knownKeys: this.known, registration: false });
    } catch (e) {
      return { ok: false, reason: 'PAYLOADS', detail: (e as Error).message };
    }
    let edition: number | undefined;
    if (g.groupWide.policyToken && ownerAnchor && groupName) {
      const t = acceptGroupPolicyToken(g.groupWide, {
        anchor: ownerAnchor,
        now: new Date(),
        groupName,
        gcksIdentity: { idType: IdType.ID_FQDN, value: 'gcks.groupsec.local' },
        ...(this.edition !== undefined ? { heldEdition: this.edition } : {}),
      });
      if (!t.ok) return { ok: false, reason: 'TOKEN', detail: t.reason };
      edition = this.edition = t.token.edition;
    }
    for (const [id, k] of g.wrapKeys) this.known.set(id, k);
    if (g.data.length > 0) this.teks = g.data;
    this.minMessageId = r.messageId + 1;
    const before = this.rekeySpi;
    if (g.rekey) {
      this.rekeySpi = g.rekey.spi;
      this.kek = { enc: g.rekey.gskE, integ: g.rekey.gskA, gskW: g.rekey.gskW };
      this.minMessageId = g.rekey.attributes.initialMessageId ?? 0;
    }
    return { ok: true, messageId: r.messageId, newRekeySa: g.rekey !== undefined && !Buffer.from(g.rekey.spi).equals(Buffer.from(before)), teks: g.data.length, ...(edition !== undefined ? { edition } : {}) };
  }

  private onGcksRequest(type: number, payloads: IkePayloadEntry[]): IkePayloadEntry[] | undefined {
    if (type !== IkeExchange.GSA_INBAND_REKEY) return undefined;
    try {
      const gskW = deriveGskW(this.sa!.state.suite.prf, this.sa!.state.keys.skd, 3);
      const g = openGroupPayloads(payloads, { gskW, registration: false, inband: true });
      if (g.rekey) {
        this.rekeySpi = g.rekey.spi;
        this.kek = { enc: g.rekey.gskE, integ: g.rekey.gskA, gskW: g.rekey.gskW };
      }
      if (g.data.length > 0) this.teks = g.data;
      this.inband.push({ ok: true, messageId: -1, newRekeySa: g.rekey !== undefined, teks: g.data.length });
    } catch (e) {
      this.inband.push({ ok: false, reason: 'PAYLOADS', detail: (e as Error).message });
    }
    for (const w of this.waiters.splice(0)) w();
    return [];
  }

  /** Resolves once `pred` holds (checked after each received rekey), or rejects after `ms`. */
  waitFor(pred: () => boolean, ms = 5000): Promise<void> {
    return new Promise((resolve, reject) => {
      if (pred()) return resolve();
      const t = setTimeout(() => reject(new Error('timed out waiting for the GCKS')), ms);
      const check = () => {
        if (pred()) {
          clearTimeout(t);
          resolve();
        } else this.waiters.push(check);
      };
      this.waiters.push(check);
    });
  }

  /** De-registers: INFORMATIONAL Delete of the IKE SA. */
  async deregister(): Promise<void> {
    await this.sa?.delete();
  }

  close(): void {
    this.initiator = undefined;
    this.sa?.close();
    this.socket.close();
    this.rekeySocket?.close();
  }
}
