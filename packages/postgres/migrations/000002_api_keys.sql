-- 000002_api_keys: the keys of the HTTP API (`stepwise keys create`), checked by `stepwise start`.
-- Append-only: never edit a migration that has shipped; add the next numbered file instead.

-- A key is `sw_<scope>_<id>_<secret>`; the row holds its id and a SHA-256 of the secret, never
-- the secret itself (a key is random, 256 bits: a fast hash is enough, no password hashing).
CREATE TABLE api_keys (
  id text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{16}$'),
  name text NOT NULL DEFAULT '',
  -- event: send events only; read: read functions, events and runs; control: read, invoke,
  -- cancel and rerun, send events; admin: everything.
  scope text NOT NULL CHECK (scope IN ('event', 'read', 'control', 'admin')),
  secret_hash bytea NOT NULL CHECK (octet_length(secret_hash) = 32),
  created_at timestamptz NOT NULL,
  revoked_at timestamptz
);
