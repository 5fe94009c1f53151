import { Stepwise } from "@stepwise/core";
import { BACKENDS, createBackendEngine } from "@stepwise/testing";
import { describe, expect, it } from "vitest";

describe.each(BACKENDS)("rateLimit on %s", (backend) => {
  it("skips events over the limit per key, records each skip as a run, and refills over the period", async () => {
    const stepwise = new Stepwise({ id: "app" });
    let executed = 0;
    stepwise.createFunction({ id: "digest", rateLimit: { limit: 3, period: "1m", key: "event.data.userId" } }, { event: "user/active" }, async () => {
      executed++;
      return "sent";
    });
    await using engine = await createBackendEngine(backend, { clients: [stepwise] });
    const skipped: string[] = [];
    engine.on((event) => {
      if (event.type === "run-skipped") skipped.push(event.reason);
    });
    const active = (userId: string, count: number) => Array.from({ length: count }, () => ({ name: "user/active", data: { userId } }));
    const count = async (status: "completed" | "skipped") => (await engine.listRuns({ functionId: "app/digest", status, limit: 1000 })).length;

    await engine.send([...active("a", 5), ...active("b", 2)]);
    await engine.idle();
    expect(await count("completed")).toBe(5);
    expect(await count("skipped")).toBe(2);
    expect(executed).toBe(5);
    const [skip] = await engine.listRuns({ functionId: "app/digest", status: "skipped" });
    expect(skip?.error).toMatchObject({ code: "RATE_LIMITED", message: 'rate limit of 3 per 60 s reached for key "a"; the event started no run' });
    expect(skipped).toHaveLength(2);

    // One more every 20 s (period / limit): at 19.999 s none, at 20 s one.
    await engine.advance(19_999);
    await engine.send(active("a", 1));
    await engine.advance(1);
    await engine.send(active("a", 2));
    await engine.idle();
    expect(await count("completed")).toBe(6);
    expect(await count("skipped")).toBe(2 + 1 + 1);

    // A full period later the burst of 3 is back; "b" had room for one more all along.
    await engine.advance("1m");
    await engine.send([...active("a", 4), ...active("b", 2)]);
    await engine.idle();
    expect(await count("completed")).toBe(6 + 3 + 2);
    expect(await count("skipped")).toBe(4 + 1);
    expect(executed).toBe(11);
  });
});
