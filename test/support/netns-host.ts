/**
 * One member host of the namespace tests: the datapath between a TUN device (application side)
 * and a raw ESP or UDP bind (network side), with policy and SAs installed through the Datapath
 * API from the JSON configuration in argv[2] (fixed test keys, hex). JSON lines on stdout:
 * {ev:'ready'}, events ({ev:'audit'|'registration-needed'|'unknown-spi'|'hard-expire', ...});
 * requests on stdin: {id, op:'stats'} -> {id, ok, datapath, tun, network};
 * {id, op:'installSa', sa, activateInMs?}; {id, op:'retireSa', spi, deleteInMs?}; {id, op:'exit'}.
 * Stops cleanly on SIGTERM.
 */
import { Datapath, type GspdEntry, type NetworkBind, type SaConfig } from '@app/datapath';
import {
  openNetworkBind,
  TunDevice,
  type RawIpBindOptions,
  type TunOptions,
  type UdpBindOptions,
} from '../../apps/member-agent/src/net/index.js';
import { printJson as print, serveJsonLines } from './json-lines-child.js';

interface HostConfig {
  localAddress: string;
  tun: TunOptions;
  raw?: RawIpBindOptions;
  udp?: UdpBindOptions;
  policy: GspdEntry[];
  sas: Array<Omit<SaConfig, 'encryptionKey' | 'integrityKey'> & { encryptionKey: string; integrityKey?: string }>;
}

type JsonSa = HostConfig['sas'][number];

interface Request {
  id?: number;
  op?: string;
  sa?: JsonSa;
  activateInMs?: number;
  spi?: number;
  deleteInMs?: number;
}

function saFromJson({ encryptionKey, integrityKey, ...sa }: JsonSa): SaConfig {
  return {
    ...sa,
    encryptionKey: Buffer.from(encryptionKey, 'hex'),
    ...(integrityKey !== undefined ? { integrityKey: Buffer.from(integrityKey, 'hex') } : {}),
  };
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as HostConfig;
  const network: NetworkBind & { stats: object } = await openNetworkBind(
    config.raw ? { kind: 'raw', ...config.raw } : { kind: 'udp', ...(config.udp ?? { family: 4, localAddress: config.localAddress }) },
  );
  const tun = TunDevice.open({ disableIpv6: true, ...config.tun });
  const datapath = new Datapath({
    clock: { now: () => Date.now() },
    bind: network,
    port: tun,
    localAddresses: config.localAddress.includes(':') ? { v6: config.localAddress } : { v4: config.localAddress },
  });
  datapath.onAudit((e) => print({ ev: 'audit', ...e }));
  datapath.onRegistrationNeeded((e) => print({ ev: 'registration-needed', ...e }));
  datapath.onUnknownSpi((e) => print({ ev: 'unknown-spi', ...e }));
  datapath.onHardExpire((e) => print({ ev: 'hard-expire', ...e }));
  datapath.installPolicy(config.policy);
  for (const sa of config.sas) datapath.installSa(saFromJson(sa));

  // Time lifetimes, trailing-edge deletion and held packets move on the clock, not only on traffic.
  const ticker = setInterval(() => datapath.tick(), 1000);
  ticker.unref();
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await Promise.all([tun.close(), network.close()]);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  serveJsonLines<Request>((req) => {
    switch (req.op) {
      case 'stats':
        return { datapath: datapath.stats(), tun: tun.stats, tunKernel: tun.kernelStats(), network: network.stats };
      case 'installSa':
        datapath.installSa(saFromJson(req.sa!), { activateAt: Date.now() + (req.activateInMs ?? 0) });
        return {};
      case 'retireSa':
        datapath.retireSa(req.spi!, { deleteAt: Date.now() + (req.deleteInMs ?? 0) });
        return {};
      case 'exit':
        void stop();
        return {};
      default:
        throw new Error(`unknown op ${String(req.op)}`);
    }
  });
  print({ ev: 'ready', pid: process.pid });
}

main().catch((err: unknown) => {
  print({ ev: 'fatal', error: (err as Error).message });
  process.exit(1);
});
