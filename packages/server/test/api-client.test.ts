import { createApiClient, ErrorCode, Stepwise, StepwiseError } from "@stepwise/core";
import type { TestEngine } from "@stepwise/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer } from "../src/index.js";
import { BACKENDS, createBackendEngine, type HttpServer, serveHttp } from "./helpers/backends.js";

// The typed client of @stepwise/core against a real server over HTTP, on both backends: every
// route's happy path through the client, each answer checked against the documented schema.

describe.each(BACKENDS)("the API client on %s", (backend) => {
  let engine: TestEngine;
  let http: HttpServer;
  let api: ReturnType<typeof createApiClient>;

  beforeAll(async () => {
    const stepwise = new Stepwise({ id: "client" });
    stepwise.createFunction({ id: "greet", retries: 1 }, { event: "client/greet" }, async ({ event, step }) => {
      const name = await step.run("name", () => String(event.data["name"] ?? "world"));
      return `hello ${name}`;
    });
    stepwise.createFunction({ id: "wait-long" }, { event: "client/long" }, async ({ step }) => step.sleep("long", "1d"));
    engine = await createBackendEngine(backend, { clients: [stepwise] });
    http = await serveHttp(createServer({ engine, auth: { mode: "local" } }));
    api = createApiClient({ baseUrl: http.url });
  });
  afterAll(async () => {
    await http?.close();
    await engine?.close();
  });

  it("sends, lists, reads, waits for, invokes, reruns, cancels and replays through the typed client", async () => {
    const functions = await api.listFunctions();
    expect(functions.map((fn) => fn.qualifiedId).sort()).toEqual(["client/greet", "client/wait-long"]);
    expect(await api.getFunction("greet")).toMatchObject({ id: "greet", appId: "client", retries: 1, triggers: [{ event: "client/greet" }] });

    const { ids } = await api.send({ name: "client/greet", data: { name: "ada" } });
    const eventId = ids[0] as string;
    await engine.idle();
    const [run] = await api.runsForEvent(eventId);
    const ended = await api.waitForRun(run?.id as string, { timeoutMs: 5000 });
    expect(ended).toMatchObject({ status: "completed", output: "hello ada", functionId: "greet", appId: "client" });
    const detail = await api.getRun(ended.id);
    expect(detail.steps.map((step) => [step.id, step.status, step.output])).toEqual([["name", "completed", "ada"]]);
    expect((await api.getEvent(eventId)).event).toMatchObject({ id: eventId, name: "client/greet", data: { name: "ada" } });
    expect((await api.listEvents({ name: "client/greet" })).events.map((event) => event.id)).toContain(eventId);
    expect((await api.listRuns({ function: "greet", status: "completed" })).runs.map((entry) => entry.id)).toContain(ended.id);

    const invoked = await api.invoke("greet", { name: "bob" }, { timeoutMs: 5000 });
    expect(invoked.output).toBe("hello bob");

    const rerun = await api.rerun(ended.id, { fromStep: "name" });
    expect(rerun.rerunOf).toBe(ended.id);
    await engine.idle();
    expect((await api.waitForRun(rerun.id, { timeoutMs: 5000 })).output).toBe("hello ada");

    const replayed = await api.replayEvent(eventId);
    expect(replayed.map((entry) => entry.functionId)).toEqual(["greet"]);

    const long = await api.send({ name: "client/long" });
    await engine.idle();
    const [sleeping] = await api.runsForEvent(long.ids[0] as string);
    const cancelled = await api.cancelRun(sleeping?.id as string, { reason: "no longer needed" });
    expect(cancelled).toMatchObject({ run: { status: "cancelled" }, cancelled: [sleeping?.id] });
  });

  it("rejects with the server's error code, and the status in details", async () => {
    const missing = await api.getRun("run_missing").catch((error: unknown) => error);
    expect(StepwiseError.isInstance(missing)).toBe(true);
    expect(missing).toMatchObject({ code: ErrorCode.RunNotFound, details: { status: 404 } });
    const page = await api.listRuns({ limit: 1 });
    const unreachable = createApiClient({ baseUrl: "http://127.0.0.1:9" });
    await expect(unreachable.listRuns()).rejects.toMatchObject({ code: ErrorCode.TransportError });
    expect(page.runs.length).toBeLessThanOrEqual(1);
  });
});
