import { createTestPglite, createTestPostgres } from "@stepwise/postgres/testing";
import { runStoreContract } from "../src/contracts/run-store.js";

runStoreContract("postgres on PGlite", async () => {
  const database = await createTestPglite();
  return { store: database.createStore(), close: () => database.close() };
});

// DATABASE_URL (default: postgres://postgres@127.0.0.1:5432/postgres) must reach a server with
// pgvector; this suite is not skipped when it is missing, so a missing server fails loudly.
runStoreContract("postgres on a Postgres server", async () => {
  const database = await createTestPostgres();
  return { store: database.createStore(), close: () => database.close() };
});
