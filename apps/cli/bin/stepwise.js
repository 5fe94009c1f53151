#!/usr/bin/env node
// Runs the built CLI; inside this repository, `pnpm build` produces dist/.
import { main } from "../dist/index.js";

main(process.argv).catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
