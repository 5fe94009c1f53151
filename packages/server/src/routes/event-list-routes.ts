import { ErrorCode } from "@stepwise/core";
import type { Hono } from "hono";
import { listEventsQuery } from "../api/request-schemas.js";
import { decodeCursor, encodeCursor } from "../http/cursor.js";
import { requestError } from "../http/http-status.js";
import { DEFAULT_PAGE, pathId, queryError } from "../http/params.js";
import type { ResolvedServerOptions, ServerEnv } from "../server-options.js";

/**
 * Events under `/v1` (scope read, checked for all of `/v1` by `createServer`): the list, newest received first, by name and time, a page
 * at a time on a keyset cursor; one event with the runs it started; the runs alone.
 */
export function eventListRoutes(app: Hono<ServerEnv>, options: ResolvedServerOptions): void {
  const { engine } = options;

  app.get("/v1/events", async (context) => {
    const parsed = listEventsQuery.safeParse(context.req.query());
    if (!parsed.success) throw queryError(parsed.error, "name, since, until, limit and cursor");
    const { limit = DEFAULT_PAGE, cursor, ...filter } = parsed.data;
    const decoded = cursor === undefined ? undefined : decodeCursor(cursor);
    // One more than the page: whether there is a next page, without a count.
    const events = await engine.listEvents({ ...filter, limit: limit + 1, before: decoded && { receivedAt: decoded.at, id: decoded.id } });
    const page = events.slice(0, limit).map(({ key: _key, ...event }) => event);
    const last = page.at(-1);
    return context.json({ events: page, nextCursor: events.length > limit && last ? encodeCursor({ at: last.receivedAt, id: last.id }) : null });
  });

  app.get("/v1/events/:id", async (context) => {
    const eventId = pathId(context, "event id");
    const event = await engine.getEvent(eventId);
    if (!event) throw requestError(ErrorCode.EventNotFound, `no event with id ${JSON.stringify(eventId)}`, { eventId });
    return context.json({ event, runs: await engine.runsForEvent(eventId) });
  });

  app.get("/v1/events/:id/runs", async (context) => context.json({ runs: await engine.runsForEvent(pathId(context, "event id")) }));
}
