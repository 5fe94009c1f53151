import { randomInt, randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { createApiClient, type RealtimeMessageInfo, realtimeMessageSchema, type StepwiseApi } from "@stepwise/core";
import { compareMessageIds } from "@stepwise/engine";
import { readSse, type SseEvent, seededRandom } from "@stepwise/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEventKey, createKey } from "./helpers/event-key.js";
import { killHard } from "./helpers/spawn-dev.js";
import { type ProductionProcess, spawnProduction } from "./helpers/spawn-production.js";
import { usePostgresAndRedis } from "./helpers/use-postgres-and-redis.js";
import { waitFor } from "./helpers/wait-for.js";

// The realtime issue: "a subscriber reading 1,000 messages published from a worker process
// through a server process is cut off 10 times at random and reconnects with Last-Event-ID: the
// messages it saw are exactly 1..1000 in order. A token for one channel cannot subscribe to
// another; an expired one is a 401."
//
// One `stepwise start` (the server) and one `stepwise worker`, on one Postgres and one Redis
// prefix. The server routes the event, so it must know the function; it runs with
// `--concurrency 1` and a run that never ends holding that one slot, so the feed can only run in
// the worker, which the pids the feed's steps answer confirm. The test process is the browser:
// a token from POST /v1/realtime/token, GET /v1/realtime with it, cut off after message counts
// drawn from a seed printed with the summary (STEPWISE_REALTIME_SEED replays one).
//
// CI reads 300 messages; `pnpm test:soak` (STEPWISE_SOAK=1) reads the 1,000.
const soak = process.env["STEPWISE_SOAK"] === "1";
const MESSAGES = Number(process.env["STEPWISE_REALTIME_MESSAGES"] ?? (soak ? 1000 : 300));
const CUTS = 10;
const SEED = Number(process.env["STEPWISE_REALTIME_SEED"] ?? randomInt(2 ** 31));
/** Between two publishes: the feed lasts a few seconds, so that the cuts land while it goes on (ms). */
const PAUSE_MS = 3;

const functions = fileURLToPath(new URL("./fixtures/realtime-functions.ts", import.meta.url));
const redisUrl = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379";

/** `count` distinct message counts in 1..total-1, after which the reader is cut off. */
function cutPoints(seed: number, count: number, total: number): Set<number> {
  const rng = seededRandom(seed).next;
  const cuts = new Set<number>();
  while (cuts.size < count) cuts.add(1 + Math.floor(rng() * (total - 1)));
  return cuts;
}

/** What the reader saw over all its connections. */
interface FeedReading {
  /** Every message event, in the order read: its SSE `id` and the parsed message. */
  messages: Array<{ sseId?: string; message: RealtimeMessageInfo }>;
  /** `n` of each `tick`, in the order read. */
  ticks: number[];
  /** When each cut happened (epoch ms), and after how many ticks. */
  cuts: Array<{ at: number; afterTicks: number }>;
  /** Streams that ended without the reader cutting them off (the server closed them). */
  unplannedEnds: number;
  /** Events other than `ready` and `message` (`gap`, `overflow`). */
  unexpected: SseEvent[];
}

/**
 * Follows `channel` with `token` from the live end (no Last-Event-ID on the first connection),
 * or after `after`, until the `done` message, as a browser's EventSource would: calls `onLive` once the first
 * stream says `ready`, aborts the request after each tick count in `cutAfter`, and reconnects
 * at once with `Last-Event-ID` set to the last id it saw.
 */
async function readFeed(options: {
  url: string;
  channel: string;
  token: string;
  after?: string;
  cutAfter: Set<number>;
  onLive: () => Promise<void>;
  timeoutMs: number;
}): Promise<FeedReading> {
  const reading: FeedReading = { messages: [], ticks: [], cuts: [], unplannedEnds: 0, unexpected: [] };
  const streamUrl = `${options.url}/v1/realtime?${new URLSearchParams({ channel: options.channel, token: options.token })}`;
  let lastId = options.after;
  let live = false;
  let done = false;
  let current: AbortController | undefined;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    current?.abort();
  }, options.timeoutMs);
  const progress = () => `${reading.ticks.length} ticks, ${reading.cuts.length} cuts, last id ${lastId}`;
  try {
    while (!done) {
      if (timedOut) throw new Error(`the feed did not end in ${options.timeoutMs} ms (${progress()})`);
      const abort = new AbortController();
      current = abort;
      let cut = false;
      try {
        const response = await fetch(streamUrl, { headers: lastId === undefined ? {} : { "last-event-id": lastId }, signal: abort.signal });
        if (response.status !== 200) throw new Error(`GET /v1/realtime (Last-Event-ID ${lastId}) answered ${response.status}: ${await response.text()}`);
        for await (const event of readSse(response)) {
          if (event.event === "ready") {
            if (!live) {
              live = true;
              await options.onLive();
            }
            continue;
          }
          if (event.event !== "message") {
            reading.unexpected.push(event);
            continue;
          }
          const message = realtimeMessageSchema.parse(JSON.parse(event.data));
          reading.messages.push({ sseId: event.id, message });
          lastId = event.id;
          if (message.topic === "done") {
            done = true;
            break;
          }
          reading.ticks.push((message.data as { n: number }).n);
          if (options.cutAfter.has(reading.ticks.length)) {
            cut = true;
            break;
          }
        }
      } catch (error) {
        if (timedOut) throw new Error(`the feed did not end in ${options.timeoutMs} ms (${progress()})`, { cause: error });
        throw error;
      } finally {
        abort.abort();
      }
      if (cut) reading.cuts.push({ at: Date.now(), afterTicks: reading.ticks.length });
      else if (!done) reading.unplannedEnds++;
    }
  } finally {
    clearTimeout(timer);
  }
  return reading;
}

/** The numbers in 1..total that `seen` lacks, and those it holds more than once. */
function gapsAndDuplicates(seen: number[], total: number): { missing: number[]; duplicated: number[] } {
  const counts = new Map<number, number>();
  for (const n of seen) counts.set(n, (counts.get(n) ?? 0) + 1);
  const missing = Array.from({ length: total }, (_, index) => index + 1).filter((n) => !counts.has(n));
  const duplicated = [...counts].filter(([, count]) => count > 1).map(([n]) => n);
  return { missing, duplicated };
}

describe("realtime across processes: a worker publishes, stepwise start streams it", () => {
  const fixture = usePostgresAndRedis();
  let server: ProductionProcess;
  let worker: ProductionProcess;
  let url: string;
  let readKey: string;
  /** Read key for the API, event key for sending. */
  let api: StepwiseApi;
  /** A token of one second, minted before the feed test so that it has expired by the token test. */
  let shortLived: { token: string; expiresAt: number; channel: string };

  const mintToken = async (body: { channels: string[]; ttlSeconds?: number }): Promise<{ token: string; expiresAt: number }> => {
    const response = await fetch(`${url}/v1/realtime/token`, {
      method: "POST",
      body: JSON.stringify(body),
      headers: { authorization: `Bearer ${readKey}`, "content-type": "application/json" },
    });
    if (response.status !== 201) throw new Error(`POST /v1/realtime/token answered ${response.status}: ${await response.text()}`);
    return (await response.json()) as { token: string; expiresAt: number };
  };
  const streamUrl = (channel: string, token: string) => `${url}/v1/realtime?${new URLSearchParams({ channel, token })}`;

  beforeAll(async () => {
    const { database, redis } = fixture;
    const env = { DATABASE_URL: database.url, REDIS_URL: redisUrl, STEPWISE_REDIS_PREFIX: redis.prefix };
    server = await spawnProduction({ mode: "start", args: ["--functions", functions, "--concurrency", "1", "--quiet"], env });
    url = server.url as string;
    const eventKey = await createEventKey(database.url);
    readKey = await createKey(database.url, "read");
    api = createApiClient({ baseUrl: url, apiKey: readKey, eventKey });
    // The server is alone: it starts the hold run itself (eager start), in its only slot.
    const { ids } = await api.send({ name: "feed/hold", data: {} });
    const holdRun = await waitFor("the hold run", async () => (await api.runsForEvent(ids[0] as string))[0]);
    await waitFor("the hold run to be running", async () => ((await api.getRun(holdRun.id)).run.status === "running" ? true : undefined));
    worker = await spawnProduction({ mode: "worker", args: ["--functions", functions, "--quiet"], env });
    const channel = `feed:${randomUUID()}`;
    shortLived = { ...(await mintToken({ channels: [channel], ttlSeconds: 1 })), channel };
  }, 60_000);

  afterAll(async () => {
    for (const running of [worker, server]) if (running) await killHard(running.child);
  });

  it(`a subscriber cut off ${CUTS} times at random reads exactly 1..${MESSAGES} in order, published from the worker process`, {
    timeout: soak ? 120_000 : 60_000,
  }, async () => {
    const channel = `feed:${randomUUID()}`;
    const { token } = await mintToken({ channels: [channel] });
    const cutAfter = cutPoints(SEED, CUTS, MESSAGES);
    let eventId: string | undefined;
    const started = performance.now();
    const reading = await readFeed({
      url,
      channel,
      token,
      cutAfter,
      // Subscribed (live, from the stream's end): only now is the feed started.
      onLive: async () => {
        eventId = (await api.send({ name: "feed/publish", data: { channel, count: MESSAGES, batch: 50, pauseMs: PAUSE_MS } })).ids[0];
      },
      timeoutMs: soak ? 90_000 : 40_000,
    });
    const seconds = (performance.now() - started) / 1000;

    let replay = `replay with STEPWISE_REALTIME_SEED=${SEED}; cuts after ${[...cutAfter].sort((a, b) => a - b).join(", ")} ticks`;
    const sequence = gapsAndDuplicates(reading.ticks, MESSAGES);
    if (sequence.missing.length > 0 || sequence.duplicated.length > 0) {
      // Tells a delivery fault from a publishing one: what the channel's log holds, read in one go.
      const log = await readFeed({ url, channel, token, after: "0-0", cutAfter: new Set(), onLive: async () => {}, timeoutMs: 10_000 });
      replay += `; the channel's log, read from 0-0 in one stream: ${JSON.stringify(gapsAndDuplicates(log.ticks, MESSAGES))}`;
    }
    expect(sequence, replay).toEqual({ missing: [], duplicated: [] });
    expect(reading.ticks, replay).toEqual(Array.from({ length: MESSAGES }, (_, index) => index + 1));
    expect(reading.cuts.map((cut) => cut.afterTicks)).toEqual([...cutAfter].sort((a, b) => a - b));
    expect(reading.unplannedEnds, "streams the server ended").toBe(0);
    expect(reading.unexpected, "gap or overflow events").toEqual([]);
    // Each SSE id is its message's id, increasing over all the connections; all on the channel.
    const ids = reading.messages.map(({ sseId }) => sseId as string);
    expect(reading.messages.every(({ sseId, message }) => sseId === message.id && message.channel === channel)).toBe(true);
    for (const [index, id] of ids.entries())
      if (index > 0) expect(compareMessageIds(ids[index - 1] as string, id), `${ids[index - 1]} before ${id}`).toBeLessThan(0);
    expect(reading.messages.map(({ message }) => message.topic)).toEqual([...Array<string>(MESSAGES).fill("tick"), "done"]);
    expect(reading.messages.at(-1)?.message.data).toEqual({ count: MESSAGES });

    // The feed ran in the worker: every one of its steps answered the worker's pid.
    const run = await waitFor("the feed run", async () => (await api.runsForEvent(eventId as string))[0]);
    const finished = await api.waitForRun(run.id, { timeoutMs: 30_000 });
    expect(finished.status).toBe("completed");
    expect(worker.child.pid).not.toBe(server.child.pid);
    expect(finished.output).toEqual({ pids: [worker.child.pid] });

    // The cuts landed while the worker was still publishing, not only in the history afterwards.
    const lastTickTs = reading.messages[MESSAGES - 1]?.message.ts as number;
    const cutsWhilePublishing = reading.cuts.filter((cut) => cut.at < lastTickTs).length;
    expect(cutsWhilePublishing, "cuts before the last tick was published").toBeGreaterThan(0);

    console.log(
      `realtime across processes: N=${MESSAGES}, reconnects=${reading.cuts.length} (${cutsWhilePublishing} while publishing), messages=${reading.ticks.length}, seconds=${seconds.toFixed(1)}, seed=${SEED}`,
    );
  });

  it("a token for one channel cannot subscribe to another (403), and an expired one is a 401", async () => {
    const [mine, other] = [`feed:${randomUUID()}`, `feed:${randomUUID()}`];
    const { token } = await mintToken({ channels: [mine] });

    const denied = await fetch(streamUrl(other, token));
    expect(denied.status).toBe(403);
    expect(await denied.json()).toEqual({ error: expect.objectContaining({ code: "FORBIDDEN", message: expect.stringContaining(JSON.stringify(mine)) }) });
    // The same token follows its own channel: the refusal is about the channel.
    const abort = new AbortController();
    const allowed = await fetch(streamUrl(mine, token), { signal: abort.signal });
    try {
      expect(allowed.status).toBe(200);
      const first = await readSse(allowed).next();
      expect(first.value).toMatchObject({ event: "ready" });
    } finally {
      abort.abort();
    }

    // A wall-clock condition: the server compares expiry with its own clock on this same machine.
    await waitFor("the short-lived token to expire", () => (Date.now() > shortLived.expiresAt ? true : undefined), 5000);
    const expired = await fetch(streamUrl(shortLived.channel, shortLived.token));
    expect(expired.status).toBe(401);
    expect(await expired.json()).toEqual({ error: expect.objectContaining({ code: "UNAUTHORIZED", message: expect.stringMatching(/expired/) }) });
  });
});
