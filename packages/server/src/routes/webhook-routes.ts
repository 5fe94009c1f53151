import { ErrorCode, type EventPayload } from "@stepwise/core";
import type { Hono } from "hono";
import { requestError } from "../http/http-status.js";
import { parseJson, readBody } from "../http/read-json.js";
import type { ResolvedServerOptions, ServerEnv } from "../server-options.js";

/**
 * `POST /webhooks/:id`: a provider's request, verified by the webhook's verifier on the raw body
 * before anything is parsed, then turned into events by its `transform` and sent. Open to the
 * network like the Event API, but the signature is the credential, so no key is asked for.
 */
export function webhookRoutes(app: Hono<ServerEnv>, options: ResolvedServerOptions): void {
  app.post("/webhooks/:id", async (context) => {
    const id = context.req.param("id");
    const webhook = options.engine.webhooks.get(id);
    if (!webhook) throw requestError(ErrorCode.NotFound, `no webhook with id ${JSON.stringify(id.slice(0, 100))}`);
    const body = await readBody(context, options.maxBodyBytes);
    const verdict = webhook.verify({ body, headers: context.req.raw.headers, now: Date.now() });
    if (!verdict.ok) throw requestError(ErrorCode.InvalidSignature, `webhook ${webhook.id}: ${verdict.reason}`);
    const produced = webhook.transform({ body: parseJson(body), headers: context.req.raw.headers });
    const list: EventPayload[] = Array.isArray(produced) ? produced : [produced];
    // The provider's delivery id makes a redelivery a duplicate, which the engine answers with the first ids.
    const events = list.map((event, index) =>
      event?.id !== undefined || verdict.deliveryId === undefined
        ? event
        : { ...event, id: list.length === 1 ? verdict.deliveryId : `${verdict.deliveryId}-${index}` },
    );
    return context.json(await options.engine.send(events));
  });
}
