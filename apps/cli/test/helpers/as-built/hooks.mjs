// Module hooks that run this repository's own TypeScript sources as `tsc` emits them, and
// nothing else. `node --import tsx` (what spawn-cli.ts uses) puts tsx in front of every module
// of the process, the user's functions module included, so it hides every fault in how the
// CLI itself loads that module; `stepwise` as installed (bin/stepwise.js → dist/) has no such
// help, and these hooks give the tests the same.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const repository = new URL("../../../../../", import.meta.url).href;
const isOwnSource = (url) => url.startsWith(repository) && url.endsWith(".ts") && !url.includes("/node_modules/");

export async function resolve(specifier, context, nextResolve) {
  // The sources import their siblings as "./x.js", as tsc wants; on disk that is x.ts.
  if (context.parentURL && isOwnSource(context.parentURL) && specifier.startsWith(".") && specifier.endsWith(".js")) {
    const source = new URL(`${specifier.slice(0, -3)}.ts`, context.parentURL);
    if (existsSync(source)) return { url: source.href, format: "module", shortCircuit: true };
  }
  return nextResolve(specifier, context);
}

export async function load(url, context, nextLoad) {
  if (!isOwnSource(url)) return nextLoad(url, context);
  const { outputText } = ts.transpileModule(await readFile(new URL(url), "utf8"), {
    fileName: fileURLToPath(url),
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      verbatimModuleSyntax: true,
      inlineSourceMap: true,
      inlineSources: true,
    },
  });
  return { format: "module", source: outputText, shortCircuit: true };
}
