import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional, ApiResponse } from '@nestjs/swagger';
import { ErrorCode } from './domain-error.js';

export class FieldErrorResponse {
  @ApiProperty({ example: 'address' }) field: string;
  @ApiProperty({ example: 'must be a multicast address (224.0.0.0/4 or ff00::/8)' }) message: string;
}

/** The one error shape of the API. */
export class ErrorResponse {
  @ApiProperty() message: string;
  @ApiProperty({ enum: ErrorCode }) code: ErrorCode;
  @ApiPropertyOptional({ type: [FieldErrorResponse] }) errors?: FieldErrorResponse[];
}

/** Documents the error responses every authenticated route can give. */
export const ApiErrors = () =>
  applyDecorators(
    ApiResponse({ status: 400, type: ErrorResponse, description: 'VALIDATION_FAILED (errors name the fields) or MALFORMED_BODY' }),
    ApiResponse({ status: 401, type: ErrorResponse, description: 'UNAUTHENTICATED: missing or wrong admin token' }),
    ApiResponse({ status: 404, type: ErrorResponse, description: 'NOT_FOUND' }),
    ApiResponse({ status: 409, type: ErrorResponse, description: 'CONFLICT: duplicate' }),
  );
