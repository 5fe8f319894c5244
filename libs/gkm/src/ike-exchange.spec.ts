import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SignatureWorker, createKeyExchange, type SignatureCheck } from '@app/crypto';
import { IkeExchange, IkePayload, KeGroup, NotifyType, getNotify, getPayload, ikeMessage, payload, stripNonEspMarker, type IdPayload } from '@app/codec';
import {
  IkeDispatcher,
  IkeError,
  IkeInitiator,
  IkeResponder,
  addressOctets,
  ikeNotify,
  ikeSaFromRecord,
  ikeSaToRecord,
  natDetectionHash,
  type IkeInitiatorOptions,
  type IkeLocalAuth,
  type IkePath,
  type IkePeerPolicy,
  type IkeProposalConfig,
  type IkeResponderOptions,
  type IkeTransport,
} from '@app/gkm';
import {
  ManualClock,
  PROPOSAL_CBC_X25519,
  PROPOSAL_GCM_ECP256,
  fqdn,
  makePki,
  pathBetween,
  random,
  reversePath,
} from '../../../test/support/ike-fixtures.js';

interface Setup {
  initiatorProposals?: IkeProposalConfig[];
  responderProposals?: IkeProposalConfig[];
  iAuth: IkeLocalAuth;
  rAuth: IkeLocalAuth;
  iPeer: IkePeerPolicy;
  rPeers: (id: IdPayload) => IkePeerPolicy | undefined;
  marker?: boolean;
  cookieThreshold?: number;
  tamper?: (bytes: Uint8Array, toResponder: boolean) => Uint8Array | undefined;
  initiatorExtra?: Partial<IkeInitiatorOptions>;
  responderExtra?: Partial<IkeResponderOptions>;
}

/** Wires an initiator and a responder through a synchronous in-memory network. */
function run(s: Setup) {
  const clock = new ManualClock();
  const { ab } = pathBetween('10.0.0.1', '10.0.0.2', s.marker ? 4500 : 500, s.marker ?? false);
  const queue: { to: 'i' | 'r'; bytes: Uint8Array; path: IkePath }[] = [];
  const toR: IkeTransport = { send: (bytes, path) => queue.push({ to: 'r', bytes, path: reversePath(path) }) };
  const toI: IkeTransport = { send: (bytes, path) => queue.push({ to: 'i', bytes, path: reversePath(path) }) };
  const responder = new IkeResponder({
    transport: toI,
    clock,
    random,
    proposals: s.responderProposals ?? [PROPOSAL_GCM_ECP256, PROPOSAL_CBC_X25519],
    localId: fqdn('gcks.example'),
    localAuth: s.rAuth,
    resolvePeer: s.rPeers,
    cookieThreshold: s.cookieThreshold,
    ...s.responderExtra,
  });
  const initiator = new IkeInitiator({
    transport: toR,
    clock,
    random,
    path: ab,
    proposals: s.initiatorProposals ?? [PROPOSAL_GCM_ECP256],
    localId: fqdn('member1.example'),
    localAuth: s.iAuth,
    peer: s.iPeer,
    retransmit: { timeoutMs: 1000, tries: 2 },
    ...s.initiatorExtra,
  });
  const outcomes: string[] = [];
  const pump = () => {
    for (let n = 0; queue.length > 0 && n < 100; n++) {
      const d = queue.shift()!;
      const bytes = s.tamper ? s.tamper(d.bytes, d.to === 'r') : d.bytes;
      if (!bytes) continue;
      outcomes.push(d.to + ':' + (d.to === 'r' ? responder.receive(bytes, d.path) : initiator.receive(bytes, d.path)));
    }
  };
  /** pump() until nothing is queued or being verified (a signature verifier answers later); at most ~5 s. */
  const settle = async () => {
    for (let n = 0; n < 1000; n++) {
      pump();
      if (queue.length === 0 && responder.verifyingCount === 0) return;
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  return { clock, responder, initiator, pump, settle, queue, outcomes };
}

const psk = new TextEncoder().encode('a shared secret of decent length');
const now = new Date('2026-06-01T00:00:00Z');

describe('IKEv2 initiator and responder', () => {
  for (const [name, proposal] of [
    ['AES-GCM-16-256/ECP-256', PROPOSAL_GCM_ECP256],
    ['AES-CBC-256/HMAC-SHA-256-128/Curve25519', PROPOSAL_CBC_X25519],
  ] as const) {
    it(`establishes with PSK over ${name}, then answers liveness and deletes`, async () => {
      const t = run({ initiatorProposals: [proposal], iAuth: { kind: 'psk' }, rAuth: { kind: 'psk' }, iPeer: { psk }, rPeers: () => ({ psk }) });
      const done = t.initiator.start();
      t.pump();
      const { sa } = await done;
      expect(t.initiator.phase).toBe('established');
      expect(t.responder.established.size).toBe(1);
      const rsa = [...t.responder.established.values()][0]!;
      expect(Buffer.from(rsa.state.keys.skd).equals(Buffer.from(sa.state.keys.skd))).toBe(true);
      expect(new TextDecoder().decode(rsa.state.peerId.data)).toBe('member1.example');
      const ping = sa.ping();
      t.pump();
      await ping;
      const del = sa.delete();
      t.pump();
      await del;
      expect(t.responder.established.size).toBe(0);
    });
  }

  it('establishes with ECDSA P-256 certificates on port 4500 with the non-ESP marker', async () => {
    const pki = makePki(now);
    const m = pki.member('member1.example');
    const g = pki.member('gcks.example');
    const t = run({
      marker: true,
      iAuth: { kind: 'signature', privateKey: m.key, certificates: [m.der] },
      rAuth: { kind: 'signature', privateKey: g.key, certificates: [g.der] },
      iPeer: { trustAnchors: [pki.ca] },
      rPeers: () => ({ trustAnchors: [pki.ca] }),
    });
    const sent: Uint8Array[] = [];
    const orig = t.queue.push.bind(t.queue);
    t.queue.push = (...items) => {
      for (const i of items) sent.push(i.bytes);
      return orig(...items);
    };
    const done = t.initiator.start();
    t.pump();
    const { sa } = await done;
    expect(sa.state.peerCertificate?.x509.subject).toContain('gcks.example');
    expect(sent.every((b) => stripNonEspMarker(b) !== undefined)).toBe(true);
  });

  it('refuses a certificate from another CA, a wrong PSK and an unknown peer, keeping no SA', async () => {
    const pki = makePki(now);
    const rogue = makePki(now, 'Rogue CA');
    const m = rogue.member('member1.example');
    const g = pki.member('gcks.example');
    const cases: Setup[] = [
      {
        iAuth: { kind: 'signature', privateKey: m.key, certificates: [m.der] },
        rAuth: { kind: 'signature', privateKey: g.key, certificates: [g.der] },
        iPeer: { trustAnchors: [pki.ca] },
        rPeers: () => ({ trustAnchors: [pki.ca] }),
      },
      { iAuth: { kind: 'psk' }, rAuth: { kind: 'psk' }, iPeer: { psk: new TextEncoder().encode('wrong') }, rPeers: () => ({ psk }) },
      { iAuth: { kind: 'psk' }, rAuth: { kind: 'psk' }, iPeer: { psk }, rPeers: () => undefined },
    ];
    for (const c of cases) {
      const t = run(c);
      const done = t.initiator.start();
      t.pump();
      await expect(done).rejects.toMatchObject({ code: 'AUTHENTICATION_FAILED' });
      expect(t.responder.established.size).toBe(0);
      expect(t.responder.halfOpenCount).toBe(0);
    }
  });

  it('checks chains and AUTH on a SignatureWorker with the in-line verdicts, answering when they come back', async () => {
    const pki = makePki(now);
    const rogue = makePki(now, 'Rogue CA');
    const g = pki.member('gcks.example');
    const m = pki.member('member1.example');
    const r = rogue.member('member1.example');
    const cases: [string, IkeLocalAuth, string | undefined][] = [
      ['good', { kind: 'signature', privateKey: m.key, certificates: [m.der] }, undefined],
      ['rogue CA', { kind: 'signature', privateKey: r.key, certificates: [r.der] }, 'BAD_CERTIFICATE: no chain to a trust anchor'],
      ['AUTH by another key', { kind: 'signature', privateKey: pki.member('member1.example').key, certificates: [m.der] }, 'signature does not verify'],
      ['certificate of another identity', { kind: 'signature', privateKey: m.key, certificates: [pki.member('member2.example').der] }, 'ID does not match certificate'],
    ];
    const worker = new SignatureWorker();
    try {
      for (const [name, iAuth, refusal] of cases) {
        const details: (string | undefined)[] = [];
        for (const signatureVerifier of [undefined, worker]) {
          const t = run({
            iAuth,
            rAuth: { kind: 'signature', privateKey: g.key, certificates: [g.der] },
            iPeer: { trustAnchors: [pki.ca] },
            rPeers: () => ({ trustAnchors: [pki.ca] }),
            responderExtra: { ...(signatureVerifier ? { signatureVerifier } : {}), onRefused: (r) => details.push(r.detail) },
          });
          const done = t.initiator.start();
          done.catch(() => undefined);
          await t.settle();
          // With the worker the auth request is taken in, and answered later.
          expect(t.outcomes.includes('r:accepted'), name).toBe(signatureVerifier !== undefined);
          if (refusal) await expect(done, name).rejects.toMatchObject({ code: 'AUTHENTICATION_FAILED' });
          else {
            await done;
            expect([...t.responder.established.values()][0]!.state.peerCertificate?.x509.subject, name).toContain('member1.example');
          }
          expect(t.responder.established.size, name).toBe(refusal ? 0 : 1);
        }
        expect(details, name).toEqual(refusal ? [`AUTHENTICATION_FAILED: ${refusal}`, `AUTHENTICATION_FAILED: ${refusal}`] : []);
      }
      expect(worker.stats.batches).toBe(cases.length);
      expect(worker.stats.inline).toBe(0);
    } finally {
      await worker.close();
    }
  });

  it('drops and counts a retransmitted auth request while its signatures are checked; close() leaves it unanswered', async () => {
    const pki = makePki(now);
    const g = pki.member('gcks.example');
    const m = pki.member('member1.example');
    const worker = new SignatureWorker();
    try {
      for (const closeFirst of [false, true]) {
        let open!: () => void;
        const gate = new Promise<void>((r) => (open = r));
        // The real worker, held back until the test opens the gate.
        const held = { verify: async (c: readonly SignatureCheck[]) => (await gate, worker.verify(c)) };
        const t = run({
          iAuth: { kind: 'signature', privateKey: m.key, certificates: [m.der] },
          rAuth: { kind: 'signature', privateKey: g.key, certificates: [g.der] },
          iPeer: { trustAnchors: [pki.ca] },
          rPeers: () => ({ trustAnchors: [pki.ca] }),
          responderExtra: { signatureVerifier: held },
        });
        const toResponder: { bytes: Uint8Array; path: IkePath }[] = [];
        const push = t.queue.push.bind(t.queue);
        t.queue.push = (...items) => {
          for (const i of items) if (i.to === 'r') toResponder.push(i);
          return push(...items);
        };
        const done = t.initiator.start();
        done.catch(() => undefined);
        t.pump();
        expect(t.outcomes).toEqual(['r:answered', 'i:accepted', 'r:accepted']);
        const auth = toResponder[1]!;
        expect(t.responder.receive(auth.bytes, auth.path)).toBe('dropped');
        expect(t.responder.counters.get('drop_auth_pending')).toBe(1);
        if (closeFirst) t.responder.close();
        open();
        await t.settle();
        expect(t.responder.established.size).toBe(closeFirst ? 0 : 1);
        expect(t.outcomes.filter((o) => o.startsWith('i:'))).toEqual(closeFirst ? ['i:accepted'] : ['i:accepted', 'i:accepted']);
        if (!closeFirst) expect((await done).sa.state.peerId).toBeDefined();
        t.initiator.close();
      }
    } finally {
      await worker.close();
    }
  });

  it('the initiator refuses a responder whose certificate names another identity', async () => {
    const pki = makePki(now);
    const m = pki.member('member1.example');
    const g = pki.member('impostor.example');
    const t = run({
      iAuth: { kind: 'signature', privateKey: m.key, certificates: [m.der] },
      rAuth: { kind: 'signature', privateKey: g.key, certificates: [g.der] },
      iPeer: { trustAnchors: [pki.ca] },
      rPeers: () => ({ trustAnchors: [pki.ca] }),
    });
    const done = t.initiator.start();
    t.pump();
    await expect(done).rejects.toBeInstanceOf(IkeError);
    expect(t.initiator.phase).toBe('failed');
  });

  it('uses a nonce and key exchange made ahead of time (once), and refuses one of another group', async () => {
    const pki = makePki(now);
    const m = pki.member('member1.example');
    const g = pki.member('gcks.example');
    const keyExchange = createKeyExchange(PROPOSAL_GCM_ECP256.group, random);
    const nonce = random(32);
    const t = run({
      iAuth: { kind: 'signature', privateKey: m.key, certificates: [m.der] },
      rAuth: { kind: 'signature', privateKey: g.key, certificates: [g.der] },
      iPeer: { trustAnchors: [pki.ca] },
      rPeers: () => ({ trustAnchors: [pki.ca] }),
      initiatorExtra: { keyExchange, nonce },
    });
    const done = t.initiator.start();
    const init = ikeMessage.decode(t.queue[0]!.bytes);
    expect(Buffer.from(getPayload(init.payloads, IkePayload.KE)!.data)).toEqual(Buffer.from(keyExchange.publicValue));
    expect(Buffer.from(getPayload(init.payloads, IkePayload.NONCE)!.nonce)).toEqual(Buffer.from(nonce));
    t.pump();
    const { sa } = await done;
    expect(Buffer.from(sa.state.ni)).toEqual(Buffer.from(nonce));
    const base = { transport: { send: () => {} }, clock: t.clock, random, path: pathBetween('10.0.0.1', '10.0.0.2', 500, false).ab, localId: fqdn('m'), localAuth: { kind: 'psk' as const }, peer: { psk } };
    expect(() => new IkeInitiator({ ...base, proposals: [PROPOSAL_CBC_X25519], keyExchange })).toThrow(RangeError);
    expect(() => new IkeInitiator({ ...base, proposals: [PROPOSAL_GCM_ECP256], nonce: random(8) })).toThrow(RangeError);
  });

  it('retries with the group named by INVALID_KE_PAYLOAD', async () => {
    const t = run({
      initiatorProposals: [PROPOSAL_GCM_ECP256, { ...PROPOSAL_GCM_ECP256, group: PROPOSAL_CBC_X25519.group }],
      responderProposals: [{ ...PROPOSAL_GCM_ECP256, group: PROPOSAL_CBC_X25519.group }],
      iAuth: { kind: 'psk' },
      rAuth: { kind: 'psk' },
      iPeer: { psk },
      rPeers: () => ({ psk }),
    });
    const done = t.initiator.start();
    t.pump();
    const { sa } = await done;
    expect(sa.state.suite.group).toBe(PROPOSAL_CBC_X25519.group);
    expect(t.initiator.counters.get('invalid_ke_retry')).toBe(1);
  });

  it('answers NO_PROPOSAL_CHOSEN when nothing matches', async () => {
    const t = run({
      initiatorProposals: [PROPOSAL_CBC_X25519],
      responderProposals: [PROPOSAL_GCM_ECP256],
      iAuth: { kind: 'psk' },
      rAuth: { kind: 'psk' },
      iPeer: { psk },
      rPeers: () => ({ psk }),
    });
    const done = t.initiator.start();
    t.pump();
    await expect(done).rejects.toMatchObject({ code: 'NO_PROPOSAL_CHOSEN' });
  });

  it('sends a COOKIE under load and the initiator echoes it (RFC 7296 §2.6)', async () => {
    const t = run({ iAuth: { kind: 'psk' }, rAuth: { kind: 'psk' }, iPeer: { psk }, rPeers: () => ({ psk }), cookieThreshold: 0 });
    const done = t.initiator.start();
    t.pump();
    await done;
    expect(t.initiator.counters.get('cookie')).toBe(1);
    expect(t.responder.counters.get('cookie_sent')).toBe(1);
  });

  it('an IKE_SA_INIT prepared ahead is what start() sends; a COOKIE still makes a new request carrying it', async () => {
    // Same SPI, nonce and KE: the prepared request and one encoded at start() are the same octets.
    const ke = createKeyExchange(KeGroup.ECP_256, random);
    const same = { spiI: random(8), nonce: random(32), keyExchange: ke };
    const a = run({ iAuth: { kind: 'psk' }, rAuth: { kind: 'psk' }, iPeer: { psk }, rPeers: () => ({ psk }), initiatorExtra: same });
    const b = run({ iAuth: { kind: 'psk' }, rAuth: { kind: 'psk' }, iPeer: { psk }, rPeers: () => ({ psk }), initiatorExtra: same });
    a.initiator.prepare();
    a.initiator.prepare();
    expect(a.queue).toHaveLength(0);
    void a.initiator.start().catch(() => undefined);
    void b.initiator.start().catch(() => undefined);
    expect(a.queue).toHaveLength(1);
    expect(Buffer.from(a.queue[0]!.bytes).equals(Buffer.from(b.queue[0]!.bytes))).toBe(true);
    a.initiator.close();
    b.initiator.close();
    // Prepared, then asked for a COOKIE: the second request is made anew and carries it.
    const t = run({ iAuth: { kind: 'psk' }, rAuth: { kind: 'psk' }, iPeer: { psk }, rPeers: () => ({ psk }), cookieThreshold: 0 });
    t.initiator.prepare();
    const done = t.initiator.start();
    t.pump();
    await done;
    expect(t.initiator.counters.get('cookie')).toBe(1);
    expect(t.responder.established.size).toBe(1);
  });

  it('retransmits lost messages and the responder answers retransmissions from its cache', async () => {
    let dropFirstAuthResponse = true;
    const t = run({
      iAuth: { kind: 'psk' },
      rAuth: { kind: 'psk' },
      iPeer: { psk },
      rPeers: () => ({ psk }),
      tamper: (bytes, toResponder) => {
        if (!toResponder && dropFirstAuthResponse && ikeMessage.decode(bytes).header.exchangeType === IkeExchange.IKE_AUTH) {
          dropFirstAuthResponse = false;
          return undefined;
        }
        return bytes;
      },
    });
    const done = t.initiator.start();
    t.pump();
    expect(t.initiator.phase).toBe('auth-sent');
    t.clock.advance(1000);
    t.pump();
    await done;
    expect(t.initiator.counters.get('retransmit')).toBe(1);
    expect(t.responder.counters.get('response_retransmitted')).toBe(1);
  });

  it('times out after the configured retransmissions', async () => {
    const t = run({ iAuth: { kind: 'psk' }, rAuth: { kind: 'psk' }, iPeer: { psk }, rPeers: () => ({ psk }), tamper: () => undefined });
    const done = t.initiator.start();
    t.pump();
    t.clock.advance(10_000);
    await expect(done).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(t.initiator.counters.get('retransmit')).toBe(2);
  });

  it('refuses an unknown critical payload in IKE_SA_INIT with UNSUPPORTED_CRITICAL_PAYLOAD', () => {
    const t = run({ iAuth: { kind: 'psk' }, rAuth: { kind: 'psk' }, iPeer: { psk }, rPeers: () => ({ psk }) });
    const { ab } = pathBetween('10.0.0.1', '10.0.0.2');
    const req = ikeMessage.encode({
      header: { spiI: random(8), spiR: new Uint8Array(8), majorVersion: 2, minorVersion: 0, exchangeType: IkeExchange.IKE_SA_INIT, flags: 0x08, messageId: 0 },
      payloads: [{ type: 200, critical: true, body: new Uint8Array(3), unknown: true }],
    });
    expect(t.responder.receive(req, reversePath(ab))).toBe('answered');
    const answer = ikeMessage.decode(t.queue[0]!.bytes);
    expect(getNotify(answer.payloads, NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD)?.data).toEqual(Uint8Array.of(200));
    expect(answer.payloads[0]!.type).toBe(IkePayload.NOTIFY);
  });

  it('restores a persisted responder SA in a new responder and runs exchanges both ways on it', async () => {
    const t = run({ iAuth: { kind: 'psk' }, rAuth: { kind: 'psk' }, iPeer: { psk }, rPeers: () => ({ psk }) });
    const done = t.initiator.start();
    t.pump();
    const { sa } = await done;
    const record = JSON.parse(JSON.stringify(ikeSaToRecord([...t.responder.established.values()][0]!.state)));
    t.responder.close();
    // A "restarted" responder on the same transport takes the SA over from its record.
    const restarted = new IkeResponder({
      transport: { send: (bytes, path) => t.queue.push({ to: 'i', bytes, path: reversePath(path) }) },
      clock: t.clock,
      random,
      proposals: [PROPOSAL_GCM_ECP256],
      localId: fqdn('gcks.example'),
      localAuth: { kind: 'psk' },
      resolvePeer: () => ({ psk }),
    });
    const rsa = restarted.adopt(ikeSaFromRecord(record));
    // Route the initiator's traffic to the restarted responder.
    const q = t.queue;
    const ping = sa.ping();
    const d1 = q.shift()!;
    expect(restarted.receive(d1.bytes, d1.path)).toBe('answered');
    const r1 = q.shift()!;
    expect(t.initiator.receive(r1.bytes, r1.path)).toBe('accepted');
    await ping;
    // The responder sends a request of a G-IKEv2 exchange type; the initiator's handler answers.
    sa.onRequest = (exchangeType, payloads) =>
      exchangeType === IkeExchange.GSA_INBAND_REKEY && payloads.length === 1 ? [ikeNotify(NotifyType.REKEY_SA)] : undefined;
    const reply = rsa.request(IkeExchange.GSA_INBAND_REKEY, [ikeNotify(NotifyType.INITIAL_CONTACT)]);
    const d2 = q.shift()!;
    expect(t.initiator.receive(d2.bytes, d2.path)).toBe('answered');
    const r2 = q.shift()!;
    expect(restarted.receive(r2.bytes, r2.path)).toBe('accepted');
    const answer = await reply;
    expect(getNotify(answer, NotifyType.REKEY_SA)).toBeDefined();
    // Delete from the initiator removes the SA from the restarted responder's table.
    const del = sa.delete();
    const d3 = q.shift()!;
    restarted.receive(d3.bytes, d3.path);
    const r3 = q.shift()!;
    t.initiator.receive(r3.bytes, r3.path);
    await del;
    expect(restarted.established.size).toBe(0);
  });

  it('computes NAT detection hashes over IPv4 and IPv6 addresses (RFC 7296 §2.23)', () => {
    expect(addressOctets('10.1.2.3')).toEqual(Uint8Array.of(10, 1, 2, 3));
    expect(Buffer.from(addressOctets('2001:db8::1')).toString('hex')).toBe('20010db8000000000000000000000001');
    expect(Buffer.from(addressOctets('::ffff:10.1.2.3')).toString('hex')).toBe('00000000000000000000ffff0a010203');
    expect(Buffer.from(addressOctets('fe80::1%eth0')).toString('hex')).toBe('fe800000000000000000000000000001');
    const a = natDetectionHash(new Uint8Array(8), new Uint8Array(8), '10.0.0.1', 500);
    expect(a.length).toBe(20);
    expect(a).not.toEqual(natDetectionHash(new Uint8Array(8), new Uint8Array(8), '10.0.0.1', 4500));
  });

  /** A GSA_AUTH responder (PSK members) and `attempt`, which runs one member's registration against it. */
  function gsaAuthBed(r: Pick<IkeResponderOptions, 'localAuth' | 'resolvePeer' | 'authorize'>) {
    const refusals: string[] = [];
    const clock = new ManualClock();
    const { ab } = pathBetween('10.0.0.1', '10.0.0.2');
    const queue: { to: 'i' | 'r'; bytes: Uint8Array; path: IkePath }[] = [];
    const responder = new IkeResponder({
      transport: { send: (bytes, path) => queue.push({ to: 'i', bytes, path: reversePath(path) }) },
      clock,
      random,
      proposals: [PROPOSAL_GCM_ECP256],
      localId: fqdn('gcks.example'),
      authExchangeTypes: [IkeExchange.GSA_AUTH],
      onRefused: (e) => refusals.push(`${e.reason}:${e.notifyType}`),
      ...r,
    });
    const attempt = (member: string, group: string, p = psk) => {
      const initiator = new IkeInitiator({
        transport: { send: (bytes, path) => queue.push({ to: 'r', bytes, path: reversePath(path) }) },
        clock,
        random,
        path: ab,
        proposals: [PROPOSAL_GCM_ECP256],
        localId: fqdn(member),
        localAuth: { kind: 'psk' },
        peer: { psk: p },
        authExchangeType: IkeExchange.GSA_AUTH,
        authPayloads: [payload(IkePayload.IDg, fqdn(group))],
      });
      const done = initiator.start();
      for (let n = 0; queue.length > 0 && n < 20; n++) {
        const d = queue.shift()!;
        if (d.to === 'r') responder.receive(d.bytes, d.path);
        else initiator.receive(d.bytes, d.path);
      }
      return done;
    };
    return { responder, refusals, attempt };
  }

  it('runs GSA_AUTH with extra payloads through the authorize hook, and audits refusals', async () => {
    const { responder, refusals, attempt } = gsaAuthBed({
      localAuth: { kind: 'psk' },
      resolvePeer: (id) => (new TextDecoder().decode(id.data).endsWith('.example') ? { psk } : undefined),
      authorize: ({ request, peerId }) => {
        const idg = getPayload(request, IkePayload.IDg);
        const group = idg ? new TextDecoder().decode(idg.data) : '';
        if (group !== 'g1.example' || new TextDecoder().decode(peerId.data) === 'banned.example') {
          return { payloads: [ikeNotify(NotifyType.AUTHORIZATION_FAILED)], establish: false };
        }
        return { payloads: [ikeNotify(NotifyType.GROUP_SENDER)] };
      },
    });
    const ok = await attempt('member1.example', 'g1.example');
    expect(getNotify(ok.authResponse, NotifyType.GROUP_SENDER)).toBeDefined();
    await expect(attempt('member2.example', 'other.example')).rejects.toMatchObject({ notifyType: NotifyType.AUTHORIZATION_FAILED });
    await expect(attempt('banned.example', 'g1.example')).rejects.toMatchObject({ notifyType: NotifyType.AUTHORIZATION_FAILED });
    await expect(attempt('stranger.test', 'g1.example')).rejects.toMatchObject({ code: 'AUTHENTICATION_FAILED' });
    await expect(attempt('member3.example', 'g1.example', new TextEncoder().encode('bad'))).rejects.toMatchObject({ code: 'AUTHENTICATION_FAILED' });
    expect(refusals).toEqual(['policy:46', 'policy:46', 'unknown_peer:24', 'auth:24']);
    expect(responder.established.size).toBe(1);
    expect(responder.halfOpenCount).toBe(0);
  });

  it('a responder that cannot make its own AUTH refuses before authorize: nobody is admitted', async () => {
    const authorized: string[] = [];
    const { responder, refusals, attempt } = gsaAuthBed({
      // A key type we cannot sign IKE AUTH with (RFC 7427 here: ECDSA and RSA only).
      localAuth: { kind: 'signature', privateKey: generateKeyPairSync('ed25519').privateKey, certificates: [] },
      resolvePeer: () => ({ psk }),
      authorize: ({ peerId }) => {
        authorized.push(new TextDecoder().decode(peerId.data));
        return { payloads: [] };
      },
    });
    await expect(attempt('member1.example', 'g1.example')).rejects.toMatchObject({ notifyType: NotifyType.AUTHENTICATION_FAILED });
    expect(refusals).toEqual([`local_auth:${NotifyType.AUTHENTICATION_FAILED}`]);
    expect(authorized).toEqual([]);
    expect(responder.established.size).toBe(0);
    expect(responder.counters.get('refused_local_auth')).toBe(1);
  });

  it('answers a retransmitted IKE_SA_INIT from its cache and expires half-open SAs', () => {
    const t = run({ iAuth: { kind: 'psk' }, rAuth: { kind: 'psk' }, iPeer: { psk }, rPeers: () => ({ psk }) });
    t.initiator.start().catch(() => undefined);
    const init = t.queue.shift()!;
    expect(t.responder.receive(init.bytes, init.path)).toBe('answered');
    expect(t.responder.receive(init.bytes, init.path)).toBe('answered');
    const [a, b] = [t.queue.shift()!, t.queue.shift()!];
    expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(true);
    expect(t.responder.halfOpenCount).toBe(1);
    t.clock.advance(30_000);
    expect(t.responder.halfOpenCount).toBe(0);
    expect(t.responder.counters.get('half_open_expired')).toBe(1);
    t.initiator.close();
  });

  it('a dispatcher shares one socket between a responder and initiators, both ways at once', async () => {
    const clock = new ManualClock();
    const { ab, ba } = pathBetween('10.0.0.1', '10.0.0.2');
    const wire: { to: 'a' | 'b'; bytes: Uint8Array; path: IkePath }[] = [];
    const side = (name: 'a' | 'b', other: 'a' | 'b', path: IkePath) => {
      const transport: IkeTransport = { send: (bytes, p) => wire.push({ to: other, bytes, path: reversePath(p) }) };
      const responder = new IkeResponder({ transport, clock, random, proposals: [PROPOSAL_CBC_X25519], localId: fqdn(`${name}.example`), localAuth: { kind: 'psk' }, resolvePeer: () => ({ psk }) });
      const dispatcher = new IkeDispatcher(responder);
      const initiator = new IkeInitiator({ transport, clock, random, path, proposals: [PROPOSAL_CBC_X25519], localId: fqdn(`${name}.example`), localAuth: { kind: 'psk' }, peer: { psk } });
      dispatcher.addInitiator(initiator);
      return { responder, dispatcher, initiator };
    };
    const a = side('a', 'b', ab);
    const b = side('b', 'a', ba);
    const both = Promise.all([a.initiator.start(), b.initiator.start()]);
    for (let n = 0; wire.length > 0 && n < 50; n++) {
      const d = wire.shift()!;
      (d.to === 'a' ? a : b).dispatcher.receive(d.bytes, d.path);
    }
    await both;
    expect(a.responder.established.size).toBe(1);
    expect(b.responder.established.size).toBe(1);
    expect(new IkeDispatcher().receive(new Uint8Array(40), ab)).toBe('dropped');
  });
});
