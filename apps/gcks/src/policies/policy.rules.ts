import type { FieldError } from '../common/domain-error.js';
import { hostPrefix, parseAddress, parsePrefix, prefixWithin, type IpPrefix } from '../common/ip.js';
import type { PolicyEntity } from '../database/entities/policy.entity.js';
import { groupAddress, type GroupSettings } from '../groups/group.rules.js';

/** Minimum ratio of TEK lifetime to activation time delay (issue 2, after deployed group VPNs). */
export const MIN_TEK_LIFETIME_PER_ATD = 10;

/** IP protocols whose selectors carry ports: TCP 6, UDP 17, SCTP 132 (RFC 4301 §4.4.1.1). */
export const PORT_PROTOCOLS: readonly number[] = [6, 17, 132];

/** The policy fields the Group Owner sets. */
export type PolicySettings = Omit<PolicyEntity, 'id' | 'groupId' | 'group' | 'position' | 'createdAt' | 'updatedAt'>;

/**
 * Checks one GSPD entry against its group. The rules encode spec/000: selectors stay inside the
 * group's own addresses (§4.1.3.1, a MUST), address preservation only in tunnel mode (§3.1), ATD
 * and DTD positive with the TEK lifetime at least 10×ATD (§4.2.1), no anti-replay in an A.3 group
 * whose members share one SA (App. A.3), and selectors of the group's IP version.
 */
export function validatePolicy(p: PolicySettings, group: GroupSettings): FieldError[] {
  const errors: FieldError[] = [];
  const ga = groupAddress(group);
  const groupAddr = 'address' in ga ? ga.address : null;

  const src = parsePrefix(p.sourcePrefix);
  const dst = parsePrefix(p.destinationPrefix);
  if (!src.ok) errors.push({ field: 'sourcePrefix', message: src.reason });
  if (!dst.ok) errors.push({ field: 'destinationPrefix', message: dst.reason });

  if (groupAddr) {
    const v = groupAddr.version;
    if (src.ok && src.prefix.version !== v) {
      errors.push({ field: 'sourcePrefix', message: `must be IPv${v}, the IP version of the group address` });
    }
    if (dst.ok && dst.prefix.version !== v) {
      errors.push({ field: 'destinationPrefix', message: `must be IPv${v}, the IP version of the group address` });
    } else if (dst.ok && !prefixWithin(dst.prefix, hostPrefix(groupAddr))) {
      errors.push({
        field: 'destinationPrefix',
        message: `must not reach outside the group's address ${group.address} (spec/000 §4.1.3.1)`,
      });
    }
    if (src.ok && src.prefix.version === v && group.sourceMode === 'ssm') {
      const sources: IpPrefix[] = group.ssmSources.flatMap((s) => {
        const a = parseAddress(s);
        return a ? [hostPrefix(a)] : [];
      });
      if (!sources.some((s) => prefixWithin(src.prefix, s))) {
        errors.push({
          field: 'sourcePrefix',
          message: "must lie within one of the SSM group's authorized sources (spec/000 §4.1.3.1)",
        });
      }
    }
  }

  if (p.protocol === null) {
    if (p.sourcePort !== null) errors.push({ field: 'sourcePort', message: 'ports need a protocol (TCP, UDP or SCTP)' });
    if (p.destinationPort !== null) errors.push({ field: 'destinationPort', message: 'ports need a protocol (TCP, UDP or SCTP)' });
  } else if (!PORT_PROTOCOLS.includes(p.protocol)) {
    if (p.sourcePort !== null) errors.push({ field: 'sourcePort', message: `protocol ${p.protocol} has no ports` });
    if (p.destinationPort !== null) errors.push({ field: 'destinationPort', message: `protocol ${p.protocol} has no ports` });
  }

  if (p.addressPreservation !== 'none' && p.mode !== 'tunnel') {
    errors.push({ field: 'addressPreservation', message: 'address preservation applies to tunnel mode only (spec/000 §3.1)' });
  }
  if (p.tekLifetime < MIN_TEK_LIFETIME_PER_ATD * p.atd) {
    errors.push({
      field: 'tekLifetime',
      message: `must be at least ${MIN_TEK_LIFETIME_PER_ATD}×atd (${MIN_TEK_LIFETIME_PER_ATD * p.atd} s)`,
    });
  }
  if (p.antiReplay && group.serviceModel === 'any-to-any') {
    errors.push({
      field: 'antiReplay',
      message: 'an A.3 (any-to-any) group shares one SA among all speakers and cannot use anti-replay (spec/000 App. A.3)',
    });
  }
  if (p.leaveBehaviour === 'batched' && p.leaveBatchInterval === null) {
    errors.push({ field: 'leaveBatchInterval', message: 'batched rekeying on leave needs an interval in seconds' });
  }
  if (p.leaveBehaviour === 'immediate' && p.leaveBatchInterval !== null) {
    errors.push({ field: 'leaveBatchInterval', message: 'only batched rekeying on leave has an interval' });
  }
  return errors;
}
