import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post } from '@nestjs/common';
import { ApiErrors } from '../common/api-errors.js';
import { ApiBearerAuth, ApiResponse, ApiTags } from '@nestjs/swagger';
import { CurrentActor, type Actor } from '../common/request-context.js';
import { PoliciesService } from './policies.service.js';
import { CreatePolicyDto, PolicyResponse, UpdatePolicyDto } from './policy.dto.js';

function view(p: PolicyResponse & { group?: unknown }): PolicyResponse {
  const { group: _group, ...rest } = p;
  return rest;
}

@ApiTags('policies')
@ApiBearerAuth()
@ApiErrors()
@Controller('api/v1/groups/:groupId/policies')
export class PoliciesController {
  constructor(private readonly policies: PoliciesService) {}

  @Get()
  @ApiResponse({ status: 200, type: [PolicyResponse], description: 'GSPD entries in order' })
  async list(@Param('groupId') groupId: string): Promise<PolicyResponse[]> {
    return (await this.policies.list(groupId)).map(view);
  }

  @Post()
  @ApiResponse({ status: 201, type: PolicyResponse })
  async create(@Param('groupId') groupId: string, @Body() dto: CreatePolicyDto, @CurrentActor() who: Actor): Promise<PolicyResponse> {
    return view(await this.policies.create(groupId, dto, who));
  }

  @Get(':policyId')
  @ApiResponse({ status: 200, type: PolicyResponse })
  async get(@Param('groupId') groupId: string, @Param('policyId') id: string): Promise<PolicyResponse> {
    return view(await this.policies.get(groupId, id));
  }

  @Patch(':policyId')
  @ApiResponse({ status: 200, type: PolicyResponse })
  async update(
    @Param('groupId') groupId: string,
    @Param('policyId') id: string,
    @Body() dto: UpdatePolicyDto,
    @CurrentActor() who: Actor,
  ): Promise<PolicyResponse> {
    return view(await this.policies.update(groupId, id, dto, who));
  }

  @Delete(':policyId')
  @HttpCode(204)
  remove(@Param('groupId') groupId: string, @Param('policyId') id: string, @CurrentActor() who: Actor): Promise<void> {
    return this.policies.remove(groupId, id, who);
  }
}
