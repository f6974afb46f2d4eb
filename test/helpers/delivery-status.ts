/**
 * Reads a delivery status notification (RFC 6522 multipart/report with an RFC 3464
 * message/delivery-status part) the way a mail client's DSN parser would, written
 * here from the RFCs' grammar rather than with the code under test: the top-level
 * boundary, the parts, and the delivery-status fields as groups (per-message first,
 * then one per recipient), each field unfolded, names kept as written and in order.
 */
import assert from 'node:assert/strict';

export interface DeliveryStatusField {
  name: string;
  value: string;
}

export interface ParsedReport {
  /** The top-level header section, unfolded, one string per field. */
  headers: string[];
  parts: Array<{ headers: string[]; contentType: string; body: Buffer }>;
  perMessage: DeliveryStatusField[];
  perRecipient: DeliveryStatusField[][];
  /** The raw message/delivery-status body. */
  statusText: string;
}

function splitHead(entity: Buffer): { headers: string[]; body: Buffer } {
  const end = entity.indexOf('\r\n\r\n');
  const head = (end < 0 ? entity : entity.subarray(0, end)).toString('latin1');
  const headers = head.replace(/\r\n[ \t]+/g, ' ').split('\r\n').filter((l) => l.length > 0);
  return { headers, body: end < 0 ? Buffer.alloc(0) : entity.subarray(end + 4) };
}

function headerValue(headers: string[], name: string): string {
  const line = headers.find((h) => h.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line ? line.slice(name.length + 1).trim() : '';
}

/** The groups of message/delivery-status: blank-line separated, fields unfolded. */
export function readStatusGroups(text: string): DeliveryStatusField[][] {
  return text.split(/\r\n(?:\r\n)+/).map((g) => g.replace(/\r\n[ \t]+/g, ' ').split('\r\n').filter((l) => l.length > 0).map((l) => {
    const colon = l.indexOf(':');
    if (colon < 1) throw new Error(`not a field: ${JSON.stringify(l)}`);
    return { name: l.slice(0, colon), value: l.slice(colon + 1).trim() };
  })).filter((g) => g.length > 0);
}

export function parseDeliveryStatusNotification(message: Buffer): ParsedReport {
  const { headers, body } = splitHead(message);
  const type = headerValue(headers, 'Content-Type');
  if (!/^multipart\/report\s*;/i.test(type) || !/report-type\s*=\s*"?delivery-status"?/i.test(type)) throw new Error(`not a delivery status report: ${type}`);
  const boundary = /boundary\s*=\s*(?:"([^"]+)"|([^\s;]+))/i.exec(type);
  if (!boundary) throw new Error('no boundary');
  const delimiter = `--${boundary[1] ?? boundary[2]}`;
  const text = body.toString('latin1');
  const pieces = text.split(new RegExp(`(?:^|\\r\\n)${delimiter.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(--)?[ \\t]*\\r\\n`));
  // split() with a capturing group: [preamble, undefined, part, undefined, part, ..., '--', epilogue].
  const parts: ParsedReport['parts'] = [];
  for (let i = 2; i < pieces.length; i += 2) {
    if (pieces[i - 1] === '--') break;
    const entity = splitHead(Buffer.from(pieces[i]!, 'latin1'));
    parts.push({ ...entity, contentType: headerValue(entity.headers, 'Content-Type') });
  }
  const status = parts.find((p) => /^message\/delivery-status\b/i.test(p.contentType));
  if (!status) throw new Error('no message/delivery-status part');
  const statusText = status.body.toString('latin1');
  const [perMessage, ...perRecipient] = readStatusGroups(statusText);
  return { headers, parts, perMessage: perMessage ?? [], perRecipient, statusText };
}

/** A field's value in a group (undefined: absent). */
export function field(group: readonly DeliveryStatusField[], name: string): string | undefined {
  return group.find((f) => f.name.toLowerCase() === name.toLowerCase())?.value;
}

/**
 * A "relayed" DSN (RFC 3461 4.1, 6.2) as the gateway and the submission port write
 * it: from the null reverse-path, its Original-Envelope-Id, one group per expected
 * recipient (Final-Recipient, Original-Recipient, Action relayed, Status 2.0.0), the
 * header section only whatever RET said, so never the message's `body`.
 */
export function assertRelayedDsn(delivery: { from: string; message: Buffer }, expected: { envid: string; recipients: ReadonlyArray<{ recipient: string; orcpt: string }>; body: RegExp }): void {
  assert.equal(delivery.from, '', 'the null reverse-path');
  const report = parseDeliveryStatusNotification(delivery.message);
  assert.equal(field(report.perMessage, 'Original-Envelope-Id'), expected.envid);
  assert.deepEqual(
    report.perRecipient.map((g) => ['Original-Recipient', 'Final-Recipient', 'Action', 'Status'].map((n) => field(g, n))),
    expected.recipients.map((r) => [r.orcpt, `rfc822; ${r.recipient}`, 'relayed', '2.0.0']),
    'only the recipients who asked for success notices',
  );
  assert.equal(report.parts[2]!.contentType, 'text/rfc822-headers', 'a success DSN returns headers, whatever RET says');
  assert.doesNotMatch(delivery.message.toString('latin1'), expected.body);
}
