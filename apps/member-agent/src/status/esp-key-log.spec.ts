import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SaConfig } from '@app/datapath';
import { EspKeyLog, espSaRecord } from './esp-key-log.js';

const sa: SaConfig = {
  spi: 0x1234abcd,
  policyId: 'p',
  destination: '239.1.1.1',
  source: '198.51.100.1',
  mode: 'tunnel',
  transform: { kind: 'aes-gcm-16', keyBits: 128 },
  encryptionKey: Buffer.from('000102030405060708090a0b0c0d0e0fcafebabe', 'hex'),
  replayWindow: 64,
};

describe('ESP key log (Wireshark esp_sa records)', () => {
  it('writes one esp_sa record per SA, as tshark -o uat:esp_sa takes it', () => {
    expect(espSaRecord(sa)).toBe(
      '"IPv4","198.51.100.1","239.1.1.1","0x1234abcd","AES-GCM with 16 octet ICV [RFC4106]","0x000102030405060708090a0b0c0d0e0fcafebabe","NULL",""',
    );
    const cbc = espSaRecord({ ...sa, source: undefined, destination: 'ff0e::1', transform: { kind: 'aes-cbc-hmac-sha256', keyBits: 128 }, integrityKey: Buffer.alloc(32, 1) } as SaConfig);
    expect(cbc).toBe(`"IPv6","*","ff0e::1","0x1234abcd","AES-CBC [RFC3602]","0x000102030405060708090a0b0c0d0e0fcafebabe","HMAC-SHA-256-128 [RFC4868]","0x${'01'.repeat(32)}"`);
  });

  it('appends to a 0600 file and reports an unwritable path once, without throwing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keylog-'));
    try {
      const errors: string[] = [];
      const sut = new EspKeyLog(join(dir, 'keys'), (e) => errors.push(e));
      sut.record(sa);
      sut.record({ ...sa, spi: 0x200 });
      expect(readFileSync(join(dir, 'keys'), 'utf8').trim().split('\n')).toHaveLength(2);
      expect(statSync(join(dir, 'keys')).mode & 0o777).toBe(0o600);
      const bad = new EspKeyLog(join(dir, 'missing', 'keys'), (e) => errors.push(e));
      bad.record(sa);
      bad.record(sa);
      expect(bad.failed).toBe(2);
      expect(errors).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
