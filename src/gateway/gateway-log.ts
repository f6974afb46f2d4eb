/**
 * The gateway's log, with pino (issue 13, "Operations"): one JSON object per line on
 * standard error (systemd and container runtimes collect it), one line per message
 * and one per lifecycle event, written synchronously so that the last lines before
 * an exit are not lost. The fields: `level` (`info`; `warn` for a reload or policy
 * refresh that failed and for a transaction turned away busy; `error` for an internal or listener error), `time` (ISO
 * 8601), `event`, then the event's fields; pino's process fields are left out.
 *
 * What a message line holds (docs/gateway.md, "Logs"): the MTA's queue id (Postfix
 * sends it with XFORWARD IDENT) and the gateway's own transaction id, per recipient
 * group its direction, action, the smime result and verdict code, the number of
 * recipients and what the next hop answered, the reply given, and the milliseconds
 * taken. Never a body, a header value, a subject or a key; addresses only as counts:
 * Postfix's own log already ties each queue id to its addresses, so one place, not
 * two, holds who wrote to whom.
 */
import pino from 'pino';

export type LogFields = Record<string, unknown>;

export type GatewayLog = (event: string, fields?: LogFields) => void;

/** The log; `write` receives each line (default: standard error, synchronously). */
export function createGatewayLog(write?: (line: string) => void): GatewayLog {
  const destination = write ? { write } : pino.destination({ fd: 2, sync: true });
  const logger = pino(
    {
      base: null,
      timestamp: () => `,"time":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  return (event, fields = {}) => logger[LEVELS[event] ?? 'info']({ event, ...fields });
}

const LEVELS: Record<string, 'warn' | 'error'> = {
  'reload-failed': 'warn',
  'policy-refresh-failed': 'warn',
  busy: 'warn',
  error: 'error',
  'smtp-error': 'error',
};
