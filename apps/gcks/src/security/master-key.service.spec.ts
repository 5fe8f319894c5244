import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../../../test/support/temp-dir.js';
import { MasterKeyError, MasterKeyService } from './master-key.service.js';
import { SecretBox, SecretBoxError } from './secret-box.js';

describe('MasterKeyService', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => dir.remove());

  it('creates a 32-byte key file with mode 0600 on first use and reuses it afterwards', () => {
    const path = join(dir.path, 'nested', 'master.key');
    const sut = MasterKeyService.loadOrCreate(path, randomBytes);
    expect(sut.created).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path)).toEqual(sut.key());
    expect(sut.key()).toHaveLength(32);
    const again = MasterKeyService.loadOrCreate(path, () => Buffer.alloc(32, 7));
    expect(again.created).toBe(false);
    expect(again.key()).toEqual(sut.key());
  });

  it('refuses a key file readable by others or of the wrong size', () => {
    const path = join(dir.path, 'master.key');
    writeFileSync(path, Buffer.alloc(32, 1), { mode: 0o644 });
    chmodSync(path, 0o644);
    expect(() => MasterKeyService.loadOrCreate(path, randomBytes)).toThrow(MasterKeyError);
    writeFileSync(path, Buffer.alloc(31, 1));
    chmodSync(path, 0o600);
    expect(() => MasterKeyService.loadOrCreate(path, randomBytes)).toThrow(/31 bytes/);
  });

  it('hands out copies, so zeroing one does not damage the key, and never serializes it', () => {
    const sut = MasterKeyService.loadOrCreate(join(dir.path, 'k'), () => Buffer.alloc(32, 9));
    sut.key().fill(0);
    expect(sut.key()).toEqual(Buffer.alloc(32, 9));
    expect(JSON.stringify(sut)).not.toContain(Buffer.alloc(32, 9).toString('hex'));
  });
});

describe('SecretBox', () => {
  let dir: ReturnType<typeof tempDir>;
  let sut: SecretBox;
  beforeEach(() => {
    dir = tempDir();
    sut = new SecretBox(MasterKeyService.loadOrCreate(join(dir.path, 'k'), randomBytes), randomBytes);
  });
  afterEach(() => dir.remove());

  it('opens what it sealed, under the same context only', () => {
    const sealed = sut.seal(Buffer.from('psk secret'), 'pad_rules.pskSealed:r1');
    expect(sealed).not.toContain('psk secret');
    expect(sut.open(sealed, 'pad_rules.pskSealed:r1').toString()).toBe('psk secret');
    expect(() => sut.open(sealed, 'pad_rules.pskSealed:r2')).toThrow(SecretBoxError);
  });

  it('rejects tampered or malformed values', () => {
    const sealed = sut.seal(Buffer.from('x'), 'c');
    const parts = sealed.split('.');
    const ct = Buffer.from(parts[2], 'base64url');
    ct[0] ^= 1;
    parts[2] = ct.toString('base64url');
    expect(() => sut.open(parts.join('.'), 'c')).toThrow(SecretBoxError);
    expect(() => sut.open('garbage', 'c')).toThrow(SecretBoxError);
  });

  it('does not open under another master key', () => {
    const other = new SecretBox(MasterKeyService.loadOrCreate(join(dir.path, 'k2'), randomBytes), randomBytes);
    expect(() => other.open(sut.seal(Buffer.from('x'), 'c'), 'c')).toThrow(SecretBoxError);
  });
});
