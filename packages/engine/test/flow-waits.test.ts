import { Stepwise, type StepwiseEvent } from "@stepwise/core";
import { createEngine, createMemoryQueue, createSystemClock, type Engine, type Queue } from "@stepwise/engine";
import { createPostgresStore } from "@stepwise/postgres";
import { createTestPglite, createTestPostgres } from "@stepwise/postgres/testing";
import { createRedisQueue } from "@stepwise/redis";
import { createTestRedis } from "@stepwise/redis/testing";
import { BACKENDS, type Backend, createBackendEngine } from "@stepwise/testing";
import { describe, expect, it } from "vitest";

// CI size; `pnpm test:soak` (STEPWISE_SOAK=1) runs the 200 trials per delay.
const soak = process.env["STEPWISE_SOAK"] === "1";
const TRIALS = Number(process.env["STEPWISE_WAIT_TRIALS"] ?? (soak ? 200 : 40));

/** An engine on the system clock (the race below is in real time), on `backend`. */
async function realTimeEngine(backend: Backend, stepwise: Stepwise): Promise<{ engine: Engine; close(): Promise<void> }> {
  const clock = createSystemClock();
  const database = backend === "pglite + memory" ? await createTestPglite() : await createTestPostgres();
  const redis = backend === "postgres + redis" ? await createTestRedis() : undefined;
  const queue: Queue = redis ? createRedisQueue({ redis: redis.redis, clock, prefix: redis.prefix }) : createMemoryQueue({ clock });
  const engine = createEngine({ store: createPostgresStore({ pool: database.pool }), queue, clock, clients: [stepwise], reconcileIntervalMs: 86_400_000 });
  await engine.start();
  return {
    engine,
    async close() {
      await engine.stop();
      await queue.close();
      await redis?.close();
      await database.close();
    },
  };
}

describe.each(BACKENDS)("event waits on %s", (backend) => {
  it(`resolves a wait whose reply is sent 0, 5 or 50 ms after the trigger, every time, with lookback (${TRIALS} trials each)`, {
    timeout: 120_000,
  }, async () => {
    const stepwise = new Stepwise({ id: "chat" });
    stepwise.createFunction({ id: "ask" }, { event: "chat/asked" }, async ({ step }) => {
      const reply = await step.waitForEvent("reply", { event: "chat/replied", timeout: "20s", match: "data.thread", lookback: "5m" });
      return reply?.data["n"] ?? null;
    });
    const { engine, close } = await realTimeEngine(backend, stepwise);
    try {
      const outcomes = new Map<number, Array<unknown>>();
      for (const delay of [0, 5, 50]) {
        const trials = Array.from({ length: TRIALS }, async (_, n) => {
          const thread = `${delay}-${n}`;
          const { ids } = await engine.send({ name: "chat/asked", data: { thread } });
          await new Promise((resolve) => setTimeout(resolve, delay));
          await engine.send({ name: "chat/replied", data: { thread, n } });
          const [run] = await engine.runsForEvent(ids[0] as string);
          return (await engine.waitForRun(run?.id as string, { timeoutMs: 60_000 })).output;
        });
        outcomes.set(delay, await Promise.all(trials));
      }
      for (const [delay, outputs] of outcomes) {
        expect(outputs.filter((output) => output === null).length, `replies missed at ${delay} ms`).toBe(0);
        expect(outputs).toEqual(Array.from({ length: TRIALS }, (_, n) => n));
      }
    } finally {
      await close();
    }
  });

  it("resolves waitForAny on the first of its events and leaves no wait open, on an event or a timeout", async () => {
    const stepwise = new Stepwise({ id: "billing" });
    stepwise.createFunction({ id: "approve" }, { event: "invoice/sent" }, async ({ step }) => {
      const answer = await step.waitForAny(
        "answer",
        [
          { event: "invoice/approved", match: "data.invoiceId" },
          { event: "invoice/rejected", match: "data.invoiceId", if: "async.data.reason != ''" },
        ],
        { timeout: "1h" },
      );
      return answer === null ? "timed out" : answer.name;
    });
    await using engine = await createBackendEngine(backend, { clients: [stepwise] });
    const { runIds } = await engine.sendAndGetRuns([
      { name: "invoice/sent", data: { invoiceId: "i1" } },
      { name: "invoice/sent", data: { invoiceId: "i2" } },
      { name: "invoice/sent", data: { invoiceId: "i3" } },
    ]);
    await engine.idle();
    const open = async () => [...(await engine.store.findWaits("invoice/approved")), ...(await engine.store.findWaits("invoice/rejected"))];
    expect(await open()).toHaveLength(6);
    // An empty reason does not meet the condition; another invoice's event does not either.
    await engine.send({ name: "invoice/rejected", data: { invoiceId: "i1", reason: "" } });
    await engine.send({ name: "invoice/approved", data: { invoiceId: "i9" } });
    await engine.send({ name: "invoice/rejected", data: { invoiceId: "i1", reason: "too high" } });
    await engine.send({ name: "invoice/approved", data: { invoiceId: "i2" } });
    // The second answer for i2 finds the step resolved and changes nothing.
    await engine.send({ name: "invoice/rejected", data: { invoiceId: "i2", reason: "late" } });
    await engine.idle();
    expect((await engine.result(runIds[0] as string)).output).toBe("invoice/rejected");
    expect((await engine.result(runIds[1] as string)).output).toBe("invoice/approved");
    expect((await open()).map((wait) => wait.runId)).toEqual([runIds[2], runIds[2]]);
    await engine.advance("1h");
    expect((await engine.result(runIds[2] as string)).output).toBe("timed out");
    expect(await open()).toEqual([]);
  });

  it("matches a keyed wait by value among many open ones, and lookback finds a reply sent before the run started", async () => {
    const stepwise = new Stepwise({ id: "app" });
    stepwise.createFunction({ id: "await-pay" }, { event: "order/placed" }, async ({ step }) => {
      const paid = await step.waitForEvent("paid", { event: "order/paid", timeout: "1d", match: "data.orderId", lookback: "10m" });
      return (paid as StepwiseEvent | null)?.data["amount"] ?? null;
    });
    await using engine = await createBackendEngine(backend, { clients: [stepwise] });
    // Paid first, placed a minute later: the wait begins after its event arrived.
    await engine.send({ name: "order/paid", data: { orderId: "early", amount: 5 } });
    await engine.advance("1m");
    const { runIds } = await engine.sendAndGetRuns([
      { name: "order/placed", data: { orderId: "early" } },
      ...Array.from({ length: 20 }, (_, n) => ({ name: "order/placed", data: { orderId: `o${n}` } })),
    ]);
    await engine.idle();
    expect((await engine.result(runIds[0] as string)).output).toBe(5);
    await engine.send({ name: "order/paid", data: { orderId: "o7", amount: 70 } });
    await engine.idle();
    expect((await engine.result(runIds[8] as string)).output).toBe(70);
    expect((await engine.getRun(runIds[9] as string))?.status).toBe("waiting");
  });
});
