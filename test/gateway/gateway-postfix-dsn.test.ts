/**
 * The gateway's DSN duties behind a real Postfix (Debian's package, a private
 * instance on loopback, the real `kakitome gateway` process):
 * - SMTP filter transport, encryption required and no certificate for one recipient
 *   while another's copy is relayed: the gateway writes the DSN itself. NOTIFY=NEVER
 *   means no DSN at all (and the log says it was suppressed); NOTIFY=FAILURE gives
 *   one that carries Original-Envelope-Id and Original-Recipient, read from the
 *   delivered message/delivery-status part;
 * - LMTP filter transport: Postfix's queue holds one address twice (two RCPTs whose
 *   NOTIFY differ) and its lmtp client sends both RCPTs; every accepted RCPT gets its
 *   reply after DATA (RFC 2033 4.2), so Postfix delivers both entries at once, and the
 *   recipient gets one copy carrying both entries' requests.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { draft } from './gateway-fixture.ts';
import { freePort, PostfixInstance } from './postfix-instance.ts';
import { smtpDialogue } from '../helpers/smtp-dialogue.ts';
import { field, parseDeliveryStatusNotification } from '../helpers/delivery-status.ts';
import { startGatewayProcess, startPostfixWorld, until, type PostfixWorld } from './gateway-process.ts';

let shared: PostfixWorld;

before(async () => {
  shared = await startPostfixWorld();
});

after(async () => {
  await shared?.stop();
});

/** A message submitted to Postfix's smtpd with the given MAIL FROM parameters and RCPTs (address and parameters); every reply must be 2xx or 354. */
async function submit(port: number, mailParams: string, rcpts: readonly string[], message: Buffer): Promise<void> {
  const replies = await smtpDialogue(port, ['EHLO client.test', `MAIL FROM:<alice@corp.test>${mailParams}`, ...rcpts.map((r) => `RCPT TO:${r}`), 'DATA', `${message.toString('latin1')}.`, 'QUIT']);
  assert.ok(replies.every((r) => r.code < 400), replies.map((r) => r.text).join('\n'));
}

test('through Postfix (SMTP filter), encryption required and no certificate for Frank while Carol\'s copy goes: NOTIFY=NEVER gives no DSN at all; NOTIFY=FAILURE gives the gateway\'s DSN with Original-Envelope-Id and Original-Recipient (decoded from xtext)', async () => {
  const { world, sink, pf, ports } = shared;
  const policy = join(world.dir, 'required.json');
  writeFileSync(policy, JSON.stringify({ global: { revocation: 'allow-unknown' }, domains: { 'corp.test': { encrypt: 'required', missingCertificate: 'bounce' } }, addresses: {} }));
  const gw = await startGatewayProcess(world, ['--listen', `127.0.0.1:${ports.filter}`, '--next-hop', `127.0.0.1:${ports.reinject}`, '--domain', 'corp.test', '--authserv-id', 'mx.corp.test', '--policy', policy]);
  const messageLines = () => gw.lines.filter((l) => l.includes('"event":"message"')).map((l) => JSON.parse(l) as { groups: Array<{ action: string; dsn?: object }> });
  try {
    // 1. NOTIFY=NEVER for Frank: Carol's copy, nothing else, ever.
    sink.reset();
    await submit(ports.smtp, ' ENVID=pf+2B1', ['<carol@example.com>', '<frank@example.com> NOTIFY=NEVER'], draft('alice@corp.test', 'carol@example.com, frank@example.com', 'Never', 'NEVER-BODY'));
    await until('Carol\'s copy', () => sink.deliveries.some((d) => d.to.includes('carol@example.com')), pf);
    await until('the gateway\'s log line', () => messageLines().length === 1, pf);
    assert.deepEqual(messageLines()[0]!.groups.find((g) => g.action === 'bounced')!.dsn, { notified: 0, suppressed: 1, outcome: 'none' }, 'the log says the DSN was suppressed');
    // A DSN (there must be none) would be queued before the log line (the gateway logs after its next hop took
    // it) or before Postfix drops the original (its bounce daemon): once the queue is empty, it would have arrived.
    await until('Postfix\'s queue to empty (it keeps nothing back)', async () => (await pf.queued()) === 0, pf);
    assert.deepEqual(sink.deliveries.map((d) => d.to), [['carol@example.com']], 'no DSN to Alice, nothing to Frank');
    // 2. NOTIFY=FAILURE, ENVID and ORCPT in xtext, RET=HDRS: the gateway's DSN reaches Alice through Postfix.
    sink.reset();
    await submit(ports.smtp, ' RET=HDRS ENVID=pf+2B2+3Dq', ['<carol@example.com>', '<frank@example.com> NOTIFY=FAILURE ORCPT=rfc822;frank+2Bboard@example.com'], draft('alice@corp.test', 'carol@example.com, frank@example.com', 'Failure', 'FAILURE-BODY'));
    await until('Carol\'s copy and the DSN', () => sink.deliveries.some((d) => d.to.includes('carol@example.com')) && sink.deliveries.some((d) => d.to.includes('alice@corp.test')), pf);
    const delivered = sink.deliveryTo('alice@corp.test');
    assert.equal(delivered.from, '', 'the null reverse-path');
    const report = parseDeliveryStatusNotification(delivered.message);
    assert.equal(field(report.perMessage, 'Original-Envelope-Id'), 'pf+2=q');
    assert.equal(field(report.perMessage, 'Reporting-MTA'), 'dns; mx.corp.test');
    assert.match(field(report.perMessage, 'X-Postfix-Queue-ID') ?? '', /^[0-9A-F]+$/, 'Postfix\'s queue id (XFORWARD IDENT)');
    assert.equal(report.perRecipient.length, 1);
    const [frank] = report.perRecipient;
    assert.equal(field(frank!, 'Original-Recipient'), 'rfc822;frank+board@example.com');
    assert.equal(field(frank!, 'Final-Recipient'), 'rfc822; frank@example.com');
    assert.equal(field(frank!, 'Action'), 'failed');
    assert.equal(field(frank!, 'Status'), '5.7.5');
    assert.equal(report.parts[2]!.contentType, 'text/rfc822-headers');
    assert.doesNotMatch(delivered.message.toString('latin1'), /FAILURE-BODY/);
    assert.equal(sink.deliveries.filter((d) => d.to.includes('frank@example.com')).length, 0, 'nothing reaches Frank');
    assert.deepEqual(messageLines()[1]!.groups.find((g) => g.action === 'bounced')!.dsn, { notified: 1, suppressed: 0, outcome: 'accepted' });
  } finally {
    gw.child.kill('SIGTERM');
    assert.equal(await gw.exited, 0, gw.lines.join('\n'));
  }
});

test('through Postfix (LMTP filter): one address twice in Postfix\'s queue (NOTIFY=NEVER and NOTIFY=SUCCESS) is sent as two RCPTs; each gets its reply after DATA, both entries are delivered at once, and the recipient gets one copy', async () => {
  const { world, sink } = shared;
  const lp = { smtp: await freePort(), reinject: await freePort(), filter: await freePort() };
  const lpf = new PostfixInstance({ smtpPort: lp.smtp, reinjectPort: lp.reinject, relayPort: sink.port, filterPort: lp.filter, lmtp: true });
  await lpf.start();
  // Every level replaced: nothing left of the other test's encryption requirement.
  const policy = join(world.dir, 'plain.json');
  writeFileSync(policy, JSON.stringify({ global: { revocation: 'allow-unknown' }, domains: {}, addresses: {} }));
  const gw = await startGatewayProcess(world, ['--listen', `127.0.0.1:${lp.filter}`, '--next-hop', `127.0.0.1:${lp.reinject}`, '--domain', 'corp.test', '--authserv-id', 'mx.corp.test', '--policy', policy, '--lmtp']);
  try {
    sink.reset();
    await submit(lp.smtp, '', ['<erin@example.com> NOTIFY=NEVER', '<erin@example.com> NOTIFY=SUCCESS', '<carol@example.com>'], draft('alice@corp.test', 'erin@example.com, carol@example.com', 'Twice in the queue', 'One copy each.'));
    // Postfix's lmtp client logs one line per queue entry it delivered: both of Erin's, with the gateway's 250.
    const sent = (to: string) => lpf.log().split('\n').filter((l) => l.includes(`to=<${to}>`) && l.includes(`:${lp.filter},`) && l.includes('status=sent'));
    // Without a reply for each RCPT, Postfix would wait for the missing one (lmtp_data_done_timeout, 600 s) and defer.
    await until('both of Erin\'s entries and Carol\'s delivered to the gateway', () => sent('erin@example.com').length === 2 && sent('carol@example.com').length === 1, lpf);
    await until('the copies', () => sink.deliveries.some((d) => d.to.includes('erin@example.com')) && sink.deliveries.some((d) => d.to.includes('carol@example.com')), lpf);
    // A second copy (there must be none) would be in Postfix's queue until delivered: wait for the queue to empty.
    await until('the queue to empty', async () => (await lpf.queued()) === 0, lpf);
    assert.equal(sink.deliveries.filter((d) => d.to.includes('erin@example.com')).length, 1, 'Erin got one copy');
    assert.deepEqual(sink.deliveryTo('erin@example.com').to.filter((t) => t === 'erin@example.com'), ['erin@example.com'], 'one RCPT for Erin on it');
    // The one copy carries both entries' requests: NOTIFY=NEVER gives way to SUCCESS, whichever order Postfix sent them in.
    assert.deepEqual(sink.deliveryTo('erin@example.com').rcptDsn.map((d) => d?.notify), [['SUCCESS']]);
    assert.equal(sink.deliveries.filter((d) => d.to.includes('carol@example.com')).length, 1, 'Carol got one copy');
    assert.doesNotMatch(lpf.log(), /status=deferred|timed out|lost connection with/i);
    assert.equal(await lpf.queued(), 0);
  } finally {
    gw.child.kill('SIGTERM');
    assert.equal(await gw.exited, 0, gw.lines.join('\n'));
    await lpf.stop();
  }
});
