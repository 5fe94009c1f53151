import { type AnyStepwiseFunction, ErrorCode } from "@stepwise/core";
import type { KeyScope } from "@stepwise/engine";
import type { Hono, MiddlewareHandler } from "hono";
import { invokeBodySchema, listRunsQuery, waitQuery } from "../api/request-schemas.js";
import { decodeCursor, encodeCursor } from "../http/cursor.js";
import { requestError } from "../http/http-status.js";
import { DEFAULT_PAGE, pathId, queryError } from "../http/params.js";
import { checkBody, readJson } from "../http/read-json.js";
import type { ResolvedServerOptions, ServerEnv } from "../server-options.js";

/**
 * Functions, events and runs under `/v1`: list and read functions, invoke one and await its
 * result, the runs an event started, a run with its steps, and waiting for a run. Every wait is
 * capped at `maxWaitMs` and ends when the client goes away.
 */
export function runRoutes(app: Hono<ServerEnv>, options: ResolvedServerOptions, guard: (scope: KeyScope) => MiddlewareHandler): void {
  const { engine } = options;

  app.get("/v1/functions", (context) => context.json({ functions: [...engine.functions.values()].map(describeFunction) }));

  app.get("/v1/functions/:id", (context) => {
    const id = pathId(context, "function id");
    const fn = engine.functions.get(id) ?? [...engine.functions.values()].find((candidate) => candidate.id === id);
    if (!fn) throw requestError(ErrorCode.FunctionNotFound, `no function with id ${JSON.stringify(id)} is registered`, { functionId: id });
    return context.json({ function: describeFunction(fn) });
  });

  app.post("/v1/functions/:id/invoke", guard("control"), async (context) => {
    const functionId = pathId(context, "function id");
    const body = await readJson(context, options.maxBodyBytes);
    const parsed = checkBody(invokeBodySchema, body, "{ data?: object, timeoutMs?: number }");
    // The data as sent (zod's copy would drop a __proto__ key silently); the engine checks it as event data.
    const data = (body as { data?: Record<string, unknown> }).data ?? {};
    const timeoutMs = cappedWait(parsed.timeoutMs, options, "timeoutMs");
    return context.json({ run: await engine.invoke(functionId, data, { timeoutMs, signal: context.req.raw.signal }) });
  });

  app.get("/v1/runs", async (context) => {
    const parsed = listRunsQuery.safeParse(context.req.query());
    if (!parsed.success) throw queryError(parsed.error, "function, status, event, since, until, limit and cursor");
    const { function: functionId, status, event: eventId, since, until, limit = DEFAULT_PAGE, cursor } = parsed.data;
    // One more than the page: whether there is a next page, without a count.
    const runs = await engine.listRuns({ functionId, status, eventId, since, until, limit: limit + 1, before: before(cursor) });
    const page = runs.slice(0, limit);
    const last = page.at(-1);
    return context.json({ runs: page, nextCursor: runs.length > limit && last ? encodeCursor({ at: last.createdAt, id: last.id }) : null });
  });

  app.get("/v1/runs/:id", async (context) => {
    const runId = pathId(context, "run id");
    const run = await engine.getRun(runId);
    if (!run) throw requestError(ErrorCode.RunNotFound, `no run with id ${JSON.stringify(runId)}`, { runId });
    return context.json({ run, steps: await engine.listSteps(run.id) });
  });

  app.get("/v1/runs/:id/wait", async (context) => {
    const runId = pathId(context, "run id");
    const parsed = waitQuery.safeParse(context.req.query());
    if (!parsed.success) throw queryError(parsed.error, "timeout");
    const timeoutMs = cappedWait(parsed.data.timeout, options, "timeout");
    return context.json({ run: await engine.waitForRun(runId, { timeoutMs, signal: context.req.raw.signal }) });
  });
}

/** A function as the API lists it: ids, triggers, retries, and the flow controls it has (`flow`, absent when none). */
function describeFunction(fn: AnyStepwiseFunction) {
  const { name, triggers, retries, concurrency, cancelOn, ...rest } = fn.config;
  const flow: Record<string, unknown> = {};
  if (concurrency.length > 0) flow["concurrency"] = concurrency;
  if (cancelOn.length > 0) flow["cancelOn"] = cancelOn;
  for (const option of FLOW_OPTIONS) if (rest[option] !== undefined) flow[option] = rest[option];
  return { id: fn.id, appId: fn.appId, qualifiedId: fn.qualifiedId, name, triggers, retries, ...(Object.keys(flow).length > 0 && { flow }) };
}

/** The flow-control options of a resolved config besides `concurrency` and `cancelOn` (lists, shown when not empty). */
const FLOW_OPTIONS = ["throttle", "rateLimit", "debounce", "priority", "batchEvents", "idempotency", "singleton", "timeouts"] as const;

/** The runs cursor as the store takes it. */
function before(cursor: string | undefined): { createdAt: number; id: string } | undefined {
  if (cursor === undefined) return undefined;
  const { at, id } = decodeCursor(cursor);
  return { createdAt: at, id };
}

/** A wait's length: what the client asked for, at most `maxWaitMs` (which is also the default). */
function cappedWait(requested: number | undefined, options: ResolvedServerOptions, what: string): number {
  if (requested !== undefined && requested > options.maxWaitMs) {
    throw requestError(ErrorCode.InvalidRequest, `${what}: at most ${options.maxWaitMs} ms; wait again (GET /v1/runs/:id/wait) for longer`, {
      limit: options.maxWaitMs,
    });
  }
  return requested ?? options.maxWaitMs;
}
