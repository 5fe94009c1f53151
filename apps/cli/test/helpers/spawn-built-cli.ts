import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const bin = fileURLToPath(new URL("../../src/bin.ts", import.meta.url));
const asBuilt = fileURLToPath(new URL("./as-built/register.mjs", import.meta.url));

/**
 * Runs `stepwise <args>` from source in `cwd` the way the built CLI runs: no tsx preloaded (see
 * `as-built/hooks.mjs`), so the CLI loads the user's functions module on its own. Use it where
 * that loading is what is tested; `spawnCli` (spawn-cli.ts) is the usual way.
 */
export function spawnBuiltCli(args: string[], options: { cwd: string }): ChildProcess {
  return spawn(process.execPath, ["--conditions=@stepwise/source", "--import", asBuilt, bin, ...args], {
    cwd: options.cwd,
    env: { ...process.env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** What a CLI process printed (stdout and stderr, interleaved), as it prints it. */
function collectOutput(child: ChildProcess): () => string {
  let output = "";
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  return () => output;
}

/** Runs `stepwise <args>` to its end. */
export function runBuiltCli(args: string[], options: { cwd: string }): Promise<{ code: number | null; output: string }> {
  const child = spawnBuiltCli(args, options);
  const output = collectOutput(child);
  // "close", not "exit": by then everything the process wrote has been read.
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, output: output() })));
}

/** Starts `stepwise <args>` and resolves once a line matches `ready`; rejects if it exits first. */
export function startBuiltCli(
  args: string[],
  options: { cwd: string; ready: RegExp },
): Promise<{ child: ChildProcess; match: RegExpExecArray; output: () => string }> {
  const child = spawnBuiltCli(args, options);
  const output = collectOutput(child);
  return new Promise((resolve, reject) => {
    const onData = () => {
      const match = options.ready.exec(output());
      if (!match) return;
      child.stdout?.off("data", onData);
      child.off("close", onClose);
      resolve({ child, match, output });
    };
    const onClose = (code: number | null) => reject(new Error(`stepwise ${args[0]} exited (${code}) before it was ready:\n${output()}`));
    child.stdout?.on("data", onData);
    child.once("close", onClose);
  });
}
