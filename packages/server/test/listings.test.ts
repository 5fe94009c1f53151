import { Stepwise } from "@stepwise/core";
import { describe, expect, it } from "vitest";
import { BACKENDS, useServedEngine } from "./helpers/backends.js";

// GET /v1/runs and GET /v1/events: newest first, a page at a time on a keyset cursor.

describe.each(BACKENDS)("GET /v1/runs on %s", (backend) => {
  // Over real HTTP.
  const served = useServedEngine(backend, () => {
    const stepwise = new Stepwise({ id: "shop" });
    stepwise.createFunction({ id: "quick" }, { event: "shop/quick" }, async ({ event }) => event.data["n"] ?? null);
    stepwise.createFunction({ id: "naps" }, { event: "shop/nap" }, async ({ step }) => step.sleep("nap", "1d"));
    return [stepwise];
  });
  const server = () => served.http;
  type Page = { runs: Array<{ id: string; createdAt: number; functionId: string; status: string }>; nextCursor: string | null };
  const page = async (query: string): Promise<Page> => {
    const response = await server().request(`/v1/runs?${query}`);
    expect(response.status).toBe(200);
    return (await response.json()) as Page;
  };

  it("returns every run exactly once while runs are being created between pages", async () => {
    const before = await served.engine.send(Array.from({ length: 120 }, (_, n) => ({ name: "shop/quick", data: { n } })));
    await served.engine.idle();
    const existing = new Set<string>();
    for (const id of before.ids) for (const run of await served.engine.runsForEvent(id)) existing.add(run.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const result: Page = await page(`limit=25${cursor ? `&cursor=${cursor}` : ""}`);
      // Newest first, in the cursor's order.
      for (const [index, run] of result.runs.entries()) {
        const previous = result.runs[index - 1];
        if (previous) expect(previous.createdAt > run.createdAt || (previous.createdAt === run.createdAt && previous.id > run.id)).toBe(true);
      }
      seen.push(...result.runs.map((run) => run.id));
      cursor = result.nextCursor;
      pages++;
      // New runs arrive between pages: they land before the cursor, never inside the pages ahead.
      await served.engine.send(Array.from({ length: 10 }, () => ({ name: "shop/quick" })));
    } while (cursor !== null);
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of existing) expect(seen).toContain(id);
    expect(pages).toBeGreaterThanOrEqual(5);
  });

  it("filters by function (plain or qualified id) and status", async () => {
    await served.engine.send({ name: "shop/nap" });
    await served.engine.idle();
    for (const fn of ["naps", "shop/naps"]) {
      const { runs } = await page(`function=${encodeURIComponent(fn)}`);
      expect(runs.map((run) => [run.functionId, run.status])).toEqual([["naps", "sleeping"]]);
    }
    expect((await page("status=sleeping")).runs).toHaveLength(1);
    expect((await page("function=quick&status=sleeping")).runs).toEqual([]);
  });

  it.each([
    ["cursor=not-a-cursor", /cursor: not a cursor this API answered/],
    [`cursor=${Buffer.from('{"x":1}').toString("base64url")}`, /cursor/],
    ["limit=0", /limit/],
    ["limit=501", /limit/],
    ["status=done", /status/],
    ["fucntion=quick", /"fucntion": not a query parameter here; use function, status, event, since, until, limit and cursor/],
  ])("answers %s with a 400 naming the parameter", async (query, message) => {
    const response = await server().request(`/v1/runs?${query}`);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(message);
  });
});

describe.each(BACKENDS)("GET /v1/events on %s", (backend) => {
  // Over real HTTP.
  const served = useServedEngine(backend, () => {
    const stepwise = new Stepwise({ id: "shop" });
    stepwise.createFunction({ id: "on-order" }, { event: "shop/order.paid" }, async () => "ok");
    return [stepwise];
  });
  const server = () => served.http;
  type Page = { events: Array<{ id: string; name: string; receivedAt: number; data: unknown }>; nextCursor: string | null };
  const get = async (path: string) => {
    const response = await server().request(path);
    return { status: response.status, body: (await response.json()) as Page & { error?: { message: string } } };
  };

  it("pages through every event once, by name, while events keep arriving; an event shows the runs it started", async () => {
    await served.engine.send(Array.from({ length: 30 }, (_, n) => ({ name: n % 3 === 0 ? "shop/order.paid" : "shop/viewed", data: { n } })));
    await served.engine.idle();
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const { body }: { body: Page } = await get(`/v1/events?name=shop%2Fviewed&limit=7${cursor ? `&cursor=${cursor}` : ""}`);
      expect(body.events.every((event) => event.name === "shop/viewed")).toBe(true);
      seen.push(...body.events.map((event) => event.id));
      cursor = body.nextCursor;
      await served.engine.send({ name: "shop/viewed", data: { late: true } });
    } while (cursor !== null);
    expect(seen).toHaveLength(20);
    expect(new Set(seen).size).toBe(20);

    const { body: paid } = await get("/v1/events?name=shop%2Forder.paid");
    expect(paid.events).toHaveLength(10);
    const shown = await get(`/v1/events/${paid.events[0]?.id}`);
    expect(shown.status).toBe(200);
    expect(shown.body).toMatchObject({ event: { id: paid.events[0]?.id, name: "shop/order.paid" }, runs: [{ functionId: "on-order", status: "completed" }] });
    expect((await get("/v1/events/evt_missing")).status).toBe(404);
  });

  it("filters by receive time, as epoch milliseconds or ISO dates, and names a bad parameter", async () => {
    const now = served.engine.clock.now();
    expect((await get(`/v1/events?since=${now + 1}`)).body.events).toEqual([]);
    expect((await get(`/v1/events?until=${new Date(now + 1).toISOString()}&limit=1`)).body.events).toHaveLength(1);
    const bad = await get("/v1/events?since=yesterday");
    expect(bad.status).toBe(400);
    expect(bad.body.error?.message).toMatch(/since: must be epoch milliseconds or an ISO 8601 date/);
    expect((await get("/v1/events?nmae=x")).body.error?.message).toMatch(/"nmae": not a query parameter here/);
  });
});
