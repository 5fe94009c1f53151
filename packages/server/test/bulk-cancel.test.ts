import { Stepwise } from "@stepwise/core";
import { BACKENDS, createBackendEngine } from "@stepwise/testing";
import { describe, expect, it, vi } from "vitest";
import { createServer } from "../src/index.js";
import { serveHttp } from "./helpers/backends.js";

// The size runs on CI too: 500 runs held in a step at once.
const RUNNING = Number(process.env["STEPWISE_CANCEL_RUNS"] ?? 500);
const QUEUED = 50;

describe.each(BACKENDS)("bulk cancel over HTTP on %s", (backend) => {
  it(`cancels ${RUNNING} running runs by an expression, frees their slots, and the queued runs start`, { timeout: 120_000 }, async () => {
    const stepwise = new Stepwise({ id: "media" });
    const started = new Set<string>();
    stepwise.createFunction({ id: "render", concurrency: RUNNING }, { event: "video/uploaded" }, async ({ event, runId, step, signal }) => {
      await step.run("render", async () => {
        started.add(runId);
        // Holds until cancelled, or (the second batch) released by the test.
        await new Promise<void>((resolve) => {
          signal.addEventListener("abort", () => resolve());
          if (event.data["batch"] === "second") release.push(resolve);
        });
      });
    });
    const release: Array<() => void> = [];
    await using engine = await createBackendEngine(backend, { clients: [stepwise], concurrency: RUNNING + QUEUED + 10, leaseMs: 4 * 3600_000 });
    const http = await serveHttp(createServer({ engine, auth: { mode: "local" } }));
    try {
      const batch = (name: string, count: number) => Array.from({ length: count }, (_, n) => ({ name: "video/uploaded", data: { batch: name, n } }));
      const first = await engine.sendAndGetRuns(batch("first", RUNNING));
      await vi.waitFor(() => expect(started.size).toBe(RUNNING), { timeout: 60_000 });
      const second = await engine.sendAndGetRuns(batch("second", QUEUED));
      expect(await engine.queue.slotsHeld("media/render#0")).toBe(RUNNING);
      await vi.waitFor(async () => expect(await engine.queueSize()).toBe(QUEUED), { timeout: 10_000 });

      // The function's flow controls are listed with it, as resolved.
      const described = (await (await http.request("/v1/functions/render")).json()) as { function: { flow?: unknown } };
      expect(described.function.flow).toEqual({ concurrency: [{ limit: RUNNING, scope: "fn" }] });

      const bad = await http.request("/v1/runs/cancel", { json: { function: "render", if: "event.data ==" } });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("INVALID_EXPRESSION");
      const unknown = await http.request("/v1/runs/cancel", { json: { function: "nope" } });
      expect(unknown.status).toBe(404);
      const misspelled = await http.request("/v1/runs/cancel", { json: { function: "render", iff: "true" } });
      expect(misspelled.status).toBe(400);

      const sent = performance.now();
      const response = await http.request("/v1/runs/cancel", {
        json: { function: "render", if: "event.data.batch == 'first'", reason: "bad encoder settings" },
      });
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ cancelled: RUNNING });
      const answered = performance.now();
      await vi.waitFor(() => expect(second.runIds.every((runId) => started.has(runId))).toBe(true), { timeout: 30_000 });
      const allStarted = performance.now();
      console.log(
        `bulk cancel on ${backend}: ${RUNNING} running runs cancelled in ${Math.round(answered - sent)} ms; the ${QUEUED} queued runs all started ${Math.round(allStarted - answered)} ms after the answer`,
      );
      for (const runId of first.runIds) expect((await engine.result(runId)).status).toBe("cancelled");
      const [run] = await engine.listRuns({ functionId: "media/render", status: "cancelled", limit: 1 });
      expect(run?.error?.message).toBe("bad encoder settings");
      for (const resolve of release) resolve();
      for (const runId of second.runIds) expect((await engine.result(runId)).status).toBe("completed");
      await engine.idle();
      expect(await engine.queue.slotsHeld("media/render#0")).toBe(0);
    } finally {
      await http.close();
    }
  });
});
