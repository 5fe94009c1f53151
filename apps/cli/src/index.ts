/**
 * @module @stepwise/cli
 *
 * The `stepwise` command: `stepwise dev` runs durable functions on embedded Postgres with no
 * server installed; `stepwise send` sends an event to a running server.
 *
 * Every export of this file is public API.
 */
import { createHttpTransport, parseEvents } from "@stepwise/core";
import { Command, InvalidArgumentError } from "commander";
import { type DevOptions, startDev } from "./dev.js";

export type { DevOptions, DevServer } from "./dev.js";
export { startDev } from "./dev.js";
export { createDevApp, toErrorResponse } from "./dev-server.js";
export type { LoadedFunctions } from "./load-functions.js";
export { DEFAULT_FUNCTION_MODULES, loadFunctions } from "./load-functions.js";
export type { PrinterOptions } from "./printer.js";
export { createPrinter } from "./printer.js";

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

  program
    .command("send")
    .description("send an event to a running Stepwise server")
    .argument("<name>", 'event name, e.g. "user.created"')
    .option("--data <json>", "event data, a JSON object", "{}")
    .option("--id <id>", "event id, for deduplication within 24 h")
    .option("--url <url>", "server URL (default: STEPWISE_BASE_URL or http://127.0.0.1:8288)")
    .action(async (name: string, options: { data: string; id?: string; url?: string }) => {
      let data: unknown;
      try {
        data = JSON.parse(options.data);
      } catch {
        throw new InvalidArgumentError(`--data is not valid JSON: ${options.data}`);
      }
      const events = parseEvents({ name, data, id: options.id });
      const result = await createHttpTransport({ baseUrl: options.url }).send(events);
      console.log(JSON.stringify(result));
    });

  await program.parseAsync(argv);
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError("must be a port number (0-65535)");
  return port;
}
