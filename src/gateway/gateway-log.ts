/**
 * The gateway's log: one JSON object per line on standard error (systemd and
 * container runtimes collect it), one line per message and one per lifecycle event.
 *
 * What a message line holds (docs/gateway.md, "Logs"): the time, the MTA's queue id
 * (Postfix sends it with XFORWARD IDENT) and the gateway's own transaction id, per
 * recipient group its direction, action, the smime result and verdict code, the
 * number of recipients and what the next hop answered, the reply given, and the
 * milliseconds taken. Never a body, a header value, a subject or a key; addresses
 * only as counts: Postfix's own log already ties each queue id to its addresses,
 * so one place, not two, holds who wrote to whom.
 */
export type LogFields = Record<string, unknown>;

export type GatewayLog = (event: string, fields?: LogFields) => void;

export function createGatewayLog(write: (line: string) => void = (line) => process.stderr.write(line)): GatewayLog {
  return (event, fields = {}) => {
    write(`${JSON.stringify({ time: new Date().toISOString(), event, ...fields })}\n`);
  };
}
