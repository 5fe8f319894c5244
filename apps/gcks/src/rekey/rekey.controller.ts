import { Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiProperty, ApiTags } from '@nestjs/swagger';
import { DomainError } from '../common/domain-error.js';
import { CurrentActor, type Actor } from '../common/request-context.js';
import { RegistrationService } from '../registration/registration.service.js';

export class RekeyResponse {
  @ApiProperty({ type: [Number], description: 'Message IDs of the GSA_REKEY messages multicast' }) messageIds: number[];
}
export class GroupKeyStatusResponse {
  @ApiProperty() members: number;
  @ApiProperty() lastMessageId: number;
  @ApiProperty() tokenEdition: number;
  @ApiProperty({ description: 'LKH epoch' }) epoch: number;
  @ApiProperty() rekeySpi: string;
  @ApiProperty() pendingLeaves: number;
}

/** Group Owner actions on a group's keys: forced rekey, eviction, in-band rekey of one member. */
@ApiTags('rekey')
@ApiBearerAuth()
@Controller('api/v1/groups/:groupId')
export class RekeyController {
  constructor(private readonly registration: RegistrationService) {}

  @Get('keys')
  @ApiOkResponse({ type: GroupKeyStatusResponse })
  status(@Param('groupId') groupId: string): GroupKeyStatusResponse {
    const s = this.registration.groupStatus(groupId);
    if (!s) throw DomainError.notFound('group', groupId);
    return s;
  }

  @Post('rekey')
  @HttpCode(200)
  @ApiOkResponse({ type: RekeyResponse })
  rekey(@Param('groupId') groupId: string): RekeyResponse {
    return { messageIds: this.registration.forceRekey(groupId).messageIds };
  }

  @Delete('members/:memberId')
  @HttpCode(200)
  @ApiOkResponse({ type: RekeyResponse })
  evict(@Param('groupId') groupId: string, @Param('memberId') memberId: string, @CurrentActor() actor: Actor): RekeyResponse {
    return this.registration.evict(groupId, memberId, actor);
  }

  @Post('members/:memberId/inband-rekey')
  @HttpCode(200)
  inband(@Param('groupId') groupId: string, @Param('memberId') memberId: string): Promise<{ messageId: number }> {
    return this.registration.inbandRekey(groupId, memberId);
  }
}
