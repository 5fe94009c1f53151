import { Stepwise } from "@stepwise/core";
import { createTestEngine, type TestEngine } from "@stepwise/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer } from "../src/index.js";

// GET /metrics: Prometheus text exposition, counters that move with the runs.

/** Parses the text exposition format strictly: every line a comment, a sample, or blank. */
function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/.test(line)) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})?) (-?[0-9.e+-]+|NaN|[+-]Inf)$/.exec(line);
    if (!match) throw new Error(`not Prometheus text: ${JSON.stringify(line)}`);
    samples.set(match[1] as string, Number(match[2]));
  }
  return samples;
}

describe("GET /metrics", () => {
  let engine: TestEngine;
  beforeAll(async () => {
    const stepwise = new Stepwise({ id: "shop" });
    stepwise.createFunction({ id: "echo", retries: 0 }, { event: "shop/echo" }, async ({ event, step }) => {
      const text = await step.run("upper", () => String(event.data["text"]).toUpperCase());
      if (text === "FAIL") throw new Error("asked to fail");
      return text;
    });
    stepwise.createFunction({ id: "nap" }, { event: "shop/nap" }, async ({ step }) => step.sleep("long", "1d"));
    engine = await createTestEngine({ clients: [stepwise] });
  });
  afterAll(() => engine.close());

  it("answers Prometheus text whose counters move with the runs, and needs a read key under keys auth", async () => {
    const server = createServer({ engine, auth: { mode: "local" } });
    const read = async () => {
      const response = await server.request("/metrics");
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
      return parsePrometheus(await response.text());
    };
    const before = await read();
    await engine.send([...Array.from({ length: 3 }, () => ({ name: "shop/echo", data: { text: "ok" } })), { name: "shop/echo", data: { text: "fail" } }]);
    await engine.idle();
    const after = await read();
    const delta = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
    expect(delta('stepwise_runs_created_total{function="shop/echo"}')).toBe(4);
    expect(delta('stepwise_runs_ended_total{function="shop/echo",status="completed"}')).toBe(3);
    expect(delta('stepwise_runs_ended_total{function="shop/echo",status="failed"}')).toBe(1);
    expect(delta('stepwise_steps_total{function="shop/echo",status="completed"}')).toBe(4);
    expect(delta('stepwise_step_duration_seconds_count{function="shop/echo",kind="run"}')).toBe(4);
    expect(after.get("stepwise_queue_depth")).toBe(0);
    expect(after.get('stepwise_worker_runs{state="running"}')).toBe(0);

    // A cancelled run counts as ended, cancelled; an open realtime subscription shows in the gauge.
    const { runIds } = await engine.sendAndGetRuns({ name: "shop/nap" });
    await engine.idle();
    await engine.cancel(runIds[0] as string);
    const unsubscribe = await engine.realtime.subscribe("run:watched", { onMessage() {} });
    const later = await read();
    unsubscribe();
    expect(
      (later.get('stepwise_runs_ended_total{function="shop/nap",status="cancelled"}') ?? 0) -
        (after.get('stepwise_runs_ended_total{function="shop/nap",status="cancelled"}') ?? 0),
    ).toBe(1);
    expect(later.get("stepwise_realtime_subscribers")).toBe(1);

    const guarded = createServer({ engine, auth: { mode: "keys", keys: { findKey: async () => null, countActiveKeys: async () => 1 } as never } });
    expect((await guarded.request("/metrics")).status).toBe(401);
  });
});
