import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** Length of the master key in bytes (AES-256). */
export const MASTER_KEY_BYTES = 32;

/** The master key file is missing, unreadable, of the wrong size or readable by others. */
export class MasterKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MasterKeyError';
  }
}

/**
 * Holds the GCKS master key: 32 random bytes in a file beside the database, created on first
 * start with mode 0600. Secret columns (PSKs now; LKH node keys and the Group Owner key later) are
 * encrypted under it with `SecretBox`. The key is never logged and never put into an error.
 */
export class MasterKeyService {
  private readonly bytes: Buffer;

  private constructor(bytes: Buffer, readonly path: string, readonly created: boolean) {
    this.bytes = bytes;
  }

  /**
   * Reads the key file, or creates it (exclusively, so two processes cannot both create one)
   * with `random(32)` when it does not exist yet.
   */
  static loadOrCreate(path: string, random: (n: number) => Buffer): MasterKeyService {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    let created = false;
    try {
      const fd = openSync(path, 'wx', 0o600);
      try {
        const key = random(MASTER_KEY_BYTES);
        if (key.length !== MASTER_KEY_BYTES) throw new MasterKeyError('random source returned a short key');
        writeSync(fd, key);
      } finally {
        closeSync(fd);
      }
      chmodSync(path, 0o600); // the umask may have narrowed it further; never wider
      created = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const mode = statSync(path).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new MasterKeyError(`master key file ${path} is accessible by others (mode ${mode.toString(8)}); chmod 600 it`);
    }
    const bytes = readFileSync(path);
    if (bytes.length !== MASTER_KEY_BYTES) {
      throw new MasterKeyError(`master key file ${path} holds ${bytes.length} bytes, expected ${MASTER_KEY_BYTES}`);
    }
    return new MasterKeyService(bytes, path, created);
  }

  /** A copy of the key; callers must not keep it longer than they need it. */
  key(): Buffer {
    return Buffer.from(this.bytes);
  }

  /** Keeps the key out of logs and JSON. */
  toJSON(): Record<string, string> {
    return { path: this.path };
  }
}
