/**
 * The gateway's DSN sent with a fallback: refused for its size with the whole
 * message (RET=FULL), it goes once more with the header section; nothing else is
 * sent twice; over the next hop's advertised SIZE, it goes with the header section at
 * once. The next hop is a function here that refuses by size as Postfix's
 * message_size_limit does; gateway-policy.test.ts runs it against a real SMTP sink.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RecipientOutcome } from '../../src/smtp/relay-message.ts';
import { refusedForSize, sendDeliveryStatusNotification } from '../../src/gateway/send-delivery-status-notification.ts';
import { returnedContent, type DsnInput } from '../../src/smtp/build-delivery-status-notification.ts';
import { parseDeliveryStatusNotification } from '../helpers/delivery-status.ts';

const outcome = (code: number, response: string): RecipientOutcome => ({ recipient: 'bob@corp.test', status: code < 300 ? 'accepted' : code < 500 ? 'temporary' : 'permanent', code, response });

test('refused for its size: 552, a 5.3.4 status, or a 5xx naming the size; not another 5xx, nor a 4xx', () => {
  assert.equal(refusedForSize(outcome(552, '552 5.3.4 Message size exceeds fixed limit')), true);
  assert.equal(refusedForSize(outcome(552, '552 5.2.2 Mailbox full')), true);
  assert.equal(refusedForSize(outcome(554, '554 5.3.4 Message too big for system')), true);
  assert.equal(refusedForSize(outcome(550, '550 Message size exceeds the limit')), true);
  assert.equal(refusedForSize(outcome(550, '550 5.1.1 no such user')), false);
  assert.equal(refusedForSize(outcome(554, '554 5.7.1 content refused')), false);
  assert.equal(refusedForSize(outcome(452, '452 4.3.4 Message size exceeds the limit (insufficient storage)')), false);
});

test('RET=FULL refused for its size is sent again with the header section (the text says why); RET=HDRS, content that already went as its header section, or another refusal: sent once', async () => {
  const message = Buffer.from(`Subject: Report\r\n\r\n${'BODY-LINE\r\n'.repeat(2000)}`);
  const input = async (ret: 'FULL' | 'HDRS', m = message): Promise<DsnInput> => ({
    reportingMta: 'mx.corp.test',
    sender: 'bob@corp.test',
    recipients: [{ recipient: 'erin@example.com', reason: 'no certificate' }],
    returned: await returnedContent(ret, m.length, async () => m, async () => m),
    arrival: new Date('2026-12-07T10:00:00Z'),
  });
  const sent: Buffer[] = [];
  const limited = (bytes: number, refusal = outcome(552, '552 5.3.4 Message size exceeds fixed limit')) => async (dsn: Buffer) => {
    sent.push(dsn);
    return dsn.length > bytes ? refusal : outcome(250, '250 ok');
  };
  let r = await sendDeliveryStatusNotification(await input('FULL'), limited(message.length));
  assert.equal(sent.length, 2);
  assert.equal(r.outcome.code, 250);
  assert.equal(r.wholeRefused?.code, 552);
  const report = parseDeliveryStatusNotification(sent[1]!);
  assert.equal(report.parts[2]!.contentType, 'text/rfc822-headers');
  assert.match(report.parts[0]!.body.toString('utf8'), /too large to be returned whole/);
  // Refused with the header section too: that refusal is the answer.
  sent.length = 0;
  r = await sendDeliveryStatusNotification(await input('FULL'), limited(100));
  assert.equal(sent.length, 2);
  assert.equal(r.outcome.code, 552);
  for (const [ret, m, send] of [['HDRS', message, limited(100)], ['FULL', Buffer.from('Subject: a\r\n\r\nn\0l\r\n'), limited(100)], ['FULL', message, limited(message.length, outcome(550, '550 5.1.1 no such user'))]] as const) {
    sent.length = 0;
    r = await sendDeliveryStatusNotification(await input(ret, m), send);
    assert.equal(sent.length, 1, ret);
    assert.equal(r.wholeRefused, undefined);
  }
  // The next hop's SIZE known (RFC 1870): over it, the header section goes at once; under it, the whole, and the retry stays.
  sent.length = 0;
  r = await sendDeliveryStatusNotification(await input('FULL'), limited(message.length), message.length);
  assert.deepEqual([sent.length, r.outcome.code, r.wholeOverSize, r.wholeRefused], [1, 250, message.length, undefined]);
  assert.equal(parseDeliveryStatusNotification(sent[0]!).parts[2]!.contentType, 'text/rfc822-headers');
  sent.length = 0;
  r = await sendDeliveryStatusNotification(await input('FULL'), limited(message.length * 2), message.length * 2);
  assert.deepEqual([sent.length, r.outcome.code, r.wholeOverSize], [1, 250, undefined]);
  assert.equal(parseDeliveryStatusNotification(sent[0]!).parts[2]!.contentType, 'message/rfc822');
  sent.length = 0;
  r = await sendDeliveryStatusNotification(await input('FULL'), limited(message.length + 100), message.length * 2);
  assert.deepEqual([sent.length, r.wholeRefused?.code], [2, 552], 'a limit that counts more than the SIZE said: the retry');
});
