/**
 * The "unmodified applications" of the namespace tests: plain Python multicast programs that know
 * nothing of GroupSec (run with /usr/bin/python3 -u -c <source> <args>). Both families; the group
 * address decides. They bind the wildcard address and join with interface 0, as ordinary
 * multicast applications do, so the kernel's routes decide which interface is used.
 */
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
 * args: group port count [text]. Sends \`count\` datagrams "<text> NNNN", one per millisecond
 * (bounded: a few hundred milliseconds for the counts the tests use), TTL/hop limit 1.
 */
export const PY_SENDER = `
import socket, sys, time
group, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
text = sys.argv[4] if len(sys.argv) > 4 else 'message'
s = socket.socket(socket.AF_INET6 if ':' in group else socket.AF_INET, socket.SOCK_DGRAM)
for i in range(count):
    s.sendto(('%s %04d' % (text, i)).encode(), (group, port))
    if count > 1:
        time.sleep(0.001)
`;
