import { Agent, request as httpRequest, type OutgoingHttpHeaders } from "node:http";
import { isDeepStrictEqual } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { errorBodySchema, githubSignature, type Logger, Stepwise } from "@stepwise/core";
import { seededRandom, type TestEngine } from "@stepwise/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiKey, createServer } from "../src/index.js";
import { BACKENDS, type Backend, createBackendEngine, type HttpServer, serveHttp } from "./helpers/backends.js";
import {
  EVENT_BODY_BYTES,
  type FuzzRequest,
  JSON_TYPE,
  kinds,
  MAX_BODY_BYTES,
  memoryKeyStore,
  type Rng,
  type Targets,
  WEBHOOK_SECRET,
} from "./helpers/fuzz-requests.js";

// The HTTP server issue: "10,000 malformed requests across the Event API and REST API (truncated
// JSON, invalid UTF-8, nesting 10,000 deep, __proto__ / constructor keys, huge numbers, bodies
// over the limit, wrong content types, unknown query params, bad cursors) → each a 4xx with
// { error: { code, message } }, zero 5xx, the server alive, its RSS flat."
//
// Over real HTTP on both backends, with keys (as `stepwise start` serves). Each kind of malformed
// request below states what it expects (a status and, where the server has decided it, a code);
// the few kinds that are odd but valid (`constructor` keys, huge finite numbers) expect to be
// accepted and stored as sent, and their runs to complete. Seeded: a failure names the request,
// and STEPWISE_FUZZ_SEED replays the sequence. CI sends 2,000 per backend; `pnpm test:soak`
// (STEPWISE_SOAK=1) the issue's 10,000.
const soak = process.env["STEPWISE_SOAK"] === "1";
const REQUESTS = Number(process.env["STEPWISE_FUZZ_REQUESTS"] ?? (soak ? 10_000 : 2_000));
const SEED = Number(process.env["STEPWISE_FUZZ_SEED"] ?? 20_260_101);
const WARM_UP = 500;
/**
 * How much RSS may grow over the flood (measured after a warm-up batch and a full GC): allocator
 * pages kept after large bodies, not a leak. Measured at 10,000 requests: +10 to +45 MiB on
 * Postgres + Redis (and at 40,000 still within that band: it levels off, where a leak keeps
 * growing). The embedded backend also runs its database (PGlite) in this process, whose memory is
 * touched as it fills: +40 to +80 MiB there at 10,000.
 */
const RSS_GROWTH_LIMIT: Record<Backend, number> = { "pglite + memory": 128 * 1024 * 1024, "postgres + redis": 64 * 1024 * 1024 };
/**
 * How much the JS heap may grow (after a full GC): what a leak in the server's code would grow.
 * It holds the lifecycle messages of the runs that accepted events start, which the embedded
 * realtime log keeps (up to 100,000 messages): +4 to +7 MiB at 10,000 requests.
 */
const HEAP_GROWTH_LIMIT = 32 * 1024 * 1024;

/** Nesting of the deep bodies: the issue's 10,000 (a little more, so the depth varies). */
/** What one request answered. */
interface Answer {
  status: number;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

/** One chunk of spaces, written again and again (never changed, so one buffer serves every write). */
const CHUNK = Buffer.alloc(65536, 0x20);

/** Sends a chunked body (no Content-Length) of `chunks` 64 KiB chunks with node:http: on a connection of its own, or on `agent`'s. */
function sendChunked(url: string, request: FuzzRequest, agent: Agent | false = false): Promise<Answer> {
  const target = new URL(url);
  const headers: OutgoingHttpHeaders = { ...request.headers, "transfer-encoding": "chunked" };
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest({ host: target.hostname, port: target.port, path: request.path, method: request.method, headers, agent }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        body += chunk;
      });
      response.on("end", () => {
        // Answered before the body was all sent: stop sending it.
        if (agent === false) outgoing.destroy();
        resolve({ status: response.statusCode ?? 0, text: body, headers: response.headers });
      });
    });
    outgoing.on("error", reject);
    let sent = 0;
    const write = () => {
      while (sent < (request.chunks ?? 0)) {
        sent++;
        if (!outgoing.write(CHUNK)) {
          outgoing.once("drain", write);
          return;
        }
      }
      outgoing.end();
    };
    write();
  });
}

/** GET `path` on `agent`'s connection (the one a keep-alive agent kept). */
function getOn(agent: Agent, url: string, path: string): Promise<number> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest({ host: target.hostname, port: target.port, path, agent }, (response) => {
      response.resume();
      response.on("end", () => resolve(response.statusCode ?? 0));
    });
    outgoing.on("error", reject);
    outgoing.end();
  });
}

async function send(url: string, request: FuzzRequest): Promise<Answer> {
  if (request.chunks !== undefined) return sendChunked(url, request);
  const response = await fetch(url + request.path, {
    method: request.method,
    headers: request.headers,
    ...(request.body !== undefined && { body: request.body }),
    signal: AbortSignal.timeout(30_000),
  });
  return { status: response.status, text: await response.text(), headers: Object.fromEntries(response.headers) };
}

/** The request as a line to reproduce it from: keys shown by scope only, bodies cut. */
function describeRequest(request: FuzzRequest, targets: Targets): string {
  const redact = (value: string) =>
    value.replaceAll(targets.eventKey, "<event key>").replaceAll(targets.adminKey, "<admin key>").replaceAll(targets.readKey, "<read key>");
  const body =
    request.chunks !== undefined
      ? ` body: ${request.chunks} chunks of 64 KiB (chunked)`
      : request.body === undefined
        ? ""
        : ` body (${request.body.length} bytes): ${JSON.stringify(request.body.subarray(0, 160).toString("latin1"))}${request.body.length > 160 ? "…" : ""}`;
  return `${request.kind}: ${request.method} ${redact(request.path).slice(0, 200)} headers ${redact(JSON.stringify(request.headers))}${body}`;
}

/**
 * A full GC, twice with a turn of the event loop between (memory freed by finalizers, such as a
 * closed database's, goes on the second), then the process's memory. vitest's workers are not
 * started with --expose-gc, so the flag is set now and `gc` taken from a fresh context.
 */
async function settledMemory(): Promise<NodeJS.MemoryUsage> {
  let gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    setFlagsFromString("--expose-gc");
    gc = runInNewContext("gc") as () => void;
  }
  gc();
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  return process.memoryUsage();
}

const MiB = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

describe.each(BACKENDS)("malformed requests over HTTP on %s", (backend) => {
  let engine: TestEngine;
  let http: HttpServer;
  let targets: Targets;
  /** 5xx answers the server logged, by request id, with the error it logged. */
  const logged = new Map<string, string>();

  beforeAll(async () => {
    const stepwise = new Stepwise({ id: "fuzz" });
    stepwise.createFunction({ id: "receiver" }, { event: "fuzz/event" }, async ({ event, step }) => step.run("count", () => Object.keys(event.data).length));
    stepwise.createFunction({ id: "napper" }, { event: "fuzz/nap" }, async ({ step }) => {
      await step.sleep("long", "1d");
      return "woke";
    });
    stepwise.createWebhook({
      id: "github",
      verify: githubSignature({ secret: WEBHOOK_SECRET }),
      transform: ({ body }) => ({ name: "fuzz/event", data: body }),
    });
    engine = await createBackendEngine(backend, { clients: [stepwise] });
    const keys = memoryKeyStore();
    const logger: Logger = {
      debug: () => {},
      info: () => {},
      warn: () => {},
      error: (fields) => {
        const { requestId, error } = fields as { requestId?: string; error?: unknown };
        if (requestId) logged.set(requestId, String(error));
      },
    };
    const app = createServer({ engine, auth: { mode: "keys", keys }, logger, eventBodyBytes: EVENT_BODY_BYTES, maxBodyBytes: MAX_BODY_BYTES });
    http = await serveHttp(app);
    const [eventKey, adminKey, readKey] = await Promise.all(
      (["event", "admin", "read"] as const).map(async (scope) => (await createApiKey(keys, { scope, name: `fuzz ${scope}` })).key),
    );
    const ended = await engine.sendAndGetRuns([1, 2, 3].map((n) => ({ name: "fuzz/event", data: { n } })));
    for (const runId of ended.runIds) expect(await engine.result(runId, 30_000)).toMatchObject({ status: "completed" });
    const live = await engine.sendAndGetRuns([1, 2, 3].map((n) => ({ name: "fuzz/nap", data: { n } })));
    await engine.idle();
    for (const runId of live.runIds) expect((await engine.getRun(runId))?.status).toBe("sleeping");
    targets = {
      eventKey: eventKey as string,
      adminKey: adminKey as string,
      readKey: readKey as string,
      liveRunIds: live.runIds,
      endedRunIds: ended.runIds,
    };
  }, 60_000);

  afterAll(async () => {
    await http?.close();
    await engine?.close();
  });

  /** Sends `count` requests from `seed`; answers the failures (each with its request), the statuses and kinds seen, and the runs of accepted events. */
  async function flood(seed: number, count: number) {
    const rng = seededRandom(seed);
    const generators = kinds(targets);
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    const perKind = new Map<string, number>();
    const acceptedRuns: string[] = [];
    for (let index = 0; index < count; index++) {
      const request = (rng.pick(generators) as (rng: Rng) => FuzzRequest)(rng);
      perKind.set(request.kind, (perKind.get(request.kind) ?? 0) + 1);
      const fail = (why: string) => failures.push(`#${index} ${describeRequest(request, targets)} → ${why}`);
      let answer: Answer;
      try {
        answer = await send(http.url, request);
      } catch (error) {
        fail(`no answer: ${String((error as Error).cause ?? error)}`);
        continue;
      }
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      const requestId = String(answer.headers["x-request-id"] ?? "");
      const seen = `${answer.status} ${answer.text.slice(0, 300)}${logged.has(requestId) ? ` (logged: ${logged.get(requestId)?.slice(0, 300)})` : ""}`;
      let body: unknown;
      try {
        body = JSON.parse(answer.text);
      } catch {
        body = undefined;
      }
      if ("accepted" in request.expect) {
        if (answer.status !== 200) {
          fail(`expected 200 (accepted), got ${seen}`);
          continue;
        }
        const sent = JSON.parse((request.body as Buffer).toString("utf8")) as { data?: unknown };
        const [id] = (body as { ids: string[] }).ids;
        const stored = await engine.getEvent(id as string);
        if (!isDeepStrictEqual(stored?.data, sent.data)) fail(`stored as ${JSON.stringify(stored?.data)?.slice(0, 200)}`);
        const runs = await engine.runsForEvent(id as string);
        if (runs.length !== 1) fail(`started ${runs.length} runs`);
        acceptedRuns.push(...runs.map((run) => run.id));
        continue;
      }
      const { status, code } = request.expect;
      const shape = errorBodySchema.safeParse(body);
      if (answer.status !== status || !shape.success || (code !== undefined && shape.data.error.code !== code)) {
        fail(`expected ${status}${code ? ` ${code}` : ""} with { error: { code, message } }, got ${seen}`);
      }
    }
    return { failures, statuses, perKind, acceptedRuns };
  }

  it(`answers ${REQUESTS} malformed requests across the Event API and REST API with the 4xx each kind expects, no 5xx, RSS flat`, {
    timeout: soak ? 600_000 : 120_000,
  }, async () => {
    const warmUp = await flood(SEED + 1, WARM_UP);
    const before = await settledMemory();
    const started = Date.now();
    const result = await flood(SEED, REQUESTS);
    const seconds = (Date.now() - started) / 1000;
    const after = await settledMemory();
    const growth = after.rss - before.rss;

    const statusLine = [...result.statuses].sort(([a], [b]) => a - b).map(([status, count]) => `${count}×${status}`);
    console.log(
      `fuzz on ${backend}: seed ${SEED}, ${REQUESTS} malformed requests (${result.perKind.size} kinds) in ${seconds.toFixed(1)} s: ` +
        `${statusLine.join(", ")}; ${result.failures.length + warmUp.failures.length} not as expected; ` +
        `RSS ${MiB(before.rss)} after ${WARM_UP} warm-up requests → ${MiB(after.rss)} after the flood (${growth >= 0 ? "+" : ""}${MiB(growth)}), ` +
        `JS heap ${MiB(before.heapUsed)} → ${MiB(after.heapUsed)}`,
    );
    // One line per kind that did not answer as it expects: how often, and its first request.
    const byKind = new Map<string, string[]>();
    for (const failure of [...warmUp.failures, ...result.failures]) {
      const kind = failure.split(" ")[1] as string;
      byKind.set(kind, [...(byKind.get(kind) ?? []), failure]);
    }
    // Soft: a kind answered wrongly still lets the memory and liveness checks below report.
    expect.soft([...byKind].map(([kind, failures]) => `${kind} ×${failures.length}, first ${failures[0]}`)).toEqual([]);
    expect.soft([...result.statuses.keys()].filter((status) => status >= 500)).toEqual([]);
    expect.soft(growth).toBeLessThan(RSS_GROWTH_LIMIT[backend]);
    expect.soft(after.heapUsed - before.heapUsed).toBeLessThan(HEAP_GROWTH_LIMIT);

    // Alive: healthy, and a valid event is still accepted and its run completes, as do the runs
    // of the odd-but-valid events the flood sent.
    expect((await fetch(`${http.url}/health`)).status).toBe(200);
    const accepted = await fetch(`${http.url}/e/${targets.eventKey}`, {
      method: "POST",
      body: JSON.stringify({ name: "fuzz/event", data: { ok: 1 } }),
      headers: JSON_TYPE,
    });
    expect(accepted.status).toBe(200);
    const { ids } = (await accepted.json()) as { ids: string[] };
    const [run] = await engine.runsForEvent(ids[0] as string);
    expect(await engine.result(run?.id as string, 30_000)).toMatchObject({ status: "completed", output: 1 });
    for (const runId of [...warmUp.acceptedRuns, ...result.acceptedRuns]) expect((await engine.result(runId, 30_000)).status).toBe("completed");
    // The live runs were never cancelled by a malformed request.
    for (const runId of targets.liveRunIds) expect((await engine.getRun(runId))?.status).toBe("sleeping");
  });

  it("keeps a keep-alive connection usable after answering 413 to a chunked body it stopped reading", async () => {
    // A client reuses its connection unless the answer says `Connection: close`; the server may
    // close after a 413 (the rest of the body is unread), but must then say so.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const problems: string[] = [];
      for (const chunks of [20, 40]) {
        const request: FuzzRequest = {
          kind: "event/over-limit-chunked",
          method: "POST",
          path: `/e/${targets.eventKey}`,
          headers: JSON_TYPE,
          chunks,
          expect: { status: 413, code: "BODY_TOO_LARGE" },
        };
        const refused = await sendChunked(http.url, request, agent);
        expect(refused.status).toBe(413);
        const next = await getOn(agent, http.url, "/health").catch((error: Error) => error);
        if (next instanceof Error && refused.headers["connection"] !== "close") {
          problems.push(
            `POST /e/<event key> with ${chunks} × 64 KiB chunked (limit ${EVENT_BODY_BYTES}) → 413 with Connection: ${refused.headers["connection"]}; the next request on that connection: ${next.message}`,
          );
        }
      }
      expect(problems).toEqual([]);
    } finally {
      agent.destroy();
    }
  });
});
