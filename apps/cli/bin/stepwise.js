#!/usr/bin/env node
// Runs the built CLI; inside this repository, `pnpm build` produces dist/.
import { formatCliError, main } from "../dist/index.js";

main(process.argv).catch((error) => {
  console.error(formatCliError(error));
  process.exit(1);
});
