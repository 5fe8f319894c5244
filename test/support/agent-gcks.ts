/**
 * A small in-process GCKS for the member agent's tests, built only from the libraries (libs/gkm,
 * libs/lkh, libs/crypto) and real UDP on loopback: the IKE responder with the group registrar on
 * 127.0.0.1 (RFC 3948 framing), one group with an LKH tree, a Rekey SA signed with ECDSA, one shared
 * data SA (ESP in UDP), forced rekeys and evictions multicast as GSA_REKEY to the rekey address.
 * It is the GCKS's protocol, not a mock: every message is the real wire format, and the agent
 * verifies all of it. Used until the NestJS GCKS's registration wiring is available to the tests.
 */
import dgram from 'node:dgram';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import {
  EncrId,
  GcAuthId,
  GsaAddressPreservation,
  GsaDirection,
  GsaMode,
  IdType,
  IkeExchange,
  KeGroup,
  KwaId,
  PrfId,
  TsType,
  addNonEspMarker,
  parseIpAddress,
  type IdPayload,
} from '@app/codec';
import { createGroupOwner, exportGroupOwnerPublic, mayAct, ownerKeyIdOf, signPolicyToken, type GroupOwner, type PolicyTokenContent } from '@app/crypto';
import {
  IkeResponder,
  SIG_ALG_ECDSA_SHA256,
  buildGsaRekey,
  dataSaKeyLength,
  deriveGskW,
  groupPayloads,
  groupRegistrar,
  rekeySaKeyLength,
  wrapKey,
  type DataSaParams,
  type IkePath,
  type RegistrarGroup,
  type RekeySaParams,
} from '@app/gkm';
import { LkhTree, type PathKey } from '@app/lkh';
import type { WrappedKey } from '@app/codec';

/** The member key bag of a registration: leaf under GSK_w, each parent under its child. */
function pathWraps(path: readonly PathKey[], gskW: Uint8Array): WrappedKey[] {
  const out = [wrapKey(gskW, 0, path[0]!.keyId, path[0]!.key)];
  for (let i = 1; i < path.length; i++) out.push(wrapKey(path[i - 1]!.key, path[i - 1]!.keyId, path[i]!.keyId, path[i]!.key));
  return out;
}

const rnd = (n: number) => new Uint8Array(randomBytes(n));
const fqdn = (name: string): IdPayload => ({ idType: IdType.ID_FQDN, data: new TextEncoder().encode(name) });
const SHAPE = { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 256, kwaId: KwaId.KW_5649_256 };
const SUITE = { encrId: SHAPE.encrId, keyBits: SHAPE.keyBits, integId: 0 };
const TREE_SIZE = 16;

export interface TestGcksOptions {
  group: string;
  groupAddress: string;
  dataPort: number;
  rekeyAddress: string;
  rekeyPort: number;
  atd: number;
  dtd: number;
  psk: string;
  /** FQDN patterns of speakers and receivers (token member rules). */
  speakers: string;
  receivers: string;
  gcksId?: string;
  /** Data SAs handed out at registration besides the TEK that the token's data policy does not state (a GCKS overstepping the Group Owner). */
  unstatedSas?: DataSaParams[];
}

function ts(address: string, port?: number) {
  const a = parseIpAddress(address);
  return { tsType: TsType.TS_IPV4_ADDR_RANGE, ipProtocol: port === undefined ? 0 : 17, startPort: port ?? 0, endPort: port ?? 0xffff, startAddress: a, endAddress: a };
}
const ANY = { tsType: TsType.TS_IPV4_ADDR_RANGE, ipProtocol: 0, startPort: 0, endPort: 0xffff, startAddress: Uint8Array.from([0, 0, 0, 0]), endAddress: Uint8Array.from([255, 255, 255, 255]) };

export class TestGcks {
  readonly owner: GroupOwner;
  readonly anchorPem: string;
  readonly sent: { messageId: number; kind: 'rekey' | 'evict-kek' | 'evict-tek' }[] = [];
  /** Identity -> LKH leaf. */
  readonly members = new Map<string, number>();
  registrations = 0;
  leaves = 0;
  port = 0;
  private readonly tree = LkhTree.build({ degree: 2, keySize: 32 }, TREE_SIZE);
  private readonly freeLeaves = Array.from({ length: TREE_SIZE }, (_, i) => i);
  private readonly signer = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  private rekeySa: RekeySaParams;
  private messageId = 0;
  private tek: DataSaParams;
  private readonly token: Uint8Array;
  private readonly responder: IkeResponder;
  private socket!: dgram.Socket;
  private sender!: dgram.Socket;
  private nextSpi = 0x1000;
  private dropAll = false;
  private currentGskW: Uint8Array | undefined;

  private constructor(private readonly o: TestGcksOptions) {
    const now = Date.now();
    this.owner = createGroupOwner({ groupName: o.group, now: new Date(now - 60_000), randomBytes: rnd });
    this.anchorPem = exportGroupOwnerPublic(this.owner).signingKeyPem;
    const content: PolicyTokenContent = {
      groupName: o.group,
      edition: 1,
      notBefore: new Date(Math.floor(now / 1000) * 1000 - 3_600_000),
      notAfter: new Date(Math.floor(now / 1000) * 1000 + 3_600_000),
      ownerKeyId: ownerKeyIdOf(this.owner.signing.publicKey),
      gcks: [{ idType: IdType.ID_FQDN, pattern: o.gcksId ?? 'gcks.test' }],
      members: [
        { identity: { idType: IdType.ID_FQDN, pattern: o.receivers }, maySpeak: false, mayReceive: true },
        { identity: { idType: IdType.ID_FQDN, pattern: o.speakers }, maySpeak: true, mayReceive: true },
      ],
      groupPolicy: { rekeyAddress: o.rekeyAddress, rekeyPort: o.rekeyPort, atd: o.atd, dtd: o.dtd, kekLifetime: 3600, rekeyAuth: GcAuthId.DIGITAL_SIGNATURE },
      // The TEK's flow, as the GCKS states it from the same rows as its SAs (apps/gcks group-config).
      dataPolicy: [
        {
          name: 'tek',
          source: '0.0.0.0/0',
          destination: `${o.groupAddress}/32`,
          ipProtocol: 17,
          port: o.dataPort,
          direction: GsaDirection.SYMMETRIC,
          addressPreservation: GsaAddressPreservation.SOURCE_AND_DESTINATION,
          encrId: EncrId.ENCR_AES_GCM_16,
          integId: 0,
          keyLifetime: 3600,
          mode: GsaMode.TUNNEL,
          keyBits: 128,
        },
      ],
    };
    this.token = signPolicyToken(content, this.owner.signing.privateKey);
    this.rekeySa = this.newRekeySa();
    this.tek = this.newTek();
    const registrar = groupRegistrar({
      findGroup: (idg) => (new TextDecoder().decode(idg.data) === o.group ? this.registrarGroup(content) : undefined),
    });
    this.responder = new IkeResponder({
      transport: { send: (datagram, path) => this.socket.send(datagram, path.remotePort, path.remoteAddress) },
      clock: { now: () => Date.now(), setTimer: (ms, fn) => { const t = setTimeout(fn, ms); t.unref(); return { cancel: () => clearTimeout(t) }; } },
      random: rnd,
      proposals: [{ encrId: EncrId.ENCR_AES_GCM_16, keyBits: 256, prfId: PrfId.PRF_HMAC_SHA2_256, group: KeGroup.ECP_256 }],
      localId: fqdn(o.gcksId ?? 'gcks.test'),
      localAuth: { kind: 'psk' },
      resolvePeer: () => ({ psk: new TextEncoder().encode(o.psk) }),
      authExchangeTypes: [IkeExchange.GSA_AUTH],
      authorize: (ctx) => {
        // The member's leaf key travels under this IKE SA's GSK_w (RFC 9838 Appendix A.2).
        this.currentGskW = deriveGskW(ctx.sa.state.suite.prf, ctx.sa.state.keys.skd, KwaId.KW_5649_256);
        try {
          return registrar.authorize(ctx);
        } finally {
          this.currentGskW = undefined;
        }
      },
      onEstablished: (sa) => {
        sa.onRequest = registrar.onRequest;
      },
    });
  }

  static async start(o: TestGcksOptions): Promise<TestGcks> {
    const g = new TestGcks(o);
    g.socket = dgram.createSocket('udp4');
    g.socket.on('message', (msg, rinfo) => {
      if (g.dropAll) return;
      const path: IkePath = { remoteAddress: rinfo.address, remotePort: rinfo.port, localAddress: '127.0.0.1', localPort: g.port, marker: true };
      g.responder.receive(new Uint8Array(msg), path);
    });
    await new Promise<void>((r) => g.socket.bind(0, '127.0.0.1', () => r()));
    g.port = (g.socket.address() as AddressInfo).port;
    g.sender = dgram.createSocket('udp4');
    await new Promise<void>((r) => g.sender.bind(0, '127.0.0.1', () => r()));
    g.sender.setMulticastInterface('127.0.0.1');
    g.sender.setMulticastLoopback(true);
    return g;
  }

  /** Stop answering (failover tests) or answer again. */
  setSilent(silent: boolean): void {
    this.dropAll = silent;
  }

  get currentTekSpi(): number {
    return this.tek.spi;
  }

  private newRekeySa(): RekeySaParams {
    return {
      spi: rnd(16),
      source: ts('127.0.0.1', this.o.rekeyPort),
      destination: ts(this.o.rekeyAddress, this.o.rekeyPort),
      ...SHAPE,
      gcauth: { id: GcAuthId.DIGITAL_SIGNATURE, signatureAlgorithm: SIG_ALG_ECDSA_SHA256 },
      lifetimeSeconds: 3600,
      initialMessageId: 0,
      keyMaterial: rnd(rekeySaKeyLength(SHAPE)),
    };
  }

  private newTek(): DataSaParams {
    return {
      spi: this.nextSpi++,
      source: ANY,
      destination: ts(this.o.groupAddress, this.o.dataPort),
      encrId: EncrId.ENCR_AES_GCM_16,
      keyBits: 128,
      sn: 2,
      lifetimeSeconds: 3600,
      direction: GsaDirection.SYMMETRIC,
      addressPreservation: GsaAddressPreservation.SOURCE_AND_DESTINATION,
      udpEncapsulationPort: this.o.dataPort,
      keyMaterial: rnd(dataSaKeyLength({ encrId: EncrId.ENCR_AES_GCM_16, keyBits: 128 })),
    };
  }

  private registrarGroup(content: PolicyTokenContent): RegistrarGroup {
    return {
      name: this.o.group,
      authorize: (req) => mayAct(content, req.identity, req.role),
      admit: (req) => {
        let leaf = this.members.get(req.identity.value);
        if (leaf === undefined) {
          leaf = this.freeLeaves.shift();
          if (leaf === undefined) return undefined;
          this.members.set(req.identity.value, leaf);
        }
        this.registrations++;
        const path = this.tree.memberPath(leaf);
        const root = path[path.length - 1]!;
        const speaker = req.role === 'speaker';
        return {
          // GSA_INITIAL_MESSAGE_ID names the next message on the Rekey SA (RFC 9838 §4.4.2.2.2).
          rekey: { ...this.rekeySa, initialMessageId: this.messageId + 1 },
          rekeySaKeys: [wrapKey(root.key, root.keyId, 0, this.rekeySa.keyMaterial)],
          data: [this.tek, ...(this.o.unstatedSas ?? [])],
          groupWide: { atd: this.o.atd, dtd: this.o.dtd, senderIdBits: 8, policyToken: this.token },
          member: { authKey: this.signer.publicKey, senderIds: speaker ? [leaf + 1] : [], wrapKeys: pathWraps(path, this.currentGskW!) },
        };
      },
      leave: (req) => {
        this.leaves++;
        void req;
      },
    };
  }

  /** Every GSA_REKEY built, in order (the bytes multicast), for tests that feed them directly. */
  readonly rekeyMessages: Uint8Array[] = [];

  private send(bytes: Uint8Array, copies = 2): void {
    this.rekeyMessages.push(bytes);
    const framed = this.o.rekeyPort === 4500 ? addNonEspMarker(bytes) : bytes;
    for (let i = 0; i < copies; i++) this.sender.send(framed, this.o.rekeyPort, this.o.rekeyAddress);
  }

  private kek() {
    return { enc: this.rekeySa.keyMaterial.subarray(0, 36), integ: new Uint8Array(0) };
  }
  private gskW() {
    return this.rekeySa.keyMaterial.subarray(36);
  }

  /**
   * A new TEK, multicast under the current KEK (a forced rekey). Returns the new SPI. `unstated`:
   * more SAs in the same GSA_REKEY that the token's data policy does not state (as `unstatedSas`).
   */
  forceRekey(unstated: readonly DataSaParams[] = []): number {
    this.tek = this.newTek();
    const payloads = groupPayloads({ data: [this.tek, ...unstated], groupWide: { atd: this.o.atd, dtd: this.o.dtd, senderIdBits: 8 }, gskW: this.gskW(), registration: false });
    const messageId = ++this.messageId;
    this.send(buildGsaRekey({ rekeySpi: this.rekeySa.spi, messageId, payloads, suite: SUITE, kek: this.kek(), signingKey: this.signer.privateKey, random: rnd }));
    this.sent.push({ messageId, kind: 'rekey' });
    return this.tek.spi;
  }

  /** Evicts a member: LKH leave, a new KEK under the new root (old KEK), then a new TEK under the new KEK. */
  evict(identity: string): number {
    const leaf = this.members.get(identity);
    if (leaf === undefined) throw new Error(`no member ${identity}`);
    this.members.delete(identity);
    const res = this.tree.leave(leaf);
    const newSa = this.newRekeySa();
    const root = { keyId: this.tree.rootKeyId, key: this.tree.rootKey()! };
    const first = groupPayloads({
      rekey: newSa,
      rekeySaKeys: [wrapKey(root.key, root.keyId, 0, newSa.keyMaterial)],
      data: [],
      gskW: this.gskW(),
      member: { wrapKeys: [...res.rekey.wraps] },
      registration: false,
    });
    const id1 = ++this.messageId;
    this.send(buildGsaRekey({ rekeySpi: this.rekeySa.spi, messageId: id1, payloads: first, suite: SUITE, kek: this.kek(), signingKey: this.signer.privateKey, random: rnd }));
    this.sent.push({ messageId: id1, kind: 'evict-kek' });
    this.rekeySa = newSa;
    this.messageId = newSa.initialMessageId ?? 0;
    this.tek = this.newTek();
    const second = groupPayloads({ data: [this.tek], groupWide: { atd: this.o.atd, dtd: this.o.dtd, senderIdBits: 8 }, gskW: this.gskW(), registration: false });
    const id2 = this.messageId;
    this.send(buildGsaRekey({ rekeySpi: newSa.spi, messageId: id2, payloads: second, suite: SUITE, kek: this.kek(), signingKey: this.signer.privateKey, random: rnd }));
    this.messageId = id2;
    this.sent.push({ messageId: id2, kind: 'evict-tek' });
    return this.tek.spi;
  }

  async close(): Promise<void> {
    await Promise.all([new Promise<void>((r) => this.socket.close(() => r())), new Promise<void>((r) => this.sender.close(() => r()))]);
  }
}
