import { functionChannel, functionLifecycleEventSchema, lifecycleEventSchema, realtimeMessageSchema, Stepwise } from "@stepwise/core";
import { compareMessageIds } from "@stepwise/engine";
import { collectSse, type TestEngine } from "@stepwise/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRealtimeTokens } from "../src/auth/realtime-tokens.js";
import { createServer } from "../src/index.js";
import { BACKENDS, createBackendEngine, type HttpServer, serveHttp } from "./helpers/backends.js";

// Realtime over real HTTP on both backends: the engine's lifecycle and handlers' publish() on
// channels, SSE resume with Last-Event-ID, and channel-scoped tokens.

const SECRET = "realtime-test-secret-0123456789abcdef";

describe.each(BACKENDS)("realtime on %s", (backend) => {
  let engine: TestEngine;
  let http: HttpServer;

  beforeAll(async () => {
    const stepwise = new Stepwise({ id: "live" });
    stepwise.createFunction({ id: "report" }, { event: "live/report" }, async ({ event, step, publish, runId }) => {
      const count = Number(event.data["count"] ?? 3);
      await step.run("work", async () => {
        for (let n = 1; n <= count; n++) await publish({ channel: `run:${runId}`, topic: "progress", data: { n } });
        return count;
      });
      return "done";
    });
    stepwise.createFunction({ id: "broadcast" }, { event: "live/broadcast" }, async ({ event, step, publish }) => {
      await step.run("say", () => publish({ channel: String(event.data["channel"]), topic: "news", data: event.data["text"] as string }));
      // The engine's own topic is not the handlers'.
      return publish({ channel: "x", topic: "lifecycle", data: 1 }).then(
        () => "published",
        (error: Error) => error.message,
      );
    });
    engine = await createBackendEngine(backend, { clients: [stepwise] });
    http = await serveHttp(createServer({ engine, auth: { mode: "local" }, realtimeSecret: SECRET }));
  });
  afterAll(async () => {
    await http?.close();
    await engine?.close();
  });

  const streamUrl = (query: Record<string, string>) => `${http.url}/v1/realtime?${new URLSearchParams(query)}`;

  it("publishes a run's lifecycle on its channel and, but for its steps, its function's, with the wire schema, from the start (lastEventId 0-0)", async () => {
    const { runIds } = await engine.sendAndGetRuns({ name: "live/report", data: { count: 2 } });
    const runId = runIds[0] as string;
    await engine.result(runId);
    const { events } = await collectSse(streamUrl({ channel: `run:${runId}`, topics: "lifecycle", lastEventId: "0-0" }), {
      until: (seen) => seen.some((event) => JSON.parse(event.data).data.type === "run-completed"),
    });
    const lifecycle = events.map((event) => lifecycleEventSchema.parse(realtimeMessageSchema.parse(JSON.parse(event.data)).data));
    // A run's own channel begins when it starts; its creation is on the function's channel.
    expect(lifecycle.map((event) => event.type)).toEqual(["run-started", "step-started", "step-ended", "run-completed"]);
    expect(lifecycle.every((event) => event.runId === runId && event.functionId === "live/report")).toBe(true);
    // Every SSE event carries the message id, increasing.
    const ids = events.map((event) => event.id as string);
    for (const [index, id] of ids.entries()) if (index > 0) expect(compareMessageIds(ids[index - 1] as string, id)).toBeLessThan(0);

    const ofFunction = await collectSse(streamUrl({ channel: functionChannel("live/report"), topics: "lifecycle", lastEventId: "0-0" }), {
      until: (seen) => seen.some((event) => JSON.parse(event.data).data.type === "run-completed" && JSON.parse(event.data).data.runId === runId),
    });
    const thisRun = ofFunction.events
      .map((event) => functionLifecycleEventSchema.parse(realtimeMessageSchema.parse(JSON.parse(event.data)).data))
      .filter((event) => (event.type === "runs-created" ? event.runs.some((run) => run.runId === runId) : event.runId === runId));
    // New runs come as one message per function and turn, naming each run and its event; steps are on the run's channel only.
    expect(thisRun.map((event) => event.type)).toEqual(["runs-created", "run-started", "run-completed"]);
    expect(thisRun[0]).toMatchObject({ functionId: "live/report", runs: [{ runId, eventId: expect.stringMatching(/^evt_/) }] });
  });

  it("announces the runs one ingest created in one message on their function's channel, each run once", async () => {
    const stepwise = engine;
    // 40 events in one request: their 40 runs are one message.
    const response = await fetch(`${http.url}/e/local`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(Array.from({ length: 40 }, () => ({ name: "live/report", data: { count: 0 } }))),
    });
    const { ids } = (await response.json()) as { ids: string[] };
    const runIds = (await Promise.all(ids.map((eventId) => stepwise.store.listRunsForEvent(eventId)))).flatMap((runs) => runs.map((run) => run.id));
    expect(runIds).toHaveLength(40);
    const ours = new Set(runIds);
    const announced: string[] = [];
    let messages = 0;
    await collectSse(streamUrl({ channel: functionChannel("live/report"), topics: "lifecycle", lastEventId: "0-0" }), {
      until: (seen) => {
        announced.length = 0;
        messages = 0;
        for (const event of seen) {
          const data = functionLifecycleEventSchema.parse(realtimeMessageSchema.parse(JSON.parse(event.data)).data);
          if (data.type !== "runs-created" || !data.runs.some((run) => ours.has(run.runId))) continue;
          messages++;
          announced.push(...data.runs.map((run) => run.runId).filter((runId) => ours.has(runId)));
        }
        return runIds.every((runId) => announced.includes(runId));
      },
    });
    expect([...announced].sort()).toEqual([...runIds].sort());
    expect(messages).toBe(1);
    await Promise.all(runIds.map((runId) => stepwise.result(runId)));
  });

  it("streams what handlers publish, and resumes after Last-Event-ID with no gap and no duplicate", async () => {
    const { runIds } = await engine.sendAndGetRuns({ name: "live/report", data: { count: 30 } });
    const runId = runIds[0] as string;
    await engine.result(runId);
    const channel = `run:${runId}`;
    const seen: number[] = [];
    let lastId = "0-0";
    // Cut off after 7, 11 and 5 messages, then read the rest.
    for (const take of [7, 11, 5, 100]) {
      const { events } = await collectSse(streamUrl({ channel, topics: "progress" }), {
        headers: { "last-event-id": lastId },
        until: (got) => got.length >= take || (got.length > 0 && (JSON.parse(got.at(-1)?.data as string).data as { n: number }).n === 30),
      });
      for (const event of events) seen.push((JSON.parse(event.data).data as { n: number }).n);
      lastId = events.at(-1)?.id ?? lastId;
    }
    expect(seen).toEqual(Array.from({ length: 30 }, (_, index) => index + 1));
  });

  it("delivers live messages to a subscriber that joined before they were published", async () => {
    const channel = `news-${backend.replace(/\W/g, "")}`;
    // The streams of the tests before have ended (the server noticed their clients leave).
    await expect.poll(() => engine.realtime.subscriberCount).toBe(0);
    const reading = collectSse(streamUrl({ channel }), { until: (events) => events.length >= 1 });
    // Published once the server has subscribed (a subscriber without Last-Event-ID gets live messages only).
    await expect.poll(() => engine.realtime.subscriberCount).toBeGreaterThan(0);
    await engine.send({ name: "live/broadcast", data: { channel, text: "hello" } });
    const { events } = await reading;
    await engine.idle();
    expect(realtimeMessageSchema.parse(JSON.parse(events[0]?.data as string))).toMatchObject({ channel, topic: "news", data: "hello" });
    const [run] = await engine.listRuns({ functionId: "broadcast", limit: 1 });
    expect(run?.output).toMatch(/"lifecycle" is the engine's topic/);
  });

  it("gives a browser a token for named channels: another channel is 403, an expired or forged token 401", async () => {
    const minted = await http.request("/v1/realtime/token", { json: { channels: ["room-a"], ttlSeconds: 60 } });
    expect(minted.status).toBe(201);
    const { token, expiresAt } = (await minted.json()) as { token: string; expiresAt: number };
    expect(expiresAt).toBeGreaterThan(Date.now());
    const ok = await collectSse(streamUrl({ channel: "room-a", token }), { until: () => true });
    expect(ok.status).toBe(200);
    expect(ok.all[0]?.event).toBe("ready");

    const other = await collectSse(streamUrl({ channel: "room-b", token }), { until: () => true });
    expect(other.status).toBe(403);
    expect(other.body).toEqual({ error: { code: "FORBIDDEN", message: 'this token is for "room-a", not "room-b"' } });

    const expired = createRealtimeTokens(SECRET).mint({ channels: ["room-a"], expiresAt: Date.now() - 1 });
    const late = await collectSse(streamUrl({ channel: "room-a", token: expired }), { until: () => true });
    expect(late.status).toBe(401);
    expect((late.body as { error: { message: string } }).error.message).toMatch(/expired/);

    const forged = createRealtimeTokens("another-secret-0123456789abcdef-xyz").mint({ channels: ["room-a"], expiresAt: Date.now() + 60_000 });
    expect((await collectSse(streamUrl({ channel: "room-a", token: forged }), { until: () => true })).status).toBe(401);

    const badBody = await http.request("/v1/realtime/token", { json: { channels: [], ttl: 5 } });
    expect(badBody.status).toBe(400);
    const badResume = await collectSse(streamUrl({ channel: "room-a", lastEventId: "yesterday" }), { until: () => true });
    expect(badResume.status).toBe(400);
  });
});
