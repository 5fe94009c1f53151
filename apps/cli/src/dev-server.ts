import { ErrorCode, StepwiseError } from "@stepwise/core";
import type { Engine } from "@stepwise/engine";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { z } from "zod";

/** Largest request body accepted (16 MiB); each event is further limited to 512 KiB. */
export const MAX_BODY_BYTES = 16 * 1024 * 1024;

const invokeBodySchema = z.object({ data: z.record(z.string(), z.unknown()).default({}), timeoutMs: z.number().int().positive().optional() });

/**
 * The HTTP surface of `stepwise dev`: accepts events and lets clients find and await runs.
 * (The full REST API is the server package's.) Errors answer `{ error: { code, message } }`.
 */
export function createDevApp(engine: Engine): Hono {
  const app = new Hono();

  app.onError((error, context) => {
    const { status, body } = toErrorResponse(error);
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
    context.json({ functions: [...engine.functions.values()].map((fn) => ({ id: fn.id, name: fn.config.name, triggers: fn.config.triggers })) }),
  );

  app.post("/v1/functions/:id/invoke", async (context) => {
    const parsed = invokeBodySchema.safeParse(await readJson(context.req.raw));
    if (!parsed.success)
      throw userError(ErrorCode.InvalidEventPayload, `body: ${parsed.error.issues[0]?.message ?? "invalid"}; send { data?: object, timeoutMs?: number }`);
    const run = await engine.invoke(context.req.param("id"), parsed.data.data, { timeoutMs: parsed.data.timeoutMs });
    return context.json({ run });
  });

  app.get("/v1/events/:id/runs", async (context) => context.json({ runs: await engine.runsForEvent(context.req.param("id")) }));

  app.get("/v1/runs/:id", async (context) => {
    const run = await engine.getRun(context.req.param("id"));
    if (!run) throw new StepwiseError({ code: ErrorCode.RunNotFound, category: "user", message: `no run with id "${context.req.param("id")}"` });
    return context.json({ run, steps: await engine.listSteps(run.id) });
  });

  app.get("/v1/runs/:id/wait", async (context) => {
    const timeout = context.req.query("timeout");
    const timeoutMs = timeout === undefined ? undefined : Number(timeout);
    if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && timeoutMs > 0))
      throw userError(ErrorCode.InvalidStepOptions, "timeout must be a positive whole number of milliseconds");
    return context.json({ run: await engine.waitForRun(context.req.param("id"), { timeoutMs }) });
  });

  return app;
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
