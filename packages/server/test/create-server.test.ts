import { Stepwise } from "@stepwise/core";
import type { RunStore } from "@stepwise/engine";
import { createTestPglite, type TestPglite } from "@stepwise/postgres/testing";
import { createTestEngine, type TestEngine } from "@stepwise/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, REQUEST_ID_HEADER } from "../src/index.js";

// The HTTP surface through `app.request()` (no port opened), over a real engine on PGlite.
// Auth has its own file; here the server is local (as `stepwise dev`), and requests come to localhost.
const auth = { mode: "local" } as const;

function app() {
  const stepwise = new Stepwise({ id: "shop" });
  stepwise.createFunction({ id: "echo", retries: 2 }, { event: "shop/echo" }, async ({ event, step }) =>
    step.run("upper", () => String(event.data["text"]).toUpperCase()),
  );
  stepwise.createFunction({ id: "naps" }, { event: "shop/nap" }, async ({ step }) => step.sleep("nap", "1d"));
  return stepwise;
}

describe("createServer", () => {
  let database: TestPglite;
  let engine: TestEngine;
  let failingReads = false;
  const logged: Array<{ fields: Record<string, unknown>; message: string }> = [];
  const logger = {
    debug: () => {},
    info: () => {},
    warn: () => {},
    error: (fields: unknown, message?: string) => {
      logged.push({ fields: fields as Record<string, unknown>, message: message ?? "" });
    },
  };

  beforeAll(async () => {
    database = await createTestPglite();
    const store = database.createStore();
    // A store whose reads can be made to fail with a plain error, the kind that must never leak.
    const flaky = new Proxy(store, {
      get: (target, property) =>
        (property === "getRun" || property === "now" || property === "ingest") && failingReads
          ? () => Promise.reject(new Error("connection reset; password=hunter2"))
          : Reflect.get(target, property),
    }) as RunStore;
    engine = await createTestEngine({ clients: [app()], store: flaky });
  });
  afterAll(async () => {
    await engine.close();
    await database.close();
  });

  const json = (body: unknown, headers: Record<string, string> = {}) => ({
    method: "POST",
    body: typeof body === "string" ? body : JSON.stringify(body),
    headers: { "content-type": "application/json", ...headers },
  });

  it("sends events and answers their ids, with a request id on every answer", async () => {
    const server = createServer({ engine, auth });
    const response = await server.request("/e/key", json({ name: "shop/echo", data: { text: "hi" } }, { [REQUEST_ID_HEADER]: "trace-1" }));
    expect(response.status).toBe(200);
    expect(response.headers.get(REQUEST_ID_HEADER)).toBe("trace-1");
    const { ids } = (await response.json()) as { ids: string[] };
    expect(ids).toHaveLength(1);
    // A request id that could forge a log line is replaced by one of ours.
    const forged = await server.request("/health", { headers: { [REQUEST_ID_HEADER]: 'x" level=error msg="forged' } });
    expect(forged.headers.get(REQUEST_ID_HEADER)).toMatch(/^[0-9a-f-]{36}$/);
  });

  it.each([
    ["text/plain", 415, "UNSUPPORTED_MEDIA_TYPE", /Content-Type: application\/json \(got "text\/plain"\)/],
    ["", 415, "UNSUPPORTED_MEDIA_TYPE", /none given/],
    ["application/x-www-form-urlencoded", 415, "UNSUPPORTED_MEDIA_TYPE", /application\/json/],
  ])("refuses a body sent as %j, which any web page could post without a CORS preflight", async (type, status, code, message) => {
    const server = createServer({ engine, auth });
    const response = await server.request("/e/key", {
      method: "POST",
      // Bytes, not a string: fetch gives a string body text/plain by itself.
      body: new TextEncoder().encode(JSON.stringify({ name: "shop/echo" })),
      headers: type ? { "content-type": type } : {},
    });
    expect(response.status).toBe(status);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe(code);
    expect(body.error.message).toMatch(message);
  });

  it("accepts application/json with a charset and +json types", async () => {
    const server = createServer({ engine, auth });
    for (const type of ["application/json; charset=utf-8", "application/vnd.api+json"]) {
      expect((await server.request("/e/key", { method: "POST", body: JSON.stringify({ name: "shop/echo" }), headers: { "content-type": type } })).status).toBe(
        200,
      );
    }
  });

  it("refuses a body over the route's limit with a 413 naming it, declared or streamed, and invalid UTF-8 or JSON with a 400", async () => {
    const server = createServer({ engine, auth, eventBodyBytes: 1000, maxBodyBytes: 100 });
    const big = JSON.stringify({ name: "shop/echo", data: { blob: "x".repeat(2000) } });
    const declared = await server.request("/e/key", json(big));
    expect(declared.status).toBe(413);
    expect(((await declared.json()) as { error: { message: string } }).error.message).toMatch(/limit of 1000 bytes/);
    // No Content-Length: counted while reading.
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(big));
        controller.close();
      },
    });
    const streamed = await server.request("/e/key", {
      method: "POST",
      body: stream,
      headers: { "content-type": "application/json" },
      duplex: "half",
    } as RequestInit);
    expect(streamed.status).toBe(413);
    const invoke = await server.request("/v1/functions/echo/invoke", json({ data: { text: "x".repeat(200) } }));
    expect(invoke.status).toBe(413);
    expect(((await invoke.json()) as { error: { message: string } }).error.message).toMatch(/limit of 100 bytes/);
    const latin1 = await server.request("/e/key", {
      method: "POST",
      body: new Uint8Array([0x7b, 0xff, 0x7d]),
      headers: { "content-type": "application/json" },
    });
    expect(await latin1.json()).toEqual({ error: { code: "INVALID_JSON", message: "the request body is not valid UTF-8" } });
    const truncated = await server.request("/e/key", json('{"name":"shop/echo"'));
    expect(await truncated.json()).toEqual({ error: { code: "INVALID_JSON", message: "the request body is not valid JSON" } });
  });

  it("lists functions, shows one, invokes one and reads its run with steps", async () => {
    const server = createServer({ engine, auth });
    const list = (await (await server.request("/v1/functions")).json()) as { functions: Array<{ id: string; qualifiedId: string }> };
    expect(list.functions.map((fn) => fn.qualifiedId).sort()).toEqual(["shop/echo", "shop/naps"]);
    for (const id of ["echo", "shop%2Fecho"]) {
      expect(await (await server.request(`/v1/functions/${id}`)).json()).toEqual({
        function: { id: "echo", appId: "shop", qualifiedId: "shop/echo", name: "echo", retries: 2, triggers: [{ event: "shop/echo" }] },
      });
    }
    const invoked = await server.request("/v1/functions/echo/invoke", json({ data: { text: "ok" } }));
    const { run } = (await invoked.json()) as { run: { id: string; output: unknown; functionId: string; appId: string } };
    expect(run).toMatchObject({ output: "OK", functionId: "echo", appId: "shop" });
    const shown = (await (await server.request(`/v1/runs/${run.id}`)).json()) as { steps: Array<{ id: string; status: string }> };
    expect(shown.steps).toEqual([expect.objectContaining({ id: "upper", status: "completed" })]);
    expect((await server.request("/v1/functions/nope")).status).toBe(404);
    expect((await server.request("/v1/functions/echo/invoke", json({ data: {}, extra: 1 }))).status).toBe(400);
  });

  it("caps every wait, refuses a longer one naming the cap, and ends a wait when the client goes away", async () => {
    const server = createServer({ engine, auth, maxWaitMs: 200 });
    const { ids } = (await (await server.request("/e/key", json({ name: "shop/nap" }))).json()) as { ids: string[] };
    await engine.idle();
    const [run] = await engine.runsForEvent(ids[0] as string);
    const tooLong = await server.request(`/v1/runs/${run?.id}/wait?timeout=1000000000000`);
    expect(tooLong.status).toBe(400);
    expect(((await tooLong.json()) as { error: { message: string } }).error.message).toMatch(/at most 200 ms/);
    // No timeout asked: the cap is the wait, answered as a timeout while the run sleeps on.
    const capped = await server.request(`/v1/runs/${run?.id}/wait`);
    expect(capped.status).toBe(408);
    const client = new AbortController();
    const waiting = Promise.resolve(server.request(new Request(`http://localhost/v1/runs/${run?.id}/wait?timeout=150`, { signal: client.signal })));
    client.abort();
    const answer = await waiting.catch((error: unknown) => error);
    // The wait ended at the abort (WAIT_ABORTED), not at its timeout (408).
    expect(answer instanceof Response ? answer.status : "aborted").not.toBe(408);
  });

  it("answers a failure of its own with 500 INTERNAL and the request id, logs it, and leaks nothing", async () => {
    const server = createServer({ engine, auth, logger });
    failingReads = true;
    try {
      const response = await server.request("/v1/runs/run_1", { headers: { [REQUEST_ID_HEADER]: "req-500" } });
      expect(response.status).toBe(500);
      const text = await response.text();
      expect(JSON.parse(text)).toEqual({ error: { code: "INTERNAL", message: "internal error", requestId: "req-500" } });
      expect(text).not.toMatch(/hunter2|connection reset|at /);
      expect(logged).toEqual([{ fields: expect.objectContaining({ requestId: "req-500", path: "/v1/runs/run_1" }), message: "request failed" }]);
      // The Event API's key is in its path: the log line names the route, not the key.
      expect((await server.request("/e/sw_event_0123456789abcdef_secret", json({ name: "shop/echo" }))).status).toBe(500);
      expect(logged[1]?.fields["path"]).toBe("/e/:eventKey");
      expect(JSON.stringify(logged)).not.toContain("sw_event_0123456789abcdef_secret");
      // Not ready while the store fails, and the open probe says which part, not why.
      const probe = await server.request("/ready");
      expect(probe.status).toBe(503);
      const answer = await probe.text();
      expect(JSON.parse(answer)).toEqual({ status: "not ready", checks: { store: "failing", queue: "ok" } });
      expect(answer).not.toMatch(/hunter2/);
    } finally {
      failingReads = false;
    }
  });

  it("answers unknown routes and bad ids with 4xx in the error shape, and says what it serves at /", async () => {
    const server = createServer({ engine, auth });
    expect(await (await server.request("/nope")).json()).toEqual({
      error: { code: "NOT_FOUND", message: "no route GET /nope; GET / lists what this server answers" },
    });
    expect((await server.request("/v1/runs/%00")).status).toBe(400);
    expect((await server.request("/v1/runs/x/wait?timeout=abc")).status).toBe(400);
    // Query values and cursors reach Postgres only once checked: NUL and impossible times are 400s.
    const cursor = (at: number, id: string) => Buffer.from(JSON.stringify([at, id])).toString("base64url");
    for (const query of [
      "/v1/events?name=%00",
      "/v1/runs?function=a%00b",
      "/v1/events?since=9000000000000000",
      `/v1/events?cursor=${cursor(1, "evt\u0000")}`,
      `/v1/runs?cursor=${cursor(9e15, "run_1")}`,
    ]) {
      expect({ query, status: (await server.request(query)).status }).toEqual({ query, status: 400 });
    }
    expect(await (await server.request("/ready")).json()).toEqual({ status: "ready", checks: { store: "ok", queue: "ok" } });
    const index = (await (await server.request("/")).json()) as { routes: Record<string, string> };
    expect(Object.keys(index.routes)).toContain("POST /e/:eventKey");
  });

  it("refuses an unknown option, naming it", () => {
    expect(() => createServer({ engine, auth, maxWait: 5 } as never)).toThrow('createServer: "maxWait" is not an option');
    expect(() => createServer({ engine: {} as never, auth })).toThrow(/engine must be an engine/);
  });
});
