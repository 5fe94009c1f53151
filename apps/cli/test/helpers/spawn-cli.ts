import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

const repoRoot = fileURLToPath(new URL("../../../../", import.meta.url));
const bin = fileURLToPath(new URL("../../src/bin.ts", import.meta.url));

/** A `stepwise` child process started from source. */
export interface CliProcess {
  child: ChildProcess;
  /** The first capture group of the ready pattern (e.g. the URL), when it has one. */
  url?: string;
  /** The tail of what the process printed. */
  output: () => string;
}

/**
 * Runs `stepwise <args>` from source (tsx, with the `@stepwise/source` condition) in a child
 * process. Every test that drives the CLI as a user would starts it through here.
 */
export function spawnCli(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, ["--conditions=@stepwise/source", "--import", "tsx", bin, ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Starts `stepwise <args>` and resolves once its output matches `ready` (within 30 s). */
export function startCli(args: string[], env: Record<string, string>, ready: RegExp): Promise<CliProcess> {
  const child = spawnCli(args, env);
  let output = "";
  const name = `stepwise ${args[0]}`;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start in 30 s:\n${output}`)), 30_000);
    const onData = (chunk: Buffer) => {
      // Keep only the tail: a busy process prints a line per step.
      output = (output + chunk.toString()).slice(-20_000);
      const match = ready.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1], output: () => output });
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}):\n${output}`));
    });
  });
}

/** Runs `stepwise <args>` to its end; answers its exit code and what it printed (apart, and together). */
export async function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string; output: string }> {
  const child = spawnCli(args, env);
  let stdout = "";
  let stderr = "";
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
    output += chunk.toString();
  });
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stdout, stderr, output };
}
