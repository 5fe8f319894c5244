import { Controller, Get, Param } from '@nestjs/common';
import { ApiErrors } from '../common/api-errors.js';
import { ApiBearerAuth, ApiProperty, ApiResponse, ApiTags } from '@nestjs/swagger';
import { MEMBER_STATES, type MemberState } from '../database/entities/member.entity.js';
import { MEMBER_ROLES, type MemberRole } from '../database/entities/pad-rule.entity.js';
import { MembersService } from './members.service.js';

export class MemberResponse {
  @ApiProperty() id: string;
  @ApiProperty() groupId: string;
  @ApiProperty() identity: string;
  @ApiProperty({ enum: MEMBER_ROLES }) role: MemberRole;
  @ApiProperty({ enum: MEMBER_STATES }) state: MemberState;
  @ApiProperty({ nullable: true, type: String }) address: string | null;
  @ApiProperty({ nullable: true, type: Number }) senderId: number | null;
  @ApiProperty() joinedAt: string;
  @ApiProperty({ nullable: true, type: String }) lastSeenAt: string | null;
}

@ApiTags('members')
@ApiBearerAuth()
@ApiErrors()
@Controller('api/v1/groups/:groupId/members')
export class MembersController {
  constructor(private readonly members: MembersService) {}

  @Get()
  @ApiResponse({ status: 200, type: [MemberResponse] })
  list(@Param('groupId') groupId: string): Promise<MemberResponse[]> {
    return this.members.list(groupId);
  }

  @Get(':memberId')
  @ApiResponse({ status: 200, type: MemberResponse })
  get(@Param('groupId') groupId: string, @Param('memberId') id: string): Promise<MemberResponse> {
    return this.members.get(groupId, id);
  }
}
