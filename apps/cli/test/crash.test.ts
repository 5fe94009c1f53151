import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { type DevProcess, getJson, killHard, spawnDev } from "./helpers/spawn-dev.js";

// CI runs a few runs; `pnpm test:soak` (STEPWISE_SOAK=1) runs 100 (a worker runs at most 100 at once,
// and all must sit in step 3 at the kill).
const soak = process.env["STEPWISE_SOAK"] === "1";
const RUNS = Number(process.env["STEPWISE_CRASH_RUNS"] ?? (soak ? 100 : 5));

describe("crash safety with real processes", () => {
  const dir = mkdtempSync(join(tmpdir(), "stepwise-crash-"));
  const functions = fileURLToPath(new URL("./fixtures/crash-functions.ts", import.meta.url));
  const env = { STEPWISE_CRASH_LOG: join(dir, "bodies.log"), STEPWISE_CRASH_RELEASE: join(dir, "release") };
  const processes: DevProcess[] = [];
  afterAll(async () => {
    for (const dev of processes) await killHard(dev.child);
    rmSync(dir, { recursive: true, force: true });
  });

  const bodyCounts = () => {
    const lines = existsSync(env.STEPWISE_CRASH_LOG) ? readFileSync(env.STEPWISE_CRASH_LOG, "utf8").trim().split("\n").filter(Boolean) : [];
    const counts = new Map<string, number>();
    for (const line of lines) counts.set(line, (counts.get(line) ?? 0) + 1);
    return counts;
  };

  it(`completes ${RUNS} multi-step runs after kill -9 in step 3; steps 1 and 2 ran exactly once`, { timeout: 180_000 }, async () => {
    const first = await spawnDev({ functions, dataDir: join(dir, "data"), env });
    processes.push(first);
    const events = Array.from({ length: RUNS }, (_, n) => ({ name: "crash/start", data: { n } }));
    const { ids } = await getJson<{ ids: string[] }>(`${first.url}/e/dev`, { method: "POST", body: JSON.stringify(events) });
    expect(ids).toHaveLength(RUNS);

    // Wait until every run has committed steps 1 and 2 and is inside step 3.
    await waitUntil(() => [...bodyCounts().keys()].filter((line) => line.startsWith("step-3")).length === RUNS, 60_000);
    await killHard(first.child);

    writeFileSync(env.STEPWISE_CRASH_RELEASE, "go");
    const second = await spawnDev({ functions, dataDir: join(dir, "data"), env });
    processes.push(second);
    for (const [n, id] of ids.entries()) {
      const { runs } = await getJson<{ runs: Array<{ id: string }> }>(`${second.url}/v1/events/${id}/runs`);
      expect(runs).toHaveLength(1);
      const { run } = await getJson<{ run: { status: string; output: unknown } }>(`${second.url}/v1/runs/${runs[0]?.id}/wait?timeout=60000`);
      expect(run).toMatchObject({ status: "completed", output: { a: n, b: n * 10, c: n * 10 + 1 } });
      const { steps } = await getJson<{ steps: Array<{ id: string; status: string }> }>(`${second.url}/v1/runs/${runs[0]?.id}`);
      expect(steps.map((step) => `${step.id}:${step.status}`).sort()).toEqual(["step-1:completed", "step-2:completed", "step-3:completed"]);
    }

    const counts = bodyCounts();
    for (let n = 0; n < RUNS; n++) {
      expect(counts.get(`step-1 ${n}`)).toBe(1);
      expect(counts.get(`step-2 ${n}`)).toBe(1);
      const third = counts.get(`step-3 ${n}`) ?? 0;
      expect(third).toBeGreaterThanOrEqual(1);
      expect(third).toBeLessThanOrEqual(2);
    }
  });
});

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
