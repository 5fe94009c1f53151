import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { createPostgresStore } from "../src/create-postgres-store.js";
import { migrate } from "../src/migrate.js";
import { openPglite } from "../src/pglite.js";
import { createTestPglite } from "../src/testing.js";

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

it("keeps events and runs in its data dir across close and reopen", async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "stepwise-pglite-"));
  dirs.push(dataDir);
  const first = await openPglite({ dataDir });
  await migrate(first.pool);
  const store = createPostgresStore({ pool: first.pool });
  const event = { id: "evt_1", name: "test/kept", data: { kept: true }, ts: 1_700_000_000_000 };
  await store.ingest({ events: [event], runs: [{ id: "run_1", functionId: "fn", eventId: event.id }], now: event.ts });
  await store.close();
  await first.close();
  await first.close(); // closing twice is harmless

  const second = await openPglite({ dataDir });
  try {
    expect(await migrate(second.pool)).toEqual([]);
    const reopened = createPostgresStore({ pool: second.pool, ownsPool: true });
    expect(await reopened.getEvent(event.id)).toEqual(event);
    expect(await reopened.getRun("run_1")).toMatchObject({ status: "queued", functionId: "fn" });
  } finally {
    await second.close();
  }
});

it("gives each test database its own copy of the migrated template", async () => {
  const [a, b] = await Promise.all([createTestPglite(), createTestPglite()]);
  try {
    const event = { id: "evt_only_in_a", name: "test/copy", data: {}, ts: 1 };
    await a.createStore().ingest({ events: [event], runs: [], now: 1 });
    expect(await a.createStore().getEvent(event.id)).toEqual(event);
    expect(await b.createStore().getEvent(event.id)).toBeNull();
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

it("keeps serving after a failed query on its single connection", async () => {
  const database = await createTestPglite();
  try {
    const store = database.createStore();
    // Violates runs.event_id's foreign key: the ingest fails and rolls back.
    await expect(store.ingest({ events: [], runs: [{ id: "run_x", functionId: "fn", eventId: "evt_missing" }], now: 1 })).rejects.toThrow(/foreign key/);
    expect(await store.getRun("run_x")).toBeNull();
    expect(await store.now()).toBeGreaterThan(0);
  } finally {
    await database.close();
  }
});
