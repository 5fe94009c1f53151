/**
 * @module @stepwise/cli
 *
 * The `stepwise` command: `stepwise dev` runs durable functions on embedded Postgres with no
 * server installed; `stepwise send` sends an event to a running server; `stepwise runs` and
 * `stepwise events` list, show, cancel and rerun over a server's HTTP API.
 *
 * Every export of this file is public API.
 */
import { createHttpTransport, parseEvents } from "@stepwise/core";
import { migrate } from "@stepwise/postgres";
import { Command, InvalidArgumentError } from "commander";
import { connectPostgres } from "./connect-postgres.js";
import { type DevOptions, startDev } from "./dev.js";
import { keysCommand } from "./keys.js";
import type { LogFormat } from "./logging.js";
import { operatorCommands } from "./operator-commands.js";
import { type RunningStepwise, type StartOptions, startProduction } from "./start.js";

export type { ConnectPostgresOptions } from "./connect-postgres.js";
export { connectPostgres } from "./connect-postgres.js";
export type { DevOptions, DevServer } from "./dev.js";
export { startDev } from "./dev.js";
export type { LoadedFunctions } from "./load-functions.js";
export { DEFAULT_FUNCTION_MODULES, loadFunctions } from "./load-functions.js";
export type { PrinterOptions } from "./printer.js";
export { createPrinter } from "./printer.js";
export type { RunningStepwise, StartOptions } from "./start.js";
export { startProduction } from "./start.js";

/**
 * What `stepwise` prints when a command fails: the message, then the stack of each error in its
 * `cause` chain, so that an error thrown while importing the functions module shows the file and
 * line it came from. Errors without a cause (a wrong flag, a taken port) print their message alone.
 */
export function formatCliError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const lines = [error.message];
  // Bounded: a cause chain may loop.
  let cause: unknown = error.cause;
  for (let depth = 0; cause !== undefined && depth < 5; depth++) {
    lines.push(`caused by ${cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)}`);
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return lines.join("\n");
}

/** Runs the CLI with `argv` (as `process.argv`). */
export async function main(argv: string[]): Promise<void> {
  const program = new Command("stepwise").description("Durable functions and AI agents on Postgres").showHelpAfterError();

  program
    .command("dev")
    .description("run your functions locally on embedded Postgres (no server needed)")
    .option("-f, --functions <module>", "module exporting your Stepwise client or functions (TypeScript works)")
    .option("-p, --port <port>", "port on 127.0.0.1", parsePort, 8288)
    .option("-d, --data-dir <dir>", "where the embedded database is stored", ".stepwise")
    .action(async (options: { functions?: string; port: number; dataDir: string }) => {
      const devOptions: DevOptions = { functions: options.functions, port: options.port, dataDir: options.dataDir };
      const server = await startDev(devOptions);
      console.log(`stepwise dev ready in ${server.readyMs} ms on ${server.url} (data in ${options.dataDir})`);
      for (const fn of server.functions) console.log(`  ${fn.id} ← ${fn.triggers.join(", ")}`);
      console.log(`  send an event: stepwise send <name> --data '{...}'  or  POST ${server.url}/e/dev`);
      const shutdown = async (signal: string) => {
        console.log(`${signal}: stopping`);
        await server.close();
        process.exit(0);
      };
      process.once("SIGINT", () => void shutdown("SIGINT"));
      process.once("SIGTERM", () => void shutdown("SIGTERM"));
    });

  const productionOptions = (command: Command) =>
    command
      .option("-f, --functions <module>", "module exporting your Stepwise client or functions (TypeScript works)")
      .option("--database-url <url>", "Postgres server (default: DATABASE_URL)")
      .option("--redis-url <url>", "Redis (default: REDIS_URL, else redis://127.0.0.1:6379)")
      .option("--concurrency <n>", "most runs executing at once in this process", parsePositive, 100)
      .option("--grace <ms>", "on SIGTERM, how long running steps may finish before their runs are released", parsePositive, 30_000)
      .option("--lease <ms>", "how long a crashed worker's runs wait before another worker takes them over", parsePositive, 30_000)
      .option("-q, --quiet", "do not print each event, run and step")
      .option("--log-format <format>", "json lines or pretty ones (default: STEPWISE_LOG_FORMAT, else pretty on a terminal, json otherwise)", parseLogFormat);

  productionOptions(program.command("start").description("run the server, scheduler and workers on Postgres + Redis"))
    .option("-p, --port <port>", "HTTP port", parsePort, 8288)
    .option("--host <host>", "HTTP interface (0.0.0.0 to listen on all)", "127.0.0.1")
    .action(async (options: ProductionFlags & { port: number; host: string }) => {
      const running = await startProduction({ mode: "start", ...toStartOptions(options), port: options.port, host: options.host });
      console.log(`stepwise start: serving on ${running.url}, scheduler and workers running`);
      handleSignals(running);
    });

  productionOptions(program.command("worker").description("run workers only, on Postgres + Redis (scale out with more of these)")).action(
    async (options: ProductionFlags) => {
      const running = await startProduction({ mode: "worker", ...toStartOptions(options) });
      console.log("stepwise worker: running");
      handleSignals(running);
    },
  );

  program
    .command("migrate")
    .description("apply pending database migrations (safe to run from several processes at once)")
    .option("--database-url <url>", "Postgres server (default: DATABASE_URL)")
    .action(async (options: { databaseUrl?: string }) => {
      const pool = await connectPostgres({ databaseUrl: options.databaseUrl });
      try {
        const applied = await migrate(pool);
        console.log(applied.length > 0 ? `applied migrations ${applied.join(", ")}` : "the schema is current; nothing to apply");
      } finally {
        await pool.end();
      }
    });

  keysCommand(program);
  operatorCommands(program);

  program
    .command("send")
    .description("send an event to a running Stepwise server")
    .argument("<name>", 'event name, e.g. "user.created"')
    .option("--data <json>", "event data, a JSON object", "{}")
    .option("--id <id>", "event id, for deduplication within 24 h")
    .option("--url <url>", "server URL (default: STEPWISE_BASE_URL or http://127.0.0.1:8288)")
    .option("--key <key>", "event key for `stepwise start` (default: STEPWISE_EVENT_KEY; `stepwise dev` needs none)")
    .action(async (name: string, options: { data: string; id?: string; url?: string; key?: string }) => {
      let data: unknown;
      try {
        data = JSON.parse(options.data);
      } catch {
        throw new InvalidArgumentError(`--data is not valid JSON: ${options.data}`);
      }
      const events = parseEvents({ name, data, id: options.id });
      const result = await createHttpTransport({ baseUrl: options.url, eventKey: options.key }).send(events);
      console.log(JSON.stringify(result));
    });

  await program.parseAsync(argv);
}

function parseLogFormat(value: string): LogFormat {
  if (value !== "json" && value !== "pretty") throw new InvalidArgumentError("must be json or pretty");
  return value;
}

interface ProductionFlags {
  functions?: string;
  databaseUrl?: string;
  redisUrl?: string;
  concurrency: number;
  grace: number;
  lease: number;
  quiet?: boolean;
  logFormat?: LogFormat;
}

function toStartOptions(flags: ProductionFlags): Omit<StartOptions, "mode"> {
  return {
    functions: flags.functions,
    databaseUrl: flags.databaseUrl,
    redisUrl: flags.redisUrl,
    concurrency: flags.concurrency,
    graceMs: flags.grace,
    leaseMs: flags.lease,
    print: !flags.quiet,
    logFormat: flags.logFormat,
  };
}

/** SIGTERM/SIGINT: stop taking work, let running steps finish within the grace period, exit. */
function handleSignals(running: RunningStepwise): void {
  const shutdown = async (signal: string) => {
    console.log(`${signal}: finishing running steps, then stopping`);
    const { released } = await running.close();
    if (released > 0) console.log(`released ${released} runs to other workers after the grace period`);
    process.exit(0);
  };
  process.once("SIGINT", () => void shutdown("SIGINT"));
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
}

function parsePositive(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number <= 0) throw new InvalidArgumentError("must be a positive whole number");
  return number;
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError("must be a port number (0-65535)");
  return port;
}
