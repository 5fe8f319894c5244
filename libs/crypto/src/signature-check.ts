import { verify, type KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { P256_SPKI_PREFIX, publicKeyFromSpki } from './spki.js';

/**
 * One public-key signature verification, described instead of run: the key as its DER
 * SubjectPublicKeyInfo, and node:crypto's `verify` arguments. `validateChain`'s certificate
 * signatures (`tbsCheck`) and a peer's AUTH (`signatureAuthCheck`) are planned as checks, so they
 * can run where the caller wants: in line (`runSignatureCheck`), or on a worker thread
 * (`SignatureWorker`) while the event loop goes on with other peers.
 */
export interface SignaturePlan {
  /** Digest name for node:crypto's `verify`; null for EdDSA. */
  algorithm: string | null;
  data: Uint8Array;
  signature: Uint8Array;
  /** ECDSA signature format: DER (RFC 3279) or raw r | s (RFC 4754). */
  dsaEncoding?: 'der' | 'ieee-p1363';
  /** RSA padding (`constants.RSA_PKCS1_PADDING` or `RSA_PKCS1_PSS_PADDING`) and PSS salt length. */
  padding?: number;
  saltLength?: number;
}

/** A plan and the verifying key, as its DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7). */
export interface SignatureCheck extends SignaturePlan {
  spki: Uint8Array;
}

/** Runs a plan with an already imported key. A key or signature OpenSSL refuses is false. */
export function runSignatureCheck(c: SignaturePlan, key: KeyObject): boolean {
  try {
    return verify(c.algorithm, c.data, checkKey(c, key), c.signature);
  } catch {
    return false;
  }
}

function checkKey(c: SignaturePlan, key: KeyObject): KeyObject | { key: KeyObject; dsaEncoding?: 'der' | 'ieee-p1363'; padding?: number; saltLength?: number } {
  if (c.dsaEncoding === undefined && c.padding === undefined) return key;
  return {
    key,
    ...(c.dsaEncoding !== undefined ? { dsaEncoding: c.dsaEncoding } : {}),
    ...(c.padding !== undefined ? { padding: c.padding } : {}),
    ...(c.saltLength !== undefined ? { saltLength: c.saltLength } : {}),
  };
}

/** Where a batch of checks runs: `SignatureWorker`, or anything else with the same contract. */
export interface SignatureVerifier {
  /** One verdict per check, in order; never rejects for a bad key or signature (that is false). */
  verify(checks: readonly SignatureCheck[]): Promise<boolean[]>;
}

/** Keys the worker keeps imported (a group's CA key is used by every registration). */
const WORKER_KEY_CACHE = 64;

/**
 * The worker's source: node:crypto only, so it runs the same from sources (vitest) and from
 * dist/. P-256 keys are imported from their JWK coordinates (~70 µs against ~120 µs through
 * OpenSSL 3's DER decoder, as `publicKeyFromSpki` does); imported keys are kept by their SPKI.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createPublicKey, verify } = require('node:crypto');
const P256 = Buffer.from('${P256_SPKI_PREFIX.toString('hex')}', 'hex');
const keys = new Map();
function keyOf(spki) {
  const b = Buffer.from(spki.buffer, spki.byteOffset, spki.length);
  const id = b.toString('base64');
  let k = keys.get(id);
  if (k) return k;
  if (b.length === P256.length + 64 && P256.equals(b.subarray(0, P256.length))) {
    const xy = b.subarray(P256.length);
    k = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: xy.subarray(0, 32).toString('base64url'), y: xy.subarray(32).toString('base64url') }, format: 'jwk' });
  } else {
    k = createPublicKey({ key: b, format: 'der', type: 'spki' });
  }
  keys.set(id, k);
  if (keys.size > ${WORKER_KEY_CACHE}) keys.delete(keys.keys().next().value);
  return k;
}
function run(buf, c) {
  try {
    const at = (r) => new Uint8Array(buf, r[0], r[1]);
    const key = keyOf(at(c.spki));
    const opts = c.dsaEncoding === undefined && c.padding === undefined ? key : { key, dsaEncoding: c.dsaEncoding, padding: c.padding, saltLength: c.saltLength };
    return verify(c.algorithm, at(c.data), opts, at(c.signature));
  } catch {
    return false;
  }
}
parentPort.on('message', (m) => parentPort.postMessage({ id: m.id, ok: m.checks.map((c) => run(m.buf, c)) }));
`;

/** A check as posted: its octets as [offset, length] in the batch's one buffer. */
interface PackedCheck extends Omit<SignatureCheck, 'spki' | 'data' | 'signature'> {
  spki: [number, number];
  data: [number, number];
  signature: [number, number];
}

/**
 * The checks' octets copied into one buffer that is transferred, not cloned: postMessage clones a
 * view's whole ArrayBuffer, and these are views into certificates, decrypted datagrams and Node's
 * 8 KB Buffer slabs (~80 µs of the event loop per batch when posted as they are).
 */
function pack(checks: readonly SignatureCheck[]): { buf: ArrayBuffer; checks: PackedCheck[] } {
  let size = 0;
  for (const c of checks) size += c.spki.length + c.data.length + c.signature.length;
  const buf = new ArrayBuffer(size);
  const u8 = new Uint8Array(buf);
  let at = 0;
  const put = (b: Uint8Array): [number, number] => {
    u8.set(b, at);
    at += b.length;
    return [at - b.length, b.length];
  };
  return { buf, checks: checks.map((c) => ({ ...c, spki: put(c.spki), data: put(c.data), signature: put(c.signature) })) };
}

/**
 * Verifies batches of signature checks on one worker thread: the ~0.1 ms of each ECDSA verify and
 * key import leave the event loop, which pays ~10 µs per batch for the round trip. If the thread
 * cannot start or dies, batches in flight and later ones are verified in line (never lost).
 */
export class SignatureWorker implements SignatureVerifier {
  private worker?: Worker;
  private nextId = 0;
  private readonly pending = new Map<number, { checks: readonly SignatureCheck[]; resolve(v: boolean[]): void }>();
  /** In-line keys of the fallback, by SPKI. */
  private readonly inline = new Map<string, KeyObject>();
  /** Batches sent to the thread, and run in line after it failed. */
  readonly stats = { batches: 0, inline: 0 };

  constructor() {
    try {
      const w = new Worker(WORKER_SOURCE, { eval: true });
      w.unref();
      w.on('message', (m: { id: number; ok: boolean[] }) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        p.resolve(m.ok);
      });
      w.on('error', () => this.fail());
      w.on('exit', () => this.fail());
      this.worker = w;
    } catch {
      this.worker = undefined;
    }
  }

  get running(): boolean {
    return this.worker !== undefined;
  }

  verify(checks: readonly SignatureCheck[]): Promise<boolean[]> {
    if (checks.length === 0) return Promise.resolve([]);
    if (!this.worker) return Promise.resolve(this.runInline(checks));
    return new Promise((resolve) => {
      const id = this.nextId++;
      this.pending.set(id, { checks, resolve });
      this.stats.batches++;
      const packed = pack(checks);
      this.worker!.postMessage({ id, ...packed }, [packed.buf]);
    });
  }

  /** Ends the thread; batches in flight are verified in line. */
  async close(): Promise<void> {
    const w = this.worker;
    this.fail();
    await w?.terminate();
  }

  private fail(): void {
    this.worker = undefined;
    const left = [...this.pending.values()];
    this.pending.clear();
    for (const p of left) p.resolve(this.runInline(p.checks));
  }

  private runInline(checks: readonly SignatureCheck[]): boolean[] {
    this.stats.inline++;
    return checks.map((c) => {
      let key: KeyObject | undefined;
      try {
        const id = Buffer.from(c.spki.buffer, c.spki.byteOffset, c.spki.length).toString('base64');
        key = this.inline.get(id);
        if (!key) {
          key = publicKeyFromSpki(c.spki);
          this.inline.set(id, key);
          if (this.inline.size > WORKER_KEY_CACHE) this.inline.delete(this.inline.keys().next().value!);
        }
      } catch {
        return false;
      }
      return runSignatureCheck(c, key);
    });
  }
}
