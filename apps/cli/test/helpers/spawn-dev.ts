import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const repoRoot = fileURLToPath(new URL("../../../../", import.meta.url));
const bin = fileURLToPath(new URL("../../src/bin.ts", import.meta.url));

/** A `stepwise dev` child process, as the crash tests drive it. */
export interface DevProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
}

/**
 * Starts `stepwise dev` from source in a child process (tsx, with the `@stepwise/source`
 * condition) and resolves once it prints its URL.
 */
export function spawnDev(options: { functions: string; dataDir: string; env?: Record<string, string> }): Promise<DevProcess> {
  const child = spawn(
    process.execPath,
    ["--conditions=@stepwise/source", "--import", "tsx", bin, "dev", "--functions", options.functions, "--data-dir", options.dataDir, "--port", "0"],
    {
      cwd: repoRoot,
      env: { ...process.env, ...options.env, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`stepwise dev did not start in 30 s:\n${output}`)), 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /ready in \d+ ms on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1] as string, output: () => output });
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`stepwise dev exited with ${code}:\n${output}`));
    });
  });
}

/** `kill -9`, resolved once the process is gone. */
export function killHard(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

/** Fetches JSON, failing on a non-2xx answer. */
export async function getJson<T>(url: string, init?: RequestInit): Promise<T> {
  const response = await fetch(url, { ...init, headers: { "content-type": "application/json" } });
  const body = (await response.json()) as T;
  if (!response.ok) throw new Error(`${init?.method ?? "GET"} ${url}: ${response.status} ${JSON.stringify(body)}`);
  return body;
}
