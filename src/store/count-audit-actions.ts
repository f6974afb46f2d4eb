/**
 * How many times each of some audit actions happened since a moment: the
 * dashboard's counters of the gateway and the signing service, from the store
 * every node writes to (a process's own metrics see only that process). Read on
 * audit_log_at (the time range), which carries the action (migration 22): no
 * table row is read.
 */
import type { Store } from './store.ts';

/** At most this many actions are counted in one call. */
const MAX_ACTIONS = 50;

export async function countAuditActions(store: Store, since: Date, actions: readonly string[]): Promise<Map<string, number>> {
  if (actions.length === 0 || actions.length > MAX_ACTIONS) throw new RangeError(`countAuditActions counts 1..${MAX_ACTIONS} actions.`);
  const rows = await store.engine.all(
    `SELECT action, COUNT(*) AS n FROM audit_log WHERE at >= ? AND action IN (${actions.map(() => '?').join(', ')}) GROUP BY action`,
    [since.toISOString(), ...actions],
  );
  const out = new Map(actions.map((a) => [a, 0]));
  for (const r of rows) out.set(String(r.action), Number(r.n));
  return out;
}
