import type { DataSource } from 'typeorm';

/** The few better-sqlite3 calls the G-IKEv2 services use (synchronous: the IKE hooks are). */
export interface RawStatement {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}
export interface RawDb {
  prepare(sql: string): RawStatement;
  transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R;
  pragma(sql: string): unknown;
  /** Runs SQL without results (BEGIN / COMMIT / ROLLBACK of the registration group commit). */
  exec(sql: string): unknown;
  /** The connection is inside a transaction (ours or TypeORM's). */
  readonly inTransaction: boolean;
  /** The database file as opened (better-sqlite3's `name`). */
  readonly name: string;
}

/**
 * The better-sqlite3 connection under TypeORM's DataSource. Registration answers inside the IKE
 * responder's synchronous hook, and a member must never receive keys that are not yet persisted,
 * so its writes are synchronous transactions on the same (single) connection.
 */
export function rawDb(ds: DataSource): RawDb {
  const db = (ds.driver as unknown as { databaseConnection?: RawDb }).databaseConnection;
  if (!db || typeof db.prepare !== 'function') throw new Error('the G-IKEv2 services need the better-sqlite3 driver');
  return db;
}
