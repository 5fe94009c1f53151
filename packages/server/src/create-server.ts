import { randomUUID } from "node:crypto";
import { ErrorCode } from "@stepwise/core";
import { Hono } from "hono";
import { cors } from "hono/cors";
import { createAuthGuard } from "./auth/authenticate.js";
import { requestError, toErrorResponse } from "./http/http-status.js";
import { createMetrics } from "./metrics.js";
import { eventListRoutes } from "./routes/event-list-routes.js";
import { eventRoutes } from "./routes/event-routes.js";
import { runRoutes } from "./routes/run-routes.js";
import { webhookRoutes } from "./routes/webhook-routes.js";
import { resolveServerOptions, type ServerEnv, type ServerOptions } from "./server-options.js";

/** The response header carrying the request's id (the client's own, when it sent a sane one). */
export const REQUEST_ID_HEADER = "x-request-id";

/** A request id a client may choose: short, and nothing that could forge a log line. */
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Creates Stepwise's HTTP API as a Hono app: serve it with `@hono/node-server` (as `stepwise dev`
 * and `stepwise start` do), or call `app.request()` in tests. Every answer carries
 * `x-request-id`; every error is `{ error: { code, message } }` with no stack; a 5xx is logged
 * with its request id, which its body carries too.
 *
 * @example
 * const app = createServer({ engine });
 * serve({ fetch: app.fetch, port: 8288 });
 */
export function createServer(serverOptions: ServerOptions): Hono<ServerEnv> {
  const options = resolveServerOptions(serverOptions);
  const app = new Hono<ServerEnv>();

  app.use(async (context, next) => {
    const given = context.req.header(REQUEST_ID_HEADER);
    const requestId = given !== undefined && CLIENT_REQUEST_ID.test(given) ? given : randomUUID();
    context.set("requestId", requestId);
    context.header(REQUEST_ID_HEADER, requestId);
    await next();
  });

  app.onError((error, context) => {
    const { status, body } = toErrorResponse(error);
    if (status >= 500) {
      const requestId = context.get("requestId");
      body.error.requestId = requestId;
      // The Event API carries its key in the path: never into a log.
      const path = context.req.path.replace(/^\/e\/[^/]+/, "/e/:eventKey");
      options.logger.error({ error, requestId, method: context.req.method, path }, "request failed");
    }
    return context.json(body, status);
  });
  app.notFound((context) => {
    const { body } = toErrorResponse(
      requestError(ErrorCode.NotFound, `no route ${context.req.method} ${context.req.path}; GET / lists what this server answers`),
    );
    return context.json(body, 404);
  });

  app.get("/", (context) =>
    context.json({
      name: "stepwise",
      routes: {
        "POST /e/:eventKey": "send one event or a batch of up to 5,000",
        "GET /v1/functions": "the functions this server runs",
        "GET /v1/functions/:id": "one function with its triggers and configuration",
        "POST /v1/functions/:id/invoke": "start a run and await its result",
        "GET /v1/runs?function&status&limit&cursor": "runs, newest first, a page at a time (nextCursor)",
        "GET /v1/events?name&since&until&limit&cursor": "events, newest first, a page at a time (nextCursor)",
        "GET /v1/events/:id": "an event with the runs it started",
        "GET /v1/events/:id/runs": "the runs an event started",
        "GET /v1/runs/:id": "a run with its steps",
        "GET /v1/runs/:id/wait": "wait for a run to end",
        "POST /webhooks/:id": "a provider's webhook, verified by its signature, sent as events",
        "GET /metrics": "Prometheus metrics of this process (scope read)",
        "GET /health": "the process is up",
        "GET /ready": "the store and the queue answer (503 when not)",
      },
    }),
  );
  app.get("/health", (context) => context.json({ status: "ok" }));
  // Readiness: the store (Postgres) and the queue (Redis, or memory) answer. Open, like /health,
  // for load balancers; it tells whether they answer, not what they hold.
  app.get("/ready", async (context) => {
    const checks = await options.engine.checkReady();
    const ready = checks.store === "ok" && checks.queue === "ok";
    // What failed is logged, never answered: an error message may carry a connection string.
    if (!ready) options.logger.warn({ checks, requestId: context.get("requestId") }, "not ready");
    const state = (check: string) => (check === "ok" ? "ok" : "failing");
    return context.json({ status: ready ? "ready" : "not ready", checks: { store: state(checks.store), queue: state(checks.queue) } }, ready ? 200 : 503);
  });
  if (options.corsOrigins.length > 0) {
    const allowed = new Set(options.corsOrigins.map((origin) => new URL(origin).origin));
    app.use(
      "*",
      cors({
        origin: (origin) => (allowed.has(origin) ? origin : null),
        allowHeaders: ["authorization", "content-type", REQUEST_ID_HEADER],
        exposeHeaders: [REQUEST_ID_HEADER],
      }),
    );
  }
  const guard = createAuthGuard(options.auth);
  const metrics = createMetrics(options.engine);
  app.get("/metrics", guard("read"), async (context) => context.body(await metrics.metrics(), 200, { "content-type": metrics.contentType }));
  // Everything under /v1 reads at least: one check here, stronger scopes on their routes.
  app.use("/v1/*", guard("read"));
  eventRoutes(app, options, guard);
  runRoutes(app, options, guard);
  eventListRoutes(app, options);
  webhookRoutes(app, options);
  return app;
}
