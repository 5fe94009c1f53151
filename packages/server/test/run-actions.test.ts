import { StepError, Stepwise } from "@stepwise/core";
import type { TestEngine } from "@stepwise/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer } from "../src/index.js";
import { BACKENDS, createBackendEngine, type HttpServer, serveHttp } from "./helpers/backends.js";

// Cancel, rerun, rerun from a step, and replay, over real HTTP on both backends. Step bodies
// count their executions here, in the test, so that "executed again" is counted outside the
// store the worker writes to.

interface Run {
  id: string;
  functionId: string;
  eventId: string;
  status: string;
  output?: unknown;
  error?: { code?: string; message: string };
  rerunOf?: string;
}
interface Step {
  key: string;
  id: string;
  kind: string;
  status: string;
  output?: unknown;
  attempt: number;
  startedAt?: number;
  endedAt?: number;
}

describe.each(BACKENDS)("run actions on %s", (backend) => {
  const executions = new Map<string, number>();
  const count = (name: string): void => {
    executions.set(name, (executions.get(name) ?? 0) + 1);
  };
  // A step body that runs until its signal aborts, and tells what aborted it.
  let heldBody: { started: () => void; aborted: (reason: unknown) => void } | undefined;
  let engine: TestEngine;
  let http: HttpServer;

  beforeAll(async () => {
    const stepwise = new Stepwise({ id: "ops" });
    stepwise.createFunction({ id: "pipeline" }, { event: "ops/pipeline" }, async ({ event, step }) => {
      const a = await step.run("a", () => {
        count("a");
        return `a-${Math.random()}`;
      });
      const b = await step.run("b", () => {
        count("b");
        return `${a}+b`;
      });
      await step.sleep("pause", "1m");
      const c = await step.run("c", () => {
        count("c");
        return `${b}+c`;
      });
      const d = await step.run("d", () => {
        count("d");
        return `${c}+d${event.data["suffix"] ?? ""}`;
      });
      return { a, d };
    });
    stepwise.createFunction({ id: "napper" }, { event: "ops/nap" }, async ({ step }) => {
      await step.sleep("long", "1d");
      await step.run("after", () => count("after-nap"));
      return "woke";
    });
    stepwise.createFunction({ id: "holder" }, { event: "ops/hold" }, async ({ step }) => {
      await step.run("hold", ({ signal }) => {
        count("hold");
        heldBody?.started();
        return new Promise((_, reject) => {
          signal.addEventListener("abort", () => {
            heldBody?.aborted(signal.reason);
            reject(signal.reason);
          });
        });
      });
      await step.run("never", () => count("never"));
    });
    const child = stepwise.createFunction({ id: "child" }, { event: "ops/child-direct" }, async ({ step }) => {
      await step.sleep("child-nap", "1d");
      return "child done";
    });
    stepwise.createFunction({ id: "parent" }, { event: "ops/parent" }, async ({ step }) => {
      try {
        return await step.invoke("call", { function: child, data: {} });
      } catch (error) {
        return { caught: StepError.isInstance(error) ? error.error.code : String(error) };
      }
    });
    stepwise.createFunction({ id: "first-listener" }, { event: "ops/fanout" }, async () => count("first-listener"));
    stepwise.createFunction({ id: "second-listener" }, { event: "ops/fanout" }, async () => count("second-listener"));
    engine = await createBackendEngine(backend, { clients: [stepwise] });
    http = await serveHttp(createServer({ engine, auth: { mode: "local" } }));
  });
  afterAll(async () => {
    await http?.close();
    await engine?.close();
  });

  const post = async (path: string, json?: unknown) => {
    const response = await http.request(path, json === undefined ? { method: "POST" } : { json });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> & { error?: { code: string; message: string } } };
  };
  const runOf = async (eventName: string, data: Record<string, unknown> = {}) => {
    const { runIds } = await engine.sendAndGetRuns({ name: eventName, data });
    await engine.idle();
    return runIds[0] as string;
  };
  const show = async (runId: string) => {
    const response = await http.request(`/v1/runs/${runId}`);
    expect(response.status).toBe(200);
    return (await response.json()) as { run: Run; steps: Step[] };
  };

  it("cancels a sleeping run: it ends cancelled with the reason, and never resumes", async () => {
    const runId = await runOf("ops/nap");
    const waiting = engine.waitForRun(runId, { timeoutMs: 10_000 });
    const { status, body } = await post(`/v1/runs/${runId}/cancel`, { reason: "customer left" });
    expect(status).toBe(200);
    expect(body["cancelled"]).toEqual([runId]);
    expect(body["run"]).toMatchObject({ id: runId, status: "cancelled", error: { code: "RUN_CANCELLED", message: "customer left" } });
    // Waiters hear of it at once.
    expect((await waiting).status).toBe("cancelled");
    await engine.advance("2d");
    expect(executions.get("after-nap")).toBeUndefined();
    expect((await show(runId)).run.status).toBe("cancelled");
    // Again: nothing to do, still a success; a run that completed cannot be cancelled.
    expect(await post(`/v1/runs/${runId}/cancel`)).toMatchObject({ status: 200, body: { cancelled: [] } });
  });

  it("aborts the signal of a step body that is executing, and records nothing more of it", async () => {
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    let aborted!: (reason: unknown) => void;
    const abortReason = new Promise<unknown>((resolve) => (aborted = resolve));
    heldBody = { started, aborted };
    const { runIds } = await engine.sendAndGetRuns({ name: "ops/hold" });
    const runId = runIds[0] as string;
    await running;
    expect((await post(`/v1/runs/${runId}/cancel`)).body["cancelled"]).toEqual([runId]);
    expect(String(await abortReason)).toMatch(/RUN_CANCELLED|was cancelled/);
    await engine.idle();
    const { run, steps } = await show(runId);
    expect(run.status).toBe("cancelled");
    expect(run.error?.message).toBe("cancelled by an operator");
    expect(steps).toEqual([]);
    expect(executions.get("hold")).toBe(1);
    expect(executions.get("never")).toBeUndefined();
  });

  it("cancels the runs a run invoked; a cancelled child fails its parent's step", async () => {
    const parentId = await runOf("ops/parent");
    const [child] = (await engine.listRuns({ functionId: "child" })).filter((run) => run.status === "sleeping");
    expect(child).toBeDefined();
    const cancelChild = await post(`/v1/runs/${child?.id}/cancel`, { reason: "not needed" });
    expect(cancelChild.body["cancelled"]).toEqual([child?.id]);
    await engine.idle();
    const parent = await engine.result(parentId);
    expect(parent.output).toEqual({ caught: "RUN_CANCELLED" });

    const secondParent = await runOf("ops/parent");
    const [secondChild] = (await engine.listRuns({ functionId: "child", status: "sleeping" })).filter((run) => run.id !== child?.id);
    const cancelled = await post(`/v1/runs/${secondParent}/cancel`);
    expect(new Set(cancelled.body["cancelled"] as string[])).toEqual(new Set([secondParent, secondChild?.id]));
    expect((await engine.getRun(secondChild?.id as string))?.status).toBe("cancelled");
  });

  it("answers errors: a completed run 409, an unknown run 404, an unknown option 400, text/plain 415", async () => {
    const fanout = await runOf("ops/fanout");
    const done = await engine.result(fanout);
    expect(done.status).toBe("completed");
    const conflict = await post(`/v1/runs/${fanout}/cancel`);
    expect(conflict.status).toBe(409);
    expect(conflict.body.error).toEqual({ code: "RUN_ALREADY_ENDED", message: expect.stringMatching(/had already completed/) });
    expect((await post("/v1/runs/run_nope/cancel")).body.error?.code).toBe("RUN_NOT_FOUND");
    const unknown = await post(`/v1/runs/${fanout}/rerun`, { formStep: "a" });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error?.message).toMatch(/unknown option\(s\) "formStep"/);
    const plain = await http.request(`/v1/runs/${fanout}/cancel`, { method: "POST", headers: { "content-type": "text/plain" }, body: "{}" });
    expect(plain.status).toBe(415);
    expect((await post("/v1/events/evt_nope/replay")).body.error?.code).toBe("EVENT_NOT_FOUND");
  });

  it("records each step's times, in the order the steps were recorded", async () => {
    const runId = await runOf("ops/pipeline", { suffix: "!" });
    await engine.advance("2m");
    const { run, steps } = await show(runId);
    expect(run.status).toBe("completed");
    expect(steps.map((step) => [step.id, step.kind, step.status])).toEqual([
      ["a", "run", "completed"],
      ["b", "run", "completed"],
      ["pause", "sleep", "completed"],
      ["c", "run", "completed"],
      ["d", "run", "completed"],
    ]);
    for (const step of steps) {
      expect(typeof step.startedAt).toBe("number");
      expect(step.endedAt).toBeGreaterThanOrEqual(step.startedAt as number);
    }
    // The sleep began when it was recorded and ended a minute of (fake) time later.
    const pause = steps[2] as Step;
    expect((pause.endedAt as number) - (pause.startedAt as number)).toBeGreaterThanOrEqual(60_000);
  });

  it("reruns a run: a new run of the same event that executes every step again", async () => {
    const runId = await runOf("ops/pipeline");
    await engine.advance("2m");
    const original = await show(runId);
    const before = { a: executions.get("a") ?? 0, d: executions.get("d") ?? 0 };
    const { status, body } = await post(`/v1/runs/${runId}/rerun`);
    expect(status).toBe(201);
    const rerun = body["run"] as Run;
    expect(rerun).toMatchObject({ functionId: "pipeline", eventId: original.run.eventId, rerunOf: runId });
    await engine.advance("2m");
    const result = await engine.result(rerun.id);
    expect(result.status).toBe("completed");
    expect(executions.get("a")).toBe(before.a + 1);
    expect(executions.get("d")).toBe(before.d + 1);
    // A fresh execution of step a: a new random value.
    expect((result.output as { a: string }).a).not.toBe((original.run.output as { a: string }).a);
  });

  it("reruns from a chosen step: the steps before it are reused, it and the rest execute again", async () => {
    const runId = await runOf("ops/pipeline");
    await engine.advance("2m");
    const original = await show(runId);
    const before = Object.fromEntries(["a", "b", "c", "d"].map((name) => [name, executions.get(name) ?? 0]));
    const { body } = await post(`/v1/runs/${runId}/rerun`, { fromStep: "c" });
    const rerun = body["run"] as Run;
    await engine.advance("2m");
    const result = await engine.result(rerun.id);
    expect(result.status).toBe("completed");
    // Counted here, outside the worker: a and b did not execute again, c and d did.
    expect(Object.fromEntries(["a", "b", "c", "d"].map((name) => [name, (executions.get(name) ?? 0) - (before[name] ?? 0)]))).toEqual({
      a: 0,
      b: 0,
      c: 1,
      d: 1,
    });
    // The reused results are the original's, so the output is built on the same `a`.
    expect(result.output).toEqual(original.run.output);
    const { steps } = await show(rerun.id);
    expect(steps.map((step) => step.id)).toEqual(["a", "b", "pause", "c", "d"]);
    expect(steps.slice(0, 3).map((step) => step.output)).toEqual(original.steps.slice(0, 3).map((step) => step.output));

    const missing = await post(`/v1/runs/${runId}/rerun`, { fromStep: "z" });
    expect(missing.status).toBe(404);
    expect(missing.body.error).toEqual({ code: "STEP_NOT_FOUND", message: `run ${runId} has no step "z" (its steps: a, b, pause, c, d)` });
  });

  it("replays an event: every function it starts runs again, as a rerun of its last run", async () => {
    const { ids } = await engine.send({ name: "ops/fanout" });
    await engine.idle();
    const eventId = ids[0] as string;
    const first = await engine.runsForEvent(eventId);
    expect(first).toHaveLength(2);
    const before = { first: executions.get("first-listener") ?? 0, second: executions.get("second-listener") ?? 0 };
    const { status, body } = await post(`/v1/events/${eventId}/replay`);
    expect(status).toBe(201);
    const replayed = body["runs"] as Run[];
    expect(replayed.map((run) => [run.functionId, run.rerunOf]).sort()).toEqual(
      first.map((run) => [run.functionId, run.id]).sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
    );
    await engine.idle();
    for (const run of replayed) expect((await engine.result(run.id)).status).toBe("completed");
    expect(executions.get("first-listener")).toBe(before.first + 1);
    expect(executions.get("second-listener")).toBe(before.second + 1);
    // Listing by event shows all four, newest first.
    const listed = await http.request(`/v1/runs?event=${eventId}`);
    expect(
      ((await listed.json()) as { runs: Run[] }).runs
        .map((run) => run.id)
        .slice(0, 2)
        .sort(),
    ).toEqual(replayed.map((run) => run.id).sort());
  });
});
