import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runCli } from "./helpers/spawn-cli.js";
import { spawnProduction } from "./helpers/spawn-production.js";
import { usePostgresAndRedis } from "./helpers/use-postgres-and-redis.js";

// `stepwise start` refuses every request until a key exists; `stepwise keys` creates, lists and
// revokes them, as an operator does, against the same Postgres.

const functions = fileURLToPath(new URL("./fixtures/echo-functions.ts", import.meta.url));
const redisUrl = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379";

describe("stepwise keys and an authenticated stepwise start", () => {
  const fixture = usePostgresAndRedis();

  it("starts refusing every request and saying how to create a key, then serves the keys `keys create` made until they are revoked", {
    timeout: 90_000,
  }, async () => {
    const { database, redis } = fixture;
    const env = { DATABASE_URL: database.url, REDIS_URL: redisUrl, STEPWISE_REDIS_PREFIX: redis.prefix };
    const server = await spawnProduction({ mode: "start", args: ["--functions", functions], env });
    try {
      expect(server.output()).toMatch(/no API key exists: every request to the API is refused/);
      const send = (key: string) =>
        fetch(`${server.url}/e/${key}`, {
          method: "POST",
          body: JSON.stringify({ name: "demo/echo", data: { text: "hi" } }),
          headers: { "content-type": "application/json" },
        });
      const refused = await send("dev");
      expect(refused.status).toBe(401);

      const [event, read, weak] = await Promise.all([
        runCli(["keys", "create", "--scope", "event", "--name", "checkout"], env),
        runCli(["keys", "create", "--scope", "read"], env),
        runCli(["keys", "create", "--scope", "root"], env),
      ]);
      expect(event.code).toBe(0);
      expect(event.stderr).toMatch(/not shown again/);
      const eventKey = event.stdout.trim();
      expect(eventKey).toMatch(/^sw_event_[0-9a-f]{16}_[\w-]{43}$/);
      expect(weak.code).not.toBe(0);
      expect(weak.stderr).toMatch(/--scope.*must be one of event, read, control, admin/);

      const sent = await send(eventKey);
      expect(sent.status).toBe(200);
      const { ids } = (await sent.json()) as { ids: string[] };
      // The event key sends but cannot read; the read key reads.
      const runsOf = (key: string) => fetch(`${server.url}/v1/events/${ids[0]}/runs`, { headers: { authorization: `Bearer ${key}` } });
      expect((await runsOf(eventKey)).status).toBe(403);
      expect((await runsOf(read.stdout.trim())).status).toBe(200);

      const list = await runCli(["keys", "list"], env);
      const eventId = eventKey.split("_")[2] as string;
      expect(list.stdout).toMatch(new RegExp(`${eventId}\\s+event\\s+active.*checkout`));
      expect(list.stdout).not.toContain(eventKey.slice(-43));
      expect((await runCli(["keys", "revoke", eventId], env)).code).toBe(0);
      expect((await runCli(["keys", "list"], env)).stdout).toMatch(new RegExp(`${eventId}\\s+event\\s+revoked`));
      expect((await runCli(["keys", "revoke", eventId], env)).stderr).toMatch(/no active key/);
    } finally {
      server.child.kill("SIGKILL");
    }
  });
});
