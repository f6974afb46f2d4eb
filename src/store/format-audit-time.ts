/**
 * An audit row's time as the audit log stores it: Date.prototype.toISOString's text
 * (YYYY-MM-DDTHH:MM:SS.mmmZ), which list-audit-page.ts and the console compare and
 * sort as text. The signing service writes a row per message signed (a million for a
 * million-message batch), and V8 formats toISOString through snprintf: about 6,000
 * instructions a row, the largest single cost of making the row (callgrind, a
 * 2 KB message's batch signing; docs/performance.md). The text up to the seconds
 * is the same for every row of one second, so it is formatted once a second by
 * toISOString itself (any year it writes, six-digit and negative ones too) and each
 * row adds its milliseconds.
 */
let second = NaN;
let prefix = '';
const MS = Array.from({ length: 1000 }, (_, i) => `${String(i).padStart(3, '0')}Z`);

export function formatAuditTime(at: Date): string {
  const t = at.getTime();
  // An invalid Date throws as toISOString does.
  if (!Number.isFinite(t)) return at.toISOString();
  const ms = ((t % 1000) + 1000) % 1000;
  const s = t - ms;
  if (s !== second) {
    // "…:SS.000Z" without its "000Z".
    prefix = new Date(s).toISOString().slice(0, -4);
    second = s;
  }
  return prefix + MS[ms]!;
}
