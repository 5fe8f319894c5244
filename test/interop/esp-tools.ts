import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SaConfig } from '@app/datapath';
import { espSaRecord } from '../../apps/member-agent/src/status/esp-key-log.js';

/** LINKTYPE_RAW (101): each record is a bare IPv4 or IPv6 packet. */
const LINKTYPE_RAW = 101;

/** A classic libpcap file (microsecond timestamps) holding raw IP packets. */
export function pcapFile(packets: readonly Uint8Array[]): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0); // magic, little-endian host order
  header.writeUInt16LE(2, 4); // version 2.4
  header.writeUInt16LE(4, 6);
  header.writeInt32LE(0, 8); // thiszone
  header.writeUInt32LE(0, 12); // sigfigs
  header.writeUInt32LE(65535, 16); // snaplen
  header.writeUInt32LE(LINKTYPE_RAW, 20);
  const records = packets.map((p, i) => {
    const r = Buffer.alloc(16 + p.length);
    r.writeUInt32LE(1_700_000_000 + i, 0);
    r.writeUInt32LE(0, 4);
    r.writeUInt32LE(p.length, 8);
    r.writeUInt32LE(p.length, 12);
    r.set(p, 16);
    return r;
  });
  return Buffer.concat([header, ...records]);
}

/** Whether a tool is on PATH; in CI a missing tool is a failure, elsewhere a printed skip. */
export function toolAvailable(cmd: string, args: string[] = ['--version']): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  const ok = r.status === 0;
  if (!ok && process.env.CI) throw new Error(`${cmd} is required in CI for the ESP interop tests`);
  if (!ok) console.warn(`skipping: ${cmd} is not installed (CI unset)`);
  return ok;
}

/**
 * Wireshark's ESP SA UAT line for one SA (REFERENCES.md), with the given outer addresses ('*' for
 * any): the member agent's own key-log record, so these tests also hold the format it writes.
 */
export function espSaUat(sa: SaConfig, src: string, dst: string): string {
  return espSaRecord({ ...sa, source: src, destination: dst });
}

export interface TsharkRow {
  icvGood: boolean;
  sequence: number;
  /** The decrypted payload tshark shows (inner IP packet in tunnel mode, upper layer in transport). */
  decrypted: string;
  spi: number;
  /** The Next Header tshark read from the decrypted trailer (-1 if none). */
  nextHeader: number;
}

/** Runs tshark over the packets with the SAs' keys and returns one row per ESP packet. */
export function tsharkDecrypt(packets: readonly Uint8Array[], uats: readonly string[]): { rows: TsharkRow[]; raw: string } {
  const dir = mkdtempSync(join(tmpdir(), 'groupsec-esp-'));
  try {
    const file = join(dir, 'esp.pcap');
    writeFileSync(file, pcapFile(packets));
    const args = ['-r', file, '-o', 'esp.enable_encryption_decode:TRUE', '-o', 'esp.enable_authentication_check:TRUE'];
    for (const u of uats) args.push('-o', `uat:esp_sa:${u}`);
    args.push('-Y', 'esp', '-T', 'json', '-x');
    const out = execFileSync('tshark', args, { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
    return { rows: parseRows(out), raw: out };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function parseRows(json: string): TsharkRow[] {
  const frames = JSON.parse(json) as Array<{ _source: { layers: Record<string, unknown> } }>;
  return frames.map((f) => {
    const esp = (f._source.layers['esp'] ?? {}) as Record<string, unknown>;
    const icv = (esp['esp.icv_tree'] ?? {}) as Record<string, unknown>;
    const dec = (esp['esp.decrypted_data_tree'] ?? {}) as Record<string, unknown>;
    const contained = dec['esp.contained_data_raw'] as [string] | undefined;
    return {
      spi: parseInt(String(esp['esp.spi']), 16),
      sequence: Number(esp['esp.sequence']),
      icvGood: icv['esp.icv_good'] === '1',
      decrypted: contained ? contained[0] : '',
      nextHeader: dec['esp.protocol'] === undefined ? -1 : parseInt(String(dec['esp.protocol']), 16),
    };
  });
}

export function tsharkVersion(): string {
  return execFileSync('tshark', ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? '';
}
