import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DomainError } from '../common/domain-error.js';
import { MemberEntity } from '../database/entities/member.entity.js';
import { loadGroup } from '../groups/groups.service.js';

/** Read-only view of group members; registration (a later issue) writes them. */
@Injectable()
export class MembersService {
  constructor(private readonly ds: DataSource) {}

  async list(groupId: string): Promise<MemberEntity[]> {
    await loadGroup(this.ds.manager, groupId);
    return this.ds.getRepository(MemberEntity).find({ where: { groupId }, order: { joinedAt: 'ASC', id: 'ASC' } });
  }

  async get(groupId: string, id: string): Promise<MemberEntity> {
    await loadGroup(this.ds.manager, groupId);
    const m = await this.ds.getRepository(MemberEntity).findOneBy({ groupId, id });
    if (!m) throw DomainError.notFound('member', id);
    return m;
  }
}
