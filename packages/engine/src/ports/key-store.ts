/**
 * What a key may do. `event`: send events only. `read`: read functions, events and runs.
 * `control`: read, invoke, cancel and rerun, and send events. `admin`: everything.
 */
export type KeyScope = "event" | "read" | "control" | "admin";

/** Every scope, weakest first. */
export const KEY_SCOPES: readonly KeyScope[] = ["event", "read", "control", "admin"];

/** A key as listed: never its secret. Times are epoch milliseconds. */
export interface ApiKeyRecord {
  /** The public part of the key (`sw_<scope>_<id>_<secret>`), 16 hex characters. */
  id: string;
  name: string;
  scope: KeyScope;
  createdAt: number;
  revokedAt?: number;
}

/**
 * Where the HTTP API's keys live (Postgres: `api_keys`). Only a SHA-256 of each secret is stored;
 * checking a key is the server's work, in constant time.
 */
export interface KeyStore {
  createKey(input: { id: string; name: string; scope: KeyScope; secretHash: Uint8Array; now: number }): Promise<void>;
  /** The key with this id, revoked or not, with its secret's hash; `null` when none has it. */
  findKey(id: string): Promise<(ApiKeyRecord & { secretHash: Uint8Array }) | null>;
  /** Every key, newest first. */
  listKeys(): Promise<ApiKeyRecord[]>;
  /** Revokes a key; false when there is none with this id or it was revoked already. */
  revokeKey(input: { id: string; now: number }): Promise<boolean>;
  /** Keys not revoked. */
  countActiveKeys(): Promise<number>;
}
