import { describe, expect, it } from 'vitest';
import { EncrId, IkeProtocol, IntegId, KeGroup, PrfId, TRANSFORM_ATTR_KEY_LENGTH, TransformType, type SaPayload } from '@app/codec';
import { buildIkeSaPayload, checkChosenProposal, chosenSaPayload, selectProposal, type IkeProposalConfig } from '@app/gkm';

const GCM: IkeProposalConfig = { encrId: EncrId.ENCR_AES_GCM_16, keyBits: 256, prfId: PrfId.PRF_HMAC_SHA2_256, group: KeGroup.ECP_256 };
const CBC: IkeProposalConfig = {
  encrId: EncrId.ENCR_AES_CBC,
  keyBits: 128,
  integId: IntegId.AUTH_HMAC_SHA2_256_128,
  prfId: PrfId.PRF_HMAC_SHA2_512,
  group: KeGroup.CURVE25519,
};

/** One proposal offering several algorithms per type, as charon does. */
const combined: SaPayload = {
  proposals: [
    {
      num: 1,
      protocolId: IkeProtocol.IKE,
      spi: new Uint8Array(0),
      transforms: [
        { type: TransformType.ENCR, id: EncrId.ENCR_AES_CBC, attributes: [{ type: TRANSFORM_ATTR_KEY_LENGTH, value: 256 }] },
        { type: TransformType.ENCR, id: EncrId.ENCR_AES_CBC, attributes: [{ type: TRANSFORM_ATTR_KEY_LENGTH, value: 128 }] },
        { type: TransformType.INTEG, id: IntegId.AUTH_HMAC_SHA1_96, attributes: [] },
        { type: TransformType.INTEG, id: IntegId.AUTH_HMAC_SHA2_256_128, attributes: [] },
        { type: TransformType.PRF, id: PrfId.PRF_HMAC_SHA2_512, attributes: [] },
        { type: TransformType.KE, id: KeGroup.MODP_2048, attributes: [] },
        { type: TransformType.KE, id: KeGroup.CURVE25519, attributes: [] },
      ],
    },
  ],
};

describe('IKE SA proposals', () => {
  it('chooses from a combined proposal and answers with exactly one transform per type', () => {
    const sut = selectProposal(combined, [GCM, CBC]);
    expect(sut?.config).toBe(CBC);
    const answer = chosenSaPayload(sut!.num, sut!.config);
    expect(answer.proposals[0]!.transforms.map((t) => t.type)).toEqual([TransformType.ENCR, TransformType.PRF, TransformType.INTEG, TransformType.KE]);
    expect(checkChosenProposal({ proposals: [{ ...answer.proposals[0]!, num: 2 }] }, [GCM, CBC])).toBe(CBC);
  });

  it('refuses proposals with unknown attributes or transform types, a non-empty SPI, or other protocols', () => {
    const ours = buildIkeSaPayload([GCM]);
    const p = ours.proposals[0]!;
    expect(selectProposal(ours, [GCM])?.config).toBe(GCM);
    const withAttr = { proposals: [{ ...p, transforms: p.transforms.map((t) => ({ ...t, attributes: [...t.attributes, { type: 99, value: 1 }] })) }] };
    expect(selectProposal(withAttr, [GCM])).toBeUndefined();
    const withType = { proposals: [{ ...p, transforms: [...p.transforms, { type: 77, id: 1, attributes: [] }] }] };
    expect(selectProposal(withType, [GCM])).toBeUndefined();
    expect(selectProposal({ proposals: [{ ...p, spi: new Uint8Array(8) }] }, [GCM])).toBeUndefined();
    expect(selectProposal({ proposals: [{ ...p, protocolId: IkeProtocol.ESP }] }, [GCM])).toBeUndefined();
    const gcmWithInteg = { proposals: [{ ...p, transforms: [...p.transforms, { type: TransformType.INTEG, id: IntegId.AUTH_HMAC_SHA2_256_128, attributes: [] }] }] };
    expect(selectProposal(gcmWithInteg, [GCM])).toBeUndefined();
    expect(selectProposal(ours, [{ ...GCM, keyBits: 128 }])).toBeUndefined();
  });

  it('the initiator refuses an answer that was not offered or is ambiguous', () => {
    expect(checkChosenProposal(combined, [CBC])).toBeUndefined(); // two ENCR transforms
    expect(checkChosenProposal(chosenSaPayload(1, { ...GCM, group: KeGroup.CURVE25519 }), [GCM])).toBeUndefined();
    expect(checkChosenProposal({ proposals: [] }, [GCM])).toBeUndefined();
    expect(checkChosenProposal(chosenSaPayload(1, GCM), [GCM])).toBe(GCM);
    expect(checkChosenProposal(chosenSaPayload(3, GCM), [GCM])).toBeUndefined(); // we never sent proposal 3
  });
});
