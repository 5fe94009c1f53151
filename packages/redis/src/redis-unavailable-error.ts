import type { Redis } from "ioredis";

/**
 * Redis could not be reached: refused, timed out, or the connection dropped and the client gave
 * up. The message names the address and says what to check, because the raw ioredis errors
 * ("Connection is closed.", "Reached the max retries per request limit") do not.
 *
 * @example
 * try {
 *   await connectRedis();
 * } catch (error) {
 *   if (error instanceof RedisUnavailableError) console.error(error.message);
 * }
 */
export class RedisUnavailableError extends Error {
  /** Where the client tried to connect: `host:port`, a socket path, or the URL without credentials. */
  readonly address: string;

  constructor(options: { address: string; cause?: unknown }) {
    super(`cannot reach Redis at ${options.address}: ${causeText(options.cause)}; is it running? set REDIS_URL`, { cause: options.cause });
    this.name = "RedisUnavailableError";
    this.address = options.address;
  }
}

/** Error codes of the socket layer that mean "the server is not there (now)". */
const CONNECTION_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN", "EPIPE"]);

/**
 * Whether `error` says the connection is missing rather than that a command was wrong, so that
 * callers can wrap it in a {@link RedisUnavailableError} and a waiting worker can retry.
 *
 * @internal
 */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error instanceof RedisUnavailableError) return true;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && CONNECTION_CODES.has(code)) return true;
  return (
    error.name === "MaxRetriesPerRequestError" ||
    /Connection is closed|Stream isn't writeable|connect ETIMEDOUT|Command timed out|enableOfflineQueue/i.test(error.message)
  );
}

/**
 * The address a client connects to, for error messages: its socket path or `host:port`.
 *
 * @internal
 */
export function describeRedisAddress(redis: Redis): string {
  const { path, host, port } = redis.options;
  return path ? path : `${host ?? "127.0.0.1"}:${port ?? 6379}`;
}

/**
 * Rethrows `error`, as a {@link RedisUnavailableError} naming the address when it is a
 * connection error.
 *
 * @internal
 */
export function rethrowUnavailable(redis: Redis, error: unknown): never {
  if (isConnectionError(error) && !(error instanceof RedisUnavailableError)) {
    throw new RedisUnavailableError({ address: describeRedisAddress(redis), cause: error });
  }
  throw error;
}

function causeText(cause: unknown): string {
  if (cause instanceof Error) return cause.message.replace(/\.$/, "");
  if (cause === undefined) return "no connection";
  return String(cause);
}
