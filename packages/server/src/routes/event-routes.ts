import type { KeyScope } from "@stepwise/engine";
import type { Hono, MiddlewareHandler } from "hono";
import { readJson } from "../http/read-json.js";
import type { ResolvedServerOptions, ServerEnv } from "../server-options.js";

/**
 * The Event API: `POST /e/:eventKey` with one event or a batch (up to 5,000), answered with the
 * event ids once they are committed (`engine.send`); a body over the limit is a 413 naming it.
 */
export function eventRoutes(app: Hono<ServerEnv>, options: ResolvedServerOptions, guard: (scope: KeyScope) => MiddlewareHandler): void {
  app.post("/e/:eventKey", guard("event"), async (context) => {
    const body = await readJson(context, options.eventBodyBytes);
    return context.json(await options.engine.send(body as never));
  });
}
