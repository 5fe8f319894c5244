import { constants, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { SignatureWorker, runSignatureCheck, type SignatureCheck } from './signature-check.js';

const spkiOf = (k: KeyObject) => new Uint8Array(k.export({ type: 'spki', format: 'der' }));
const data = new TextEncoder().encode('octets an IKE peer signs');

/** One good check per key type and encoding the chain and AUTH plans produce, each with its key. */
function goodChecks(): { check: SignatureCheck; key: KeyObject }[] {
  const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const ed = generateKeyPairSync('ed25519');
  const pss = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
  return [
    { check: { spki: spkiOf(p256.publicKey), algorithm: 'sha256', data, signature: sign('sha256', data, { key: p256.privateKey, dsaEncoding: 'der' }), dsaEncoding: 'der' }, key: p256.publicKey },
    { check: { spki: spkiOf(p256.publicKey), algorithm: 'sha256', data, signature: sign('sha256', data, { key: p256.privateKey, dsaEncoding: 'ieee-p1363' }), dsaEncoding: 'ieee-p1363' }, key: p256.publicKey },
    { check: { spki: spkiOf(p384.publicKey), algorithm: 'sha384', data, signature: sign('sha384', data, { key: p384.privateKey, dsaEncoding: 'der' }), dsaEncoding: 'der' }, key: p384.publicKey },
    { check: { spki: spkiOf(rsa.publicKey), algorithm: 'sha256', data, signature: sign('sha256', data, { key: rsa.privateKey, padding: constants.RSA_PKCS1_PADDING }), padding: constants.RSA_PKCS1_PADDING }, key: rsa.publicKey },
    { check: { spki: spkiOf(rsa.publicKey), algorithm: 'sha256', data, signature: sign('sha256', data, { key: rsa.privateKey, ...pss }), ...pss }, key: rsa.publicKey },
    { check: { spki: spkiOf(ed.publicKey), algorithm: null, data, signature: sign(null, data, ed.privateKey) }, key: ed.publicKey },
  ];
}

/** The same checks made to fail: one signature bit, the data, or the key changed. */
function spoiled(checks: SignatureCheck[]): SignatureCheck[] {
  return checks.flatMap((c, i) => {
    const sig = Buffer.from(c.signature);
    sig[sig.length - 1]! ^= 1;
    const other = checks[(i + 2) % checks.length]!;
    return [
      { ...c, signature: sig },
      { ...c, data: data.subarray(1) },
      { ...c, spki: other.spki },
    ];
  });
}

describe('SignatureWorker', () => {
  let sut: SignatureWorker | undefined;
  afterEach(async () => {
    await sut?.close();
    sut = undefined;
  });

  it('gives the in-line verdicts, in order, on its thread: good, spoiled, and keys that do not import', async () => {
    const good = goodChecks();
    const checks = [...good.map((g) => g.check), ...spoiled(good.map((g) => g.check)), { ...good[0]!.check, spki: Uint8Array.of(0x30, 0x00) }];
    sut = new SignatureWorker();
    const verdicts = await sut.verify(checks);
    expect(verdicts.slice(0, good.length)).toEqual(good.map(() => true));
    expect(verdicts.slice(good.length)).toEqual(checks.slice(good.length).map(() => false));
    // The in-line runner agrees wherever a key imports.
    for (const g of good) expect(runSignatureCheck(g.check, g.key)).toBe(true);
    expect(sut.stats).toEqual({ batches: 1, inline: 0 });
    expect(sut.running).toBe(true);
  });

  it('answers concurrent batches each with its own verdicts', async () => {
    const good = goodChecks().map((g) => g.check);
    const bad = spoiled(good);
    sut = new SignatureWorker();
    const [a, b, c] = await Promise.all([sut.verify(good), sut.verify(bad), sut.verify([])]);
    expect(a.every((v) => v)).toBe(true);
    expect(b.some((v) => v)).toBe(false);
    expect(c).toEqual([]);
  });

  it('after close() (or a dead thread) batches in flight and later ones are verified in line, not lost', async () => {
    const good = goodChecks().map((g) => g.check);
    sut = new SignatureWorker();
    const inFlight = sut.verify(good);
    await sut.close();
    expect(sut.running).toBe(false);
    expect(await inFlight).toEqual(good.map(() => true));
    expect(await sut.verify([...good, ...spoiled(good)])).toEqual([...good.map(() => true), ...spoiled(good).map(() => false)]);
    expect(sut.stats.inline).toBe(2);
  });
});
