// Issue 13, item 10: how `stepwise dev` loads the functions module, run as a user runs the built
// CLI (no tsx preloaded: see helpers/as-built/hooks.mjs), in throwaway projects under the temp dir.
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { runBuiltCli, startBuiltCli } from "./helpers/spawn-built-cli.js";
import { getJson, killHard } from "./helpers/spawn-dev.js";

const root = mkdtempSync(join(tmpdir(), "stepwise-load-functions-"));
const core = fileURLToPath(new URL("../../../packages/core", import.meta.url));
const children: ChildProcess[] = [];

afterAll(async () => {
  await Promise.all(children.map(killHard));
  rmSync(root, { recursive: true, force: true });
});

/** Writes a project with `@stepwise/core` in its node_modules, as an install leaves it. */
function writeProject(name: string, files: Record<string, string>): string {
  const project = join(root, name);
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(dirname(join(project, file)), { recursive: true });
    writeFileSync(join(project, file), text);
  }
  mkdirSync(join(project, "node_modules", "@stepwise"), { recursive: true });
  symlinkSync(core, join(project, "node_modules", "@stepwise", "core"), "dir");
  return project;
}

const echoModule = `import { Stepwise } from "@stepwise/core";
export const stepwise = new Stepwise({ id: "echo" });
export const echo = stepwise.createFunction({ id: "echo" }, { event: "demo/echo" }, async ({ event }) => event.data);
`;

// Each test starts one CLI process (a few seconds each); they share nothing, so they overlap.
describe.concurrent("loading the functions module", { timeout: 120_000 }, () => {
  it("prints the module and the stack of an error thrown while importing it, and creates no data dir", async () => {
    const project = writeProject("throws", {
      "package.json": JSON.stringify({ type: "module" }),
      "functions.ts": `import { Stepwise } from "@stepwise/core";
export const stepwise = new Stepwise({ id: "throws" });

function readSettings(): never {
  throw new Error("boom while importing the functions module");
}
readSettings();
`,
    });
    const functions = join(project, "functions.ts");
    const { code, output } = await runBuiltCli(["dev", "--functions", "functions.ts", "--port", "0"], { cwd: project });
    expect(code).not.toBe(0);
    expect(output).toContain(`could not import the functions module ${functions}: boom while importing the functions module`);
    // The frame of the throw, in the user's file, at the line of the `throw`.
    expect(output).toMatch(new RegExp(`at readSettings \\((file://)?${escapeRegExp(functions)}:5:\\d+\\)`));
    expect(existsSync(join(project, ".stepwise"))).toBe(false);
  });

  it('runs a function from a project without "type": "module" whose module imports and re-exports local TypeScript', async () => {
    const project = writeProject("commonjs", {
      "package.json": JSON.stringify({ name: "commonjs-project", private: true }),
      "client.ts": `import { Stepwise } from "@stepwise/core";
export const stepwise = new Stepwise({ id: "commonjs-project" });
`,
      // Every way to name a local module, and every extension; `export *` is what failed with
      // ENOENT client.ts?namespace=...: Node reads a CommonJS module's re-exports by file name.
      "functions.ts": `import { stepwise } from "./client";
import { shout } from "./text/shout.ts";
import { exclaim } from "./text/exclaim.js";
import { open } from "./text/open.cts";
import { close } from "./text/close.mts";
import { quote } from "./esm/quote.ts";

export * from "./client.ts";

export const greet = stepwise.createFunction({ id: "greet" }, { event: "demo/greet" }, async ({ event, step }) => {
  const greeting = await step.run("greet", () => quote(open + exclaim(shout(String(event.data["name"]))) + close));
  return { greeting };
});
`,
      "text/shout.ts": "export const shout = (text: string): string => text.toUpperCase();\n",
      "text/exclaim.ts": 'export function exclaim(text: string): string {\n  return text + "!";\n}\n',
      "text/open.cts": 'export const open: string = "<";\n',
      "text/close.mts": 'export const close: string = ">";\n',
      // A folder of ES modules inside the CommonJS project.
      "esm/package.json": JSON.stringify({ type: "module" }),
      "esm/quote.ts": "export const quote = (text: string): string => JSON.stringify(text);\n",
    });
    const dev = await startBuiltCli(["dev", "--functions", "functions.ts", "--port", "0", "--data-dir", join(root, "commonjs-data")], {
      cwd: project,
      // Ready, and the function listed, on the line after.
      ready: /ready in \d+ ms on (http:\/\/127\.0\.0\.1:\d+)[\s\S]*greet ← demo\/greet/,
    });
    children.push(dev.child);
    const url = dev.match[1] as string;

    const { ids } = await getJson<{ ids: string[] }>(`${url}/e/dev`, { method: "POST", body: JSON.stringify({ name: "demo/greet", data: { name: "ada" } }) });
    const { runs } = await getJson<{ runs: Array<{ id: string }> }>(`${url}/v1/events/${ids[0]}/runs`);
    const { run } = await getJson<{ run: { status: string; output: unknown } }>(`${url}/v1/runs/${runs[0]?.id}/wait?timeout=60000`);
    expect(run).toMatchObject({ status: "completed", output: { greeting: '"<ADA!>"' } });
  });

  it("fails on a mistyped --functions with a message naming the path, and creates no data dir", async () => {
    const project = writeProject("typo", { "package.json": JSON.stringify({ type: "module" }), "functions.ts": echoModule });
    const { code, output } = await runBuiltCli(["dev", "--functions", "functoins.ts", "--port", "0"], { cwd: project });
    expect(code).not.toBe(0);
    expect(output).toContain(`--functions: ${join(project, "functoins.ts")} does not exist`);
    expect(existsSync(join(project, ".stepwise"))).toBe(false);
  });

  it("fails on a taken port with a message naming the port, and creates no data dir", async () => {
    const project = writeProject("port-taken", { "package.json": JSON.stringify({ type: "module" }), "functions.ts": echoModule });
    const taken = createServer();
    const port = await new Promise<number>((resolve) => taken.listen(0, "127.0.0.1", () => resolve((taken.address() as { port: number }).port)));
    try {
      const { code, output } = await runBuiltCli(["dev", "--functions", "functions.ts", "--port", String(port)], { cwd: project });
      expect(code).not.toBe(0);
      expect(output).toContain(`port ${port} on 127.0.0.1 is already in use`);
      expect(existsSync(join(project, ".stepwise"))).toBe(false);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
