import { AdminCredentialEntity } from './entities/admin-credential.entity.js';
import { AuditEntryEntity } from './entities/audit-entry.entity.js';
import { GroupEntity } from './entities/group.entity.js';
import { MemberEntity } from './entities/member.entity.js';
import { PadRuleEntity } from './entities/pad-rule.entity.js';
import { PolicyEntity } from './entities/policy.entity.js';
import { TrustAnchorEntity } from './entities/trust-anchor.entity.js';
import { LkhNodeEntity } from '../lkh/lkh-node.entity.js';
import { LkhTreeEntity } from '../lkh/lkh-tree.entity.js';

export { AdminCredentialEntity, AuditEntryEntity, GroupEntity, MemberEntity, PadRuleEntity, PolicyEntity, TrustAnchorEntity };

/**
 * Every TypeORM entity of the GCKS. The DataSource lists these explicitly (no globs); a later
 * issue appends its own entities here.
 */
export const ENTITIES = [
  GroupEntity,
  PolicyEntity,
  PadRuleEntity,
  TrustAnchorEntity,
  MemberEntity,
  AuditEntryEntity,
  AdminCredentialEntity,
  LkhTreeEntity,
  LkhNodeEntity,
];
