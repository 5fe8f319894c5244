/** Why the datapath refused an SA or policy from the control plane. */
export type DatapathConfigErrorCode =
  | 'BAD_SPI' // zero, reserved (1..255) or not a 32-bit integer (RFC 4303 §2.1)
  | 'DUPLICATE_SA' // same SPI, destination and source as an installed SA (RFC 4301 §4.1)
  | 'UNKNOWN_SA' // no SA with that SPI
  | 'BAD_ADDRESS' // an address or prefix that does not parse, or mixed families
  | 'BAD_TRANSFORM'
  | 'BAD_KEY' // wrong key length (never echoes key bytes)
  | 'BAD_REPLAY_WINDOW' // not 0 and not within 64..4096
  | 'BAD_SENDER_ID' // sender ID does not fit its bit width (RFC 6054)
  | 'BAD_LIFETIME'
  | 'BAD_POLICY'; // duplicate id, bad selector, missing group for a protect entry

/** Thrown synchronously by the SA/policy API; packets never throw. Never carries key bytes. */
export class DatapathConfigError extends Error {
  override readonly name = 'DatapathConfigError';
  constructor(
    readonly code: DatapathConfigErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}
