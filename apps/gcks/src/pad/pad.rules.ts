import type { FieldError } from '../common/domain-error.js';
import { parsePrefix } from '../common/ip.js';
import type { PadRuleEntity } from '../database/entities/pad-rule.entity.js';
import type { GroupSettings } from '../groups/group.rules.js';

/** Minimum length of a pre-shared key (characters); shorter ones are guessable. */
export const MIN_PSK_LENGTH = 16;

export type PadRuleSettings = Pick<PadRuleEntity, 'kind' | 'idType' | 'pattern' | 'role'> & { hasPsk: boolean };

/** A rule that lets members speak (spec/000 §4.1.3.1, Group Speaker role authorization). */
export function grantsSpeaker(r: Pick<PadRuleEntity, 'kind' | 'role'>): boolean {
  return r.kind === 'member' && (r.role === 'speaker' || r.role === 'both');
}

/** Checks one PAD rule on its own. */
export function validatePadRule(r: PadRuleSettings): FieldError[] {
  const errors: FieldError[] = [];
  if (r.kind === 'member' && r.role === null) {
    errors.push({ field: 'role', message: 'a member rule names the role it grants (receiver, speaker or both)' });
  }
  if (r.kind === 'gcks' && r.role !== null) {
    errors.push({ field: 'role', message: 'a GCKS authorization rule grants no member role' });
  }
  if (r.idType === 'psk') {
    if (!r.hasPsk) errors.push({ field: 'psk', message: 'a PSK rule needs the pre-shared key' });
    if (r.pattern.includes('*')) errors.push({ field: 'pattern', message: 'a PSK identity is matched exactly; no wildcards' });
  } else if (r.hasPsk) {
    errors.push({ field: 'psk', message: 'only a psk rule carries a pre-shared key' });
  }
  if (r.idType === 'san-ip' && !r.pattern.includes('*') && !parsePrefix(r.pattern).ok) {
    errors.push({ field: 'pattern', message: 'a san-ip pattern is an IP address or prefix' });
  }
  return errors;
}

/**
 * An A.1 group has exactly one speaker (spec/000 App. A.1): at most one rule may grant the
 * speaker role, and it must name one identity, not a wildcard pattern.
 */
export function validateSpeakerRules(
  group: Pick<GroupSettings, 'serviceModel'>,
  rules: readonly Pick<PadRuleEntity, 'kind' | 'role' | 'pattern'>[],
  field: string,
): FieldError[] {
  if (group.serviceModel !== 'unidirectional') return [];
  const speakers = rules.filter(grantsSpeaker);
  if (speakers.length > 1) {
    return [{ field, message: 'an A.1 (unidirectional) group has exactly one speaker; another rule already grants that role' }];
  }
  if (speakers.some((r) => r.pattern.includes('*'))) {
    return [{ field, message: 'the speaker rule of an A.1 (unidirectional) group must name one identity, not a pattern' }];
  }
  return [];
}
