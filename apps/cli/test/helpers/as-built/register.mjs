// `node --import <this file> apps/cli/src/bin.ts`: runs the CLI from source the way its build
// runs, with no tsx in the process until the CLI itself brings it in (see hooks.mjs).
import { register } from "node:module";

register("./hooks.mjs", import.meta.url);
