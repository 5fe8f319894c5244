/** Why a decoder refused its input. Every codec failure is one of these. */
export type CodecErrorCode =
  | 'TRUNCATED' // fewer bytes remain than the structure needs
  | 'BAD_LENGTH' // a length field is inconsistent with its frame or the structure
  | 'BAD_VALUE' // a field holds a value the specification forbids
  | 'UNKNOWN_TYPE' // a type code we do not know where knowing it is required
  | 'TRAILING_BYTES' // a framed structure did not consume its frame exactly
  | 'LIMIT_EXCEEDED' // a count or size is above an implementation cap
  | 'BAD_CHECKSUM'; // a header checksum does not verify

/** The one error type thrown by every decoder in @app/codec. Never carries key bytes. */
export class CodecError extends Error {
  override readonly name = 'CodecError';
  constructor(
    readonly code: CodecErrorCode,
    message: string,
    /** Byte offset in the input where the problem was found. */
    readonly offset: number,
  ) {
    super(`${code} at offset ${offset}: ${message}`);
  }
}

export function isCodecError(e: unknown): e is CodecError {
  return e instanceof CodecError;
}
