import { randomUUID } from "node:crypto";
import { ErrorCode } from "@stepwise/core";
import { Hono } from "hono";
import { cors } from "hono/cors";
import { routeIndex } from "./api/catalogue.js";
import { createOpenApiDocument } from "./api/openapi.js";
import { createAuthGuard } from "./auth/authenticate.js";
import { createRealtimeTokens } from "./auth/realtime-tokens.js";
import { requestError, toErrorResponse } from "./http/http-status.js";
import { createMetrics } from "./metrics.js";
import { eventListRoutes } from "./routes/event-list-routes.js";
import { eventRoutes } from "./routes/event-routes.js";
import { realtimeStreamRoute, realtimeTokenRoute } from "./routes/realtime-routes.js";
import { runActionRoutes } from "./routes/run-action-routes.js";
import { runRoutes } from "./routes/run-routes.js";
import { webhookRoutes } from "./routes/webhook-routes.js";
import { resolveServerOptions, type ServerEnv, type ServerOptions } from "./server-options.js";

/** The response header carrying the request's id (the client's own, when it sent a sane one). */
export const REQUEST_ID_HEADER = "x-request-id";

/** The version of this package, which the OpenAPI document carries. */
export const SERVER_VERSION = "0.1.0";

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

  app.get("/", (context) => context.json({ name: "stepwise", routes: routeIndex() }));
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
  const tokens = createRealtimeTokens(options.realtimeSecret);
  // Before the /v1 key check: a browser follows a channel with a token, not a key.
  realtimeStreamRoute(app, options, tokens, guard);
  // Everything under /v1 reads at least: one check here, stronger scopes on their routes.
  app.use("/v1/*", guard("read"));
  realtimeTokenRoute(app, options, tokens);
  // Generated once, on first request: the schemas do not change while the server runs.
  let openApi: Record<string, unknown> | undefined;
  app.get("/v1/openapi.json", (context) => {
    openApi ??= createOpenApiDocument({ version: SERVER_VERSION });
    return context.json(openApi);
  });
  eventRoutes(app, options, guard);
  runRoutes(app, options, guard);
  runActionRoutes(app, options, guard);
  eventListRoutes(app, options);
  webhookRoutes(app, options);
  return app;
}
