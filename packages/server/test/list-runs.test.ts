import { Stepwise } from "@stepwise/core";
import { createTestEngine, type TestEngine } from "@stepwise/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer } from "../src/index.js";

// GET /v1/runs: newest first, a page at a time on a keyset cursor.

describe("GET /v1/runs", () => {
  let engine: TestEngine;
  beforeAll(async () => {
    const stepwise = new Stepwise({ id: "shop" });
    stepwise.createFunction({ id: "quick" }, { event: "shop/quick" }, async ({ event }) => event.data["n"] ?? null);
    stepwise.createFunction({ id: "naps" }, { event: "shop/nap" }, async ({ step }) => step.sleep("nap", "1d"));
    engine = await createTestEngine({ clients: [stepwise] });
  });
  afterAll(() => engine.close());

  const server = () => createServer({ engine, auth: { mode: "local" } });
  type Page = { runs: Array<{ id: string; createdAt: number; functionId: string; status: string }>; nextCursor: string | null };
  const page = async (query: string): Promise<Page> => {
    const response = await server().request(`/v1/runs?${query}`);
    expect(response.status).toBe(200);
    return (await response.json()) as Page;
  };

  it("returns every run exactly once while runs are being created between pages", async () => {
    const before = await engine.send(Array.from({ length: 120 }, (_, n) => ({ name: "shop/quick", data: { n } })));
    await engine.idle();
    const existing = new Set<string>();
    for (const id of before.ids) for (const run of await engine.runsForEvent(id)) existing.add(run.id);
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
      await engine.send(Array.from({ length: 10 }, () => ({ name: "shop/quick" })));
    } while (cursor !== null);
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of existing) expect(seen).toContain(id);
    expect(pages).toBeGreaterThanOrEqual(5);
  });

  it("filters by function (plain or qualified id) and status", async () => {
    await engine.send({ name: "shop/nap" });
    await engine.idle();
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
    ["fucntion=quick", /"fucntion": not a query parameter here; use function, status, limit and cursor/],
  ])("answers %s with a 400 naming the parameter", async (query, message) => {
    const response = await server().request(`/v1/runs?${query}`);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(message);
  });
});
