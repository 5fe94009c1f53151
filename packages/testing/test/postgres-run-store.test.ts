import { createTestPglite, createTestPostgres } from "@stepwise/postgres/testing";
import { runStoreContract } from "../src/contracts/run-store.js";
import { runStoreActionsContract } from "../src/contracts/run-store-actions.js";
import { runStoreFlowContract } from "../src/contracts/run-store-flow.js";

const onPglite = async () => {
  const database = await createTestPglite();
  return { store: database.createStore(), close: () => database.close() };
};
// DATABASE_URL (default: postgres://postgres@127.0.0.1:5432/postgres) must reach a server with
// pgvector; this suite is not skipped when it is missing, so a missing server fails loudly.
const onPostgres = async () => {
  const database = await createTestPostgres();
  return { store: database.createStore(), close: () => database.close() };
};

runStoreContract("postgres on PGlite", onPglite);
runStoreContract("postgres on a Postgres server", onPostgres);
runStoreActionsContract("postgres on PGlite", onPglite);
runStoreActionsContract("postgres on a Postgres server", onPostgres);
runStoreFlowContract("postgres on PGlite", onPglite);
runStoreFlowContract("postgres on a Postgres server", onPostgres);
