import { ErrorCode } from "@stepwise/core";
import type { KeyScope } from "@stepwise/engine";
import type { Hono, MiddlewareHandler } from "hono";
import { cancelBodySchema, cancelManyBodySchema, rerunBodySchema } from "../api/request-schemas.js";
import { requestError } from "../http/http-status.js";
import { pathId } from "../http/params.js";
import { checkBody, readJson, readOptionalJson } from "../http/read-json.js";
import type { ResolvedServerOptions, ServerEnv } from "../server-options.js";

/**
 * Operators' actions (scope `control`): cancel a run, or a function's runs in bulk, rerun a run
 * (from a chosen step), replay an event. Each answers the runs it touched (a bulk cancel: how many).
 */
export function runActionRoutes(app: Hono<ServerEnv>, options: ResolvedServerOptions, guard: (scope: KeyScope) => MiddlewareHandler): void {
  const { engine } = options;

  app.post("/v1/runs/:id/cancel", guard("control"), async (context) => {
    const runId = pathId(context, "run id");
    const body = checkBody(cancelBodySchema, orEmpty(await readOptionalJson(context, options.maxBodyBytes)), "{ reason?: string } or no body");
    const result = await engine.cancel(runId, body);
    // Cancelling a cancelled run is a no-op that succeeds; one that completed or failed cannot be.
    if (result.cancelled.length === 0 && result.run.status !== "cancelled") {
      throw requestError(ErrorCode.RunAlreadyEnded, `run ${runId} had already ${result.run.status}; only a run that has not ended can be cancelled`, {
        runId,
        status: result.run.status,
      });
    }
    return context.json(result);
  });

  app.post("/v1/runs/cancel", guard("control"), async (context) => {
    const body = checkBody(cancelManyBodySchema, await readJson(context, options.maxBodyBytes), "{ function, since?, until?, if?, reason? }");
    const { function: functionId, ...filter } = body;
    return context.json(await engine.cancelMany({ functionId, ...filter }));
  });

  app.post("/v1/runs/:id/rerun", guard("control"), async (context) => {
    const runId = pathId(context, "run id");
    const body = checkBody(rerunBodySchema, orEmpty(await readOptionalJson(context, options.maxBodyBytes)), "{ fromStep?: string } or no body");
    return context.json({ run: await engine.rerun(runId, body) }, 201);
  });

  app.post("/v1/events/:id/replay", guard("control"), async (context) => {
    const eventId = pathId(context, "event id");
    return context.json({ runs: await engine.replayEvent(eventId) }, 201);
  });
}

/** No body means no options; a body of `null` is not an object, and its schema says so. */
function orEmpty(body: unknown): unknown {
  return body === undefined ? {} : body;
}
