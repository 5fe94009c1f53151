import { type Logger, silentLogger } from "@stepwise/core";
import type { Engine } from "@stepwise/engine";
import { z } from "zod";
import type { AuthOptions } from "./auth/authenticate.js";

/** Largest Event API body (16 MiB): up to 5,000 events, each at most 512 KiB. */
export const DEFAULT_EVENT_BODY_BYTES = 16 * 1024 * 1024;
/** Largest body of the other routes (1 MiB). */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/** Longest an HTTP request waits for a run (5 min); a client waits again for longer. */
export const DEFAULT_MAX_WAIT_MS = 5 * 60 * 1000;

/** Options of `createServer`. */
export interface ServerOptions {
  /** The engine whose events, functions and runs the API serves. */
  engine: Engine;
  /**
   * Who may call: `{ mode: "keys", keys }` (every route but `/`, `/health` and `/ready` needs a
   * key of a scope that allows it; `stepwise start`), or `{ mode: "local" }` (no keys, only
   * requests to localhost; `stepwise dev`). Required: there is no open default.
   */
  auth: AuthOptions;
  /** Browser origins allowed to call the API cross-origin, exactly as they send them (`https://app.example.com`). (Default: none) */
  corsOrigins?: string[];
  /** Where 5xx answers are logged, with their request id (the client sees none of the error). (Default: silent) */
  logger?: Logger;
  /** Largest `POST /e/:eventKey` body, in bytes. (Default: 16 MiB) */
  eventBodyBytes?: number;
  /** Largest body of every other route, in bytes. (Default: 1 MiB) */
  maxBodyBytes?: number;
  /** Longest a request waits for a run (`/wait`, `/invoke`), in ms; also the wait when none is asked. (Default: 300000) */
  maxWaitMs?: number;
  /**
   * Signs realtime tokens (`POST /v1/realtime/token`), at least 32 characters. Give every server
   * process the same one (`STEPWISE_REALTIME_SECRET` for `stepwise start`) so that any of them
   * accepts a token another minted. (Default: random per process)
   */
  realtimeSecret?: string;
}

/** {@link ServerOptions} with defaults applied. */
export type ResolvedServerOptions = Required<Omit<ServerOptions, "realtimeSecret">> & { realtimeSecret?: string };

const positiveBytes = z
  .number()
  .int()
  .positive()
  .max(2 ** 31);
const optionsSchema = z.strictObject({
  engine: z.custom<Engine>((value) => typeof (value as Engine | undefined)?.send === "function", "engine must be an engine from createEngine"),
  auth: z.union(
    [
      z.strictObject({
        mode: z.literal("keys"),
        keys: z.custom((value) => typeof (value as { findKey?: unknown } | undefined)?.findKey === "function", "auth.keys must be a KeyStore"),
        cacheMs: z.number().int().nonnegative().optional(),
      }),
      z.strictObject({ mode: z.literal("local") }),
    ],
    { error: 'auth is required: { mode: "keys", keys } (stepwise start) or { mode: "local" } (stepwise dev, localhost only)' },
  ),
  corsOrigins: z.array(z.url()).optional(),
  logger: z.custom<Logger>((value) => typeof (value as Logger | undefined)?.error === "function", "logger must have info/warn/error methods").optional(),
  eventBodyBytes: positiveBytes.optional(),
  maxBodyBytes: positiveBytes.optional(),
  maxWaitMs: z
    .number()
    .int()
    .positive()
    .max(2 ** 31 - 1)
    .optional(),
  realtimeSecret: z.string().min(32, "realtimeSecret must be at least 32 characters (e.g. openssl rand -hex 32)").optional(),
});

/** Validates the options (an unknown one is an error naming it) and applies defaults, once. */
export function resolveServerOptions(options: ServerOptions): ResolvedServerOptions {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where =
      issue?.code === "unrecognized_keys"
        ? `${issue.keys.map((key) => JSON.stringify(key)).join(", ")} is not an option`
        : `${issue?.path.join(".")}: ${issue?.message}`;
    throw new TypeError(`createServer: ${where}`);
  }
  return {
    engine: options.engine,
    auth: options.auth,
    corsOrigins: options.corsOrigins ?? [],
    logger: options.logger ?? silentLogger,
    eventBodyBytes: options.eventBodyBytes ?? DEFAULT_EVENT_BODY_BYTES,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    maxWaitMs: options.maxWaitMs ?? DEFAULT_MAX_WAIT_MS,
    realtimeSecret: options.realtimeSecret,
  };
}

/** The Hono environment of the server's app: each request's id, set first. */
export type ServerEnv = { Variables: { requestId: string } };
