import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post } from '@nestjs/common';
import { ApiErrors } from '../common/api-errors.js';
import { ApiBearerAuth, ApiResponse, ApiTags } from '@nestjs/swagger';
import { CurrentActor, type Actor } from '../common/request-context.js';
import { CreatePadRuleDto, CreateTrustAnchorDto, PadRuleResponse, TrustAnchorResponse, UpdatePadRuleDto } from './pad.dto.js';
import { PadService } from './pad.service.js';

@ApiTags('pad')
@ApiBearerAuth()
@ApiErrors()
@Controller('api/v1/groups/:groupId/pad-rules')
export class PadRulesController {
  constructor(private readonly pad: PadService) {}

  @Get()
  @ApiResponse({ status: 200, type: [PadRuleResponse] })
  list(@Param('groupId') groupId: string): Promise<PadRuleResponse[]> {
    return this.pad.listRules(groupId);
  }

  @Post()
  @ApiResponse({ status: 201, type: PadRuleResponse })
  create(@Param('groupId') groupId: string, @Body() dto: CreatePadRuleDto, @CurrentActor() who: Actor): Promise<PadRuleResponse> {
    return this.pad.createRule(groupId, dto, who);
  }

  @Get(':ruleId')
  @ApiResponse({ status: 200, type: PadRuleResponse })
  get(@Param('groupId') groupId: string, @Param('ruleId') id: string): Promise<PadRuleResponse> {
    return this.pad.getRule(groupId, id);
  }

  @Patch(':ruleId')
  @ApiResponse({ status: 200, type: PadRuleResponse })
  update(
    @Param('groupId') groupId: string,
    @Param('ruleId') id: string,
    @Body() dto: UpdatePadRuleDto,
    @CurrentActor() who: Actor,
  ): Promise<PadRuleResponse> {
    return this.pad.updateRule(groupId, id, dto, who);
  }

  @Delete(':ruleId')
  @HttpCode(204)
  remove(@Param('groupId') groupId: string, @Param('ruleId') id: string, @CurrentActor() who: Actor): Promise<void> {
    return this.pad.removeRule(groupId, id, who);
  }
}

@ApiTags('pad')
@ApiBearerAuth()
@ApiErrors()
@Controller('api/v1/groups/:groupId/trust-anchors')
export class TrustAnchorsController {
  constructor(private readonly pad: PadService) {}

  @Get()
  @ApiResponse({ status: 200, type: [TrustAnchorResponse] })
  list(@Param('groupId') groupId: string): Promise<TrustAnchorResponse[]> {
    return this.pad.listAnchors(groupId);
  }

  @Post()
  @ApiResponse({ status: 201, type: TrustAnchorResponse })
  create(@Param('groupId') groupId: string, @Body() dto: CreateTrustAnchorDto, @CurrentActor() who: Actor): Promise<TrustAnchorResponse> {
    return this.pad.addAnchor(groupId, dto, who);
  }

  @Get(':anchorId')
  @ApiResponse({ status: 200, type: TrustAnchorResponse })
  get(@Param('groupId') groupId: string, @Param('anchorId') id: string): Promise<TrustAnchorResponse> {
    return this.pad.getAnchor(groupId, id);
  }

  @Delete(':anchorId')
  @HttpCode(204)
  remove(@Param('groupId') groupId: string, @Param('anchorId') id: string, @CurrentActor() who: Actor): Promise<void> {
    return this.pad.removeAnchor(groupId, id, who);
  }
}
