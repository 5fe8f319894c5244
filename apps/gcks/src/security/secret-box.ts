import { createCipheriv, createDecipheriv } from 'node:crypto';
import type { MasterKeyService } from './master-key.service.js';

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** A sealed value could not be opened: wrong master key, tampering, or a wrong context. */
export class SecretBoxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretBoxError';
  }
}

/**
 * Seals secret column values under the master key with AES-256-GCM. `context` (for example
 * `pad_rules.pskSealed:<rule id>`) is bound as associated data, so a sealed value copied to
 * another row or column does not open. Output: `v1.<iv>.<ciphertext>.<tag>` in base64url.
 */
export class SecretBox {
  constructor(
    private readonly masterKey: MasterKeyService,
    private readonly random: (n: number) => Buffer,
  ) {}

  seal(plaintext: Buffer, context: string): string {
    const key = this.masterKey.key();
    try {
      const iv = this.random(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(Buffer.from(context, 'utf8'));
      const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      return [VERSION, iv, ct, cipher.getAuthTag()].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
    } finally {
      key.fill(0);
    }
  }

  open(sealed: string, context: string): Buffer {
    const parts = sealed.split('.');
    if (parts.length !== 4 || parts[0] !== VERSION) throw new SecretBoxError('not a sealed value');
    const [iv, ct, tag] = parts.slice(1).map((p) => Buffer.from(p, 'base64url'));
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new SecretBoxError('not a sealed value');
    const key = this.masterKey.key();
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(ct), decipher.final()]);
    } catch {
      throw new SecretBoxError('sealed value does not open under this master key and context');
    } finally {
      key.fill(0);
    }
  }
}
