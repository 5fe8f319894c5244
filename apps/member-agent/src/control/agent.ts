/**
 * The member agent: one Datapath between the network (AgentNetwork: ESP in UDP for each address
 * family, and in TUN mode raw sockets for native ESP and fail-open plain IP) and an application
 * port (TUN device, or socket mode's UdpAppPort), one GroupSession per configured group, an IKE
 * socket for registration, one socket per rekey address, and the status view. Wiring only; the
 * decisions live in GroupSession, the packet work in @app/datapath.
 */
import { createPrivateKey, randomBytes } from 'node:crypto';
import { EncrId, IdType, KeGroup, PrfId, type IdPayload } from '@app/codec';
import { parseCertificate, type Certificate } from '@app/crypto';
import { Datapath, type DatapathApi, type GspdEntry, type InboundDatagram } from '@app/datapath';
import { IkeDispatcher, type IkeClock, type IkeLocalAuth, type IkePeerPolicy } from '@app/gkm';
import { AgentNetwork, isMulticast, TunDevice, UdpBind } from '../net/index.js';
import { EspKeyLog } from '../status/esp-key-log.js';
import { UdpAppPort } from '../plaintext/udp-app-port.js';
import type { AgentConfig, AgentSecrets } from '../config/agent-config.js';
import { GroupSession, type Logger } from './group-session.js';
import { onDemandEntry } from './sa-mapping.js';

/** Datapath tick: trailing-edge deletions and held packets are handled at this granularity (ms). */
export const DATAPATH_TICK_MS = 100;
/** The ESP-in-UDP port of the groups (RFC 3948 §2.1). */
export const DEFAULT_ESP_PORT = 4500;

const fqdn = (name: string): IdPayload => ({ idType: IdType.ID_FQDN, data: new TextEncoder().encode(name) });

function pemBlocks(pem: string, label: string): Uint8Array[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  return [...pem.matchAll(re)].map((m) => new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64')));
}

export const realClock: IkeClock = {
  now: () => Date.now(),
  setTimer: (ms, fn) => {
    const t = setTimeout(fn, Math.min(ms, 2 ** 31 - 1));
    return { cancel: () => clearTimeout(t) };
  },
};

export interface AgentOptions {
  config: AgentConfig;
  secrets: AgentSecrets;
  log: Logger;
  clock?: IkeClock;
  /** The groups' ESP-in-UDP port; default 4500. */
  espPort?: number;
}

export class MemberAgent {
  readonly sessions = new Map<string, GroupSession>();
  readonly datapath: Datapath;
  readonly startedAt: number;
  private readonly policies = new Map<string, GspdEntry[]>();
  private readonly rekeyBinds = new Map<string, UdpBind>();
  private readonly dispatcher = new IkeDispatcher();
  /** Set only when `debug.espKeyLog` is configured. */
  readonly keyLog: EspKeyLog | undefined;
  private tick: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    readonly options: AgentOptions,
    readonly espPort: number,
    readonly net: AgentNetwork,
    readonly ikeBind: UdpBind,
    readonly appPort: UdpAppPort | TunDevice | undefined,
  ) {
    const clock = options.clock ?? realClock;
    this.startedAt = clock.now();
    const { v4, v6 } = localAddresses(options.config);
    this.datapath = new Datapath({ clock, localAddresses: { ...(v4 !== undefined ? { v4 } : {}), ...(v6 !== undefined ? { v6 } : {}) } });
    const path = options.config.debug.espKeyLog;
    this.keyLog = path === undefined ? undefined : new EspKeyLog(path, (error) => options.log.error('cannot write the ESP key log', { path, error }));
  }

  /** The ESP-in-UDP bind of the local address's family (socket counters for tests and status). */
  get network(): UdpBind {
    return this.net.udp(this.options.config.datapath.localAddress.includes(':') ? 6 : 4)!;
  }

  static async start(options: AgentOptions): Promise<MemberAgent> {
    const c = options.config;
    const family = c.datapath.localAddress.includes(':') ? 6 : 4;
    const espPort = options.espPort ?? c.datapath.espPort ?? DEFAULT_ESP_PORT;
    const { v4, v6 } = localAddresses(c);
    const tun = c.datapath.mode === 'tun';
    const iface = c.datapath.interface !== undefined ? { interfaceName: c.datapath.interface } : {};
    const network = await AgentNetwork.open({
      espPort,
      ...(v4 !== undefined ? { v4: { localAddress: v4, ...iface, ...(family === 4 ? { multicastInterface: c.datapath.multicastInterface } : {}) } } : {}),
      ...(v6 !== undefined ? { v6: { localAddress: v6, ...iface, ...(family === 6 ? { multicastInterface: c.datapath.multicastInterface } : {}) } } : {}),
      // TUN mode runs as root: raw sockets carry native ESP (SAs without UDP encapsulation) and
      // fail-open's plain IP with the application's own source address.
      raw: tun,
      plainUdp: !tun && c.failMode === 'open',
    });
    let ikeBind: UdpBind | undefined;
    let appPort: UdpAppPort | TunDevice | undefined;
    try {
      ikeBind = await UdpBind.open({ family, localAddress: c.datapath.localAddress, port: 0, localPort: 0 });
      if (tun) {
        // Linux, root: the groups' addresses are routed into the TUN device, so unmodified
        // applications multicast into the datapath and receive what it delivers (RFC 5374 §3.1).
        // IPv6: Linux picks a multicast source only among the outgoing interface's addresses, so
        // the host's IPv6 address goes on the TUN device too (see TunOptions.addresses).
        const routes = c.groups.flatMap((g) => (g.address === undefined ? [] : [`${g.address}/${g.address.includes(':') ? 128 : 32}`]));
        appPort = TunDevice.open({
          name: c.datapath.tunName,
          routes,
          ...(v6 !== undefined ? { addresses: [`${v6}/128`], disableIpv6: false } : { disableIpv6: true }),
        });
      } else {
        const groups = c.groups.flatMap((g) =>
          g.applicationPort !== undefined && g.address !== undefined && g.dataPort !== undefined
            ? [{ name: g.name, address: g.address, dataPort: g.dataPort, applicationPort: g.applicationPort }]
            : [],
        );
        appPort = await UdpAppPort.open({ localAddress: c.datapath.localAddress, applicationAddress: c.datapath.applicationAddress, groups });
      }
    } catch (e) {
      await network.close();
      await ikeBind?.close();
      throw e;
    }
    const agent = new MemberAgent(options, espPort, network, ikeBind, appPort);
    agent.wire();
    for (const error of network.rawErrors) options.log.warn('no raw IP socket: native ESP and fail-open plain IP cannot be sent', { error });
    if (agent.keyLog) options.log.warn('ESP key log is on: every SA key is written to a file (debugging only)', { path: agent.keyLog.path });
    for (const s of agent.sessions.values()) {
      const g = c.groups.find((x) => x.name === s.name)!;
      // Fail-open: a bypassed packet raises no registration event, so such groups register at
      // start whatever their `registration` says (and retry with backoff until they succeed).
      if (g.registration === 'at-start' || c.failMode === 'open') void s.register();
      // Fail-open receivers join the group on the link at once, so that its traffic sent in
      // clear by fail-open speakers reaches this host before any SA exists.
      if (c.failMode === 'open' && g.address !== undefined && isMulticast(g.address)) {
        agent.joinGroup(g.name, g.address);
        // Socket mode has no kernel path to the applications: the agent receives the group's
        // plain UDP itself and its datapath delivers it while the entry is BYPASS (GSPD-I).
        if (c.datapath.mode === 'socket' && g.dataPort !== undefined && g.dataPort === espPort) {
          options.log.warn('fail-open cannot receive the group in clear: its data port is the ESP-in-UDP port', { group: g.name, port: espPort });
        } else if (c.datapath.mode === 'socket' && g.dataPort !== undefined) {
          const port = g.dataPort;
          agent.net.listenPlain({ group: g.address, port, ...(g.source !== undefined ? { source: g.source } : {}) }).catch((err: Error) => {
            options.log.error('cannot receive the group in clear (fail-open)', { group: g.name, error: err.message });
          });
        }
      }
    }
    return agent;
  }

  private wire(): void {
    const { config: c, secrets, log } = this.options;
    const clock = this.options.clock ?? realClock;
    this.datapath.attach(this.net, this.appPort);
    const api: DatapathApi = this.keyLog ? this.keyLog.wrap(this.datapath) : this.datapath;
    this.ikeBind.onReceive((d: InboundDatagram) => {
      this.dispatcher.receive(d.data, { remoteAddress: d.srcAddress, remotePort: d.srcPort, localAddress: d.dstAddress, localPort: d.dstPort, marker: true });
    });
    let localAuth: IkeLocalAuth;
    const peer: IkePeerPolicy = {};
    if (c.identity.kind === 'certificate') {
      localAuth = { kind: 'signature', privateKey: createPrivateKey(secrets.privateKeyPem!), certificates: pemBlocks(secrets.certificatePem!, 'CERTIFICATE') };
    } else {
      localAuth = { kind: 'psk' };
      peer.psk = secrets.psk!;
    }
    if (secrets.gcksCaPem) peer.trustAnchors = pemBlocks(secrets.gcksCaPem, 'CERTIFICATE').map((d): Certificate => parseCertificate(d));
    const remoteId = c.gcks[0]?.id;
    for (const g of c.groups) {
      const session = new GroupSession({
        group: { name: g.name, role: g.role },
        gcks: c.gcks,
        datapath: api,
        clock,
        random: (n) => new Uint8Array(randomBytes(n)),
        sendIke: (datagram, to) => this.ikeBind.send({ framing: 'udp', data: datagram, family: to.address.includes(':') ? 6 : 4, srcAddress: '', dstAddress: to.address, srcPort: 0, dstPort: to.port }),
        localIke: this.ikeBind.local,
        addInitiator: (i) => this.dispatcher.addInitiator(i),
        removeInitiator: (i) => this.dispatcher.removeInitiator(i),
        setPolicy: (group, entries) => this.setPolicy(group, entries),
        listenRekey: (address, port) => this.listenRekey(address, port),
        onSaPort: (group, port) => this.warnPort(group, port),
        ike: {
          proposals: [
            { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 256, prfId: PrfId.PRF_HMAC_SHA2_256, group: KeGroup.ECP_256 },
            { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 256, prfId: PrfId.PRF_HMAC_SHA2_256, group: KeGroup.CURVE25519 },
          ],
          localId: fqdn(c.identity.id),
          localAuth,
          peer,
          ...(remoteId ? { remoteId: fqdn(remoteId) } : {}),
          retransmit: { timeoutMs: c.ikeTimeoutMs, tries: c.ikeTries },
        },
        trustAnchor: secrets.trustAnchorPem,
        kekRenewBeforeMs: c.kekRenewBeforeSeconds * 1000,
        log,
      });
      this.sessions.set(g.name, session);
      if (g.address !== undefined && g.dataPort !== undefined) {
        const entry = onDemandEntry(g.name, g.role, g.address, g.dataPort);
        this.policies.set(g.name, [c.failMode === 'open' ? { ...entry, action: 'bypass' } : entry]);
      }
    }
    this.installPolicy();
    this.datapath.onRegistrationNeeded((e) => {
      const s = this.sessions.get(e.groupId);
      if (s && s.state !== 'registered' && s.state !== 'closed') {
        log.info('first protected packet without SA: registering', { group: e.groupId, destination: e.destination });
        void s.register();
      }
    });
    this.datapath.onUnknownSpi((e) => {
      for (const s of this.sessions.values()) {
        if (s.sas.size > 0 && [...this.policies.get(s.name) ?? []].some((p) => p.selector.destination === e.dstAddress)) s.onUnknownSpi();
      }
    });
    this.datapath.onAudit((e) => log.warn('audit', { kind: e.kind, spi: e.spi, detail: e.detail }));
    this.tick = setInterval(() => this.datapath.tick(), DATAPATH_TICK_MS);
  }

  private warnPort(group: string, port: number | undefined): void {
    if (port === undefined && this.net.hasRaw) return; // native ESP on the raw sockets
    if (port === undefined) {
      this.options.log.warn('SA uses native ESP; socket mode carries only ESP in UDP (enable UDP encapsulation in the policy)', { group });
    } else if (port !== this.espPort) {
      this.options.log.warn('SA uses an ESP-in-UDP port the agent does not listen on', { group, saPort: port, espPort: this.espPort });
    }
  }

  private setPolicy(group: string, entries: GspdEntry[]): void {
    this.policies.set(group, entries);
    this.installPolicy();
    for (const e of entries) {
      const dst = e.selector.destination;
      if (dst) this.joinGroup(group, dst);
    }
  }

  /** Joins a group address on the network (every bind of its family); AgentNetwork joins each once. */
  private joinGroup(group: string, address: string): void {
    const source = this.options.config.groups.find((g) => g.address === address)?.source;
    this.net.join({ group: address, ...(source !== undefined ? { source } : {}) }).catch((err: Error) => {
      this.options.log.error('cannot join group address', { group, address, error: err.message });
    });
  }

  private installPolicy(): void {
    const all = [...this.policies.values()].flat();
    try {
      this.datapath.installPolicy(all);
    } catch (e) {
      this.options.log.error('GSPD refused', { error: (e as Error).message });
    }
  }

  private async listenRekey(address: string, port: number): Promise<void> {
    const key = `${address}|${port}`;
    if (this.rekeyBinds.has(key) || this.closed) return;
    const family = address.includes(':') ? 6 : 4;
    const local = this.net.local(family);
    if (!local) {
      this.options.log.error('no local address of the rekey address family', { address });
      return;
    }
    const joinInterface = this.net.joinInterface(family);
    const bind = await UdpBind.open({ family, localAddress: local.address, port, localPort: 0, groups: [{ group: address, ...(joinInterface !== undefined ? { interface: joinInterface } : {}) }] });
    this.rekeyBinds.set(key, bind);
    bind.onReceive((d) => {
      for (const s of this.sessions.values()) {
        if (s.rekeyAddress?.address === address && s.rekeyAddress.port === port) s.onRekeyDatagram(d.data);
      }
    });
  }

  /** De-registers every group (bounded by the IKE retransmission), then closes every socket. */
  async stop(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.sessions.values()].map((s) => s.close()));
    if (this.tick) clearInterval(this.tick);
    await Promise.all([this.net.close(), this.ikeBind.close(), this.appPort?.close(), ...[...this.rekeyBinds.values()].map((b) => b.close())]);
  }
}

/** The agent's unicast address per family: `localAddress`, and `localAddress6` beside an IPv4 one. */
function localAddresses(c: AgentConfig): { v4?: string; v6?: string } {
  const a = c.datapath.localAddress;
  if (a.includes(':')) return { v6: a };
  return { v4: a, ...(c.datapath.localAddress6 !== undefined ? { v6: c.datapath.localAddress6 } : {}) };
}
