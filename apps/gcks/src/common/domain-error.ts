/** Every error the GCKS reports to a client has one of these codes. */
export enum ErrorCode {
  VALIDATION_FAILED = 'VALIDATION_FAILED',
  MALFORMED_BODY = 'MALFORMED_BODY',
  UNAUTHENTICATED = 'UNAUTHENTICATED',
  NOT_FOUND = 'NOT_FOUND',
  METHOD_NOT_ALLOWED = 'METHOD_NOT_ALLOWED',
  CONFLICT = 'CONFLICT',
  PAYLOAD_TOO_LARGE = 'PAYLOAD_TOO_LARGE',
  UNSUPPORTED_MEDIA_TYPE = 'UNSUPPORTED_MEDIA_TYPE',
  INTERNAL = 'INTERNAL',
}

/** The one code-to-status map; exhaustive by construction (a missing code fails to compile). */
export const ERROR_STATUS: { readonly [C in ErrorCode]: number } = {
  [ErrorCode.VALIDATION_FAILED]: 400,
  [ErrorCode.MALFORMED_BODY]: 400,
  [ErrorCode.UNAUTHENTICATED]: 401,
  [ErrorCode.NOT_FOUND]: 404,
  [ErrorCode.METHOD_NOT_ALLOWED]: 405,
  [ErrorCode.CONFLICT]: 409,
  [ErrorCode.PAYLOAD_TOO_LARGE]: 413,
  [ErrorCode.UNSUPPORTED_MEDIA_TYPE]: 415,
  [ErrorCode.INTERNAL]: 500,
};

/** One problem with one input field; `field` is a dotted path such as `ssmSources.1`. */
export interface FieldError {
  readonly field: string;
  readonly message: string;
}

/** The body of every error response. */
export interface ErrorBody {
  message: string;
  code: ErrorCode;
  errors?: FieldError[];
}

/** An expected failure a service reports; the global filter turns it into `{ message, code, errors? }`. */
export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly errors?: readonly FieldError[],
  ) {
    super(message);
    this.name = 'DomainError';
  }

  static validation(errors: readonly FieldError[]): DomainError {
    const message = errors.map((e) => `${e.field}: ${e.message}`).join('; ');
    return new DomainError(ErrorCode.VALIDATION_FAILED, message, errors);
  }

  static notFound(what: string, id: string): DomainError {
    return new DomainError(ErrorCode.NOT_FOUND, `${what} ${id} not found`);
  }

  static conflict(message: string, field?: string): DomainError {
    return field
      ? new DomainError(ErrorCode.CONFLICT, `${field}: ${message}`, [{ field, message }])
      : new DomainError(ErrorCode.CONFLICT, message);
  }

  toBody(): ErrorBody {
    return this.errors ? { message: this.message, code: this.code, errors: [...this.errors] } : { message: this.message, code: this.code };
  }
}

/** Throws a validation error when `errors` is not empty. */
export function assertValid(errors: readonly FieldError[]): void {
  if (errors.length > 0) throw DomainError.validation(errors);
}

/**
 * `@IsOptional()` lets `null` through; for fields that cannot be null this turns such a value into
 * a validation error naming the field, instead of a database constraint failure.
 */
export function rejectNulls(dto: object, nullable: readonly string[]): void {
  const errors: FieldError[] = Object.entries(dto)
    .filter(([k, v]) => v === null && !nullable.includes(k))
    .map(([field]) => ({ field, message: `${field} cannot be null` }));
  assertValid(errors);
}
