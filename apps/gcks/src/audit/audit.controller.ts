import { Controller, Get, Query } from '@nestjs/common';
import { ApiErrors } from '../common/api-errors.js';
import { ApiBearerAuth, ApiProperty, ApiPropertyOptional, ApiResponse, ApiTags } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { AuditService } from './audit.service.js';

export class AuditQueryDto {
  @ApiPropertyOptional({ description: 'Only changes to this group and what it holds' })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  groupId?: string;

  @ApiPropertyOptional({ description: 'Page backwards: entries with a smaller id' })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  beforeId?: number;

  @ApiPropertyOptional({ default: 100, minimum: 1, maximum: 500 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(500)
  limit?: number;
}

export class AuditEntryResponse {
  @ApiProperty() id: number;
  @ApiProperty() at: string;
  @ApiProperty({ description: 'admin:<token id>, cli or system' }) actor: string;
  @ApiProperty({ nullable: true, type: String }) remoteAddress: string | null;
  @ApiProperty() action: string;
  @ApiProperty() entityType: string;
  @ApiProperty() entityId: string;
  @ApiProperty({ nullable: true, type: String }) groupId: string | null;
  @ApiProperty({ type: Object }) details: Record<string, unknown>;
}

@ApiTags('audit')
@ApiBearerAuth()
@ApiErrors()
@Controller('api/v1/audit')
export class AuditController {
  constructor(private readonly audit: AuditService) {}

  @Get()
  @ApiResponse({ status: 200, type: [AuditEntryResponse], description: 'Newest first' })
  list(@Query() q: AuditQueryDto): Promise<AuditEntryResponse[]> {
    return this.audit.list({ groupId: q.groupId, beforeId: q.beforeId, limit: q.limit ?? 100 });
  }
}
