import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post } from '@nestjs/common';
import { ApiErrors } from '../common/api-errors.js';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { CurrentActor, type Actor } from '../common/request-context.js';
import { CreateGroupDto, GroupResponse, UpdateGroupDto } from './group.dto.js';
import { GroupsService } from './groups.service.js';

@ApiTags('groups')
@ApiBearerAuth()
@ApiErrors()
@Controller('api/v1/groups')
export class GroupsController {
  constructor(private readonly groups: GroupsService) {}

  @Get()
  @ApiResponse({ status: 200, type: [GroupResponse] })
  list(): Promise<GroupResponse[]> {
    return this.groups.list();
  }

  @Post()
  @ApiOperation({ summary: 'Create a group' })
  @ApiResponse({ status: 201, type: GroupResponse })
  @ApiResponse({ status: 400, description: 'Validation failed; `errors` names each field' })
  @ApiResponse({ status: 409, description: 'A group with this name exists' })
  create(@Body() dto: CreateGroupDto, @CurrentActor() who: Actor): Promise<GroupResponse> {
    return this.groups.create(dto, who);
  }

  @Get(':groupId')
  @ApiResponse({ status: 200, type: GroupResponse })
  get(@Param('groupId') id: string): Promise<GroupResponse> {
    return this.groups.get(id);
  }

  @Patch(':groupId')
  @ApiResponse({ status: 200, type: GroupResponse })
  update(@Param('groupId') id: string, @Body() dto: UpdateGroupDto, @CurrentActor() who: Actor): Promise<GroupResponse> {
    return this.groups.update(id, dto, who);
  }

  @Delete(':groupId')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a group with its policies, PAD rules, trust anchors and members' })
  remove(@Param('groupId') id: string, @CurrentActor() who: Actor): Promise<void> {
    return this.groups.remove(id, who);
  }
}
