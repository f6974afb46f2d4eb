/**
 * The gateway's own DSN (RFC 3464 in RFC 6522's multipart/report) as the sender's
 * RFC 3461 requests shape it: which recipients NOTIFY lets it name, ENVID as
 * Original-Envelope-Id and ORCPT as Original-Recipient (decoded from xtext, in the
 * grammar's order), what RET returns; hostile values (CRLF injection, over-long,
 * non-ASCII, no addr-type) never reach the fields. Read back with a parser written
 * from the RFCs (test/helpers/delivery-status.ts), not with our MIME code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildDeliveryStatusNotification, notifiesFailure, returnedContent, returnsWhole, RETURN_WHOLE_LIMIT, type DsnInput } from '../../src/smtp/build-delivery-status-notification.ts';
import { field, parseDeliveryStatusNotification } from '../helpers/delivery-status.ts';

const original = Buffer.from('From: Bob <bob@corp.test>\r\nTo: erin@example.com\r\nSubject: Quarterly\r\nMessage-ID: <q1@corp.test>\r\n\r\nSECRET-FIGURES\r\n');
const base: DsnInput = {
  reportingMta: 'mx.corp.test',
  sender: 'bob@corp.test',
  recipients: [{ recipient: 'erin@example.com', reason: 'Encryption to erin@example.com is required by policy and no certificate is known for the recipient.' }],
  returned: { head: original },
  arrival: new Date('2026-12-07T10:00:00Z'),
  queueId: '4ABCDEF',
};

test('NOTIFY: absent or with FAILURE asks for a failure DSN; NEVER, or a list without FAILURE, does not (RFC 3461 4.1)', () => {
  assert.equal(notifiesFailure(undefined), true);
  assert.equal(notifiesFailure(['FAILURE']), true);
  assert.equal(notifiesFailure(['SUCCESS', 'FAILURE', 'DELAY']), true);
  assert.equal(notifiesFailure(['NEVER']), false);
  assert.equal(notifiesFailure(['SUCCESS']), false);
  assert.equal(notifiesFailure(['SUCCESS', 'DELAY']), false);
});

test('ENVID and ORCPT, decoded, become Original-Envelope-Id (first of the per-message fields) and Original-Recipient (first of its recipient\'s); no ENVID or ORCPT, no field', () => {
  const dsn = parseDeliveryStatusNotification(buildDeliveryStatusNotification({
    ...base,
    // As smtp-server hands them over: ENVID=Q+2B2026+3D7 and ORCPT=rfc822;board+2Bq@corp.test decoded.
    envid: 'Q+2026=7',
    recipients: [
      { recipient: 'erin@example.com', reason: 'no certificate', orcpt: 'rfc822;board+q@corp.test' },
      { recipient: 'zed@example.com', reason: 'no certificate' },
    ],
  }));
  assert.deepEqual(dsn.perMessage.map((f) => f.name), ['Original-Envelope-Id', 'Reporting-MTA', 'Arrival-Date', 'X-Postfix-Queue-ID']);
  assert.equal(field(dsn.perMessage, 'Original-Envelope-Id'), 'Q+2026=7');
  assert.equal(field(dsn.perMessage, 'Reporting-MTA'), 'dns; mx.corp.test');
  assert.equal(dsn.perRecipient.length, 2);
  const [erin, zed] = dsn.perRecipient;
  assert.deepEqual(erin!.map((f) => f.name), ['Original-Recipient', 'Final-Recipient', 'Action', 'Status', 'Diagnostic-Code']);
  assert.equal(field(erin!, 'Original-Recipient'), 'rfc822;board+q@corp.test');
  assert.equal(field(erin!, 'Final-Recipient'), 'rfc822; erin@example.com');
  assert.equal(field(erin!, 'Action'), 'failed');
  assert.equal(field(erin!, 'Status'), '5.7.5');
  assert.equal(field(zed!, 'Original-Recipient'), undefined);
  assert.equal(field(zed!, 'Final-Recipient'), 'rfc822; zed@example.com');
  const without = parseDeliveryStatusNotification(buildDeliveryStatusNotification(base));
  assert.equal(field(without.perMessage, 'Original-Envelope-Id'), undefined);
  assert.deepEqual(without.perMessage.map((f) => f.name), ['Reporting-MTA', 'Arrival-Date', 'X-Postfix-Queue-ID']);
});

test('hostile ENVID and ORCPT (CRLF injection, control characters, non-ASCII, over-long, no addr-type) never reach the fields: left out, the rest intact', () => {
  const hostile: Array<{ envid: string; orcpt: string }> = [
    { envid: 'id\r\nX-Injected: 1', orcpt: 'rfc822;a@b\r\nX-Injected: 2' },
    { envid: 'id\r\n\r\nFinal-Recipient: rfc822; evil@x', orcpt: 'rfc822;a@b\r\n\r\nFinal-Recipient: rfc822; evil@x' },
    { envid: 'bell\x07', orcpt: 'rfc822;nul\x00@b' },
    { envid: 'café', orcpt: 'rfc822;café@example.com' },
    // Each "+" is three characters xtext-encoded: over the 100 (ENVID) and 500 (ORCPT) RFC 3461 allows.
    { envid: '+'.repeat(34), orcpt: `rfc822;${'+'.repeat(165)}@b` },
    { envid: 'x'.repeat(101), orcpt: `rfc822;${'x'.repeat(494)}` },
    { envid: 'ok', orcpt: 'no-addr-type' },
    { envid: 'ok', orcpt: ';a@b' },
    { envid: 'ok', orcpt: 'rfc 822;a@b' },
  ];
  for (const h of hostile) {
    const bytes = buildDeliveryStatusNotification({ ...base, envid: h.envid, recipients: [{ recipient: 'erin@example.com', reason: 'no certificate', orcpt: h.orcpt }] });
    const dsn = parseDeliveryStatusNotification(bytes);
    const label = JSON.stringify(h);
    assert.doesNotMatch(dsn.statusText, /X-Injected|evil@x/, label);
    assert.equal(dsn.perRecipient.length, 1, label);
    assert.equal(field(dsn.perRecipient[0]!, 'Original-Recipient'), undefined, label);
    assert.equal(field(dsn.perRecipient[0]!, 'Final-Recipient'), 'rfc822; erin@example.com', label);
    const envid = field(dsn.perMessage, 'Original-Envelope-Id');
    assert.ok(envid === undefined || envid === 'ok', label);
    // Every line of the machine part is printable US-ASCII.
    assert.match(dsn.statusText, /^[\x20-\x7e\r\n]*$/, label);
    assert.doesNotMatch(bytes.toString('latin1').split('\r\n\r\n')[0]!, /X-Injected/, label);
  }
  // The longest values RFC 3461 allows are written whole.
  const longest = { envid: 'e'.repeat(100), orcpt: `rfc822;${'o'.repeat(493)}` };
  const dsn = parseDeliveryStatusNotification(buildDeliveryStatusNotification({ ...base, envid: longest.envid, recipients: [{ recipient: 'erin@example.com', reason: 'r', orcpt: longest.orcpt }] }));
  assert.equal(field(dsn.perMessage, 'Original-Envelope-Id'), longest.envid);
  assert.equal(field(dsn.perRecipient[0]!, 'Original-Recipient'), longest.orcpt);
});

test('RET: HDRS, and no RET (the gateway\'s choice), return the header section only; FULL the whole message (message/rfc822) up to RETURN_WHOLE_LIMIT, the header section above it with a sentence saying why', async () => {
  const part = async (ret: 'FULL' | 'HDRS' | undefined, message: Buffer, size = message.length) => {
    const dsn = parseDeliveryStatusNotification(buildDeliveryStatusNotification({ ...base, returned: await returnedContent(ret, size, async () => message, async () => message) }));
    assert.equal(dsn.parts.length, 3);
    return { part: dsn.parts[2]!, text: dsn.parts[0]!.body.toString('utf8') };
  };
  for (const ret of ['HDRS', undefined] as const) {
    const r = await part(ret, original);
    assert.equal(r.part.contentType, 'text/rfc822-headers', String(ret));
    assert.match(r.part.body.toString('latin1'), /^Subject: Quarterly\r$/m);
    assert.doesNotMatch(r.part.body.toString('latin1'), /SECRET-FIGURES/);
    assert.doesNotMatch(r.text, /too large/);
  }
  let r = await part('FULL', original);
  assert.equal(r.part.contentType, 'message/rfc822');
  assert.deepEqual(r.part.body, original, 'the message as received, byte for byte');
  const big = Buffer.concat([original, Buffer.from(`${'x'.repeat(76)}\r\n`.repeat(2000))]);
  r = await part('FULL', big);
  assert.equal(r.part.contentType, 'message/rfc822');
  assert.deepEqual(r.part.body, big);
  // Over RETURN_WHOLE_LIMIT: the whole message is never read; the header section, and the text says why.
  const content = await returnedContent('FULL', RETURN_WHOLE_LIMIT + 1, async () => assert.fail('read whole'), async () => original);
  assert.deepEqual(content, { head: original, tooLarge: true });
  const dsn = parseDeliveryStatusNotification(buildDeliveryStatusNotification({ ...base, returned: content }));
  assert.equal(dsn.parts[2]!.contentType, 'text/rfc822-headers');
  assert.match(dsn.parts[0]!.body.toString('utf8'), /too large to be returned whole/);
  assert.equal(returnsWhole('HDRS', 10), false);
  assert.equal(returnsWhole(undefined, 10), false);
  assert.equal(returnsWhole('FULL', RETURN_WHOLE_LIMIT), true);
  assert.equal(returnsWhole('FULL', RETURN_WHOLE_LIMIT + 1), false);
});

test('RET=FULL: 8-bit content is marked 8bit; content only a binary transfer could carry (bare LF, NUL, a line over 998) goes back as its header section', async () => {
  const eight = Buffer.from('Subject: caf\xe9\r\n\r\nna\xefve\r\n', 'latin1');
  let dsn = parseDeliveryStatusNotification(buildDeliveryStatusNotification({ ...base, returned: await returnedContent('FULL', eight.length, async () => eight, async () => eight) }));
  assert.equal(dsn.parts[2]!.contentType, 'message/rfc822');
  assert.ok(dsn.parts[2]!.headers.includes('Content-Transfer-Encoding: 8bit'));
  for (const binary of [Buffer.from('Subject: a\r\n\r\nbare\nLF\r\n'), Buffer.from('Subject: a\r\n\r\nn\0l\r\n'), Buffer.from(`Subject: a\r\n\r\n${'y'.repeat(999)}\r\n`)]) {
    dsn = parseDeliveryStatusNotification(buildDeliveryStatusNotification({ ...base, returned: await returnedContent('FULL', binary.length, async () => binary, async () => binary) }));
    assert.equal(dsn.parts[2]!.contentType, 'text/rfc822-headers');
    assert.equal(dsn.parts[2]!.body.toString('latin1'), 'Subject: a\r\n');
    // The text says why only the header section came back (not "too large").
    const text = dsn.parts[0]!.body.toString('utf8');
    assert.match(text, /could not be returned whole: it holds content SMTP cannot carry intact/);
    assert.doesNotMatch(text, /too large/);
  }
  // Returned whole: no such sentence.
  assert.doesNotMatch(parseDeliveryStatusNotification(buildDeliveryStatusNotification({ ...base, returned: { whole: eight } })).parts[0]!.body.toString('utf8'), /returned whole/);
});
