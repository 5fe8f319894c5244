/**
 * IKE SA proposals (RFC 7296 §3.3): building our SA payload, choosing from the peer's (responder,
 * §2.7) and checking the peer's choice (initiator).
 */
import {
  EncrId,
  IkeProtocol,
  IntegId,
  TRANSFORM_ATTR_KEY_LENGTH,
  TransformType,
  type Proposal,
  type SaPayload,
  type Transform,
} from '@app/codec';
import { SUPPORTED_KE_GROUPS, prfAlgorithm, skKeyLengths } from '@app/crypto';
import type { IkeChosenSuite, IkeProposalConfig } from './ike-types.js';

function transformsOf(p: IkeProposalConfig): Transform[] {
  const t: Transform[] = [
    { type: TransformType.ENCR, id: p.encrId, attributes: [{ type: TRANSFORM_ATTR_KEY_LENGTH, value: p.keyBits }] },
    { type: TransformType.PRF, id: p.prfId, attributes: [] },
  ];
  if (p.integId !== undefined && p.integId !== IntegId.NONE) t.push({ type: TransformType.INTEG, id: p.integId, attributes: [] });
  t.push({ type: TransformType.KE, id: p.group, attributes: [] });
  return t;
}

/** Our SA payload for IKE_SA_INIT: one proposal per config, numbered from 1. */
export function buildIkeSaPayload(configs: readonly IkeProposalConfig[]): SaPayload {
  return {
    proposals: configs.map((c, i) => ({ num: i + 1, protocolId: IkeProtocol.IKE, spi: new Uint8Array(0), transforms: transformsOf(c) })),
  };
}

/** The single-proposal SA payload a responder answers with. */
export function chosenSaPayload(num: number, c: IkeProposalConfig): SaPayload {
  return { proposals: [{ num, protocolId: IkeProtocol.IKE, spi: new Uint8Array(0), transforms: transformsOf(c) }] };
}

function keyBitsOf(t: Transform): number | undefined {
  const a = t.attributes.find((x) => x.type === TRANSFORM_ATTR_KEY_LENGTH);
  return typeof a?.value === 'number' ? a.value : undefined;
}

/** Whether a config is implemented here (no throw). */
export function isSupported(c: IkeProposalConfig): boolean {
  try {
    skKeyLengths({ encrId: c.encrId, keyBits: c.keyBits, integId: c.integId ?? IntegId.NONE });
    prfAlgorithm(c.prfId);
    return SUPPORTED_KE_GROUPS.includes(c.group);
  } catch {
    return false;
  }
}

export function suiteOf(c: IkeProposalConfig): IkeChosenSuite {
  return {
    sk: { encrId: c.encrId, keyBits: c.keyBits, integId: c.integId ?? IntegId.NONE },
    prf: prfAlgorithm(c.prfId),
    group: c.group,
  };
}

/**
 * Responder: the first peer proposal (in the peer's order of preference) all of whose transform
 * types have an option that matches one of our configs. Unknown attributes make a transform
 * unacceptable (§3.3.6). Returns the matching config and the peer's proposal number.
 */
export function selectProposal(
  offered: SaPayload,
  ours: readonly IkeProposalConfig[],
): { num: number; config: IkeProposalConfig } | undefined {
  for (const p of offered.proposals) {
    if (p.protocolId !== IkeProtocol.IKE || p.spi.length !== 0) continue;
    for (const c of ours) {
      if (!isSupported(c) || !proposalAllows(p, c)) continue;
      return { num: p.num, config: c };
    }
  }
  return undefined;
}

function proposalAllows(p: Proposal, c: IkeProposalConfig): boolean {
  const of = (type: number) => p.transforms.filter((t) => t.type === type);
  const clean = (t: Transform) => t.attributes.every((a) => a.type === TRANSFORM_ATTR_KEY_LENGTH);
  const encr = of(TransformType.ENCR).some((t) => clean(t) && t.id === c.encrId && keyBitsOf(t) === c.keyBits);
  const prf = of(TransformType.PRF).some((t) => clean(t) && t.id === c.prfId);
  const ke = of(TransformType.KE).some((t) => clean(t) && t.id === c.group);
  const integs = of(TransformType.INTEG);
  const aead = c.encrId === EncrId.ENCR_AES_GCM_16;
  const integ = aead
    ? integs.every((t) => t.id === IntegId.NONE)
    : integs.some((t) => clean(t) && t.id === c.integId);
  // Transform types we do not know (other than SN) make the proposal unacceptable.
  const known = new Set<number>([TransformType.ENCR, TransformType.PRF, TransformType.INTEG, TransformType.KE]);
  const others = p.transforms.every((t) => known.has(t.type));
  return encr && prf && ke && integ && others;
}

/**
 * Initiator: the responder's answer must be exactly one proposal with one transform of each type
 * taken from what we offered (§2.7, §3.3.6). Returns the config it corresponds to.
 */
export function checkChosenProposal(answer: SaPayload, ours: readonly IkeProposalConfig[]): IkeProposalConfig | undefined {
  if (answer.proposals.length !== 1) return undefined;
  const p = answer.proposals[0]!;
  if (p.protocolId !== IkeProtocol.IKE) return undefined;
  const one = (type: number) => {
    const ts = p.transforms.filter((t) => t.type === type);
    return ts.length === 1 ? ts[0] : ts.length === 0 ? null : undefined;
  };
  const encr = one(TransformType.ENCR);
  const prf = one(TransformType.PRF);
  const ke = one(TransformType.KE);
  const integ = one(TransformType.INTEG);
  if (!encr || !prf || !ke || integ === undefined) return undefined;
  return ours.find(
    (c, i) =>
      p.num === i + 1 &&
      encr.id === c.encrId &&
      keyBitsOf(encr) === c.keyBits &&
      prf.id === c.prfId &&
      ke.id === c.group &&
      (integ === null ? (c.integId ?? IntegId.NONE) === IntegId.NONE : integ.id === c.integId),
  );
}
