import { ApiProperty, ApiPropertyOptional, PartialType } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  MinLength,
  ValidateIf,
} from 'class-validator';
import {
  ADDRESS_TYPES,
  REKEY_TRANSPORTS,
  SERVICE_MODELS,
  SOURCE_MODES,
  type AddressType,
  type RekeyTransport,
  type ServiceModel,
  type SourceMode,
} from '../database/entities/group.entity.js';

export const MAX_SSM_SOURCES = 64;

/** Body of `POST /api/v1/groups`. Omitted optional fields take the defaults documented on each. */
export class CreateGroupDto {
  @ApiProperty({ example: 'video-feed', description: 'Unique name; letters, digits, . _ - (1–64)' })
  @IsString()
  @MinLength(1)
  @MaxLength(64)
  @Matches(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { message: 'name may hold letters, digits, dot, underscore and hyphen' })
  name: string;

  @ApiProperty({
    example: '239.1.2.3',
    description: 'Group address: multicast, IPv4 broadcast (255.255.255.255 or a.b.c.d/len), or IPv6 subnet anycast',
  })
  @IsString()
  @MaxLength(64)
  address: string;

  @ApiPropertyOptional({ enum: ADDRESS_TYPES, default: 'multicast' })
  @IsOptional()
  @IsIn(ADDRESS_TYPES)
  addressType?: AddressType;

  @ApiPropertyOptional({ enum: SOURCE_MODES, default: 'asm' })
  @IsOptional()
  @IsIn(SOURCE_MODES)
  sourceMode?: SourceMode;

  @ApiPropertyOptional({ type: [String], description: 'SSM only: authorized source addresses', default: [] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(MAX_SSM_SOURCES)
  @IsString({ each: true })
  ssmSources?: string[];

  @ApiPropertyOptional({
    enum: SERVICE_MODELS,
    default: 'per-speaker',
    description: 'unidirectional = App. A.1, per-speaker = A.2, any-to-any = A.3',
  })
  @IsOptional()
  @IsIn(SERVICE_MODELS)
  serviceModel?: ServiceModel;

  @ApiPropertyOptional({ enum: REKEY_TRANSPORTS, default: 'multicast' })
  @IsOptional()
  @IsIn(REKEY_TRANSPORTS)
  rekeyTransport?: RekeyTransport;

  @ApiPropertyOptional({ nullable: true, description: 'Multicast rekey address; default: the group address when multicast' })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @IsString()
  @MaxLength(64)
  rekeyAddress?: string | null;

  @ApiPropertyOptional({ nullable: true, default: 4500 })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @IsInt()
  @Min(1)
  @Max(65535)
  rekeyPort?: number | null;

  @ApiPropertyOptional({ description: 'Default: 1 for A.1, 16 for A.2, 64 for A.3', minimum: 1, maximum: 65535 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(65535)
  maxSpeakers?: number;

  @ApiPropertyOptional({ default: 4, minimum: 2, maximum: 16, description: 'Degree of the LKH key tree' })
  @IsOptional()
  @IsInt()
  @Min(2)
  @Max(16)
  lkhDegree?: number;

  @ApiPropertyOptional({ default: true })
  @IsOptional()
  @IsBoolean()
  enabled?: boolean;
}

/** Body of `PATCH /api/v1/groups/:groupId`: any subset of the create fields. */
export class UpdateGroupDto extends PartialType(CreateGroupDto) {}

export class GroupResponse {
  @ApiProperty() id: string;
  @ApiProperty() name: string;
  @ApiProperty() address: string;
  @ApiProperty({ enum: ADDRESS_TYPES }) addressType: AddressType;
  @ApiProperty({ enum: [4, 6] }) ipVersion: number;
  @ApiProperty({ enum: SOURCE_MODES }) sourceMode: SourceMode;
  @ApiProperty({ type: [String] }) ssmSources: string[];
  @ApiProperty({ enum: SERVICE_MODELS }) serviceModel: ServiceModel;
  @ApiProperty({ enum: REKEY_TRANSPORTS }) rekeyTransport: RekeyTransport;
  @ApiProperty({ nullable: true, type: String }) rekeyAddress: string | null;
  @ApiProperty({ nullable: true, type: Number }) rekeyPort: number | null;
  @ApiProperty() maxSpeakers: number;
  @ApiProperty() lkhDegree: number;
  @ApiProperty() enabled: boolean;
  @ApiProperty() createdAt: string;
  @ApiProperty() updatedAt: string;
}
