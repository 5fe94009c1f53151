/**
 * @module @stepwise/server
 *
 * Stepwise's HTTP surface, on Hono: the Event API (`POST /e/:eventKey`) and the REST API
 * (`/v1`, documented at `/v1/openapi.json`), realtime SSE and webhooks over an engine.
 * `stepwise dev` and `stepwise start` serve it.
 *
 * @example
 * import { serve } from "@hono/node-server";
 * import { createServer } from "@stepwise/server";
 * const app = createServer({ engine });
 * serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 8288 });
 *
 * Every export of this file is public API.
 */

export { API_ROUTES, type ApiRoute } from "./api/catalogue.js";
export { createOpenApiDocument } from "./api/openapi.js";
export { createApiKey, hashSecret, parseApiKey, scopeAllows } from "./auth/api-keys.js";
export type { AuthOptions } from "./auth/authenticate.js";
export type { RealtimeGrant, RealtimeTokens } from "./auth/realtime-tokens.js";
export { createRealtimeTokens } from "./auth/realtime-tokens.js";
export { createServer, REQUEST_ID_HEADER, SERVER_VERSION } from "./create-server.js";
export type { ErrorBody } from "./http/http-status.js";
export { toErrorResponse } from "./http/http-status.js";
export type { ResolvedServerOptions, ServerEnv, ServerOptions } from "./server-options.js";
export { DEFAULT_EVENT_BODY_BYTES, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_WAIT_MS } from "./server-options.js";
