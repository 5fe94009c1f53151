import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type DevServer, main, startDev } from "../src/index.js";

const functions = fileURLToPath(new URL("./fixtures/echo-functions.ts", import.meta.url));

describe("stepwise dev over HTTP", () => {
  const dir = mkdtempSync(join(tmpdir(), "stepwise-dev-"));
  const dataDir = join(dir, "data");
  let server: DevServer;

  beforeAll(async () => {
    server = await startDev({ functions, dataDir, port: 0, print: false });
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const post = (path: string, body: string) => fetch(`${server.url}${path}`, { method: "POST", body, headers: { "content-type": "application/json" } });
  const getJson = async (path: string): Promise<unknown> => (await fetch(`${server.url}${path}`)).json();

  it("answers bad input with a clear 4xx error and keeps what it accepted", async () => {
    const accepted = await post("/e/dev", JSON.stringify({ name: "demo/echo", data: { text: "kept" } }));
    expect(accepted.status).toBe(200);
    const { ids } = (await accepted.json()) as { ids: string[] };

    const cases: Array<[string, string, number, string, RegExp]> = [
      ["/e/dev", "{not json", 400, "INVALID_JSON", /not valid JSON/],
      ["/e/dev", JSON.stringify({ data: {} }), 400, "INVALID_EVENT_PAYLOAD", /event\.name: an event needs a name/],
      ["/e/dev", JSON.stringify([{ name: "demo/echo" }, { name: 5 }]), 400, "INVALID_EVENT_PAYLOAD", /events\[1\]\.name/],
      ["/e/dev", JSON.stringify({ name: "demo/echo", data: { blob: "x".repeat(600_000) } }), 413, "EVENT_TOO_LARGE", /the limit is 524288 bytes/],
      [
        "/e/dev",
        JSON.stringify({ name: "demo/echo", data: { blob: "x".repeat(17 * 1024 * 1024) } }),
        413,
        "BODY_TOO_LARGE",
        /over this route's limit of 16777216 bytes/,
      ],
      ["/v1/functions/nope/invoke", "{}", 404, "FUNCTION_NOT_FOUND", /no function with id "nope" is registered; known: .*\/echo/],
      ["/v1/functions/echo/invoke", JSON.stringify({ data: 3 }), 400, "INVALID_REQUEST", /body\.data: .*send \{ data\?: object/],
    ];
    for (const [path, body, status, code, message] of cases) {
      const response = await post(path, body);
      const answer = (await response.json()) as { error: { code: string; message: string } };
      expect({ path, status: response.status, code: answer.error.code }).toEqual({ path, status, code });
      expect(answer.error.message).toMatch(message);
    }
    expect(await getJson("/v1/runs/run_missing")).toMatchObject({ error: { code: "RUN_NOT_FOUND" } });
    expect((await fetch(`${server.url}/v1/runs/x/wait?timeout=abc`)).status).toBe(400);

    // The server is still up, and the event accepted first ran to completion; the refused ones left no trace.
    const { runs } = (await getJson(`/v1/events/${ids[0]}/runs`)) as { runs: Array<{ id: string }> };
    const { run } = (await getJson(`/v1/runs/${runs[0]?.id}/wait?timeout=10000`)) as { run: { output: unknown } };
    expect(run.output).toEqual({ upper: "KEPT" });
    expect(await getJson("/health")).toEqual({ status: "ok" });
  });

  it("invokes a function over HTTP and `stepwise send` sends events", async () => {
    const response = await post("/v1/functions/echo/invoke", JSON.stringify({ data: { text: "hi" } }));
    expect(((await response.json()) as { run: { output: unknown } }).run.output).toEqual({ upper: "HI" });

    const printed: string[] = [];
    const log = vi.spyOn(console, "log").mockImplementation((line: string) => void printed.push(line));
    try {
      await main(["node", "stepwise", "send", "demo/echo", "--data", '{"text":"from cli"}', "--url", server.url]);
    } finally {
      log.mockRestore();
    }
    const { ids } = JSON.parse(printed[0] as string) as { ids: string[] };
    const { runs } = (await getJson(`/v1/events/${ids[0]}/runs`)) as { runs: Array<{ id: string }> };
    const { run } = (await getJson(`/v1/runs/${runs[0]?.id}/wait?timeout=10000`)) as { run: { output: unknown } };
    expect(run.output).toEqual({ upper: "FROM CLI" });
  });

  it("keeps history across a restart on the same data dir", async () => {
    const response = await post("/v1/functions/echo/invoke", JSON.stringify({ data: { text: "durable" } }));
    const { run } = (await response.json()) as { run: { id: string } };
    await server.close();
    server = await startDev({ functions, dataDir, port: 0, print: false });
    const again = (await getJson(`/v1/runs/${run.id}`)) as { run: { status: string; output: unknown }; steps: Array<{ id: string }> };
    expect(again.run).toMatchObject({ status: "completed", output: { upper: "DURABLE" } });
    expect(again.steps.map((step) => step.id)).toEqual(["upper"]);
  });

  it("refuses a second process on the same data dir", async () => {
    await expect(startDev({ functions, dataDir, port: 0, print: false })).rejects.toThrow(/in use by another stepwise process/);
  });
});
