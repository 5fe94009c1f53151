import { type CliProcess, startCli } from "./spawn-cli.js";

/** A `stepwise start` or `stepwise worker` child process. */
export type ProductionProcess = CliProcess;

/**
 * Starts `stepwise start` (resolving with its URL, on a free port) or `stepwise worker` from
 * source, and resolves once it reports it is running.
 */
export function spawnProduction(options: { mode: "start" | "worker"; args: string[]; env: Record<string, string> }): Promise<ProductionProcess> {
  if (options.mode === "worker") return startCli(["worker", ...options.args], options.env, /stepwise worker: running/);
  return startCli(["start", ...options.args, "--port", "0"], options.env, /serving on (http:\/\/[\d.]+:\d+)/);
}
