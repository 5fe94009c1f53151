import { ErrorCode } from "@stepwise/core";
import { type KeyScope, parseMessageId, type RealtimeMessage } from "@stepwise/engine";
import type { Context, Hono, MiddlewareHandler } from "hono";
import { streamSSE } from "hono/streaming";
import { realtimeQuery, realtimeTokenBodySchema } from "../api/request-schemas.js";
import type { RealtimeTokens } from "../auth/realtime-tokens.js";
import { requestError } from "../http/http-status.js";
import { queryError } from "../http/params.js";
import { checkBody, readJson } from "../http/read-json.js";
import type { ResolvedServerOptions, ServerEnv } from "../server-options.js";

/** How often an idle stream sends a comment, so that proxies keep it open (ms). */
const HEARTBEAT_MS = 15_000;
/** Messages a stream holds for a client that reads slower than they come; past it the stream ends and the client resumes from the log. */
const MAX_BACKLOG = 10_000;
/** What an SSE client waits before it reconnects (the `retry:` field), ms. */
const RETRY_MS = 1000;

/**
 * Realtime: `GET /v1/realtime` streams a channel as server-sent events, each with its message id
 * as the SSE `id`, so that a reconnecting `EventSource` (which sends `Last-Event-ID`) resumes
 * with no gap and no duplicate. Access: a token from `POST /v1/realtime/token` naming the
 * channel (what a browser holds), or a key of scope `read`. Registered before the `/v1` key
 * check, which a token-holding browser could not pass.
 */
export function realtimeStreamRoute(
  app: Hono<ServerEnv>,
  options: ResolvedServerOptions,
  tokens: RealtimeTokens,
  guard: (scope: KeyScope) => MiddlewareHandler,
): void {
  const { engine } = options;
  const readGuard = guard("read");

  app.get("/v1/realtime", async (context) => {
    const parsed = realtimeQuery.safeParse(context.req.query());
    if (!parsed.success) throw queryError(parsed.error, "channel, topics, token and lastEventId");
    const { channel, token, lastEventId } = parsed.data;
    let topics = parsed.data.topics;
    if (token !== undefined) {
      const grant = tokens.verify(token);
      if (!grant.channels.includes(channel)) {
        throw requestError(
          ErrorCode.Forbidden,
          `this token is for ${grant.channels.map((name) => JSON.stringify(name)).join(", ")}, not ${JSON.stringify(channel)}`,
        );
      }
      if (grant.topics) {
        const allowed = new Set(grant.topics);
        const denied = topics?.find((topic) => !allowed.has(topic));
        if (denied !== undefined) throw requestError(ErrorCode.Forbidden, `this token does not allow the topic ${JSON.stringify(denied)}`);
        topics ??= grant.topics;
      }
    } else {
      // No token: a key of scope read, or (stepwise dev) a local request; the guard throws otherwise.
      await readGuard(context, async () => {});
    }
    const after = context.req.header("last-event-id") ?? lastEventId;
    if (after !== undefined && !parseMessageId(after)) {
      throw requestError(ErrorCode.InvalidRequest, `Last-Event-ID ${JSON.stringify(after.slice(0, 64))} is not a message id (<ms>-<n>, as the stream sent it)`);
    }
    return stream(context, { channel, topics, after });
  });

  function stream(context: Context<ServerEnv>, subscription: { channel: string; topics?: string[]; after?: string }) {
    return streamSSE(context, async (sse) => {
      const backlog: Array<{ message?: RealtimeMessage; gap?: { after: string; firstAvailable?: string } }> = [];
      let wake: (() => void) | undefined;
      let overflowed = false;
      const push = (item: (typeof backlog)[number]) => {
        if (backlog.length >= MAX_BACKLOG) overflowed = true;
        else backlog.push(item);
        wake?.();
      };
      const unsubscribe = await engine.realtime.subscribe(
        subscription.channel,
        { onMessage: (message) => push({ message }), onGap: (gap) => push({ gap }) },
        { after: subscription.after, topics: subscription.topics },
      );
      let open = true;
      const close = () => {
        open = false;
        wake?.();
      };
      sse.onAbort(close);
      // The client went away: stop at once rather than at the next write.
      context.req.raw.signal.addEventListener("abort", close, { once: true });
      try {
        // Tells the client the subscription is live (and how soon to come back if cut off).
        await sse.writeSSE({ event: "ready", data: JSON.stringify({ channel: subscription.channel }), retry: RETRY_MS });
        while (open) {
          while (open && backlog.length > 0) {
            const item = backlog.shift() as (typeof backlog)[number];
            if (item.gap) await sse.writeSSE({ event: "gap", data: JSON.stringify(item.gap) });
            else if (item.message) await sse.writeSSE({ id: item.message.id, event: "message", data: JSON.stringify(item.message) });
          }
          if (overflowed) {
            // Too slow a reader: end here; it reconnects with its Last-Event-ID and reads on from the log.
            await sse.writeSSE({ event: "overflow", data: JSON.stringify({ limit: MAX_BACKLOG }) });
            return;
          }
          if (!open) return;
          const idle = await new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => resolve(true), HEARTBEAT_MS);
            wake = () => {
              clearTimeout(timer);
              resolve(false);
            };
          });
          wake = undefined;
          if (idle && open) await sse.write(": keep-alive\n\n");
        }
      } finally {
        unsubscribe();
      }
    });
  }
}

/** `POST /v1/realtime/token` (scope read): a token a browser can follow the named channels with, until it expires. */
export function realtimeTokenRoute(app: Hono<ServerEnv>, options: ResolvedServerOptions, tokens: RealtimeTokens): void {
  app.post("/v1/realtime/token", async (context) => {
    const body = checkBody(
      realtimeTokenBodySchema,
      await readJson(context, options.maxBodyBytes),
      "{ channels: string[], topics?: string[], ttlSeconds?: number }",
    );
    const expiresAt = Date.now() + (body.ttlSeconds ?? 900) * 1000;
    const token = tokens.mint({ channels: body.channels, ...(body.topics && { topics: body.topics }), expiresAt });
    return context.json({ token, expiresAt, channels: body.channels }, 201);
  });
}
