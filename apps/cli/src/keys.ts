import { KEY_SCOPES, type KeyScope } from "@stepwise/engine";
import { assertSchemaCurrent, createPostgresKeyStore } from "@stepwise/postgres";
import { createApiKey } from "@stepwise/server";
import { type Command, InvalidArgumentError } from "commander";
import { connectPostgres } from "./connect-postgres.js";

/**
 * `stepwise keys create|list|revoke`: the keys `stepwise start` checks, in its Postgres
 * (`DATABASE_URL`). A key is printed once, when created; the database keeps only its hash.
 */
export function keysCommand(program: Command): void {
  const keys = program.command("keys").description("the API keys that `stepwise start` requires: create, list, revoke");
  const withStore = async <T>(databaseUrl: string | undefined, work: (store: ReturnType<typeof createPostgresKeyStore>) => Promise<T>): Promise<T> => {
    const pool = await connectPostgres({ databaseUrl });
    try {
      await assertSchemaCurrent(pool);
      return await work(createPostgresKeyStore({ pool }));
    } finally {
      await pool.end();
    }
  };

  keys
    .command("create")
    .description("create a key and print it (the only time it is shown)")
    .requiredOption(
      "--scope <scope>",
      `what the key may do: ${KEY_SCOPES.join(" | ")} (event: send events; read: read runs; control: also invoke and send; admin: all)`,
      parseScope,
    )
    .option("--name <name>", "what the key is for, shown by `keys list`", "")
    .option("--database-url <url>", "Postgres server (default: DATABASE_URL)")
    .action(async (options: { scope: KeyScope; name: string; databaseUrl?: string }) => {
      const created = await withStore(options.databaseUrl, (store) => createApiKey(store, { scope: options.scope, name: options.name }));
      console.log(created.key);
      console.error(`created ${created.scope} key ${created.id}${created.name ? ` (${created.name})` : ""}; store it now: it is not shown again`);
    });

  keys
    .command("list")
    .description("list keys (ids, scopes, names; never secrets)")
    .option("--database-url <url>", "Postgres server (default: DATABASE_URL)")
    .action(async (options: { databaseUrl?: string }) => {
      const list = await withStore(options.databaseUrl, (store) => store.listKeys());
      if (list.length === 0) console.log("no keys; create one with `stepwise keys create --scope admin`");
      for (const key of list) {
        const state = key.revokedAt === undefined ? "active" : `revoked ${new Date(key.revokedAt).toISOString()}`;
        console.log(`${key.id}  ${key.scope.padEnd(7)}  ${state.padEnd(32)}  ${new Date(key.createdAt).toISOString()}  ${key.name}`);
      }
    });

  keys
    .command("revoke")
    .description("revoke a key by its id (servers stop accepting it within 10 s)")
    .argument("<id>", "the key's id, as `keys list` shows it")
    .option("--database-url <url>", "Postgres server (default: DATABASE_URL)")
    .action(async (id: string, options: { databaseUrl?: string }) => {
      const revoked = await withStore(options.databaseUrl, (store) => store.revokeKey({ id, now: Date.now() }));
      if (!revoked) throw new InvalidArgumentError(`no active key with id ${JSON.stringify(id)}; see \`stepwise keys list\``);
      console.log(`revoked ${id}`);
    });
}

function parseScope(value: string): KeyScope {
  if (!(KEY_SCOPES as readonly string[]).includes(value)) throw new InvalidArgumentError(`must be one of ${KEY_SCOPES.join(", ")}`);
  return value as KeyScope;
}
