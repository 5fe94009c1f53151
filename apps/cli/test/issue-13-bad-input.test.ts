import { type EventPayload, Stepwise, StepwiseError } from "@stepwise/core";
import { createEngine, createMemoryQueue, createSystemClock, type Engine, type EngineOptions, type RunStore } from "@stepwise/engine";
import { createPostgresStore } from "@stepwise/postgres";
import { createTestPglite, createTestPostgres } from "@stepwise/postgres/testing";
import { connectRedis, createRedisBus, createRedisQueue } from "@stepwise/redis";
import { createTestRedis } from "@stepwise/redis/testing";
import { createServer } from "@stepwise/server";
import { type SeededRandom, seededRandom } from "@stepwise/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listen } from "../src/listen.js";

// Issue 13, item 9: malformed input that reached a 500 (or vanished) must be refused at the
// boundary with a 4xx naming the field, or be stored faithfully; on the embedded backend and on
// Postgres + Redis alike, through `send()` and over HTTP. Seeded, so a failure can be replayed.

const CASES = Number(process.env["STEPWISE_FUZZ_EVENTS"] ?? 3000);
const SEED = Number(process.env["STEPWISE_FUZZ_SEED"] ?? 13);
const redisUrl = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379";

type Rng = SeededRandom;

const POISON = ["\u0000", "\uD800", "\uDFFF", "a\uDBFFb", "\u0000\u0000"];
const BAD_TS: unknown[] = [8640000000000001, 9007199254740991, -1, 1.5, 1e300, "2024-01-01", null, true, {}];

function nested(depth: number, leaf: unknown): unknown {
  let value = leaf;
  for (let level = 0; level < depth; level++) value = { deep: value };
  return value;
}

/** Puts `poison` somewhere in a copy of an event: name, id, a data value, a data key, deep inside. */
function poisoned(rng: Rng, poison: string): Record<string, unknown> {
  const text = `fuzz${poison}text`;
  switch (rng.int(5)) {
    case 0:
      return { name: `fuzz/event${poison}` };
    case 1:
      return { name: "fuzz/event", id: text };
    case 2:
      return { name: "fuzz/event", data: { note: text } };
    case 3:
      return { name: "fuzz/event", data: { [text]: 1 } };
    default:
      return { name: "fuzz/event", data: { list: [1, { inner: [text] }] } };
  }
}

/** A malformed event (or list of events) as a JavaScript value, for `send()`. */
function malformedValue(rng: Rng): unknown {
  switch (rng.int(11)) {
    case 0:
    case 1:
      return poisoned(rng, rng.pick(POISON));
    case 2:
      return { name: "fuzz/event", data: nested(513 + rng.int(6000), "leaf") };
    case 3:
      return { name: "fuzz/event", ts: rng.pick(BAD_TS) };
    case 4:
      return { name: "fuzz/event", data: rng.int(2) ? JSON.parse('{"__proto__":{"polluted":true}}') : { a: JSON.parse('{"b":{"__proto__":1}}') } };
    case 5:
      return rng.pick<unknown>([
        { name: 5 },
        { name: null },
        { name: "" },
        { name: "x".repeat(300) },
        { data: {} },
        { name: "fuzz/event", data: [1] },
        { name: "fuzz/event", data: "x" },
        { name: "fuzz/event", id: 7 },
        { name: "fuzz/event", id: "" },
      ]);
    case 6:
      return rng.pick<unknown>([
        { name: "fuzz/event", user: { id: 1 } },
        { name: "fuzz/event", v: "2024-01-01.1" },
        { name: "fuzz/event", extra: true },
      ]);
    case 7:
      return rng.pick<unknown>([
        [],
        [null],
        [1],
        ["x"],
        [{ name: "fuzz/event" }, { name: "fuzz/event", data: { bad: "\u0000" } }],
        null,
        42,
        "fuzz/event",
        true,
      ]);
    case 8: {
      const cyclic: Record<string, unknown> = {};
      cyclic["self"] = cyclic;
      return {
        name: "fuzz/event",
        data: rng.pick<unknown>([{ n: 10n }, { f: () => 1 }, { s: Symbol("s") }, { m: new Map() }, { x: Number.NaN }, { x: Number.POSITIVE_INFINITY }, cyclic]),
      };
    }
    case 9:
      return { name: "fuzz/event", data: { blob: "x".repeat(512 * 1024 + rng.int(1000)) } };
    default:
      return Array.from({ length: 5001 }, () => ({ name: "fuzz/event" }));
  }
}

/** A malformed request body as text: what `malformedValue` can express in JSON, and JSON that does not parse. */
function malformedBody(rng: Rng): string {
  switch (rng.int(6)) {
    case 0:
      return rng.pick(["{not json", "", "{", '{"name":', "\uFEFF{}", "[", "nul", '{"name":"a"}}', "\u0000"]);
    case 1:
      // JSON escapes that decode to what Postgres refuses.
      return rng.pick([
        '{"name":"fuzz/event","data":{"a":"\\u0000"}}',
        '{"name":"fuzz/event\\ud800"}',
        '{"name":"fuzz/event","data":{"\\udc00":1}}',
        '{"name":"fuzz/event","id":"\\u0000"}',
      ]);
    case 2:
      return rng.pick(['{"name":"fuzz/event","ts":1e999}', '{"name":"fuzz/event","ts":8640000000000001}', '{"name":"fuzz/event","ts":-0.5}']);
    case 3:
      return `{"name":"fuzz/event","data":${"[".repeat(4100 + rng.int(3000))}1${"]".repeat(4100)}}`;
    default: {
      const value = malformedValue(rng);
      try {
        return JSON.stringify(value) ?? "null";
      } catch {
        return '{"name":"fuzz/event","data":{"__proto__":{"x":1}}}';
      }
    }
  }
}

/** A request to another route, with an id or query that is malformed. */
function malformedRequest(rng: Rng): { path: string; method: string; body?: string } {
  const id = rng.pick(["%00", "run_%00", "%01%1b[2J", "x".repeat(300), "%E2%80%AE", "%ud800", "..%2f..", "%C0%80", "run_01ABC"]);
  switch (rng.int(4)) {
    case 0:
      return { method: "GET", path: `/v1/runs/${id}` };
    case 1:
      return { method: "GET", path: `/v1/runs/${id}/wait?timeout=${rng.pick(["1e12", "-1", "abc", "0", "1.5", "1e400", "5"])}` };
    case 2:
      return { method: "GET", path: `/v1/events/${id}/runs` };
    default:
      return {
        method: "POST",
        path: `/v1/functions/${id}/invoke`,
        body: rng.pick(['{"data":{"a":"\\u0000"}}', '{"data":[1]}', "{oops", '{"data":{},"timeoutMs":1e12,"extra":1}', '{"data":{"__proto__":{}}}']),
      };
  }
}

interface Backend {
  name: string;
  engine: Engine;
  store: RunStore;
  url: string;
  close(): Promise<void>;
}

function fuzzApp() {
  const stepwise = new Stepwise({ id: "fuzz" });
  stepwise.createFunction({ id: "receiver" }, { event: "fuzz/event" }, async ({ event, step }) => step.run("count", () => Object.keys(event.data).length));
  return stepwise;
}

/** Starts an engine over `ports` with the fuzz app, and the HTTP API on a free port. */
async function serve(name: string, ports: Pick<EngineOptions, "store" | "queue" | "bus" | "clock">, cleanup: Array<() => Promise<unknown>>): Promise<Backend> {
  const engine = createEngine({ ...ports, clients: [fuzzApp()] });
  await engine.start();
  const server = await listen(createServer({ engine, auth: { mode: "local" } }), { host: "127.0.0.1", port: 0 });
  return {
    name,
    engine,
    store: ports.store,
    url: server.url,
    async close() {
      await server.close();
      await engine.stop();
      for (const step of cleanup) await step();
    },
  };
}

async function embedded(): Promise<Backend> {
  const database = await createTestPglite();
  const clock = createSystemClock();
  return serve("embedded (PGlite)", { store: createPostgresStore({ pool: database.pool }), queue: createMemoryQueue({ clock }), clock }, [
    () => database.close(),
  ]);
}

async function postgresAndRedis(): Promise<Backend> {
  const database = await createTestPostgres();
  const testRedis = await createTestRedis();
  const redis = await connectRedis(redisUrl);
  const clock = createSystemClock();
  const queue = createRedisQueue({ redis, clock, prefix: testRedis.prefix });
  const bus = createRedisBus({ redis, prefix: testRedis.prefix });
  return serve("Postgres + Redis", { store: createPostgresStore({ pool: database.pool }), queue, bus, clock }, [
    () => queue.close(),
    () => bus.close(),
    () => redis.quit(),
    () => testRedis.close(),
    () => database.close(),
  ]);
}

describe.each([
  ["embedded (PGlite)", embedded],
  ["Postgres + Redis", postgresAndRedis],
])("malformed input on %s", (_name, open) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await open();
  });
  afterAll(() => backend?.close());

  it(`refuses ${CASES} malformed events through send() with user errors, and stores fine ones faithfully`, async () => {
    const rng = seededRandom(SEED);
    const failures: string[] = [];
    for (let index = 0; index < CASES; index++) {
      const value = malformedValue(rng);
      try {
        await backend.engine.send(value as EventPayload);
        failures.push(`case ${index}: accepted`);
      } catch (error) {
        if (!StepwiseError.isInstance(error) || error.category !== "user") failures.push(`case ${index}: ${String(error)}`);
      }
    }
    expect(failures.slice(0, 5)).toEqual([]);
    // What is hard but valid is stored as sent: emoji, 512 levels, the last ts, odd keys.
    const fine = {
      name: "fuzz/event",
      ts: Date.UTC(9999, 11, 31, 23, 59, 59, 999),
      data: { emoji: "😀👩‍👩‍👧", deep: nested(510, "leaf"), "key with spaces": 1, constructor: "kept", "\\u0000": "a backslash" },
    };
    const { ids } = await backend.engine.send(fine);
    const stored = await backend.store.getEvent(ids[0] as string);
    expect(stored).toMatchObject({ name: fine.name, ts: fine.ts, data: JSON.parse(JSON.stringify(fine.data)) });
  }, 120_000);

  it(`answers ${CASES} malformed HTTP requests with a 4xx and { error: { code, message } } or stores them faithfully, never a 5xx`, async () => {
    const rng = seededRandom(SEED + 1);
    const statuses = new Map<number, number>();
    const bad: string[] = [];
    for (let index = 0; index < CASES; index++) {
      const request = rng.int(4) === 0 ? malformedRequest(rng) : { method: "POST", path: "/e/dev", body: malformedBody(rng) };
      const response = await fetch(`${backend.url}${request.path}`, {
        method: request.method,
        body: request.body,
        headers: { "content-type": "application/json" },
      });
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      const body = (await response.json().catch(() => null)) as { error?: { code?: unknown; message?: unknown }; ids?: string[] } | null;
      const describe = () => `${request.method} ${request.path} ${request.body?.slice(0, 80)} → ${response.status} ${JSON.stringify(body)?.slice(0, 200)}`;
      if (response.status >= 400 && response.status < 500) {
        if (typeof body?.error?.code !== "string" || typeof body.error.message !== "string") bad.push(describe());
      } else if (response.status === 200 && request.path === "/e/dev") {
        // Accepted (a JavaScript value that JSON turned into something valid): stored as sent.
        const sent = [JSON.parse(request.body as string)].flat() as Array<{ name: string; data?: unknown }>;
        for (const [at, id] of (body?.ids ?? []).entries()) {
          const stored = await backend.store.getEvent(id);
          if (stored?.name !== sent[at]?.name || JSON.stringify(stored?.data) !== JSON.stringify(sent[at]?.data ?? {}))
            bad.push(`${describe()} stored as ${JSON.stringify(stored)}`);
        }
      } else if (response.status !== 200) {
        bad.push(describe());
      }
    }
    expect(bad.slice(0, 5)).toEqual([]);
    expect([...statuses.keys()].filter((status) => status >= 500)).toEqual([]);
    console.log(`${backend.name}: ${CASES} malformed requests answered ${[...statuses].map(([status, count]) => `${count}×${status}`).join(", ")}`);
    // Still serving: a good event starts a run that completes.
    const accepted = await fetch(`${backend.url}/e/dev`, {
      method: "POST",
      body: JSON.stringify({ name: "fuzz/event", data: { ok: 1 } }),
      headers: { "content-type": "application/json" },
    });
    const { ids } = (await accepted.json()) as { ids: string[] };
    const [run] = await backend.engine.runsForEvent(ids[0] as string);
    expect(await backend.engine.waitForRun(run?.id as string, { timeoutMs: 30_000 })).toMatchObject({ status: "completed", output: 1 });
  }, 300_000);
});
