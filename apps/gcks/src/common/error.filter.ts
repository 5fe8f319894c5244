import { ArgumentsHost, Catch, HttpException, Logger, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
import { QueryFailedError } from 'typeorm';
import { DomainError, ERROR_STATUS, ErrorCode, type ErrorBody } from './domain-error.js';

const STATUS_CODES: Readonly<Record<number, ErrorCode>> = {
  // Our own validation failures are DomainErrors; a 400 from the framework is a malformed request.
  400: ErrorCode.MALFORMED_BODY,
  401: ErrorCode.UNAUTHENTICATED,
  404: ErrorCode.NOT_FOUND,
  405: ErrorCode.METHOD_NOT_ALLOWED,
  409: ErrorCode.CONFLICT,
  413: ErrorCode.PAYLOAD_TOO_LARGE,
  415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
};

/** Translates any thrown value into the one error shape; 500 only for what nobody expected. */
export function toErrorBody(err: unknown): ErrorBody {
  if (err instanceof DomainError) return err.toBody();
  // body-parser failures (malformed JSON, oversized body) carry `type` and `status`.
  const bp = err as { type?: unknown; status?: unknown };
  if (typeof bp?.type === 'string' && typeof bp.status === 'number') {
    if (bp.type === 'entity.parse.failed') return { message: 'request body is not valid JSON', code: ErrorCode.MALFORMED_BODY };
    if (bp.type === 'entity.too.large') return { message: 'request body is too large', code: ErrorCode.PAYLOAD_TOO_LARGE };
    if (bp.status >= 400 && bp.status < 500) {
      return { message: 'request body could not be read', code: ErrorCode.MALFORMED_BODY };
    }
  }
  if (err instanceof HttpException) {
    const cause = err.cause as { type?: unknown } | undefined;
    if (cause instanceof SyntaxError || cause?.type === 'entity.parse.failed') {
      return { message: 'request body is not valid JSON', code: ErrorCode.MALFORMED_BODY };
    }
    const code = STATUS_CODES[err.getStatus()];
    if (code) return { message: err.message, code };
  }
  // A unique index caught a duplicate that slipped past the service's own check (a race).
  if (err instanceof QueryFailedError && /SQLITE_CONSTRAINT_UNIQUE|UNIQUE constraint failed/.test(String(err.message))) {
    return { message: 'an entry with the same unique fields already exists', code: ErrorCode.CONFLICT };
  }
  return { message: 'internal error', code: ErrorCode.INTERNAL };
}

/** The single global exception filter: writes `{ message, code, errors? }` with the mapped status. */
@Catch()
export class ErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('Http');

  catch(err: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    const req = host.switchToHttp().getRequest<{ method: string; originalUrl: string }>();
    const body = toErrorBody(err);
    const status = ERROR_STATUS[body.code];
    if (status >= 500) {
      this.logger.error(`${req.method} ${req.originalUrl} failed unexpectedly`, err instanceof Error ? err.stack : String(err));
    }
    if (res.headersSent) return;
    res.status(status).json(body);
  }
}
