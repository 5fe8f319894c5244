/**
 * Reading the bridge captures of the namespace tests with independent tools: tcpdump's own
 * parser for the frames (hex of each IP packet), and tshark, given an SA's key, to open ESP.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { addressBytes, addressText } from '../../apps/member-agent/src/net/ip-address.js';
import { JsonLines, stopChild, type NetnsLab } from './netns.js';

const PROTO_ESP = 50;
const PROTO_UDP = 17;

export interface Frame {
  src: string;
  dst: string;
  /** IPv4 protocol or IPv6 next header. */
  proto: number;
  /** The ESP SPI for ESP (protocol 50, or UDP to `espPort` with a non-zero first word). */
  spi: number | undefined;
  /** Whether the packet contains `text` anywhere (cleartext leak check). */
  payloadHasText: boolean;
  /** The whole IP packet, hex. */
  hex: string;
}

export function readCapture(file: string, options: { text: string; espPort: number }): Frame[] {
  const out = execFileSync('tcpdump', ['-r', file, '-n', '-x', '-q'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const frames: Frame[] = [];
  let hex = '';
  const flush = () => {
    const p = Buffer.from(hex, 'hex');
    const text = hex;
    hex = '';
    let src: string;
    let dst: string;
    let proto: number;
    let off: number;
    if (p.length >= 20 && p[0]! >> 4 === 4) {
      src = addressText(p.subarray(12, 16));
      dst = addressText(p.subarray(16, 20));
      proto = p[9]!;
      off = (p[0]! & 0x0f) * 4;
    } else if (p.length >= 40 && p[0]! >> 4 === 6) {
      src = addressText(p.subarray(8, 24));
      dst = addressText(p.subarray(24, 40));
      proto = p[6]!; // our packets carry no extension headers; MLD's hop-by-hop shows as 0
      off = 40;
    } else {
      return;
    }
    let spi: number | undefined;
    if (proto === PROTO_ESP && p.length >= off + 4) spi = p.readUInt32BE(off);
    if (proto === PROTO_UDP && p.length >= off + 12 && p.readUInt16BE(off + 2) === options.espPort) {
      spi = p.readUInt32BE(off + 8) || undefined;
    }
    frames.push({ src, dst, proto, spi, payloadHasText: p.includes(options.text), hex: text });
  };
  for (const line of out.split('\n')) {
    const m = /^\s+0x[0-9a-f]+:\s+((?:[0-9a-f]{2,4}\s?)+)/.exec(line);
    if (m) hex += m[1]!.replace(/\s+/g, '');
    else if (hex !== '') flush();
  }
  if (hex !== '') flush();
  return frames;
}

export interface Opened {
  spi: number;
  src: string[];
  dst: string[];
  icvGood: boolean;
  innerDstPort: number;
  text: string;
}

export interface TsharkSa {
  family: 4 | 6;
  src: string;
  dst: string;
  spi: number;
  /** AES-GCM key || salt, hex (RFC 4106 §8.1). */
  key: string;
}

/** tshark opens the capture's ESP with the given AES-GCM-16 SAs (RFC 4106); one row per ESP packet. */
export function decryptWithTshark(file: string, sas: readonly TsharkSa[]): Opened[] {
  const family = sas[0]?.family ?? 4;
  const ip = family === 4 ? 'ip' : 'ipv6';
  const uat = sas.flatMap((sa) => [
    '-o',
    `uat:esp_sa:"IPv${sa.family}","${sa.src}","${sa.dst}","0x${sa.spi.toString(16)}","AES-GCM with 16 octet ICV [RFC4106]","0x${sa.key}","NULL",""`,
  ]);
  const out = execFileSync(
    'tshark',
    [
      '-r', file,
      '-o', 'esp.enable_encryption_decode:TRUE',
      '-o', 'esp.enable_authentication_check:TRUE',
      ...uat,
      '-Y', 'esp',
      '-T', 'fields', '-E', 'occurrence=a', '-E', 'separator=/t',
      '-e', 'esp.spi', '-e', `${ip}.src`, '-e', `${ip}.dst`, '-e', 'esp.icv_good', '-e', 'udp.dstport', '-e', 'data.data',
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60_000 },
  );
  const canonical = (list: string) => list.split(',').map((x) => (x.includes(':') ? addressText(addressBytes(x)) : x));
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line) => {
      const [spi = '', src = '', dst = '', icv = '', ports = '', data = ''] = line.split('\t');
      const portList = ports.split(',').filter((p) => p !== '');
      return {
        spi: Number(spi),
        src: canonical(src),
        dst: canonical(dst),
        icvGood: icv === '1' || icv === 'True',
        innerDstPort: Number(portList[portList.length - 1]),
        text: Buffer.from(data, 'hex').toString('latin1'),
      };
    });
}

/** Whether a command is on PATH. */
export function onPath(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * The AES-GCM SAs of an agent's ESP key log (Wireshark `esp_sa` UAT records, one a line; the
 * agent's `debug.espKeyLog`), as decryptWithTshark takes them. Other transforms are skipped.
 */
export function tsharkSasFromKeyLog(text: string): TsharkSa[] {
  const out: TsharkSa[] = [];
  for (const line of text.split('\n')) {
    const f = [...line.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
    if (f.length < 8 || !f[4]!.startsWith('AES-GCM')) continue;
    out.push({ family: f[0] === 'IPv6' ? 6 : 4, src: f[1]!, dst: f[2]!, spi: Number(f[3]), key: f[5]!.replace(/^0x/, '') });
  }
  return out;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A capture on the lab's bridge `br0` (tcpdump, 8 MiB buffer, a packet per write) into `file`.
 * The returned stop() waits until the file has stopped growing (bounded), stops tcpdump, and
 * rejects if tcpdump reports any packet dropped by the kernel (an incomplete capture would make
 * the frame counts meaningless).
 */
export async function bridgeCapture(lab: NetnsLab, file: string): Promise<() => Promise<void>> {
  const child = lab.spawn(lab.bridgeNamespace, 'tcpdump', ['-i', 'br0', '-n', '-B', '8192', '-U', '--immediate-mode', '-w', file]);
  const log = new JsonLines(child);
  for (let until = Date.now() + 15_000; !log.stderr.some((l) => l.includes('listening on')); await pause(100)) {
    if (Date.now() > until) throw new Error(`tcpdump did not start: ${log.stderr.join(' | ')}`);
  }
  await pause(200); // the socket is attached before "listening on"; let the ring settle
  return async () => {
    const size = () => (existsSync(file) ? statSync(file).size : 0);
    for (let last = -1, i = 0; i < 30 && size() !== last; i++) {
      last = size();
      await pause(200);
    }
    await stopChild(child);
    for (let until = Date.now() + 5_000; !log.stderr.some((l) => l.includes('dropped by kernel')) && Date.now() < until; ) await pause(100);
    const dropped = log.stderr.map((l) => /^(\d+) packets? dropped by kernel/.exec(l)).find((m) => m !== null);
    if (dropped && Number(dropped[1]) > 0) throw new Error(`tcpdump lost ${dropped[1]} packets: ${log.stderr.join(' | ')}`);
  };
}

/**
 * The ESP header fields of a captured frame (RFC 4303 §2): SPI, sequence number, and the first
 * `ivLength` octets after them (the IV of AES-GCM/CTR, RFC 4106 §3.1), hex. Undefined for a
 * frame that is not ESP (native, or in UDP to `espPort`) or too short.
 */
export function espHeader(frame: Frame, espPort: number, ivLength = 8): { spi: number; seq: number; iv: string } | undefined {
  const p = Buffer.from(frame.hex, 'hex');
  let off: number;
  if (p.length >= 20 && p[0]! >> 4 === 4) off = (p[0]! & 0x0f) * 4;
  else if (p.length >= 40 && p[0]! >> 4 === 6) off = 40;
  else return undefined;
  if (frame.proto === PROTO_UDP) {
    if (p.length < off + 8 || p.readUInt16BE(off + 2) !== espPort) return undefined;
    off += 8;
  } else if (frame.proto !== PROTO_ESP) {
    return undefined;
  }
  if (p.length < off + 8 + ivLength) return undefined;
  const spi = p.readUInt32BE(off);
  if (spi === 0) return undefined; // the non-ESP marker (RFC 3948 §2.2)
  return { spi, seq: p.readUInt32BE(off + 4), iv: p.subarray(off + 8, off + 8 + ivLength).toString('hex') };
}
