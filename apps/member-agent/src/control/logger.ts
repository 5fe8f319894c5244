/**
 * Structured logs: one JSON object per line on stderr ({ts, level, msg, ...fields}). Callers pass
 * identifiers (group, SPI, addresses), never key bytes; `redact` drops any field whose value is a
 * byte array so a mistake cannot print keys.
 */
import type { Logger } from './group-session.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function redact(fields: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields ?? {})) {
    if (v instanceof Uint8Array || ArrayBuffer.isView(v) || v instanceof ArrayBuffer) continue;
    out[k] = v;
  }
  return out;
}

export function jsonLogger(level: LogLevel, write: (line: string) => void = (l) => process.stderr.write(l), base: Record<string, unknown> = {}): Logger {
  const emit = (l: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[l] < ORDER[level]) return;
    write(`${JSON.stringify({ ts: new Date().toISOString(), level: l, msg, ...base, ...redact(fields) })}\n`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}
