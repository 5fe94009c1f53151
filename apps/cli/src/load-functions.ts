import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { type AnyStepwise, type AnyStepwiseFunction, Stepwise, StepwiseFunction } from "@stepwise/core";

/** Modules tried, in order, when `--functions` is not given. */
export const DEFAULT_FUNCTION_MODULES = ["src/stepwise.ts", "src/functions.ts", "src/index.ts", "stepwise.ts", "functions.ts"];

/** What a functions module exports: clients (with their functions) and loose functions. */
export interface LoadedFunctions {
  path: string;
  clients: AnyStepwise[];
  functions: AnyStepwiseFunction[];
}

/**
 * Imports the user's functions module (TypeScript works, through tsx) and collects every
 * exported `Stepwise` client and function, also inside exported arrays and objects.
 */
export async function loadFunctions(modulePath: string | undefined, cwd = process.cwd()): Promise<LoadedFunctions> {
  const path = modulePath
    ? resolve(cwd, modulePath)
    : DEFAULT_FUNCTION_MODULES.map((candidate) => resolve(cwd, candidate)).find((candidate) => existsSync(candidate));
  if (!path) {
    throw new Error(
      `no functions module found; pass --functions <path to a module that exports your Stepwise client or functions> (looked for ${DEFAULT_FUNCTION_MODULES.join(", ")})`,
    );
  }
  if (!existsSync(path)) throw new Error(`--functions: ${path} does not exist`);
  const module = /\.[cm]?tsx?$/.test(path) ? await importTypeScript(path) : await import(pathToFileURL(path).href);
  const clients = new Set<AnyStepwise>();
  const functions = new Set<AnyStepwiseFunction>();
  const visit = (value: unknown, depth: number) => {
    if (Stepwise.isInstance(value)) clients.add(value);
    else if (StepwiseFunction.isInstance(value)) functions.add(value);
    else if (depth < 2 && value && typeof value === "object") for (const item of Object.values(value)) visit(item, depth + 1);
  };
  for (const value of Object.values(module as Record<string, unknown>)) visit(value, 0);
  const owned = new Set([...clients].flatMap((client) => client.functions));
  const loose = [...functions].filter((fn) => !owned.has(fn));
  if (clients.size === 0 && loose.length === 0)
    throw new Error(`${path} exports no Stepwise client or function; export the client (new Stepwise(...)) or the functions`);
  return { path, clients: [...clients], functions: loose };
}

async function importTypeScript(path: string): Promise<unknown> {
  const { tsImport } = await import("tsx/esm/api");
  return tsImport(pathToFileURL(path).href, import.meta.url);
}
