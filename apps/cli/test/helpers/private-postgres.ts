import { execFileSync } from "node:child_process";
import { chownSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "@stepwise/redis/testing";

const PG_BIN = "/usr/lib/postgresql/15/bin";

/** A Postgres 15 cluster of this test's own, for tests that restart or crash the server. */
export interface PrivatePostgres {
  url: string;
  /** `pg_ctl stop -m immediate` (a crash: no checkpoint), then start again. */
  restartImmediate(): void;
  stop(): void;
}

/**
 * initdb's a throwaway cluster (trust auth, 127.0.0.1 on a free port) and starts it. Restarting
 * the shared server would break the test files running beside this one. Runs the server as
 * the `postgres` user, which Postgres requires when the tests run as root.
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "stepwise-pg-"));
  const data = join(dir, "data");
  const asPostgres = (command: string, args: string[]) => {
    const runAs = process.getuid?.() === 0 ? ["runuser", ["-u", "postgres", "--", command, ...args]] : [command, args];
    execFileSync(runAs[0] as string, runAs[1] as string[], { stdio: "pipe" });
  };
  if (process.getuid?.() === 0) {
    const { uid, gid } = userIds("postgres");
    chownSync(dir, uid, gid);
  }
  asPostgres(`${PG_BIN}/initdb`, ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
  const start = () =>
    asPostgres(`${PG_BIN}/pg_ctl`, ["-D", data, "-w", "-l", join(dir, "log"), "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=on`, "start"]);
  start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    restartImmediate() {
      asPostgres(`${PG_BIN}/pg_ctl`, ["-D", data, "-m", "immediate", "-w", "stop"]);
      start();
    },
    stop() {
      try {
        asPostgres(`${PG_BIN}/pg_ctl`, ["-D", data, "-m", "immediate", "-w", "stop"]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

function userIds(name: string): { uid: number; gid: number } {
  const uid = Number(execFileSync("id", ["-u", name]).toString().trim());
  const gid = Number(execFileSync("id", ["-g", name]).toString().trim());
  return { uid, gid };
}
