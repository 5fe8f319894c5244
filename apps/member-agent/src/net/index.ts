/**
 * The member agent's binds: the only code that touches node:dgram, raw sockets, TUN devices and
 * multicast membership. The datapath (@app/datapath) is handed one network bind (UdpBind, or
 * RawIpBind as root) and, as root, the TunDevice plaintext port built here (socket mode's
 * application port, UdpAppPort, lives in ../plaintext/).
 */
import { RawIpBind, type RawIpBindOptions } from './raw-ip-bind.js';
import { UdpBind, type UdpBindOptions } from './udp-bind.js';

export { SysError } from './libc.js';
export { AddressError, isMulticast } from './ip-address.js';
export { AgentNetwork, type AgentNetworkFamily, type AgentNetworkOptions, type AgentNetworkStats, type GroupJoin } from './agent-network.js';
export { RawIpBind, type MulticastJoin, type RawIpBindOptions, type RawIpBindStats } from './raw-ip-bind.js';
export { TunDevice, type TunOptions, type TunStats } from './tun-device.js';
export { UdpBind, type UdpBindOptions, type UdpBindStats, type UdpGroupJoin } from './udp-bind.js';

/** The network side as configured: ESP in UDP (no root) or native ESP on raw sockets (root). */
export type NetworkBindConfig = ({ readonly kind: 'udp' } & UdpBindOptions) | ({ readonly kind: 'raw' } & RawIpBindOptions);

/** Opens the configured network bind. Rejects with SysError / RangeError / the socket's error. */
export async function openNetworkBind(config: NetworkBindConfig): Promise<UdpBind | RawIpBind> {
  if (config.kind === 'udp') {
    const { kind: _kind, ...options } = config;
    return UdpBind.open(options);
  }
  const { kind: _kind, ...options } = config;
  return RawIpBind.open(options);
}
