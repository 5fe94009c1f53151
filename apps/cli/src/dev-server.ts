import { ErrorCode, type Logger, StepwiseError, silentLogger } from "@stepwise/core";
import type { Engine } from "@stepwise/engine";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { z } from "zod";

/** Largest request body accepted (16 MiB); each event is further limited to 512 KiB. */
export const MAX_BODY_BYTES = 16 * 1024 * 1024;

const invokeBodySchema = z.strictObject({ data: z.record(z.string(), z.unknown()).optional(), timeoutMs: z.number().int().positive().optional() });

/**
 * Ids in paths (runs, events, functions): Postgres `text` cannot hold NUL, so an id with one
 * (`/v1/runs/%00`) is answered 400 here instead of failing in the store.
 */
const idParam = z
  .string()
  .min(1)
  .max(256, "must be at most 256 characters")
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
  .regex(/^[^\u0000-\u001f\u007f]*$/, "must not contain control characters");

/** Options of {@link createDevApp}. */
export interface DevAppOptions {
  /** Where 5xx answers are logged (with the error; the client sees none of it). (Default: silent) */
  logger?: Logger;
}

/**
 * The HTTP surface of `stepwise dev`: accepts events and lets clients find and await runs.
 * (The full REST API is the server package's.) Errors answer `{ error: { code, message } }`.
 */
export function createDevApp(engine: Engine, options: DevAppOptions = {}): Hono {
  const app = new Hono();
  const logger = options.logger ?? silentLogger;

  app.onError((error, context) => {
    const { status, body } = toErrorResponse(error);
    if (status >= 500) logger.error({ error, method: context.req.method, path: context.req.path }, "request failed");
    return context.json(body, status);
  });
  app.notFound((context) => context.json({ error: { code: "NOT_FOUND", message: `no route ${context.req.method} ${context.req.path}` } }, 404));

  app.get("/health", (context) => context.json({ status: "ok" }));

  app.post(
    "/e/:eventKey",
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (context) => context.json({ error: { code: ErrorCode.EventTooLarge, message: `request body over ${MAX_BODY_BYTES} bytes` } }, 413),
    }),
    async (context) => {
      const result = await engine.send((await readJson(context.req.raw)) as never);
      return context.json(result);
    },
  );

  app.get("/v1/functions", (context) =>
    context.json({
      functions: [...engine.functions.values()].map((fn) => ({
        id: fn.id,
        appId: fn.appId,
        qualifiedId: fn.qualifiedId,
        name: fn.config.name,
        triggers: fn.config.triggers,
      })),
    }),
  );

  app.post("/v1/functions/:id/invoke", async (context) => {
    const functionId = id(context.req.param("id"), "function id");
    const body = await readJson(context.req.raw);
    const parsed = invokeBodySchema.safeParse(body);
    if (!parsed.success)
      throw userError(ErrorCode.InvalidEventPayload, `body: ${parsed.error.issues[0]?.message ?? "invalid"}; send { data?: object, timeoutMs?: number }`);
    // The data as sent (zod's copy would drop a __proto__ key silently); the engine checks it as event data.
    const data = (body as { data?: Record<string, unknown> }).data ?? {};
    // The client going away ends the wait (the run goes on).
    const run = await engine.invoke(functionId, data, { timeoutMs: parsed.data.timeoutMs, signal: context.req.raw.signal });
    return context.json({ run });
  });

  app.get("/v1/events/:id/runs", async (context) => context.json({ runs: await engine.runsForEvent(id(context.req.param("id"), "event id")) }));

  app.get("/v1/runs/:id", async (context) => {
    const runId = id(context.req.param("id"), "run id");
    const run = await engine.getRun(runId);
    if (!run) throw new StepwiseError({ code: ErrorCode.RunNotFound, category: "user", message: `no run with id ${JSON.stringify(runId)}` });
    return context.json({ run, steps: await engine.listSteps(run.id) });
  });

  app.get("/v1/runs/:id/wait", async (context) => {
    const runId = id(context.req.param("id"), "run id");
    const timeout = context.req.query("timeout");
    const timeoutMs = timeout === undefined ? undefined : Number(timeout);
    if (timeoutMs !== undefined && !(Number.isSafeInteger(timeoutMs) && timeoutMs > 0))
      throw userError(ErrorCode.InvalidStepOptions, "timeout must be a positive whole number of milliseconds");
    return context.json({ run: await engine.waitForRun(runId, { timeoutMs, signal: context.req.raw.signal }) });
  });

  return app;
}

/** A path id, validated (see {@link idParam}). */
function id(value: string, what: string): string {
  const parsed = idParam.safeParse(value);
  if (!parsed.success) throw userError(ErrorCode.InvalidRequest, `${what}: ${parsed.error.issues[0]?.message ?? "invalid"}`);
  return parsed.data;
}

async function readJson(request: Request): Promise<unknown> {
  const text = await request.text();
  try {
    return JSON.parse(text);
  } catch {
    throw userError(ErrorCode.InvalidJson, "the request body is not valid JSON");
  }
}

function userError(code: ErrorCode, message: string): StepwiseError {
  return new StepwiseError({ code, category: "user", message });
}

/** Maps any error to an HTTP status and the wire error body; never leaks stacks. */
export function toErrorResponse(error: unknown): { status: ContentfulStatusCode; body: { error: { code: string; message: string } } } {
  if (StepwiseError.isInstance(error)) {
    const status: ContentfulStatusCode =
      error.code === ErrorCode.FunctionNotFound || error.code === ErrorCode.RunNotFound
        ? 404
        : error.code === ErrorCode.WaitTimeout || error.code === ErrorCode.InvokeTimeout
          ? 408
          : error.code === ErrorCode.EventTooLarge
            ? 413
            : error.category === "user"
              ? 400
              : error.category === "third-party"
                ? 502
                : 500;
    return { status, body: { error: { code: error.code, message: error.message } } };
  }
  return { status: 500, body: { error: { code: ErrorCode.Internal, message: "internal error" } } };
}
