import type { FieldError } from '../common/domain-error.js';
import {
  isMulticast,
  isRecognisedIpv6Anycast,
  isSsmRange,
  isUnicastSource,
  parseAddress,
  parseBroadcast,
  type IpAddress,
} from '../common/ip.js';
import type { GroupEntity } from '../database/entities/group.entity.js';

/** Appendix A.2 (per-speaker SAs) must allow at least this many concurrent speakers (issue 2). */
export const MIN_SPEAKERS_PER_SPEAKER_MODEL = 16;

/** The group fields the Group Owner sets; everything else is derived or bookkeeping. */
export type GroupSettings = Pick<
  GroupEntity,
  | 'name'
  | 'address'
  | 'addressType'
  | 'sourceMode'
  | 'ssmSources'
  | 'serviceModel'
  | 'rekeyTransport'
  | 'rekeyAddress'
  | 'rekeyPort'
  | 'maxSpeakers'
  | 'lkhDegree'
  | 'enabled'
>;

/**
 * Parses the group's own address according to its type (spec/000 §1.1): a multicast address
 * (ASM or SSM), an IPv4 broadcast address, or a recognisable IPv6 anycast address (RFC 2526).
 */
export function groupAddress(g: Pick<GroupSettings, 'address' | 'addressType'>): { address: IpAddress } | { error: string } {
  if (g.addressType === 'broadcast') {
    const b = parseBroadcast(g.address);
    return b.ok ? { address: b.address } : { error: b.reason };
  }
  const a = parseAddress(g.address);
  if (!a) return { error: 'must be an IPv4 or IPv6 address' };
  if (g.addressType === 'multicast') {
    return isMulticast(a) ? { address: a } : { error: 'must be a multicast address (224.0.0.0/4 or ff00::/8)' };
  }
  if (a.version !== 6) return { error: 'an anycast group address must be IPv6 (spec/000 §1.1)' };
  return isRecognisedIpv6Anycast(a)
    ? { address: a }
    : { error: 'must be an IPv6 subnet anycast address (RFC 4291 §2.6.1 or RFC 2526)' };
}

/** Checks one group's settings on their own (cross-checks with policies and PAD rules are separate). */
export function validateGroupSettings(g: GroupSettings): FieldError[] {
  const errors: FieldError[] = [];
  const parsed = groupAddress(g);
  const address = 'address' in parsed ? parsed.address : null;
  if ('error' in parsed) errors.push({ field: 'address', message: parsed.error });

  if (g.sourceMode === 'ssm') {
    if (g.addressType !== 'multicast') {
      errors.push({ field: 'sourceMode', message: 'source-specific multicast needs a multicast group address' });
    } else if (address && !isSsmRange(address)) {
      errors.push({ field: 'address', message: 'an SSM group address must be in 232.0.0.0/8 or ff3x::/96 (RFC 4607 §1)' });
    }
    if (g.ssmSources.length === 0) {
      errors.push({ field: 'ssmSources', message: 'an SSM group must list at least one authorized source address' });
    }
    const seen = new Set<string>();
    g.ssmSources.forEach((s, i) => {
      const a = parseAddress(s);
      if (!a || !isUnicastSource(a)) {
        errors.push({ field: `ssmSources.${i}`, message: 'must be a unicast IPv4 or IPv6 address' });
      } else if (address && a.version !== address.version) {
        errors.push({ field: `ssmSources.${i}`, message: `must be IPv${address.version} like the group address` });
      } else if (seen.has(`${a.version}:${a.value}`)) {
        errors.push({ field: `ssmSources.${i}`, message: 'is listed twice' });
      } else {
        seen.add(`${a.version}:${a.value}`);
      }
    });
  } else if (g.ssmSources.length > 0) {
    errors.push({ field: 'ssmSources', message: 'only an SSM group lists authorized sources' });
  }

  if (g.serviceModel === 'unidirectional' && g.maxSpeakers !== 1) {
    errors.push({ field: 'maxSpeakers', message: 'an A.1 (unidirectional) group has exactly one speaker' });
  }
  if (g.serviceModel === 'per-speaker' && g.maxSpeakers < MIN_SPEAKERS_PER_SPEAKER_MODEL) {
    errors.push({
      field: 'maxSpeakers',
      message: `an A.2 (per-speaker) group must allow at least ${MIN_SPEAKERS_PER_SPEAKER_MODEL} concurrent speakers`,
    });
  }

  if (g.rekeyTransport === 'multicast') {
    const r = g.rekeyAddress === null ? null : parseAddress(g.rekeyAddress);
    if (!r || !isMulticast(r)) {
      errors.push({ field: 'rekeyAddress', message: 'a multicast rekey channel needs a multicast address' });
    } else if (address && r.version !== address.version) {
      errors.push({ field: 'rekeyAddress', message: `must be IPv${address.version} like the group address` });
    }
    if (g.rekeyPort === null) errors.push({ field: 'rekeyPort', message: 'a multicast rekey channel needs a port' });
  } else {
    if (g.rekeyAddress !== null) errors.push({ field: 'rekeyAddress', message: 'a unicast rekey channel has no address' });
    if (g.rekeyPort !== null) errors.push({ field: 'rekeyPort', message: 'a unicast rekey channel has no port' });
  }
  return errors;
}
