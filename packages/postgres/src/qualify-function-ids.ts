import type pg from "pg";
import { withClient } from "./with-client.js";

/**
 * Moves runs and cron ticks recorded under a plain function id (before function ids carried
 * their app) to the qualified id, in one statement. A run moves only when its event is one the
 * function is started by: two apps that both have a `notify` function each take the runs of
 * their own triggers. A cron tick whose qualified twin exists (a scheduler of each version ran
 * during the upgrade) stays as it is: both mark the same tick.
 *
 * $1 plain ids, $2 qualified ids, $3 the event names each function is started by (JSON arrays
 * as text); one element per function. Answers the number of runs moved.
 */
const QUALIFY_FUNCTION_IDS = `
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS input(plain, qualified, events)
), moved AS (
  UPDATE runs SET function_id = input.qualified
  FROM input, events
  WHERE runs.function_id = input.plain AND events.id = runs.event_id AND input.events::jsonb ? events.name
  RETURNING runs.id
), ticks AS (
  UPDATE cron_ticks SET function_id = input.qualified
  FROM input
  WHERE cron_ticks.function_id = input.plain
    AND NOT EXISTS (SELECT FROM cron_ticks twin WHERE twin.function_id = input.qualified AND twin.scheduled_for = cron_ticks.scheduled_for)
)
SELECT count(*)::integer AS moved FROM moved`;

/** {@link RunStore.qualifyFunctionIds}. @internal */
export function qualifyFunctionIds(pool: pg.Pool, ids: Array<{ plain: string; qualified: string; events: string[] }>): Promise<number> {
  if (ids.length === 0) return Promise.resolve(0);
  return withClient(pool, async (client) => {
    const result = await client.query<{ moved: number }>({
      name: "stepwise_qualify_function_ids",
      text: QUALIFY_FUNCTION_IDS,
      values: [ids.map((id) => id.plain), ids.map((id) => id.qualified), ids.map((id) => JSON.stringify(id.events))],
    });
    return result.rows[0]?.moved ?? 0;
  });
}
