// CPU accounting for the benches: per process from /proc (Linux), Postgres's processes together,
// and Redis from its own INFO. CPU time per operation holds steadier than throughput on a shared
// machine, where a neighbour's load moves wall-clock figures from one run to the next.
import { readdirSync, readFileSync } from "node:fs";

/** CPU seconds a process has used so far, in its own code (user) and in the kernel (system). */
export function cpuTimes(pid: number): { user: number; system: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const { user, system } = cpuTimes(pid);
  return user + system;
}

/** CPU seconds so far of each Postgres server process (the postmaster, its backends and helpers), by pid. */
export function postgresCpuByPid(): Map<number, number> {
  const byPid = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, "utf8").trim() === "postgres") byPid.set(Number(entry), cpuSeconds(Number(entry)));
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return byPid;
}

/**
 * CPU seconds Postgres processes used since `before`: the growth of those alive at both reads,
 * plus all of those started since (a backend that ended meanwhile is not counted).
 */
export function postgresCpuSince(before: Map<number, number>): number {
  let total = 0;
  for (const [pid, seconds] of postgresCpuByPid()) total += seconds - (before.get(pid) ?? 0);
  return total;
}

/** CPU seconds the Redis server has used so far (user + system, from `INFO cpu`). */
export async function redisCpuSeconds(redis: { info(section: "cpu"): Promise<string> }): Promise<number> {
  const info = await redis.info("cpu");
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? 0);
  return field("used_cpu_user") + field("used_cpu_sys");
}
