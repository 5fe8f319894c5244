import { ApiProperty, ApiPropertyOptional, PartialType, PickType } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, MaxLength, MinLength, ValidateIf } from 'class-validator';
import { MEMBER_ROLES, PAD_ID_TYPES, PAD_KINDS, type MemberRole, type PadIdType, type PadKind } from '../database/entities/pad-rule.entity.js';
import { MIN_PSK_LENGTH } from './pad.rules.js';

/** Body of `POST /api/v1/groups/:groupId/pad-rules`. */
export class CreatePadRuleDto {
  @ApiPropertyOptional({ enum: PAD_KINDS, default: 'member', description: 'member: who may join; gcks: whom members accept as GCKS' })
  @IsOptional()
  @IsIn(PAD_KINDS)
  kind?: PadKind;

  @ApiProperty({ enum: PAD_ID_TYPES })
  @IsIn(PAD_ID_TYPES)
  idType: PadIdType;

  @ApiProperty({ example: '*.sensors.example.com', description: 'Identity; * matches any run of characters (not for psk)' })
  @IsString()
  @MinLength(1)
  @MaxLength(255)
  pattern: string;

  @ApiPropertyOptional({ enum: MEMBER_ROLES, nullable: true, description: 'Role a member rule grants; null for gcks rules' })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @IsIn(MEMBER_ROLES)
  role?: MemberRole | null;

  @ApiPropertyOptional({ writeOnly: true, description: `Pre-shared key of a psk rule (at least ${MIN_PSK_LENGTH} characters); never returned` })
  @IsOptional()
  @IsString()
  @MinLength(MIN_PSK_LENGTH)
  @MaxLength(512)
  psk?: string;
}

export class UpdatePadRuleDto extends PartialType(PickType(CreatePadRuleDto, ['pattern', 'role', 'psk'] as const)) {}

export class PadRuleResponse {
  @ApiProperty() id: string;
  @ApiProperty() groupId: string;
  @ApiProperty({ enum: PAD_KINDS }) kind: PadKind;
  @ApiProperty({ enum: PAD_ID_TYPES }) idType: PadIdType;
  @ApiProperty() pattern: string;
  @ApiProperty({ enum: MEMBER_ROLES, nullable: true }) role: MemberRole | null;
  @ApiProperty({ description: 'Whether a pre-shared key is stored (the key itself is never returned)' }) hasPsk: boolean;
  @ApiProperty() createdAt: string;
  @ApiProperty() updatedAt: string;
}

/** Body of `POST /api/v1/groups/:groupId/trust-anchors`. */
export class CreateTrustAnchorDto {
  @ApiProperty({ example: 'corp-root' })
  @IsString()
  @MinLength(1)
  @MaxLength(64)
  name: string;

  @ApiProperty({ description: 'PEM of a CA certificate' })
  @IsString()
  @MaxLength(16_384)
  pem: string;
}

export class TrustAnchorResponse {
  @ApiProperty() id: string;
  @ApiProperty() groupId: string;
  @ApiProperty() name: string;
  @ApiProperty() pem: string;
  @ApiProperty() fingerprint: string;
  @ApiProperty() subject: string;
  @ApiProperty() notAfter: string;
  @ApiProperty() createdAt: string;
}
