import pg from "pg";

/** Options of {@link connectPostgres}. */
export interface ConnectPostgresOptions {
  /** (Default: `process.env.DATABASE_URL`; required) */
  databaseUrl?: string;
  /** Connections in the pool. (Default: 10) */
  max?: number;
  /** Called when an idle connection dies (e.g. `pg_terminate_backend`, a server restart). */
  onError?: (error: Error) => void;
}

/**
 * A `pg.Pool` on `DATABASE_URL`, checked with one query so that a wrong URL or a server that
 * is down fails at start with a message that says which. Idle connections that die later are
 * replaced by the pool on next use; their errors go to `onError` instead of crashing the process.
 */
export async function connectPostgres(options: ConnectPostgresOptions = {}): Promise<pg.Pool> {
  const url = options.databaseUrl ?? process.env["DATABASE_URL"];
  if (!url) {
    throw new Error(
      "DATABASE_URL is not set: this command needs a Postgres server, e.g. DATABASE_URL=postgres://user:password@host:5432/stepwise (for local development without a server, use `stepwise dev`)",
    );
  }
  const pool = new pg.Pool({ connectionString: url, max: options.max ?? 10, connectionTimeoutMillis: 10_000 });
  pool.on("error", (error) => options.onError?.(error));
  try {
    const client = await pool.connect();
    try {
      await client.query("SELECT 1");
    } finally {
      client.release();
    }
  } catch (error) {
    await pool.end().catch(() => {});
    throw new Error(`cannot reach Postgres at ${describeUrl(url)}: ${(error as Error).message}; is it running, and is DATABASE_URL right?`);
  }
  return pool;
}

/** `host:port/database` of a connection URL, without the password. */
export function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || "5432"}${parsed.pathname}`;
  } catch {
    return "an unparsable DATABASE_URL";
  }
}
