import { ApiProperty, ApiPropertyOptional, PartialType } from '@nestjs/swagger';
import { IsBoolean, IsIn, IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min, MinLength, ValidateIf } from 'class-validator';
import {
  ADDRESS_PRESERVATIONS,
  DATA_ORIGIN_AUTHS,
  DIRECTIONS,
  ESP_TRANSFORMS,
  IPSEC_MODES,
  LEAVE_BEHAVIOURS,
  POLICY_ACTIONS,
  type AddressPreservation,
  type DataOriginAuth,
  type Direction,
  type EspTransform,
  type IpsecMode,
  type LeaveBehaviour,
  type PolicyAction,
} from '../database/entities/policy.entity.js';

/** KEK lifetime bounds in seconds (5 minutes to a day, as deployed group VPNs allow). */
export const KEK_LIFETIME_MIN = 300;
export const KEK_LIFETIME_MAX = 86_400;
/** TEK lifetime upper bound in seconds (one day). */
export const TEK_LIFETIME_MAX = 86_400;
/** ATD/DTD upper bound in seconds. */
export const DELAY_MAX = 3_600;
/** Anti-replay window bounds in packets (RFC 4303 §3.4.3 minimum 32; RFC 6479 bitmaps). */
export const REPLAY_WINDOW_MIN = 32;
export const REPLAY_WINDOW_MAX = 4096;

const nullableInt = (min: number, max: number) => [IsOptional(), ValidateIf((_: unknown, v: unknown) => v !== null), IsInt(), Min(min), Max(max)];
function NullableInt(min: number, max: number): PropertyDecorator {
  return (target, key) => nullableInt(min, max).forEach((d) => d(target, key));
}

/** Body of `POST /api/v1/groups/:groupId/policies`: one GSPD entry. */
export class CreatePolicyDto {
  @ApiProperty({ example: 'video', description: 'Unique within the group' })
  @IsString()
  @MinLength(1)
  @MaxLength(64)
  @Matches(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { message: 'name may hold letters, digits, dot, underscore and hyphen' })
  name: string;

  @ApiPropertyOptional({ description: '1-based position among the group\'s entries; default: last' })
  @IsOptional()
  @IsInt()
  @Min(1)
  position?: number;

  @ApiPropertyOptional({ example: '0.0.0.0/0', description: 'Source prefix; default: any address of the group\'s IP version' })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  sourcePrefix?: string;

  @ApiPropertyOptional({ example: '239.1.2.3/32', description: 'Destination prefix; default: the group address' })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  destinationPrefix?: string;

  @ApiPropertyOptional({ nullable: true, description: 'IP protocol number; null = any' })
  @NullableInt(0, 255)
  protocol?: number | null;

  @ApiPropertyOptional({ nullable: true })
  @NullableInt(0, 65535)
  sourcePort?: number | null;

  @ApiPropertyOptional({ nullable: true })
  @NullableInt(0, 65535)
  destinationPort?: number | null;

  @ApiPropertyOptional({ enum: POLICY_ACTIONS, default: 'protect' })
  @IsOptional()
  @IsIn(POLICY_ACTIONS)
  action?: PolicyAction;

  @ApiPropertyOptional({ enum: DIRECTIONS, default: 'symmetric' })
  @IsOptional()
  @IsIn(DIRECTIONS)
  direction?: Direction;

  @ApiPropertyOptional({ enum: IPSEC_MODES, default: 'tunnel' })
  @IsOptional()
  @IsIn(IPSEC_MODES)
  mode?: IpsecMode;

  @ApiPropertyOptional({ enum: ADDRESS_PRESERVATIONS, description: 'Default: both in tunnel mode, none in transport mode' })
  @IsOptional()
  @IsIn(ADDRESS_PRESERVATIONS)
  addressPreservation?: AddressPreservation;

  @ApiPropertyOptional({ default: false, description: 'ESP in UDP (RFC 3948)' })
  @IsOptional()
  @IsBoolean()
  udpEncapsulation?: boolean;

  @ApiPropertyOptional({ enum: ESP_TRANSFORMS, default: 'aes-gcm-256' })
  @IsOptional()
  @IsIn(ESP_TRANSFORMS)
  espTransform?: EspTransform;

  @ApiPropertyOptional({ description: 'Default: on, except in A.3 (any-to-any) groups' })
  @IsOptional()
  @IsBoolean()
  antiReplay?: boolean;

  @ApiPropertyOptional({ default: 64, minimum: REPLAY_WINDOW_MIN, maximum: REPLAY_WINDOW_MAX })
  @IsOptional()
  @IsInt()
  @Min(REPLAY_WINDOW_MIN)
  @Max(REPLAY_WINDOW_MAX)
  replayWindow?: number;

  @ApiPropertyOptional({
    enum: DATA_ORIGIN_AUTHS,
    default: 'none',
    description: 'Per-packet signature of spec/000 §4.3. Stored with the policy, but not yet carried to members nor applied: packets are authenticated as group members only (the SA ICV).',
  })
  @IsOptional()
  @IsIn(DATA_ORIGIN_AUTHS)
  dataOriginAuth?: DataOriginAuth;

  @ApiPropertyOptional({ default: 3600, description: 'Seconds; at least 10×atd' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(TEK_LIFETIME_MAX)
  tekLifetime?: number;

  @ApiPropertyOptional({ default: 3600, minimum: KEK_LIFETIME_MIN, maximum: KEK_LIFETIME_MAX })
  @IsOptional()
  @IsInt()
  @Min(KEK_LIFETIME_MIN)
  @Max(KEK_LIFETIME_MAX)
  kekLifetime?: number;

  @ApiPropertyOptional({ default: true })
  @IsOptional()
  @IsBoolean()
  rekeyRollover?: boolean;

  @ApiPropertyOptional({ default: 15, description: 'Activation time delay, seconds (> 0)' })
  @IsOptional()
  @IsInt({ message: 'atd must be a positive integer (seconds)' })
  @Min(1, { message: 'atd must be a positive integer (seconds)' })
  @Max(DELAY_MAX)
  atd?: number;

  @ApiPropertyOptional({ default: 15, description: 'Deactivation time delay, seconds (> 0)' })
  @IsOptional()
  @IsInt({ message: 'dtd must be a positive integer (seconds)' })
  @Min(1, { message: 'dtd must be a positive integer (seconds)' })
  @Max(DELAY_MAX)
  dtd?: number;

  @ApiPropertyOptional({ default: 2, minimum: 0, maximum: 10 })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(10)
  rekeyRetransmissions?: number;

  @ApiPropertyOptional({ enum: LEAVE_BEHAVIOURS, default: 'immediate' })
  @IsOptional()
  @IsIn(LEAVE_BEHAVIOURS)
  leaveBehaviour?: LeaveBehaviour;

  @ApiPropertyOptional({ nullable: true, description: 'Seconds between batched rekeys; batched only' })
  @NullableInt(1, 86_400)
  leaveBatchInterval?: number | null;
}

export class UpdatePolicyDto extends PartialType(CreatePolicyDto) {}

export class PolicyResponse {
  @ApiProperty() id: string;
  @ApiProperty() groupId: string;
  @ApiProperty() position: number;
  @ApiProperty() name: string;
  @ApiProperty() sourcePrefix: string;
  @ApiProperty() destinationPrefix: string;
  @ApiProperty({ nullable: true, type: Number }) protocol: number | null;
  @ApiProperty({ nullable: true, type: Number }) sourcePort: number | null;
  @ApiProperty({ nullable: true, type: Number }) destinationPort: number | null;
  @ApiProperty({ enum: POLICY_ACTIONS }) action: PolicyAction;
  @ApiProperty({ enum: DIRECTIONS }) direction: Direction;
  @ApiProperty({ enum: IPSEC_MODES }) mode: IpsecMode;
  @ApiProperty({ enum: ADDRESS_PRESERVATIONS }) addressPreservation: AddressPreservation;
  @ApiProperty() udpEncapsulation: boolean;
  @ApiProperty({ enum: ESP_TRANSFORMS }) espTransform: EspTransform;
  @ApiProperty() antiReplay: boolean;
  @ApiProperty() replayWindow: number;
  @ApiProperty({ enum: DATA_ORIGIN_AUTHS }) dataOriginAuth: DataOriginAuth;
  @ApiProperty() tekLifetime: number;
  @ApiProperty() kekLifetime: number;
  @ApiProperty() rekeyRollover: boolean;
  @ApiProperty() atd: number;
  @ApiProperty() dtd: number;
  @ApiProperty() rekeyRetransmissions: number;
  @ApiProperty({ enum: LEAVE_BEHAVIOURS }) leaveBehaviour: LeaveBehaviour;
  @ApiProperty({ nullable: true, type: Number }) leaveBatchInterval: number | null;
  @ApiProperty() createdAt: string;
  @ApiProperty() updatedAt: string;
}
