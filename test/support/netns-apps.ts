/**
 * The "unmodified applications" of the namespace tests: plain Python multicast programs that know
 * nothing of GroupSec (run with /usr/bin/python3 -u -c <source> <args>). Both families; the group
 * address decides. They bind the wildcard address and join with interface 0, as ordinary
 * multicast applications do, so the kernel's routes decide which interface is used.
 */
import { JsonLines, type NetnsLab } from './netns.js';

export const PYTHON = '/usr/bin/python3';

/** args: group port. Prints {"ev":"ready"} then {"ev":"msg","from":addr,"data":text} per datagram. */
export const PY_RECEIVER = `
import json, socket, struct, sys
group, port = sys.argv[1], int(sys.argv[2])
v6 = ':' in group
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('::' if v6 else '0.0.0.0', port))
if v6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, socket.inet_pton(socket.AF_INET6, group) + struct.pack('@I', 0))
else:
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack('4s4s', socket.inet_aton(group), socket.inet_aton('0.0.0.0')))
print(json.dumps({'ev': 'ready'}), flush=True)
while True:
    data, addr = s.recvfrom(65535)
    print(json.dumps({'ev': 'msg', 'from': addr[0], 'data': data.decode('latin1')}), flush=True)
`;

/**
 * args: group port count [text [gap_ms]]. Sends \`count\` datagrams "<text> NNNN", one per gap
 * (default 1 ms; 0 = as fast as the kernel takes them), TTL/hop limit 1. Prints the seconds spent.
 */
export const PY_SENDER = `
import socket, sys, time
group, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
text = sys.argv[4] if len(sys.argv) > 4 else 'message'
gap = float(sys.argv[5]) / 1000 if len(sys.argv) > 5 else 0.001
s = socket.socket(socket.AF_INET6 if ':' in group else socket.AF_INET, socket.SOCK_DGRAM)
start = time.monotonic()
for i in range(count):
    s.sendto(('%s %04d' % (text, i)).encode(), (group, port))
    if count > 1 and gap > 0:
        time.sleep(gap)
print('%.6f' % (time.monotonic() - start))
`;

/**
 * Hostile input from the wire. args: mode(raw|udp) group port count source spi seed ifname.
 * Sends \`count\` datagrams to the group out of \`ifname\`, one per millisecond, each a third:
 * arbitrary bytes, the group's SPI followed by garbage (a forged or corrupted packet), or an
 * unknown SPI. 'raw' writes whole IP packets (header included, protocol 50) from \`source\`;
 * 'udp' sends them as UDP payloads to \`port\`. Deterministic for a given seed.
 */
export const PY_JUNK_SENDER = `
import random, socket, struct, sys, time
mode, group, port, count, src, spi, seed, ifname = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6]), int(sys.argv[7]), sys.argv[8]
rnd = random.Random(seed)
v6 = ':' in group
fam = socket.AF_INET6 if v6 else socket.AF_INET
def junk(i):
    body = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 120)))
    if i % 3 == 1:
        return struct.pack('!II', spi, rnd.getrandbits(32)) + body
    if i % 3 == 2:
        return struct.pack('!II', rnd.randrange(256, 1 << 32), 1 + rnd.getrandbits(16)) + body
    return body
s = socket.socket(fam, socket.SOCK_DGRAM if mode == 'udp' else socket.SOCK_RAW, 0 if mode == 'udp' else socket.IPPROTO_RAW)
if v6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, socket.if_nametoindex(ifname))
else:
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(src))
if mode == 'udp':
    s.bind((src, 0))
for i in range(count):
    p = junk(i)
    if mode == 'udp':
        s.sendto(p, (group, port))
    elif v6:
        s.sendto(struct.pack('!IHBB', 0x60000000, len(p), 50, 8) + socket.inet_pton(fam, src) + socket.inet_pton(fam, group) + p, (group, 0))
    else:
        s.sendto(struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(p), 0, 0x4000, 8, 50, 0, socket.inet_aton(src), socket.inet_aton(group)) + p, (group, 0))
    time.sleep(0.001)
`;

/**
 * Replays captured IPv4 packets as they are (header included). args: source-address hex...
 * (`source-address` selects the multicast interface, by its address).
 */
export const PY_RAW4_REPLAY = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(sys.argv[1]))
for h in sys.argv[2:]:
    p = bytes.fromhex(h)
    s.sendto(p, (socket.inet_ntoa(p[16:20]), 0))
`;

/**
 * Starts test/support/netns-host (built, at `script`) in `ns` with `config`, records it in
 * `agents` and waits for its first line: 'ready', or 'fatal', which throws.
 */
export async function startNetnsHost(
  lab: NetnsLab,
  agents: Map<string, JsonLines>,
  ns: string,
  script: string,
  config: unknown,
): Promise<JsonLines> {
  const agent = new JsonLines(lab.spawn(ns, process.execPath, [script, JSON.stringify(config)]));
  agents.set(ns, agent);
  const first = await agent.next((l) => l.ev === 'ready' || l.ev === 'fatal');
  if (first.ev === 'fatal') throw new Error(`host ${ns}: ${String(first.error)}`);
  return agent;
}

/** Starts a PY_RECEIVER for `group`:`port` in each namespace, recorded in `receivers`, and waits until each has joined. */
export async function startReceivers(
  lab: NetnsLab,
  receivers: Map<string, JsonLines>,
  namespaces: readonly string[],
  group: string,
  port: number,
): Promise<void> {
  for (const ns of namespaces) {
    const r = new JsonLines(lab.spawn(ns, PYTHON, ['-u', '-c', PY_RECEIVER, group, String(port)]));
    receivers.set(ns, r);
    await r.next((l) => l.ev === 'ready');
  }
}
