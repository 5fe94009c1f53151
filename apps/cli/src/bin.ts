// Entry point for running the CLI from source (tests, `pnpm dev` without a build).
import { main } from "./index.js";

main(process.argv).catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
