import { once } from "node:events";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createEventKey, createKey } from "./helpers/event-key.js";
import { spawnProduction } from "./helpers/spawn-production.js";
import { usePostgresAndRedis } from "./helpers/use-postgres-and-redis.js";

// `stepwise start` as an operator runs it in a container: JSON log lines with the run's ids, and
// traces exported over OTLP/HTTP to a collector named by the standard OTEL_* variables (here a
// real HTTP server that keeps what it receives).

const functions = fileURLToPath(new URL("./fixtures/echo-functions.ts", import.meta.url));
const redisUrl = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379";

/** A stand-in OTLP/HTTP collector: answers 200 and keeps each body of POST /v1/traces. */
async function startCollector() {
  const bodies: Array<{ type: string; body: string }> = [];
  const server = createServer(async (request: IncomingMessage, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    if (request.url === "/v1/traces") bodies.push({ type: request.headers["content-type"] ?? "", body: Buffer.concat(chunks).toString("utf8") });
    response.writeHead(200, { "content-type": "application/json" }).end("{}");
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies, close: () => new Promise((resolve) => server.close(resolve)) };
}

describe("telemetry of stepwise start", () => {
  const fixture = usePostgresAndRedis();

  it("writes JSON log lines with runId, stepId and functionId, and exports a span per run and step over OTLP", { timeout: 90_000 }, async () => {
    const collector = await startCollector();
    const { database, redis } = fixture;
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL: redisUrl,
      STEPWISE_REDIS_PREFIX: redis.prefix,
      STEPWISE_LOG_LEVEL: "debug",
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_BSP_SCHEDULE_DELAY: "50",
    };
    const server = await spawnProduction({ mode: "start", args: ["--functions", functions, "--log-format", "json"], env });
    try {
      const eventKey = await createEventKey(database.url);
      const readKey = await createKey(database.url, "read");
      const sent = await fetch(`${server.url}/e/${eventKey}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "demo/echo", data: { text: "traced" } }),
      });
      const { ids } = (await sent.json()) as { ids: string[] };
      const runsOf = async () =>
        (
          (await (await fetch(`${server.url}/v1/events/${ids[0]}/runs`, { headers: { authorization: `Bearer ${readKey}` } })).json()) as {
            runs: Array<{ id: string; status: string }>;
          }
        ).runs;
      await expect.poll(async () => (await runsOf())[0]?.status, { timeout: 20_000 }).toBe("completed");
      const runId = (await runsOf())[0]?.id as string;

      // Every line the logger wrote is one JSON object; the run's lines carry its ids.
      const lines = server
        .output()
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(lines.length).toBeGreaterThan(0);
      await expect.poll(() => server.output().includes('"msg":"run completed"'), { timeout: 10_000 }).toBe(true);
      const runLines = server
        .output()
        .split("\n")
        .filter((line) => line.startsWith("{") && line.includes(runId))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(runLines.find((line) => line["msg"] === "run completed")).toMatchObject({ runId, functionId: "echo-app/echo", level: 30, service: "stepwise" });
      expect(runLines.find((line) => line["msg"] === "step ended")).toMatchObject({ runId, stepId: "upper", functionId: "echo-app/echo" });
      // No key ever reaches the log.
      expect(server.output()).not.toContain(eventKey);
      expect(server.output()).not.toContain(readKey);

      // The spans arrive at the collector (OTLP/HTTP JSON): the run's and its step's, with its id.
      await expect
        .poll(() => collector.bodies.some((entry) => entry.body.includes(runId) && entry.body.includes("step upper")), { timeout: 20_000 })
        .toBe(true);
      const exported = collector.bodies.map((entry) => entry.body).join("\n");
      expect(exported).toContain("run echo-app/echo");
      expect(exported).toContain("stepwise-start");
    } finally {
      server.child.kill("SIGTERM");
      await once(server.child, "exit");
      await collector.close();
    }
  });
});
