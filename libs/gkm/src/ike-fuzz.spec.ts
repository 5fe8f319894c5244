/**
 * Property test: arbitrary and mutated IKE messages fed to both state machines. No throw escapes
 * `receive`; every input is answered, accepted or dropped, each drop counted under a reason; an
 * answer is a well-formed IKE response to the sender's SPI; and garbage never moves state, so the
 * genuine exchange still completes afterwards.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IKE_FLAG_RESPONSE, ikeMessage, stripNonEspMarker } from '@app/codec';
import { IkeInitiator, IkeResponder, type IkeCounters, type IkePath, type IkeTransport } from '@app/gkm';
import { ManualClock, PROPOSAL_CBC_X25519, PROPOSAL_GCM_ECP256, fqdn, pathBetween, random, reversePath } from '../../../test/support/ike-fixtures.js';

const psk = new TextEncoder().encode('fuzzing secret');

function world(marker: boolean) {
  const clock = new ManualClock();
  const { ab } = pathBetween('10.0.0.1', '10.0.0.2', marker ? 4500 : 500, marker);
  const toR: { bytes: Uint8Array; path: IkePath }[] = [];
  const toI: { bytes: Uint8Array; path: IkePath }[] = [];
  const tI: IkeTransport = { send: (bytes, path) => toI.push({ bytes, path: reversePath(path) }) };
  const tR: IkeTransport = { send: (bytes, path) => toR.push({ bytes, path: reversePath(path) }) };
  const responder = new IkeResponder({
    transport: tI,
    clock,
    random,
    proposals: [PROPOSAL_GCM_ECP256, PROPOSAL_CBC_X25519],
    localId: fqdn('gcks.example'),
    localAuth: { kind: 'psk' },
    resolvePeer: () => ({ psk }),
  });
  const initiator = new IkeInitiator({
    transport: tR,
    clock,
    random,
    path: ab,
    proposals: [PROPOSAL_CBC_X25519],
    localId: fqdn('member.example'),
    localAuth: { kind: 'psk' },
    peer: { psk },
  });
  return { clock, responder, initiator, toR, toI, ab };
}

const mutate = (golden: Uint8Array) =>
  fc
    .array(fc.tuple(fc.nat(golden.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 })
    .map((flips) => {
      const m = golden.slice();
      for (const [at, x] of flips) m[at]! ^= x;
      return m;
    })
    // Two flips of the same octet by the same value cancel out: that is the genuine message.
    .filter((m) => !Buffer.from(m).equals(Buffer.from(golden)));

function accounted(c: IkeCounters): void {
  const outcomes = c.get('outcome_answered') + c.get('outcome_accepted') + c.get('outcome_dropped');
  expect(outcomes).toBe(c.get('received'));
  expect(c.drops()).toBe(c.get('outcome_dropped'));
}

describe('IKE state machines under arbitrary input', () => {
  for (const marker of [false, true]) {
    it(`responder (${marker ? 'port 4500, non-ESP marker' : 'port 500'})`, async () => {
      // Record a genuine exchange to mutate.
      const w = world(marker);
      const done = w.initiator.start();
      const init = w.toR.shift()!;
      w.responder.receive(init.bytes, init.path);
      w.initiator.receive(w.toI[0]!.bytes, w.toI.shift()!.path);
      const auth = w.toR.shift()!;
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(fc.uint8Array({ maxLength: 300 }), mutate(init.bytes), mutate(auth.bytes)),
          async (bytes) => {
            const before = w.toI.length;
            const outcome = w.responder.receive(bytes, auth.path);
            if (outcome === 'answered') {
              const sent = w.toI[w.toI.length - 1]!.bytes;
              const raw = marker ? stripNonEspMarker(sent)! : sent;
              const answer = ikeMessage.decode(raw);
              expect(answer.header.flags & IKE_FLAG_RESPONSE).toBe(IKE_FLAG_RESPONSE);
              expect(w.toI.length).toBe(before + 1);
            } else {
              expect(w.toI.length).toBe(before);
            }
          },
        ),
        { numRuns: 1500 },
      );
      accounted(w.responder.counters);
      expect(w.responder.established.size).toBe(0);
      // The genuine IKE_AUTH still completes.
      expect(w.responder.receive(auth.bytes, auth.path)).toBe('answered');
      const resp = w.toI.pop()!;
      expect(w.initiator.receive(resp.bytes, resp.path)).toBe('accepted');
      await done;
      expect(w.responder.established.size).toBe(1);
      w.responder.close();
      w.initiator.close();
    });
  }

  it('initiator waiting for IKE_SA_INIT: only a decodable answer to its SPI moves it', async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.uint8Array({ maxLength: 300 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), async (useGolden, junk, flips) => {
        const w = world(false);
        w.initiator.start().catch(() => undefined);
        const init = w.toR.shift()!;
        w.responder.receive(init.bytes, init.path);
        const golden = w.toI.shift()!;
        let bytes = junk;
        if (useGolden) {
          bytes = golden.bytes.slice();
          for (const [at, x] of flips) bytes[at % bytes.length]! ^= x;
        }
        const outcome = w.initiator.receive(bytes, golden.path);
        if (outcome === 'dropped') expect(w.initiator.phase).toBe('init-sent');
        accounted(w.initiator.counters);
        w.initiator.close();
        w.responder.close();
      }),
      { numRuns: 300 },
    );
  });

  it('initiator waiting for the auth response: every forgery is dropped and the genuine one completes', async () => {
    const w = world(false);
    const done = w.initiator.start();
    const init = w.toR.shift()!;
    w.responder.receive(init.bytes, init.path);
    const initResp = w.toI.shift()!;
    w.initiator.receive(initResp.bytes, initResp.path);
    const auth = w.toR.shift()!;
    w.responder.receive(auth.bytes, auth.path);
    const authResp = w.toI.shift()!;
    expect(w.initiator.phase).toBe('auth-sent');
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 300 }), mutate(authResp.bytes), mutate(initResp.bytes)), async (bytes) => {
        expect(w.initiator.receive(bytes, authResp.path)).toBe('dropped');
        expect(w.initiator.phase).toBe('auth-sent');
      }),
      { numRuns: 1500 },
    );
    accounted(w.initiator.counters);
    expect(w.initiator.receive(authResp.bytes, authResp.path)).toBe('accepted');
    await done;
    w.initiator.close();
    w.responder.close();
  });

  it('established SA: mutated protected requests are dropped, the genuine one is answered once and then from cache', async () => {
    const w = world(true);
    const done = w.initiator.start();
    for (let n = 0; n < 4; n++) {
      const toR = w.toR.shift();
      if (toR) w.responder.receive(toR.bytes, toR.path);
      const toI = w.toI.shift();
      if (toI) w.initiator.receive(toI.bytes, toI.path);
    }
    const { sa } = await done;
    const ping = sa.ping();
    const req = w.toR.shift()!;
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 200 }), mutate(req.bytes)), async (bytes) => {
        expect(w.responder.receive(bytes, req.path)).toBe('dropped');
        expect(w.toI.length).toBe(0);
      }),
      { numRuns: 1500 },
    );
    expect(w.responder.receive(req.bytes, req.path)).toBe('answered');
    expect(w.responder.receive(req.bytes, req.path)).toBe('answered');
    expect(w.responder.counters.get('response_retransmitted')).toBe(1);
    const [a, b] = [w.toI.shift()!, w.toI.shift()!];
    expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(true);
    expect(w.initiator.receive(a.bytes, a.path)).toBe('accepted');
    expect(w.initiator.receive(b.bytes, b.path)).toBe('dropped');
    await ping;
    accounted(w.responder.counters);
    accounted(w.initiator.counters);
    w.initiator.close();
    w.responder.close();
  });
});
