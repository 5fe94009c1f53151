import { Stepwise } from "@stepwise/core";
import type { KeyScope, KeyStore } from "@stepwise/engine";
import { createPostgresKeyStore } from "@stepwise/postgres";
import { createTestPglite, type TestPglite } from "@stepwise/postgres/testing";
import { createTestEngine, type TestEngine } from "@stepwise/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiKey, createServer, parseApiKey } from "../src/index.js";

// Keys (stepwise start) and local-only access (stepwise dev), through app.request() over a
// real engine and a real key store on PGlite.

describe("auth", () => {
  let database: TestPglite;
  let engine: TestEngine;
  let keys: KeyStore;
  let reads = 0;
  const key: Partial<Record<KeyScope, string>> = {};

  beforeAll(async () => {
    database = await createTestPglite();
    const store = createPostgresKeyStore({ pool: database.pool });
    keys = {
      ...store,
      findKey: (id) => {
        reads++;
        return store.findKey(id);
      },
    };
    const stepwise = new Stepwise({ id: "shop" });
    stepwise.createFunction({ id: "echo" }, { event: "shop/echo" }, async ({ event }) => event.data["text"] ?? null);
    engine = await createTestEngine({ clients: [stepwise], store: database.createStore() });
  });
  afterAll(async () => {
    await engine.close();
    await database.close();
  });

  const bearer = (value: string) => ({ headers: { authorization: `Bearer ${value}` } });
  const post = (body: unknown, headers: Record<string, string> = {}) => ({
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json", ...headers },
  });
  const code = async (response: Response) => ((await response.json()) as { error?: { code: string; message: string } }).error;

  it("refuses everything with a message saying how to create a key while none exists", async () => {
    const server = createServer({ engine, auth: { mode: "keys", keys } });
    const response = await server.request("/v1/functions", bearer("sw_admin_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    expect(response.status).toBe(401);
    expect((await code(response))?.message).toMatch(/stepwise keys create --scope admin/);
    expect((await server.request("/health")).status).toBe(200);
  });

  it("creates keys of each scope, shows the secret once and stores only its hash", async () => {
    for (const scope of ["event", "read", "control", "admin"] as const) key[scope] = (await createApiKey(keys, { scope, name: `${scope} key` })).key;
    const parsed = parseApiKey(key.read as string);
    const stored = await keys.findKey(parsed?.id as string);
    expect(stored).toMatchObject({ scope: "read", name: "read key" });
    expect(Buffer.from(stored?.secretHash ?? []).toString("hex")).not.toContain(parsed?.secret);
    const { rows } = await database.pool.query<{ dump: string }>("SELECT string_agg(row_to_json(api_keys)::text, ' ') AS dump FROM api_keys");
    expect(rows[0]?.dump).not.toContain(parsed?.secret);
    expect(await keys.countActiveKeys()).toBe(4);
  });

  it("answers a missing, malformed, wrong or revoked key with 401 and a too-weak scope with 403", async () => {
    const server = createServer({ engine, auth: { mode: "keys", keys, cacheMs: 0 } });
    const read = key.read as string;
    const wrongSecret = `${read.slice(0, -4)}AAAA`;
    const wrongScope = read.replace("sw_read_", "sw_admin_");
    for (const init of [{}, bearer("nope"), bearer(wrongSecret), bearer(wrongScope), { headers: { authorization: read } }]) {
      const response = await server.request("/v1/functions", init);
      expect(response.status).toBe(401);
      expect((await code(response))?.code).toBe("UNAUTHORIZED");
    }
    // Scopes: read reads but does not invoke or send; event sends only; control and admin do both.
    const cases: Array<[KeyScope, string, RequestInit, number]> = [
      ["read", "/v1/functions", bearer(key.read as string), 200],
      ["read", "/v1/functions/echo/invoke", post({ data: {} }, { authorization: `Bearer ${key.read}` }), 403],
      ["read", "/e/x", post({ name: "shop/echo" }, { authorization: `Bearer ${key.read}` }), 403],
      ["event", "/v1/functions", bearer(key.event as string), 403],
      ["event", `/v1/runs/run_1`, bearer(key.event as string), 403],
      ["event", `/e/${key.event}`, post({ name: "shop/echo" }), 200],
      ["event", "/e/anything", post({ name: "shop/echo" }, { authorization: `Bearer ${key.event}` }), 200],
      ["control", "/v1/functions/echo/invoke", post({ data: { text: "hi" } }, { authorization: `Bearer ${key.control}` }), 200],
      ["control", `/e/${key.control}`, post({ name: "shop/echo" }), 200],
      ["admin", "/v1/functions", bearer(key.admin as string), 200],
    ];
    for (const [scope, path, init, status] of cases) {
      const response = await server.request(path, init);
      expect({ scope, path, status: response.status }).toEqual({ scope, path, status });
      if (status === 403) expect((await code(response))?.message).toMatch(/needs a key with scope/);
    }
    // Revoked: refused from the next check on.
    const revoked = (await createApiKey(keys, { scope: "read" })).key;
    expect((await server.request("/v1/functions", bearer(revoked))).status).toBe(200);
    expect(await keys.revokeKey({ id: parseApiKey(revoked)?.id as string, now: Date.now() })).toBe(true);
    const after = await server.request("/v1/functions", bearer(revoked));
    expect(after.status).toBe(401);
    expect((await code(after))?.message).toMatch(/was revoked/);
  });

  it("reads the store once per key while it trusts the last check", async () => {
    const server = createServer({ engine, auth: { mode: "keys", keys, cacheMs: 60_000 } });
    const before = reads;
    for (let index = 0; index < 20; index++) expect((await server.request(`/e/${key.event}`, post({ name: "shop/echo" }))).status).toBe(200);
    expect(reads - before).toBe(1);
  });

  it("in local mode (stepwise dev) needs no key but refuses a foreign Host or Origin (DNS rebinding)", async () => {
    const server = createServer({ engine, auth: { mode: "local" } });
    const at = (host: string, origin?: string) =>
      server.request(`http://${host}/v1/functions`, { headers: { host, ...(origin === undefined ? {} : { origin }) } });
    for (const host of ["localhost:8288", "127.0.0.1:8288", "[::1]:8288", "localhost"]) expect((await at(host)).status).toBe(200);
    expect((await at("127.0.0.1:8288", "http://localhost:5173")).status).toBe(200);
    const rebound = await at("attacker.example:8288");
    expect(rebound.status).toBe(403);
    expect((await code(rebound))?.message).toMatch(/localhost only/);
    expect((await at("127.0.0.1:8288", "https://attacker.example")).status).toBe(403);
    expect((await at("127.0.0.1:8288", "http://127.0.0.1.attacker.example")).status).toBe(403);
  });

  it("answers CORS only for the configured origins", async () => {
    const server = createServer({ engine, auth: { mode: "keys", keys }, corsOrigins: ["https://app.example.com"] });
    const preflight = (origin: string) =>
      server.request("/v1/functions", {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": "GET", "access-control-request-headers": "authorization" },
      });
    expect((await preflight("https://app.example.com")).headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect((await preflight("https://evil.example")).headers.get("access-control-allow-origin")).toBeNull();
    expect(() => createServer({ engine } as never)).toThrow(/auth is required/);
  });
});
