/**
 * A process the namespace tests start inside a namespace to drive one host's binds directly
 * (without a datapath): JSON lines in on stdin, JSON lines out on stdout.
 *
 *   {id, op:'tun-open', name, routes?, addresses?, mtu?, disableIpv6?}      packets read later: {ev:'tun', hex}
 *   {id, op:'tun-write', hex}
 *   {id, op:'raw-open', family?, groups?, multicastInterface?, loopback?}
 *                                                  packets later: {ev:'raw', hex, src, dst}
 *   {id, op:'raw-send', hex, family?}
 *   {id, op:'raw-join', family?, group, interface?, source?}
 *   {id, op:'udp-open', ...UdpBindOptions}         datagrams later: {ev:'udp', hex, src, dst, srcPort, dstPort}
 *   {id, op:'udp-join', group, source?, interface?}
 *   {id, op:'udp-send', hex, dst, port, family?}
 *   {id, op:'stats'}                               -> {id, tun, raw, udp}
 *   {id, op:'exit'}
 *
 * Every request gets one reply line with its id: {id, ok:true, ...} or {id, error}.
 */
import { RawIpBind } from '../../apps/member-agent/src/net/raw-ip-bind.js';
import { TunDevice } from '../../apps/member-agent/src/net/tun-device.js';
import { UdpBind, type UdpBindOptions } from '../../apps/member-agent/src/net/udp-bind.js';
import { printJson as print, serveJsonLines } from './json-lines-child.js';

let tun: TunDevice | undefined;
const raws = new Map<4 | 6, RawIpBind>();
const fam = (req: Request): 4 | 6 => (req.family === 6 ? 6 : 4);
let udp: UdpBind | undefined;

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');

type Request = { id: number; op: string; [k: string]: unknown };

async function handle(req: Request): Promise<object> {
  switch (req.op) {
    case 'tun-open': {
      tun = TunDevice.open({
        name: String(req.name),
        routes: (req.routes as string[] | undefined) ?? [],
        addresses: (req.addresses as string[] | undefined) ?? [],
        ...(req.mtu !== undefined ? { mtu: Number(req.mtu) } : {}),
        disableIpv6: req.disableIpv6 === true,
      });
      tun.onPacket((p) => print({ ev: 'tun', hex: hex(p) }));
      return { name: tun.name };
    }
    case 'tun-write':
      need(tun, 'tun').deliver(Buffer.from(String(req.hex), 'hex'));
      return { stats: need(tun, 'tun').stats };
    case 'raw-open': {
      const raw = RawIpBind.open({
        family: fam(req),
        groups: (req.groups as never) ?? [],
        ...(req.multicastInterface !== undefined ? { multicastInterface: String(req.multicastInterface) } : {}),
        loopback: req.loopback === true,
      });
      raws.set(fam(req), raw);
      raw.onReceive((d) => print({ ev: 'raw', hex: hex(d.data), src: d.srcAddress, dst: d.dstAddress }));
      return {};
    }
    case 'raw-join':
      need(raws.get(fam(req)), 'raw').join(req as never);
      return {};
    case 'raw-send': {
      const data = Buffer.from(String(req.hex), 'hex');
      const raw = need(raws.get(fam(req)), 'raw');
      raw.send({ framing: 'raw-ip', data, family: fam(req), srcAddress: '', dstAddress: '', srcPort: 0, dstPort: 0 });
      return { stats: raw.stats, lastError: raw.lastError };
    }
    case 'udp-open': {
      const { id: _id, op: _op, ...options } = req;
      udp = await UdpBind.open(options as unknown as UdpBindOptions);
      udp.onReceive((d) =>
        print({ ev: 'udp', hex: hex(d.data), src: d.srcAddress, dst: d.dstAddress, srcPort: d.srcPort, dstPort: d.dstPort }),
      );
      return { local: udp.local };
    }
    case 'udp-join': {
      const { id: _id, op: _op, ...join } = req;
      await need(udp, 'udp').join(join as never);
      return {};
    }
    case 'udp-send':
      need(udp, 'udp').send({
        framing: 'udp',
        data: Buffer.from(String(req.hex), 'hex'),
        family: (req.family as 4 | 6 | undefined) ?? 4,
        srcAddress: '',
        dstAddress: String(req.dst),
        srcPort: 0,
        dstPort: Number(req.port),
      });
      return {};
    case 'stats':
      return { tun: tun?.stats, raw: raws.get(4)?.stats, raw6: raws.get(6)?.stats, udp: udp?.stats };
    case 'exit':
      await shutdown();
      setImmediate(() => process.exit(0));
      return {};
    default:
      throw new Error(`unknown op ${req.op}`);
  }
}

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`${what} is not open`);
  return v;
}

async function shutdown(): Promise<void> {
  await Promise.all([tun?.close(), ...[...raws.values()].map((r) => r.close()), udp?.close()]);
}

serveJsonLines(handle);
process.on('SIGTERM', () => void shutdown().then(() => process.exit(0)));
print({ ev: 'ready', pid: process.pid });
