import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { EncrId, GcAuthId, IdType, IkeExchange, KeGroup, KwaId, PrfId, TsType, idgKeyId, type IdPayload } from '@app/codec';
import {
  createGroupOwner,
  exportGroupOwnerPublic,
  issueEntityCertificate,
  mayAct,
  ownerKeyIdOf,
  parseCertificate,
  signPolicyToken,
  type GroupOwner,
  type PolicyTokenContent,
} from '@app/crypto';
import {
  allocateSenderIds,
  dataSaKeyLength,
  groupRegistrar,
  openRegistrationResponse,
  registrationRefusal,
  registrationRequestPayloads,
  rekeySaKeyLength,
  SIG_ALG_ECDSA_SHA256,
  type GroupAdmission,
  type RegistrarGroup,
  type RegistrationOutcome,
} from '@app/gkm';
import { IkeInitiator } from './ike-initiator.js';
import { IkeResponder } from './ike-responder.js';
import type { IkeClock, IkePath, IkeProposalConfig, IkeTransport } from './ike-types.js';

/**
 * GSA_AUTH end to end in process: our IKE initiator (GM) and responder (GCKS) over an in-memory
 * network, certificates from the Group Owner's CA, the GCKS's registration logic deciding, and the
 * GM opening GSA/KD and checking the Group Owner's token. Every refusal of RFC 9838 §2.3.4 is
 * exercised, and none of them reaches the group's admit().
 */

const rnd = (n: number) => new Uint8Array(randomBytes(n));
const NOW = Date.now();
const fqdn = (name: string): IdPayload => ({ idType: IdType.ID_FQDN, data: new TextEncoder().encode(name) });
const proposal: IkeProposalConfig = { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 256, prfId: PrfId.PRF_HMAC_SHA2_256, group: KeGroup.ECP_256 };
const clock: IkeClock = { now: () => NOW, setTimer: () => ({ cancel: () => undefined }) };
const pathAB: IkePath = { localAddress: '10.0.0.1', localPort: 500, remoteAddress: '10.0.0.2', remotePort: 500, marker: false };
const reverse = (p: IkePath): IkePath => ({ localAddress: p.remoteAddress, localPort: p.remotePort, remoteAddress: p.localAddress, remotePort: p.localPort, marker: p.marker });

const owner: GroupOwner = createGroupOwner({ groupName: 'video', now: new Date(NOW - 60_000), randomBytes: rnd });
const anchor = exportGroupOwnerPublic(owner).signingKeyPem;
const ca = owner.ca.certificate;

function credential(name: string): { key: KeyObject; der: Uint8Array } {
  const kp = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const der = issueEntityCertificate(owner, { identity: { idType: IdType.ID_FQDN, value: name }, publicKey: kp.publicKey, now: new Date(NOW - 60_000), randomBytes: rnd });
  return { key: kp.privateKey, der };
}

const tokenContent: PolicyTokenContent = {
  groupName: 'video',
  edition: 4,
  notBefore: new Date(Math.floor(NOW / 1000) * 1000 - 3_600_000),
  notAfter: new Date(Math.floor(NOW / 1000) * 1000 + 3_600_000),
  ownerKeyId: ownerKeyIdOf(owner.signing.publicKey),
  gcks: [{ idType: IdType.ID_FQDN, pattern: 'gcks.example.org' }],
  members: [
    { identity: { idType: IdType.ID_FQDN, pattern: '*.rx.example.org' }, maySpeak: false, mayReceive: true },
    { identity: { idType: IdType.ID_FQDN, pattern: '*.speakers.example.org' }, maySpeak: true, mayReceive: true },
  ],
  groupPolicy: { rekeyAddress: '239.0.0.1', rekeyPort: 848, atd: 15, dtd: 30, kekLifetime: 3600, rekeyAuth: GcAuthId.DIGITAL_SIGNATURE },
  dataPolicy: [],
};
const token = signPolicyToken(tokenContent, owner.signing.privateKey);
const rekeySigner = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

/** A group whose PAD rules are the token's, holding one Rekey SA and one TEK. */
function videoGroup(capacity = 10) {
  const shape = { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 256, kwaId: KwaId.KW_5649_256 };
  const kek = rnd(rekeySaKeyLength(shape));
  const tek = rnd(dataSaKeyLength({ encrId: EncrId.ENCR_AES_GCM_16, keyBits: 128 }));
  const ts = (a: number[], port: number) => ({ tsType: TsType.TS_IPV4_ADDR_RANGE, ipProtocol: 17, startPort: port, endPort: port, startAddress: Uint8Array.from(a), endAddress: Uint8Array.from(a) });
  let senderIds = { next: 0 };
  const state = { admitted: [] as string[], left: [] as string[], kek, tek };
  const group: RegistrarGroup = {
    name: 'video',
    authorize: (req) => mayAct(tokenContent, req.identity, req.role),
    admit: (req): GroupAdmission | undefined => {
      if (state.admitted.length >= capacity) return undefined;
      let ids: number[] = [];
      if (req.role === 'speaker') {
        const a = allocateSenderIds(senderIds, { senderIdBits: 8, maxPerRegistration: 4 }, req.senderIdsRequested);
        if (!a.ok) return undefined;
        senderIds = a.state;
        ids = a.ids;
      }
      state.admitted.push(req.identity.value);
      return {
        rekey: {
          spi: new Uint8Array(16).fill(7),
          source: ts([10, 0, 0, 2], 848),
          destination: ts([239, 0, 0, 1], 848),
          ...shape,
          gcauth: { id: GcAuthId.DIGITAL_SIGNATURE, signatureAlgorithm: SIG_ALG_ECDSA_SHA256 },
          lifetimeSeconds: 3600,
          initialMessageId: 5,
          keyMaterial: kek,
        },
        data: [
          {
            spi: 0x1234,
            source: { tsType: TsType.TS_IPV4_ADDR_RANGE, ipProtocol: 0, startPort: 0, endPort: 0xffff, startAddress: Uint8Array.from([0, 0, 0, 0]), endAddress: Uint8Array.from([255, 255, 255, 255]) },
            destination: ts([239, 1, 1, 1], 5000),
            encrId: EncrId.ENCR_AES_GCM_16,
            keyBits: 128,
            sn: 2,
            lifetimeSeconds: 900,
            keyMaterial: tek,
          },
        ],
        groupWide: { atd: 15, dtd: 30, ...(ids.length > 0 ? { senderIdBits: 8 } : {}), policyToken: token },
        member: { authKey: rekeySigner.publicKey, senderIds: ids },
      };
    },
    leave: (req) => void state.left.push(req.identity.value),
  };
  return { group, state };
}

function network(gcksName: string, group: RegistrarGroup) {
  const queue: { to: 'i' | 'r'; bytes: Uint8Array; path: IkePath }[] = [];
  const toR: IkeTransport = { send: (bytes, path) => queue.push({ to: 'r', bytes, path: reverse(path) }) };
  const toI: IkeTransport = { send: (bytes, path) => queue.push({ to: 'i', bytes, path: reverse(path) }) };
  const outcomes: RegistrationOutcome[] = [];
  const registrar = groupRegistrar({ findGroup: (idg) => (new TextDecoder().decode(idg.data) === group.name ? group : undefined), onOutcome: (o) => outcomes.push(o) });
  const gcks = credential(gcksName);
  const responder = new IkeResponder({
    transport: toI,
    clock,
    random: rnd,
    proposals: [proposal],
    localId: fqdn(gcksName),
    localAuth: { kind: 'signature', privateKey: gcks.key, certificates: [gcks.der] },
    resolvePeer: () => ({ trustAnchors: [ca] }),
    authExchangeTypes: [IkeExchange.GSA_AUTH],
    authorize: registrar.authorize,
    onEstablished: (sa) => {
      sa.onRequest = registrar.onRequest;
    },
  });
  const pump = () => {
    for (let n = 0; queue.length > 0 && n < 100; n++) {
      const d = queue.shift()!;
      if (d.to === 'r') responder.receive(d.bytes, d.path);
      else initiatorReceivers.forEach((f) => f(d.bytes, d.path));
    }
  };
  const initiatorReceivers: ((b: Uint8Array, p: IkePath) => void)[] = [];
  return { responder, outcomes, pump, initiatorReceivers, toR };
}

/** Runs one GSA_AUTH: wires the initiator's receive into the network. */
async function register(net: ReturnType<typeof network>, member: string, opts: { speaker?: boolean; senderIds?: number; group?: string } = {}) {
  const m = credential(member);
  const initiator = new IkeInitiator({
    transport: net.toR,
    clock,
    random: rnd,
    path: pathAB,
    proposals: [proposal],
    localId: fqdn(member),
    localAuth: { kind: 'signature', privateKey: m.key, certificates: [m.der] },
    peer: { trustAnchors: [ca] },
    authExchangeType: IkeExchange.GSA_AUTH,
    authPayloads: registrationRequestPayloads(idgKeyId(opts.group ?? 'video'), opts),
  });
  net.initiatorReceivers.length = 0;
  net.initiatorReceivers.push((b, p) => void initiator.receive(b, p));
  const done = initiator.start();
  net.pump();
  return done;
}

const tokenCheck = (self: string, role: 'speaker' | 'receiver') => ({
  token: { anchor, now: new Date(NOW), groupName: 'video', self: { identity: { idType: IdType.ID_FQDN, value: self }, role } },
});

describe('GSA_AUTH registration (in process, certificates from the Group Owner CA)', () => {
  it('a receiver joins: GSA and KD open with GSK_w, the token verifies and authorizes this GCKS', async () => {
    const { group, state } = videoGroup();
    const net = network('gcks.example.org', group);
    const { sa, authResponse } = await register(net, 'tv1.rx.example.org');
    const r = openRegistrationResponse(authResponse, sa.state, tokenCheck('tv1.rx.example.org', 'receiver'));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.token?.edition).toBe(4);
    expect(r.group.data[0]!.encKey).toEqual(state.tek);
    expect(Buffer.concat([r.group.rekey!.gskE, r.group.rekey!.gskA, r.group.rekey!.gskW])).toEqual(Buffer.from(state.kek));
    expect(r.group.rekey!.attributes.initialMessageId).toBe(5);
    expect(r.group.authKey?.export({ type: 'spki', format: 'der' })).toEqual(rekeySigner.publicKey.export({ type: 'spki', format: 'der' }));
    expect(r.group.senderIds).toEqual([]);
    expect(net.responder.established.size).toBe(1);
    expect(net.outcomes).toEqual([{ admitted: true, exchangeType: IkeExchange.GSA_AUTH, group: 'video', identity: { idType: 2, value: 'tv1.rx.example.org' }, role: 'receiver' }]);
  });

  it('a speaker asking for two Sender-IDs gets them with GWP_SENDER_ID_BITS', async () => {
    const { group } = videoGroup();
    const net = network('gcks.example.org', group);
    const { sa, authResponse } = await register(net, 'cam1.speakers.example.org', { speaker: true, senderIds: 2 });
    const r = openRegistrationResponse(authResponse, sa.state, tokenCheck('cam1.speakers.example.org', 'speaker'));
    expect(r.ok && r.group.senderIds).toEqual([0, 1]);
    expect(r.ok && r.group.groupWide.senderIdBits).toBe(8);
  });

  it.each([
    ['an unknown group', 'tv1.rx.example.org', { group: 'audio' }, 45],
    ['an identity the PAD does not allow', 'eve.example.org', {}, 46],
    ['a receiver-only identity asking to speak', 'tv2.rx.example.org', { speaker: true }, 46],
  ])('refuses %s with the RFC 9838 notification, changing no group state', async (_n, member, opts, notify) => {
    const { group, state } = videoGroup();
    const net = network('gcks.example.org', group);
    await expect(register(net, member, opts)).rejects.toMatchObject({ code: 'PEER_ERROR', notifyType: notify });
    expect(state.admitted).toEqual([]);
    expect(net.responder.established.size).toBe(0);
    expect(net.outcomes).toMatchObject([{ admitted: false, notify }]);
  });

  it('refuses with REGISTRATION_FAILED when the group is full', async () => {
    const { group } = videoGroup(1);
    const net = network('gcks.example.org', group);
    await register(net, 'tv1.rx.example.org');
    await expect(register(net, 'tv2.rx.example.org')).rejects.toMatchObject({ notifyType: 49 });
    expect(net.responder.established.size).toBe(1);
  });

  it('the GM refuses a GCKS the token does not authorize, even with a valid CA certificate', async () => {
    const { group } = videoGroup();
    const net = network('rogue.example.org', group);
    const { sa, authResponse } = await register(net, 'tv1.rx.example.org');
    const r = openRegistrationResponse(authResponse, sa.state, tokenCheck('tv1.rx.example.org', 'receiver'));
    expect(!r.ok && r.reason).toBe('GCKS_NOT_AUTHORIZED');
  });

  it('GSA_REGISTRATION on the same IKE SA registers again, and the leave form removes the member', async () => {
    const { group, state } = videoGroup();
    const net = network('gcks.example.org', group);
    const { sa } = await register(net, 'tv1.rx.example.org');
    const again = sa.request(IkeExchange.GSA_REGISTRATION, registrationRequestPayloads(idgKeyId('video')));
    net.pump();
    const r = openRegistrationResponse(await again, sa.state);
    expect(r.ok).toBe(true);
    expect(state.admitted).toEqual(['tv1.rx.example.org', 'tv1.rx.example.org']);
    const leave = sa.request(IkeExchange.GSA_REGISTRATION, [...registrationRequestPayloads(idgKeyId('video')), registrationRefusal(49)]);
    net.pump();
    expect(await leave).toEqual([]);
    expect(state.left).toEqual(['tv1.rx.example.org']);
    expect(net.outcomes.at(-1)).toEqual({ left: true, group: 'video', identity: { idType: 2, value: 'tv1.rx.example.org' } });
  });
});
