import type { ChildProcess } from "node:child_process";
import { startCli } from "./spawn-cli.js";

/** A `stepwise dev` child process, as the crash tests drive it. */
export interface DevProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
}

/** Starts `stepwise dev` from source on a free port and resolves once it prints its URL. */
export async function spawnDev(options: { functions: string; dataDir: string; env?: Record<string, string> }): Promise<DevProcess> {
  const args = ["dev", "--functions", options.functions, "--data-dir", options.dataDir, "--port", "0"];
  const dev = await startCli(args, options.env ?? {}, /ready in \d+ ms on (http:\/\/127\.0\.0\.1:\d+)/);
  return { ...dev, url: dev.url as string };
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
