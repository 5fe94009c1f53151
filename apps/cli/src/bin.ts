// Entry point for running the CLI from source (tests, `pnpm dev` without a build).
import { formatCliError, main } from "./index.js";

main(process.argv).catch((error: unknown) => {
  console.error(formatCliError(error));
  process.exit(1);
});
