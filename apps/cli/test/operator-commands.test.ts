import { fileURLToPath } from "node:url";
import { createApiClient, type RunInfo, type StepwiseApi } from "@stepwise/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey } from "./helpers/event-key.js";
import { runCli } from "./helpers/spawn-cli.js";
import { killHard } from "./helpers/spawn-dev.js";
import { type ProductionProcess, spawnProduction } from "./helpers/spawn-production.js";
import { usePostgresAndRedis } from "./helpers/use-postgres-and-redis.js";
import { waitFor } from "./helpers/wait-for.js";

// `stepwise runs …` and `stepwise events …` run as an operator runs them, as child processes,
// against one `stepwise start` on Postgres + Redis that every test shares. The test sets up and
// checks through the typed API client, so what the CLI claims is compared with what the server holds.

const functions = fileURLToPath(new URL("./fixtures/operator-functions.ts", import.meta.url));
const redisUrl = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379";

describe("stepwise runs and stepwise events against stepwise start", () => {
  const fixture = usePostgresAndRedis();
  let server: ProductionProcess;
  let url: string;
  let keys: { read: string; control: string };
  /** The client with the control key: what the tests set up and check with. */
  let api: StepwiseApi;
  /** The echo runs, in the order their events were sent (oldest first), all completed. */
  const echoRuns: RunInfo[] = [];
  const echoEventIds: string[] = [];

  /** `stepwise <args>` with the read key in STEPWISE_API_KEY (and nothing from this process's own). */
  const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, { STEPWISE_API_KEY: keys.read, STEPWISE_BASE_URL: "", ...env });
  const lines = (text: string) => text.trimEnd().split("\n");

  /** Sends an event and answers the run it started. */
  const start = async (name: string, data: Record<string, unknown>): Promise<{ eventId: string; run: RunInfo }> => {
    const { ids } = await api.send({ name, data });
    const eventId = ids[0] as string;
    const run = await waitFor(`the run of ${eventId}`, async () => (await api.runsForEvent(eventId))[0]);
    return { eventId, run };
  };
  const sleepingRun = async (): Promise<RunInfo> => {
    const { run } = await start("ops/nap", {});
    return waitFor(`${run.id} to sleep`, async () => {
      const { run: current } = await api.getRun(run.id);
      return current.status === "sleeping" ? current : undefined;
    });
  };

  beforeAll(async () => {
    const { database, redis } = fixture;
    const env = { DATABASE_URL: database.url, REDIS_URL: redisUrl, STEPWISE_REDIS_PREFIX: redis.prefix };
    server = await spawnProduction({ mode: "start", args: ["--functions", functions, "--quiet"], env });
    url = server.url as string;
    const [read, control] = await Promise.all([createKey(database.url, "read"), createKey(database.url, "control")]);
    keys = { read, control };
    api = createApiClient({ baseUrl: url, apiKey: control, eventKey: control });
    // One at a time, so that "newest first" has an order to show.
    for (const n of [1, 2, 3]) {
      const { eventId, run } = await start("ops/echo", { text: `hello ${n}` });
      echoEventIds.push(eventId);
      echoRuns.push(await api.waitForRun(run.id, { timeoutMs: 30_000 }));
    }
  }, 90_000);

  afterAll(async () => {
    if (server) await killHard(server.child);
  });

  it("runs list prints a table of the runs, newest first, says how to get the next page, and --json prints the page", async () => {
    expect(echoRuns.map((run) => run.status)).toEqual(["completed", "completed", "completed"]);
    const newestFirst = echoRuns.map((run) => run.id).reverse();
    const base = ["runs", "list", "--url", url, "--function", "echo"];
    const [first, json] = await Promise.all([cli([...base, "--limit", "2"]), cli([...base, "--limit", "2", "--json"])]);

    expect(first.code, first.stderr).toBe(0);
    const [header, ...rest] = lines(first.stdout);
    expect(header).toMatch(/^RUN\s+FUNCTION\s+STATUS\s+CREATED\s+ENDED\s+DURATION$/);
    const rows = rest.slice(0, 2);
    expect(rows.map((row) => row.split(/\s+/)[0])).toEqual(newestFirst.slice(0, 2));
    for (const row of rows) expect(row).toMatch(/^run_\S+\s+ops-cli\/echo\s+completed\s+\d{4}-\d\d-\d\dT\S+Z\s+\d{4}-\d\d-\d\dT\S+Z\s+\d+(\.\d)? m?s$/);
    const more = /^more: repeat the command with --cursor (\S+)$/.exec(rest[2] ?? "");
    expect(more, first.stdout).not.toBeNull();
    expect(rest).toHaveLength(3);

    expect(json.code, json.stderr).toBe(0);
    const page = JSON.parse(json.stdout) as { runs: RunInfo[]; nextCursor: string | null };
    expect(page).toEqual(await api.listRuns({ function: "echo", limit: 2 }));
    expect(page.nextCursor).toBe(more?.[1]);

    const napping = await sleepingRun();
    const [second, sleeping] = await Promise.all([
      cli([...base, "--limit", "2", "--cursor", more?.[1] as string]),
      cli(["runs", "list", "--url", url, "--status", "sleeping"]),
    ]);
    expect(second.code, second.stderr).toBe(0);
    const secondRows = lines(second.stdout).slice(1);
    expect(secondRows.map((row) => row.split(/\s+/)[0])).toEqual(newestFirst.slice(2));
    expect(second.stdout).not.toMatch(/--cursor/);
    expect(lines(sleeping.stdout).slice(1)).toEqual([expect.stringMatching(new RegExp(`^${napping.id}\\s+ops-cli/napper\\s+sleeping\\s+\\S+\\s+-\\s+-$`))]);
  });

  it("runs show prints the run with its output and its steps; a run that does not exist is RUN_NOT_FOUND", async () => {
    const [done, napping] = [echoRuns[0] as RunInfo, await sleepingRun()];
    const [shown, json, nap, missing] = await Promise.all([
      cli(["runs", "show", done.id, "--url", url]),
      cli(["runs", "show", done.id, "--url", url, "--json"]),
      cli(["runs", "show", napping.id, "--url", url]),
      cli(["runs", "show", "run_missing", "--url", url]),
    ]);

    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`^run +${done.id}$`, "m"));
    expect(shown.stdout).toMatch(/^function +ops-cli\/echo$/m);
    expect(shown.stdout).toMatch(/^status +completed$/m);
    expect(shown.stdout).toMatch(new RegExp(`^event +${echoEventIds[0]}$`, "m"));
    expect(shown.stdout).toMatch(/^output +\{"shout":"HELLO 1!"\}$/m);
    expect(shown.stdout).toMatch(/^STEP\s+KIND\s+STATUS\s+ATTEMPT\s+DURATION\s+RESULT$/m);
    expect(shown.stdout).toMatch(/^upper\s+run\s+completed\s+1\s+\d+(\.\d)? m?s\s+"HELLO 1"$/m);
    expect(shown.stdout).toMatch(/^shout\s+run\s+completed\s+1\s+\d+(\.\d)? m?s\s+"HELLO 1!"$/m);
    expect(JSON.parse(json.stdout)).toEqual(await api.getRun(done.id));

    expect(nap.stdout).toMatch(/^status +sleeping$/m);
    expect(nap.stdout).toMatch(/^before\s+run\s+completed\s+1\s+\S+ m?s\s+"awake"$/m);
    expect(nap.stdout).toMatch(/^long\s+sleep\s+waiting\s+1\s+-$/m);

    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe("");
    expect(lines(missing.stderr)).toEqual(['RUN_NOT_FOUND (HTTP 404): no run with id "run_missing"; see `stepwise runs list` for the runs there are']);
  });

  it("runs cancel cancels a sleeping run, says so again for a cancelled one, and refuses one that ended", async () => {
    const napping = await sleepingRun();
    const cancel = (id: string) => cli(["runs", "cancel", id, "--reason", "stopped from the CLI", "--url", url], { STEPWISE_API_KEY: keys.control });
    const cancelled = await cancel(napping.id);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect(cancelled.stdout.trim()).toBe(`cancelled ${napping.id}`);

    const { run } = await api.getRun(napping.id);
    expect(run.status).toBe("cancelled");
    expect(run.error?.message).toMatch(/stopped from the CLI/);
    const [shown, again, ended] = await Promise.all([cli(["runs", "show", napping.id, "--url", url]), cancel(napping.id), cancel(echoRuns[1]?.id as string)]);
    expect(shown.stdout).toMatch(/^status +cancelled$/m);
    expect(shown.stdout).toMatch(/^error +.*stopped from the CLI/m);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.trim()).toBe(`${napping.id} was already cancelled; nothing changed`);
    expect(ended.code).toBe(1);
    expect(lines(ended.stderr)).toHaveLength(1);
    expect(ended.stderr).toMatch(/^RUN_ALREADY_ENDED \(HTTP 409\): run \S+ had already completed/);
  });

  it("runs rerun starts a new run of the same event, from the start or from a step", async () => {
    const original = echoRuns[2] as RunInfo;
    const [plain, fromStep, noSuchStep] = await Promise.all([
      cli(["runs", "rerun", original.id, "--url", url], { STEPWISE_API_KEY: keys.control }),
      cli(["runs", "rerun", original.id, "--from-step", "shout", "--url", url, "--json"], { STEPWISE_API_KEY: keys.control }),
      cli(["runs", "rerun", original.id, "--from-step", "nope", "--url", url], { STEPWISE_API_KEY: keys.control }),
    ]);

    expect(plain.code, plain.stderr).toBe(0);
    const started = /^started (\S+) \((\w+)\), a rerun of (\S+)\nfollow it: stepwise runs show (\S+)$/.exec(plain.stdout.trim());
    expect(started, plain.stdout).not.toBeNull();
    expect(started?.[3]).toBe(original.id);
    expect(started?.[4]).toBe(started?.[1]);
    expect(fromStep.code, fromStep.stderr).toBe(0);
    const fromStepRun = (JSON.parse(fromStep.stdout) as { run: RunInfo }).run;

    for (const id of [started?.[1] as string, fromStepRun.id]) {
      expect(id).not.toBe(original.id);
      const rerun = await api.waitForRun(id, { timeoutMs: 30_000 });
      expect(rerun).toMatchObject({ status: "completed", rerunOf: original.id, eventId: original.eventId, output: { shout: "HELLO 3!" } });
    }
    expect(noSuchStep.code).toBe(1);
    expect(noSuchStep.stderr).toMatch(/^STEP_NOT_FOUND \(HTTP 404\): run \S+ has no step "nope".*; see `stepwise runs show <run id>` for the run's steps\n$/);
  });

  it("events list prints a table of the events, newest first, at STEPWISE_BASE_URL when there is no --url", async () => {
    const env = { STEPWISE_BASE_URL: url };
    const [all, paged, json, future] = await Promise.all([
      cli(["events", "list", "--name", "ops/echo"], env),
      cli(["events", "list", "--name", "ops/echo", "--limit", "1"], env),
      cli(["events", "list", "--name", "ops/echo", "--json"], env),
      cli(["events", "list", "--since", "2999-01-01T00:00:00Z"], env),
    ]);

    expect(all.code, all.stderr).toBe(0);
    const [header, ...rows] = lines(all.stdout);
    expect(header).toMatch(/^EVENT\s+NAME\s+RECEIVED\s+DATA$/);
    expect(rows.map((row) => row.split(/\s+/)[0])).toEqual([...echoEventIds].reverse());
    expect(rows[0]).toMatch(/^\S+\s+ops\/echo\s+\d{4}-\d\d-\d\dT\S+Z\s+\{"text":"hello 3"\}$/);
    expect(lines(paged.stdout)).toHaveLength(3);
    expect(lines(paged.stdout)[2]).toMatch(/^more: repeat the command with --cursor \S+$/);
    expect(JSON.parse(json.stdout)).toEqual(await api.listEvents({ name: "ops/echo" }));
    expect(future.stdout.trim()).toBe("no events match");
  });

  it("a missing or wrong key is UNAUTHORIZED with how to get one, a read key cannot cancel, both exit 1", async () => {
    // The read key's id with another secret.
    const wrong = `${keys.read.slice(0, -4)}${keys.read.endsWith("AAAA") ? "BBBB" : "AAAA"}`;
    const [missing, invalid, weak] = await Promise.all([
      cli(["runs", "list", "--url", url], { STEPWISE_API_KEY: "" }),
      cli(["events", "list", "--url", url, "--key", wrong]),
      cli(["runs", "cancel", echoRuns[0]?.id as string, "--url", url]),
    ]);
    for (const result of [missing, invalid]) {
      expect(result.code).toBe(1);
      expect(result.stdout).toBe("");
      expect(lines(result.stderr)).toHaveLength(1);
      expect(result.stderr).toMatch(/^UNAUTHORIZED \(HTTP 401\): .*; set STEPWISE_API_KEY to a key from `stepwise keys create --scope read`$/m);
    }
    expect(invalid.stderr).toMatch(/the key is not valid/);
    expect(weak.code).toBe(1);
    expect(lines(weak.stderr)).toEqual([
      expect.stringMatching(/^FORBIDDEN \(HTTP 403\): .*this command needs a key with scope control .*`stepwise keys create --scope control`$/),
    ]);
    expect((await api.getRun(echoRuns[0]?.id as string)).run.status).toBe("completed");
  });

  it("refuses unknown options and bad values before sending anything", async () => {
    const at = ["--url", url];
    const [unknown, status, limit, since, range] = await Promise.all([
      cli(["runs", "list", "--colour", ...at]),
      cli(["runs", "list", "--status", "done", ...at]),
      cli(["runs", "list", "--limit", "501", ...at]),
      cli(["events", "list", "--since", "yesterday", ...at]),
      cli(["events", "list", "--since", "2030-01-02", "--until", "2030-01-01", ...at]),
    ]);
    for (const result of [unknown, status, limit, since, range]) expect(result.code).toBe(1);
    expect(unknown.stderr).toMatch(/error: unknown option '--colour'/);
    expect(status.stderr).toMatch(
      /--status <status>' argument 'done' is invalid\. must be one of queued, running, sleeping, waiting, completed, failed, cancelled/,
    );
    expect(limit.stderr).toMatch(/--limit <n>' argument '501' is invalid\. must be a whole number from 1 to 500/);
    expect(since.stderr).toMatch(/--since <time>' argument 'yesterday' is invalid\. must be epoch milliseconds or an ISO 8601 date/);
    expect(range.stderr.trim()).toBe("--since (2030-01-02T00:00:00.000Z) is after --until (2030-01-01T00:00:00.000Z)");
  });
});
