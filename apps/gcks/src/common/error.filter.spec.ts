import { BadRequestException, HttpException, NotFoundException } from '@nestjs/common';
import { QueryFailedError } from 'typeorm';
import { describe, expect, it } from 'vitest';
import { DomainError, ERROR_STATUS, ErrorCode } from './domain-error.js';
import { toErrorBody } from './error.filter.js';

describe('toErrorBody', () => {
  it('passes domain errors through with their field errors', () => {
    const err = DomainError.validation([{ field: 'address', message: 'must be multicast' }]);
    expect(toErrorBody(err)).toEqual({
      message: 'address: must be multicast',
      code: ErrorCode.VALIDATION_FAILED,
      errors: [{ field: 'address', message: 'must be multicast' }],
    });
  });

  it('reports malformed JSON as MALFORMED_BODY (400), not as a server error', () => {
    const syntax = Object.assign(new SyntaxError('Unexpected end of JSON input'), { status: 400, type: 'entity.parse.failed' });
    expect(toErrorBody(new BadRequestException(syntax.message, { cause: syntax })).code).toBe(ErrorCode.MALFORMED_BODY);
    expect(toErrorBody(syntax).code).toBe(ErrorCode.MALFORMED_BODY);
    expect(ERROR_STATUS[ErrorCode.MALFORMED_BODY]).toBe(400);
  });

  it('maps framework HTTP errors by status and duplicates caught by SQLite to CONFLICT', () => {
    expect(toErrorBody(new NotFoundException('Cannot GET /x')).code).toBe(ErrorCode.NOT_FOUND);
    expect(toErrorBody(new HttpException('too big', 413)).code).toBe(ErrorCode.PAYLOAD_TOO_LARGE);
    const dup = new QueryFailedError('INSERT', [], new Error('UNIQUE constraint failed: groups.name'));
    expect(toErrorBody(dup).code).toBe(ErrorCode.CONFLICT);
  });

  it('answers anything unexpected with a generic 500 that leaks nothing', () => {
    const body = toErrorBody(new Error('secret path /var/lib/x'));
    expect(body).toEqual({ message: 'internal error', code: ErrorCode.INTERNAL });
    expect(ERROR_STATUS[body.code]).toBe(500);
    expect(toErrorBody(new HttpException('teapot', 418)).code).toBe(ErrorCode.INTERNAL);
  });

  it('has a status for every code', () => {
    for (const code of Object.values(ErrorCode)) expect(ERROR_STATUS[code]).toBeGreaterThanOrEqual(400);
  });
});
