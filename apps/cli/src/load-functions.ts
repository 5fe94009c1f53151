import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, extname, join, resolve } from "node:path";
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
 * Imports the user's functions module and collects every exported `Stepwise` client and
 * function, also inside exported arrays and objects. TypeScript works (`.ts`, `.mts`, `.cts`,
 * `.tsx`, and `.js` files importing them), in `"type": "module"` projects and CommonJS ones.
 *
 * @param modulePath The module, relative to `cwd`. (Default: the first of {@link DEFAULT_FUNCTION_MODULES} that exists)
 * @param cwd (Default: `process.cwd()`)
 * @throws When no module is found, when importing it throws (an error naming the module, with
 * the original as `cause`: its stack points into the user's file), or when it exports nothing usable.
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
  let module: Record<string, unknown>;
  try {
    module = await importModule(path);
  } catch (error) {
    throw new Error(`could not import the functions module ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  const clients = new Set<AnyStepwise>();
  const functions = new Set<AnyStepwiseFunction>();
  const visit = (value: unknown, depth: number) => {
    if (Stepwise.isInstance(value)) clients.add(value);
    else if (StepwiseFunction.isInstance(value)) functions.add(value);
    else if (depth < 2 && value && typeof value === "object") for (const item of Object.values(value)) visit(item, depth + 1);
  };
  for (const value of Object.values(module)) visit(value, 0);
  const owned = new Set([...clients].flatMap((client) => client.functions));
  const loose = [...functions].filter((fn) => !owned.has(fn));
  if (clients.size === 0 && loose.length === 0)
    throw new Error(`${path} exports no Stepwise client or function; export the client (new Stepwise(...)) or the functions`);
  return { path, clients: [...clients], functions: loose };
}

/**
 * Loads the module the way Node would run it under `node --import tsx`: CommonJS files
 * (`.cts`, `.cjs`, or `.ts`/`.js` without `"type": "module"` in the nearest package.json) with
 * `require`, ES modules with `import()`.
 *
 * Not `import()` for everything: Node 20 runs a `.cts` brought in by `import()` with a `require`
 * that cannot load ES module packages (`request for './x.js' is not in cache`, for any import
 * of `@stepwise/core`), and `require` needs no scan of the file's exports either.
 */
async function importModule(path: string): Promise<Record<string, unknown>> {
  await registerTypeScript();
  if (!isCommonJs(path)) return import(pathToFileURL(path).href);
  const exports: unknown = createRequire(import.meta.url)(path);
  // The shape `import()` gives a CommonJS module: its exports by name, and all of them as `default`.
  const named = exports !== null && typeof exports === "object" && Object.getPrototypeOf(exports) === Object.prototype ? exports : {};
  return { ...named, default: exports };
}

let typeScriptRegistered: Promise<void> | undefined;

/**
 * Registers tsx for the whole process, once, as `node --import tsx` does, so the user's code
 * may also import more TypeScript later (from a step, say).
 *
 * Not tsx's `tsImport`: that tags every CommonJS module it loads with `?namespace=<id>` in its
 * file name and relies on spotting Node's own calls by their place on the stack; in a project
 * without `"type": "module"`, Node's scan of a module's exports for `export * from "./b.ts"`
 * then opens `b.ts?namespace=<id>` as a file (ENOENT) whenever tsx is not also preloaded, which
 * is how the built CLI runs.
 */
function registerTypeScript(): Promise<void> {
  typeScriptRegistered ??= (async () => {
    const [esm, cjs] = await Promise.all([import("tsx/esm/api"), import("tsx/cjs/api")]);
    cjs.register();
    esm.register();
  })();
  return typeScriptRegistered;
}

function isCommonJs(path: string): boolean {
  const extension = extname(path);
  if (extension === ".cts" || extension === ".cjs") return true;
  if (extension === ".mts" || extension === ".mjs") return false;
  return nearestPackageType(dirname(path)) !== "module";
}

/** The `type` of the package.json that decides the format of the files in `directory`, as Node looks it up. */
function nearestPackageType(directory: string): unknown {
  for (let current = directory; basename(current) !== "node_modules"; current = dirname(current)) {
    const manifest = join(current, "package.json");
    if (existsSync(manifest)) return (JSON.parse(readFileSync(manifest, "utf8")) as { type?: unknown }).type;
    if (dirname(current) === current) break;
  }
  return undefined;
}
