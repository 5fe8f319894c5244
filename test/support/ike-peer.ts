/**
 * Our IKEv2 side for the interop tests, run as a compiled script inside a network namespace:
 *   node dist/test/support/ike-peer.js <config.json>
 * It binds UDP 500 (plain) and 4500 (RFC 3948 non-ESP marker) on each configured address, runs
 * an IkeResponder on all of them, and takes JSON-line commands on stdin:
 *   {"id":1,"cmd":"initiate", ...InitiateCommand}  -> {"id":1,"spiI","spiR","keys",...} | {"id":1,"error"}
 *   {"id":2,"cmd":"stats"}                            -> {"id":2,"responder":{...counters}}
 * and prints {"event":"responder-established",...} for SAs our responder sets up.
 * It prints IKE SA keys in hex: this is a test tool, the keys are compared with charon's log.
 */
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { IdType, type IdPayload } from '@app/codec';
import { parseCertificate, type Certificate } from '@app/crypto';
import {
  IkeCounters,
  IkeDispatcher,
  IkeInitiator,
  IkeResponder,
  type IkeClock,
  type IkeLocalAuth,
  type IkePath,
  type IkeProposalConfig,
  type IkeSa,
  type IkeTransport,
} from '@app/gkm';

export interface PeerAuthConfig {
  kind: 'psk' | 'signature';
  /** PEM private key and certificate (signature). */
  keyPem?: string;
  certPem?: string;
}

export interface PeerConfig {
  addresses: string[];
  responder: {
    localId: string;
    proposals: IkeProposalConfig[];
    auth: PeerAuthConfig;
    /** Known peers: FQDN identity -> PSK (text). */
    psks: Record<string, string>;
    /** How we authenticate to particular peers (PAD entries), overriding `auth`. */
    peerAuth?: Record<string, PeerAuthConfig>;
    trustAnchorsPem: string[];
  };
}

export interface InitiateCommand {
  local: string;
  remote: string;
  port: number;
  proposals: IkeProposalConfig[];
  localId: string;
  remoteId?: string;
  auth: PeerAuthConfig;
  psk?: string;
  trustAnchorsPem?: string[];
  /** Announce SIGNATURE_HASH_ALGORITHMS (default true). */
  signatureHashes?: boolean;
}

const random = (n: number) => new Uint8Array(randomBytes(n));
const clock: IkeClock = {
  now: () => Date.now(),
  setTimer: (ms, fn) => {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};
const fqdn = (s: string): IdPayload => ({ idType: IdType.ID_FQDN, data: new TextEncoder().encode(s) });
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const out = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

function localAuth(a: PeerAuthConfig): IkeLocalAuth {
  if (a.kind === 'psk') return { kind: 'psk' };
  const cert = new X509Certificate(a.certPem!);
  return { kind: 'signature', privateKey: createPrivateKey(a.keyPem!), certificates: [new Uint8Array(cert.raw)] };
}

const anchors = (pems: string[] = []): Certificate[] => pems.map((p) => parseCertificate(new Uint8Array(new X509Certificate(p).raw)));

function saInfo(sa: IkeSa): Record<string, unknown> {
  const k = sa.state.keys;
  return {
    spiI: hex(sa.state.spiI),
    spiR: hex(sa.state.spiR),
    ni: hex(sa.state.ni),
    nr: hex(sa.state.nr),
    peerId: new TextDecoder().decode(sa.state.peerId.data),
    encrId: sa.state.suite.sk.encrId,
    group: sa.state.suite.group,
    localPort: sa.state.path.localPort,
    keys: { skd: hex(k.skd), skai: hex(k.skai), skar: hex(k.skar), skei: hex(k.skei), sker: hex(k.sker), skpi: hex(k.skpi), skpr: hex(k.skpr) },
  };
}

async function main(): Promise<void> {
  const cfg = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as PeerConfig;
  const sockets = new Map<string, Socket>();
  const transport: IkeTransport = {
    send(datagram, path) {
      sockets.get(`${path.localAddress}:${path.localPort}`)?.send(datagram, path.remotePort, path.remoteAddress);
    },
  };
  const counters = new IkeCounters();
  const r = cfg.responder;
  const responderAnchors = anchors(r.trustAnchorsPem);
  const peerAuth = new Map(Object.entries(r.peerAuth ?? {}).map(([id, a]) => [id, localAuth(a)]));
  const responder = new IkeResponder({
    transport,
    clock,
    random,
    counters,
    proposals: r.proposals,
    localId: fqdn(r.localId),
    localAuth: localAuth(r.auth),
    certReqAnchors: responderAnchors,
    resolvePeer(id) {
      if (id.idType !== IdType.ID_FQDN) return undefined;
      const name = new TextDecoder().decode(id.data);
      const psk = r.psks[name];
      if (psk !== undefined) return { psk: new TextEncoder().encode(psk), localAuth: { kind: 'psk' } };
      const own = peerAuth.get(name);
      return { trustAnchors: responderAnchors, ...(own ? { localAuth: own } : {}) };
    },
    onEstablished(sa) {
      out({ event: 'responder-established', ...saInfo(sa) });
      sa.onDeleted = () => out({ event: 'responder-deleted', spiR: hex(sa.state.spiR) });
    },
  });
  const initiators = new Map<string, IkeInitiator>();
  const dispatcher = new IkeDispatcher(responder);

  for (const address of cfg.addresses) {
    for (const [port, marker] of [[500, false], [4500, true]] as const) {
      const s = createSocket({ type: address.includes(':') ? 'udp6' : 'udp4' });
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.bind(port, address, () => resolve());
      });
      s.on('message', (msg, rinfo) => {
        const path: IkePath = { localAddress: address, localPort: port, remoteAddress: rinfo.address, remotePort: rinfo.port, marker };
        const bytes = new Uint8Array(msg);
        const outcome = dispatcher.receive(bytes, path);
        if (process.env.IKE_PEER_TRACE) out({ event: 'rx', port, from: rinfo.address, outcome, hex: hex(bytes) });
      });
      sockets.set(`${address}:${port}`, s);
    }
  }
  out({ event: 'ready' });

  createInterface({ input: process.stdin }).on('line', (text) => {
    let cmd: { id: number; cmd: string } & Partial<InitiateCommand>;
    try {
      cmd = JSON.parse(text);
    } catch {
      return;
    }
    if (cmd.cmd === 'stats') return out({ id: cmd.id, responder: counters.toJSON() });
    if (cmd.cmd === 'half-open') {
      // One IKE_SA_INIT that is never continued: leaves a half-open SA at the peer (to make it
      // demand COOKIEs). Its answer reaches no initiator and is dropped by our responder.
      const c = cmd as unknown as InitiateCommand & { id: number };
      const ghost = new IkeInitiator({
        transport,
        clock,
        random,
        path: { localAddress: c.local, localPort: c.port, remoteAddress: c.remote, remotePort: c.port, marker: c.port === 4500 },
        proposals: c.proposals,
        localId: fqdn(c.localId),
        localAuth: { kind: 'psk' },
        peer: {},
        retransmit: { timeoutMs: 1000, tries: 0 },
      });
      ghost.start().catch(() => undefined);
      ghost.close();
      return out({ id: cmd.id, sent: true });
    }
    if (cmd.cmd !== 'initiate') return out({ id: cmd.id, error: `unknown command ${cmd.cmd}` });
    const c = cmd as unknown as InitiateCommand & { id: number };
    const spiI = random(8);
    const init = new IkeInitiator({
      transport,
      clock,
      random,
      spiI,
      path: { localAddress: c.local, localPort: c.port, remoteAddress: c.remote, remotePort: c.port, marker: c.port === 4500 },
      proposals: c.proposals,
      localId: fqdn(c.localId),
      remoteId: c.remoteId ? fqdn(c.remoteId) : undefined,
      localAuth: localAuth(c.auth),
      peer: { psk: c.psk === undefined ? undefined : new TextEncoder().encode(c.psk), trustAnchors: anchors(c.trustAnchorsPem) },
      retransmit: { timeoutMs: 500, tries: 3 },
      signatureHashes: c.signatureHashes,
    });
    initiators.set(hex(spiI), init);
    dispatcher.addInitiator(init);
    init.start().then(
      ({ sa }) => {
        sa.onDeleted = () => out({ event: 'initiator-deleted', spiI: hex(sa.state.spiI) });
        out({ id: c.id, ...saInfo(sa), counters: init.counters.toJSON() });
      },
      (e: Error) => out({ id: c.id, error: e.message, counters: init.counters.toJSON() }),
    );
  });
  process.on('SIGTERM', () => {
    responder.close();
    for (const i of initiators.values()) i.close();
    for (const s of sockets.values()) s.close();
    process.exit(0);
  });
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
