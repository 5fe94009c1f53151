import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const repoRoot = fileURLToPath(new URL("../../../../", import.meta.url));
const bin = fileURLToPath(new URL("../../src/bin.ts", import.meta.url));

/** A `stepwise start` or `stepwise worker` child process. */
export interface ProductionProcess {
  child: ChildProcess;
  url?: string;
  output: () => string;
}

/**
 * Starts `stepwise start` (resolving with its URL) or `stepwise worker` from source, and resolves
 * once it reports it is running.
 */
export function spawnProduction(options: { mode: "start" | "worker"; args: string[]; env: Record<string, string> }): Promise<ProductionProcess> {
  const args = ["--conditions=@stepwise/source", "--import", "tsx", bin, options.mode, ...options.args, ...(options.mode === "start" ? ["--port", "0"] : [])];
  const child = spawn(process.execPath, args, { cwd: repoRoot, env: { ...process.env, ...options.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`stepwise ${options.mode} did not start in 30 s:\n${output}`)), 30_000);
    const onData = (chunk: Buffer) => {
      // Keep only the tail: a worker prints a line per step.
      output = (output + chunk.toString()).slice(-20_000);
      const ready = options.mode === "start" ? /serving on (http:\/\/[\d.]+:\d+)/.exec(output) : /stepwise worker: running/.exec(output);
      if (ready) {
        clearTimeout(timer);
        resolve({ child, url: ready[1], output: () => output });
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`stepwise ${options.mode} exited (${code ?? signal}):\n${output}`));
    });
  });
}
