/**
 * The gateway's policy behaviours at the SMTP/LMTP level (issue 13, "Policy"): a
 * real client in front, a real SMTP sink as the next hop, the policy in the store
 * (imported from a levelled file, edited while the gateway runs), and what leaves
 * checked with `openssl cms`. Encryption required with a missing certificate:
 * bounced (LMTP 554 5.7.5; SMTP with a DSN of ours) or held, never sent in clear;
 * triggers force encryption and do not leave; skip-sign and opaque domains; subject
 * tags in both languages with forged tags removed; inheritance seen in delivery.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startGateway, type RunningGateway } from '../../src/gateway/start-gateway.ts';
import type { Store } from '../../src/store/store.ts';
import { PolicyDirectory } from '../../src/store/policy-directory.ts';
import { HeldMessages } from '../../src/store/held-messages.ts';
import { GLOBAL_LEVEL, levelRef } from '../../src/policy/policy-levels.ts';
import type { PartialSettings } from '../../src/policy/policy-settings.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { decodeHeaderText } from '../../src/mime/decode-header-text.ts';
import { readHeaderFields } from '../../src/gateway/rewrite-header-section.ts';
import { smtpDialogue } from '../helpers/smtp-dialogue.ts';
import { field, parseDeliveryStatusNotification } from '../helpers/delivery-status.ts';
import { bounceHeldMessage } from '../../src/gateway/release-held-message.ts';
import { createWorld, draft, openWorldStore, opensslDecryptMime, opensslVerifyMime, sendTo, Sink, type GatewayWorld } from './gateway-fixture.ts';

let world: GatewayWorld;
let store: Store;
let sink: Sink;
let smtp: RunningGateway;
let lmtp: RunningGateway;
let policies: PolicyDirectory;
const logLines: string[] = [];
const log = (event: string, fields: Record<string, unknown> = {}) => logLines.push(JSON.stringify({ event, ...fields }));

before(async () => {
  world = await createWorld();
  store = await openWorldStore(world);
  policies = new PolicyDirectory(store);
  sink = await new Sink().start();
  const policyPath = join(world.dir, 'policy.json');
  // The levelled file form; the test PKIs publish no CRL or OCSP.
  writeFileSync(policyPath, JSON.stringify({ global: { revocation: 'allow-unknown' }, domains: { 'corp.test': { encrypt: 'required' } }, addresses: { 'alice@corp.test': { encrypt: 'if-possible' } } }));
  const base = { listen: { host: '127.0.0.1', port: 0 }, nextHop: { host: '127.0.0.1', port: sink.port }, domains: new Set(['corp.test']), authservId: 'mx.corp.test', policyPath };
  smtp = await startGateway({ ...base, lmtp: false }, store, log);
  lmtp = await startGateway({ ...base, lmtp: true }, store, log);
});

after(async () => {
  for (const g of [smtp, lmtp]) await g?.stop();
  await sink?.stop();
  await store?.close();
  world?.cleanup();
});

const reset = () => sink.reset();

/** Sets settings at a level (undefined: unsets them) and makes both gateways read the store now. */
async function setPolicy(ref: ReturnType<typeof levelRef>, settings: PartialSettings, unset: string[] = []): Promise<void> {
  if (Object.keys(settings).length) await policies.set(ref, settings);
  if (unset.length) await policies.unset(ref, unset as never);
  await smtp.refreshPolicy();
  await lmtp.refreshPolicy();
}

const carol = () => world.pki.identity('rsa2048', 'carol');
const text = (b: Buffer) => b.toString('latin1');

test('inheritance in delivery: the domain level requires encryption, the address level overrides it, unsetting falls back', async () => {
  reset();
  // bob@corp.test inherits encrypt=required from corp.test: Erin has no certificate, so LMTP refuses her copy with 5.7.5.
  let r = await sendTo(lmtp.listening.port, 'bob@corp.test', ['carol@example.com', 'erin@example.com'], draft('bob@corp.test', 'carol@example.com, erin@example.com', 'Domain level', 'Figures.'), { lmtp: true });
  assert.deepEqual(r.accepted, ['carol@example.com']);
  assert.deepEqual(r.rejected, [{ recipient: 'erin@example.com', code: 554 }]);
  assert.equal(sink.deliveries.length, 1);
  assert.match(text(sink.deliveryTo('carol@example.com').message), /application\/pkcs7-mime/);
  assert.ok((await opensslDecryptMime(world.dir, sink.deliveryTo('carol@example.com').message, carol().certPath, carol().keyPath)).ok);
  // alice@corp.test's address level says if-possible: Erin gets the signed copy.
  reset();
  r = await sendTo(lmtp.listening.port, 'alice@corp.test', ['erin@example.com'], draft('alice@corp.test', 'erin@example.com', 'Address level', 'Figures.'), { lmtp: true });
  assert.deepEqual(r.accepted, ['erin@example.com']);
  assert.ok((await opensslVerifyMime(world.dir, sink.deliveryTo('erin@example.com').message, world.corpRoot)).ok);
  // Unset alice's address level: the domain's required shows through.
  reset();
  await setPolicy(levelRef('address', 'alice@corp.test'), {}, ['encrypt']);
  try {
    r = await sendTo(lmtp.listening.port, 'alice@corp.test', ['erin@example.com'], draft('alice@corp.test', 'erin@example.com', 'Unset', 'Figures.'), { lmtp: true });
    assert.deepEqual(r.rejected, [{ recipient: 'erin@example.com', code: 554 }]);
    assert.equal(sink.deliveries.length, 0, 'nothing unencrypted leaves');
  } finally {
    await setPolicy(levelRef('address', 'alice@corp.test'), { encrypt: 'if-possible' });
  }
});

test('encrypt required, SMTP mode: the other copies go, the sender gets an RFC 3464 DSN naming the recipient and why; nothing reaches that recipient; the DSN asks for no DSN of itself', async () => {
  reset();
  const msg = draft('Bob <bob@corp.test>', 'carol@example.com, erin@example.com', 'Quarterly', 'SECRET-FIGURES');
  // The sender asks for every kind of DSN: Carol's copy carries the requests, the gateway's own DSN none of them.
  const requests = { ret: 'FULL', envid: 'Q-2026', notify: ['SUCCESS', 'FAILURE', 'DELAY'], orcpt: 'rfc822;board@corp.test' };
  const r = await sendTo(smtp.listening.port, 'bob@corp.test', ['carol@example.com', 'erin@example.com'], msg, { dsn: requests });
  assert.equal(r.code, 250, r.response);
  assert.equal(sink.deliveries.filter((d) => d.to.includes('erin@example.com')).length, 0);
  assert.doesNotMatch(sink.deliveries.filter((d) => !d.to.includes('bob@corp.test')).map((d) => text(d.message)).join(''), /SECRET-FIGURES/, 'nothing in clear to anyone but the sender');
  const toCarol = sink.deliveryTo('carol@example.com');
  assert.deepEqual(toCarol.dsn, { ret: 'FULL', envid: 'Q-2026' });
  assert.deepEqual(toCarol.rcptDsn, [{ notify: ['SUCCESS', 'FAILURE', 'DELAY'], orcpt: 'rfc822;board@corp.test' }]);
  const dsn = sink.deliveryTo('bob@corp.test');
  assert.equal(dsn.from, '', 'the null reverse-path');
  assert.deepEqual(dsn.dsn, { ret: null, envid: null }, 'not the original\'s RET and ENVID');
  assert.deepEqual(dsn.rcptDsn, [{ notify: ['NEVER'] }], 'NOTIFY=NEVER: a DSN about the DSN cannot loop');
  const body = text(dsn.message);
  assert.match(body, /Content-Type: multipart\/report;\s+report-type=delivery-status/);
  assert.match(body, /Final-Recipient: rfc822; erin@example\.com\r\nAction: failed\r\nStatus: 5\.7\.5/);
  assert.match(body, /Diagnostic-Code: smtp; 554 5\.7\.5 Encryption to erin@example\.com is required by policy and no certificate is known/);
  // The sender's requests shape it (RFC 3461, 3464): ENVID and ORCPT come back, RET=FULL returns the whole message to its sender.
  const report = parseDeliveryStatusNotification(dsn.message);
  assert.equal(field(report.perMessage, 'Original-Envelope-Id'), 'Q-2026');
  assert.equal(field(report.perRecipient[0]!, 'Original-Recipient'), 'rfc822;board@corp.test');
  assert.equal(report.parts[2]!.contentType, 'message/rfc822');
  assert.match(text(report.parts[2]!.body), /Subject: Quarterly[\s\S]*SECRET-FIGURES/);
  // The whole message bounced (every recipient): 554 5.7.5 for Postfix to return with its own DSN.
  reset();
  const all = await sendTo(smtp.listening.port, 'bob@corp.test', ['erin@example.com'], msg);
  assert.equal(all.code, 554);
  assert.match(all.response, /5\.7\.5 .*erin@example\.com is required by policy/);
  assert.equal(sink.deliveries.length, 0);
});

test('encrypt required, SMTP mode, the sender\'s NOTIFY per recipient (RFC 3461): NEVER, or a list without FAILURE, leaves the recipient out of the DSN, and no DSN at all when none is left (the log says so); ENVID and xtext-encoded ORCPT come back decoded; RET=HDRS returns headers', async () => {
  const msg = draft('bob@corp.test', 'carol@example.com, erin@example.com, zed@example.com', 'Notify', 'SECRET-NOTIFY').toString('latin1');
  const dialogue = (mail: string, erin: string, zed: string) => smtpDialogue(smtp.listening.port, ['EHLO client.test', mail, 'RCPT TO:<carol@example.com>', `RCPT TO:<erin@example.com>${erin}`, `RCPT TO:<zed@example.com>${zed}`, 'DATA', `${msg}.`, 'QUIT']);
  const lastGroups = () => JSON.parse(logLines.filter((l) => l.includes('"event":"message"')).at(-1)!).groups as Array<{ action: string; dsn?: { notified: number; suppressed: number; outcome: string } }>;
  // 1. Erin NOTIFY=NEVER, Zed NOTIFY=SUCCESS,DELAY: neither asks for failures. Carol's copy goes; no DSN; 250.
  reset();
  let replies = await dialogue('MAIL FROM:<bob@corp.test> RET=FULL ENVID=N+2B1', ' NOTIFY=NEVER', ' NOTIFY=SUCCESS,DELAY');
  assert.deepEqual(replies.slice(2).map((r) => r.code), [250, 250, 250, 250, 354, 250, 221], replies.map((r) => r.text).join('\n'));
  assert.deepEqual(sink.deliveries.map((d) => d.to), [['carol@example.com']], 'Carol\'s copy only: no DSN');
  assert.deepEqual(lastGroups().find((g) => g.action === 'bounced')!.dsn, { notified: 0, suppressed: 2, outcome: 'none' }, 'the log says the DSN was suppressed');
  // 2. Erin NOTIFY=FAILURE with an ORCPT in xtext, Zed NOTIFY=NEVER: a DSN for Erin alone, with the decoded values; RET=HDRS: headers.
  reset();
  replies = await dialogue('MAIL FROM:<bob@corp.test> RET=HDRS ENVID=N+2B2+3Dx', ' NOTIFY=FAILURE ORCPT=rfc822;board+2Berin@corp.test', ' NOTIFY=NEVER');
  assert.deepEqual(replies.slice(2).map((r) => r.code), [250, 250, 250, 250, 354, 250, 221], replies.map((r) => r.text).join('\n'));
  assert.equal(sink.deliveries.length, 2, 'Carol\'s copy and the DSN');
  const dsn = sink.deliveryTo('bob@corp.test');
  assert.equal(dsn.from, '');
  assert.deepEqual(dsn.rcptDsn, [{ notify: ['NEVER'] }]);
  const report = parseDeliveryStatusNotification(dsn.message);
  assert.equal(field(report.perMessage, 'Original-Envelope-Id'), 'N+2=x');
  assert.equal(report.perRecipient.length, 1, 'Zed (NOTIFY=NEVER) is not in it');
  assert.equal(field(report.perRecipient[0]!, 'Original-Recipient'), 'rfc822;board+erin@corp.test');
  assert.equal(field(report.perRecipient[0]!, 'Final-Recipient'), 'rfc822; erin@example.com');
  assert.equal(field(report.perRecipient[0]!, 'Action'), 'failed');
  assert.equal(report.parts[2]!.contentType, 'text/rfc822-headers');
  assert.doesNotMatch(text(dsn.message), /SECRET-NOTIFY|zed@example\.com>:/);
  assert.deepEqual(lastGroups().find((g) => g.action === 'bounced')!.dsn, { notified: 1, suppressed: 1, outcome: 'accepted' });
  assert.equal(sink.deliveries.filter((d) => d.to.includes('erin@example.com') || d.to.includes('zed@example.com')).length, 0, 'nothing reaches them');
});

test('encrypt required, SMTP mode, RET=FULL: a DSN the next hop refuses for its size with the whole message (552 5.3.4) goes again with the header section, and says why; 250, not a false report of every recipient failed', async () => {
  reset();
  const msg = draft('bob@corp.test', 'carol@example.com, erin@example.com', 'Big report', `${'SECRET-LINE-'.repeat(6)}\r\n`.repeat(400));
  // Carol's copy has no limit; the sender's mailbox takes the message itself but not the message plus the DSN's own parts.
  sink.sizeLimits.set('bob@corp.test', msg.length + 512);
  const r = await sendTo(smtp.listening.port, 'bob@corp.test', ['carol@example.com', 'erin@example.com'], msg, { dsn: { ret: 'FULL', notify: ['FAILURE'] } });
  assert.equal(r.code, 250, r.response);
  sink.deliveryTo('carol@example.com');
  const dsn = sink.deliveryTo('bob@corp.test');
  const report = parseDeliveryStatusNotification(dsn.message);
  assert.equal(field(report.perRecipient[0]!, 'Final-Recipient'), 'rfc822; erin@example.com');
  assert.equal(report.parts[2]!.contentType, 'text/rfc822-headers');
  assert.match(text(report.parts[2]!.body), /^Subject: Big report\r$/m);
  assert.doesNotMatch(text(dsn.message), /SECRET-LINE/);
  assert.match(report.parts[0]!.body.toString('utf8'), /too large to be returned whole/);
  const groups = JSON.parse(logLines.filter((l) => l.includes('"event":"message"')).at(-1)!).groups as Array<{ action: string; dsn?: unknown }>;
  assert.deepEqual(groups.find((g) => g.action === 'bounced')!.dsn, { notified: 1, suppressed: 0, outcome: 'accepted', wholeRefused: true }, 'the log says the whole message was refused');
  // Refused even with the header section only: the refusal stands (554 for Postfix), as before.
  reset();
  sink.sizeLimits.set('bob@corp.test', 200);
  const refused = await sendTo(smtp.listening.port, 'bob@corp.test', ['carol@example.com', 'erin@example.com'], msg, { dsn: { ret: 'FULL' } });
  assert.equal(refused.code, 554, refused.response);
});

test('encrypt required, SMTP mode, RET=FULL, a next hop that advertises SIZE (RFC 1870): the DSN goes with the header section at once when the whole message would take it over (no attempt refused); under it, whole', async () => {
  const msg = draft('bob@corp.test', 'dan@corp.test, erin@example.com', 'Sized report', `${'SECRET-LINE-'.repeat(6)}\r\n`.repeat(400));
  // Dan's copy (inbound, labelled) fits; the DSN carrying the whole message and its own parts does not.
  const sized = await new Sink({ size: msg.length + 1024 }).start();
  const g = await startGateway({ listen: { host: '127.0.0.1', port: 0 }, nextHop: { host: '127.0.0.1', port: sized.port }, domains: new Set(['corp.test']), authservId: 'mx.corp.test', lmtp: false }, store, log);
  const bounced = () => (JSON.parse(logLines.filter((l) => l.includes('"event":"message"')).at(-1)!).groups as Array<{ action: string; dsn?: unknown }>).find((x) => x.action === 'bounced')!.dsn;
  try {
    const r = await sendTo(g.listening.port, 'bob@corp.test', ['dan@corp.test', 'erin@example.com'], msg, { dsn: { ret: 'FULL', notify: ['FAILURE'] } });
    assert.equal(r.code, 250, r.response);
    sized.deliveryTo('dan@corp.test');
    const dsn = sized.deliveryTo('bob@corp.test');
    const report = parseDeliveryStatusNotification(dsn.message);
    assert.equal(report.parts[2]!.contentType, 'text/rfc822-headers');
    assert.doesNotMatch(text(dsn.message), /SECRET-LINE/);
    assert.match(report.parts[0]!.body.toString('utf8'), /too large to be returned whole/);
    assert.deepEqual(bounced(), { notified: 1, suppressed: 0, outcome: 'accepted', wholeOverSize: msg.length + 1024 }, 'chosen up front, not after a refusal (wholeRefused)');
    // A small message: the whole of it goes back (message/rfc822).
    sized.reset();
    const small = await sendTo(g.listening.port, 'bob@corp.test', ['dan@corp.test', 'erin@example.com'], draft('bob@corp.test', 'dan@corp.test, erin@example.com', 'Small', 'SMALL-BODY'), { dsn: { ret: 'FULL', notify: ['FAILURE'] } });
    assert.equal(small.code, 250, small.response);
    assert.equal(parseDeliveryStatusNotification(sized.deliveryTo('bob@corp.test').message).parts[2]!.contentType, 'message/rfc822');
    assert.deepEqual(bounced(), { notified: 1, suppressed: 0, outcome: 'accepted' });
  } finally {
    await g.stop();
    await sized.stop();
  }
});

test('held and bounced by an administrator, RET=FULL: a DSN refused for its size with the whole message goes again with the header section (the audit says so); refused even so, the message stays held', async () => {
  const held = new HeldMessages(store);
  const via = { host: '127.0.0.1', port: sink.port };
  const big = (subject: string) => draft('dan@corp.test', 'grace@example.com', subject, `${'HELD-LINE-'.repeat(7)}\r\n`.repeat(300));
  const message = big('Held big');
  const hold = (m = message) => held.hold({ sender: 'dan@corp.test', recipients: ['grace@example.com'], message: m, reasonCode: 'ENCRYPTION_REQUIRED', reason: 'Encryption is required and no valid certificate is known.', dsn: { ret: 'FULL' }, recipientDsn: [{ notify: ['FAILURE'] }] });
  reset();
  const id = await hold();
  sink.sizeLimits.set('dan@corp.test', message.length + 512);
  assert.equal(await bounceHeldMessage(store, id, { via, name: 'mx.corp.test' }), 'sent');
  const dsn = sink.deliveryTo('dan@corp.test').message;
  const report = parseDeliveryStatusNotification(dsn);
  assert.equal(report.parts[2]!.contentType, 'text/rfc822-headers');
  assert.doesNotMatch(text(dsn), /HELD-LINE/);
  assert.match(report.parts[0]!.body.toString('utf8'), /too large to be returned whole/);
  await assert.rejects(held.find(id), /No held message/);
  const audit = await store.auditLog({ object: id });
  assert.ok(audit.some((a) => a.action === 'message.bounce' && /header section only: the next hop refused the whole message for its size \(552 /.test(a.detail ?? '')), JSON.stringify(audit));
  // Too large even with the header section: not accepted, it stays held (not removed, no bounce audited).
  reset();
  const again = await hold(big('Held big again'));
  sink.sizeLimits.set('dan@corp.test', 200);
  await assert.rejects(bounceHeldMessage(store, again, { via, name: 'mx.corp.test' }), /552 .*it stays held/);
  assert.equal((await held.find(again)).id, again);
  assert.ok(!(await store.auditLog({ object: again })).some((a) => a.action === 'message.bounce'));
  await held.remove(again, (await held.find(again)).generation, 'bounce', 'test cleanup');
});

test('held and bounced by an administrator: the held DSN requests decide: NOTIFY=NEVER removes it with no DSN and the audit says so; NOTIFY=FAILURE gives a DSN with Original-Envelope-Id and Original-Recipient', async () => {
  const held = new HeldMessages(store);
  const via = { host: '127.0.0.1', port: sink.port };
  const message = draft('dan@corp.test', 'grace@example.com', 'Held', 'HELD-BODY');
  const hold = (notify: 'NEVER' | 'FAILURE') => held.hold({ sender: 'dan@corp.test', recipients: ['grace@example.com'], message, reasonCode: 'ENCRYPTION_REQUIRED', reason: 'Encryption is required and no valid certificate is known.', dsn: { envid: 'H+1' }, recipientDsn: [{ notify: [notify], orcpt: 'rfc822;g+race@example.com' }] });
  reset();
  const quiet = await hold('NEVER');
  assert.equal(await bounceHeldMessage(store, quiet, { via, name: 'mx.corp.test' }), 'suppressed');
  assert.equal(sink.deliveries.length, 0, 'no DSN');
  await assert.rejects(held.find(quiet), /No held message/, 'removed all the same');
  const audit = await store.auditLog({ object: quiet });
  assert.ok(audit.some((a) => a.action === 'message.bounce' && /no DSN: suppressed by the sender's NOTIFY/.test(a.detail ?? '')), JSON.stringify(audit));
  const loud = await hold('FAILURE');
  assert.equal(await bounceHeldMessage(store, loud, { via, name: 'mx.corp.test' }), 'sent');
  const report = parseDeliveryStatusNotification(sink.deliveryTo('dan@corp.test').message);
  assert.equal(field(report.perMessage, 'Original-Envelope-Id'), 'H+1');
  assert.equal(field(report.perRecipient[0]!, 'Original-Recipient'), 'rfc822;g+race@example.com');
  assert.equal(field(report.perRecipient[0]!, 'Final-Recipient'), 'rfc822; grace@example.com');
  assert.equal(report.parts[2]!.contentType, 'text/rfc822-headers', 'no RET: headers');
  assert.doesNotMatch(text(sink.deliveryTo('dan@corp.test').message), /HELD-BODY/);
});

test('held and bounced by an administrator, from the null sender: removed with no DSN (RFC 3461 6.2, RFC 5321 4.5.5: none goes to the null reverse-path), the audit says why', async () => {
  const held = new HeldMessages(store);
  const id = await held.hold({ sender: '', recipients: ['grace@example.com'], message: draft('dan@corp.test', 'grace@example.com', 'Held', 'HELD-BODY'), reasonCode: 'ENCRYPTION_REQUIRED', reason: 'Encryption is required and no valid certificate is known.' });
  reset();
  assert.equal(await bounceHeldMessage(store, id, { via: { host: '127.0.0.1', port: sink.port }, name: 'mx.corp.test' }), 'suppressed');
  assert.equal(sink.deliveries.length, 0, 'no DSN to <>');
  await assert.rejects(held.find(id), /No held message/, 'removed');
  const audit = await store.auditLog({ object: id });
  assert.ok(audit.some((a) => a.action === 'message.bounce' && /no DSN: the message has the null sender/.test(a.detail ?? '')), JSON.stringify(audit));
});

test('encrypt required, missingCertificate hold: 250 only once it is held in the store; held once even when retried; never relayed', async () => {
  reset();
  await setPolicy(levelRef('domain', 'corp.test'), { missingCertificate: 'hold' });
  try {
    const msg = draft('bob@corp.test', 'erin@example.com', 'Hold me', 'HELD-SECRET');
    const held = new HeldMessages(store);
    const before = (await held.list()).length;
    for (const port of [smtp.listening.port, smtp.listening.port]) {
      const r = await sendTo(port, 'bob@corp.test', ['erin@example.com'], msg);
      assert.equal(r.code, 250, r.response);
      assert.match(r.response, /Held for an administrator \([0-9a-f]{32}\)/);
    }
    assert.equal(sink.deliveries.length, 0);
    const list = await held.list();
    assert.equal(list.length, before + 1, 'the retry found the same row');
    const row = list.find((h) => h.recipients.includes('erin@example.com'))!;
    assert.equal(row.reasonCode, 'ENCRYPTION_REQUIRED');
    assert.match(row.reason, /encrypt="required" \(domain corp\.test\)/);
    assert.match(text(await (await held.find(row.id)).message()), /HELD-SECRET/, 'kept as received');
    // With a store that fails, the hold cannot be made: 4xx, Postfix keeps it.
    const broken = await openWorldStore(world);
    const g = await startGateway({ listen: { host: '127.0.0.1', port: 0 }, nextHop: { host: '127.0.0.1', port: sink.port }, domains: new Set(['corp.test']), authservId: 'mx.corp.test', lmtp: true }, broken, log);
    await broken.close();
    try {
      const r = await sendTo(g.listening.port, 'bob@corp.test', ['erin@example.com'], draft('bob@corp.test', 'erin@example.com', 'Store down', 'x'), { lmtp: true });
      assert.deepEqual(r.rejected.map((x) => Math.floor(x.code / 100)), [4]);
    } finally {
      await g.stop();
    }
    assert.equal(sink.deliveries.length, 0);
  } finally {
    await setPolicy(levelRef('domain', 'corp.test'), {}, ['missingCertificate']);
  }
});

test('triggers: "[secure]" or "[暗号化]" in the Subject, or X-Kakitome-Encrypt: yes, force encryption over encrypt=if-possible; the trigger does not leave', async () => {
  reset();
  await setPolicy(GLOBAL_LEVEL, { subjectTriggers: ['[secure]', '[暗号化]'], headerTriggers: ['X-Kakitome-Encrypt: yes'] });
  try {
    const subject = `=?UTF-8?B?${Buffer.from('[暗号化] 見積書').toString('base64')}?=`;
    const msg = draft('alice@corp.test', 'carol@example.com, erin@example.com', subject, 'TRIGGERED-SECRET');
    const r = await sendTo(lmtp.listening.port, 'alice@corp.test', ['carol@example.com', 'erin@example.com'], msg, { lmtp: true });
    assert.deepEqual(r.accepted, ['carol@example.com']);
    assert.deepEqual(r.rejected, [{ recipient: 'erin@example.com', code: 554 }], 'alice is if-possible, but the trigger makes it required');
    const out = sink.deliveryTo('carol@example.com').message;
    assert.doesNotMatch(text(out), /TRIGGERED-SECRET/);
    const opened = await opensslDecryptMime(world.dir, out, carol().certPath, carol().keyPath);
    assert.ok(opened.ok, opened.detail);
    const inner = await opensslVerifyMime(world.dir, opened.content, world.corpRoot);
    assert.ok(inner.ok, inner.detail);
    for (const m of [out, opened.content]) {
      const subj = /^Subject: (.*)$/m.exec(text(m))![1]!;
      const decoded = decodeHeaderText(subj);
      assert.equal(decoded, '見積書', `the trigger text is gone: ${subj}`);
    }
    reset();
    const header = draft('alice@corp.test', 'carol@example.com', 'Plain subject', 'HEADER-SECRET', 'X-Kakitome-Encrypt: Yes\r\n');
    assert.equal((await sendTo(smtp.listening.port, 'alice@corp.test', ['carol@example.com'], header)).code, 250);
    const got = sink.deliveryTo('carol@example.com').message;
    const inner2 = await opensslDecryptMime(world.dir, got, carol().certPath, carol().keyPath);
    assert.ok(inner2.ok);
    assert.doesNotMatch(text(got) + text(inner2.content), /X-Kakitome-Encrypt/i, 'our trigger field is removed');
    // Without a trigger, alice's if-possible sends Erin the signed copy.
    reset();
    assert.equal((await sendTo(smtp.listening.port, 'alice@corp.test', ['erin@example.com'], draft('alice@corp.test', 'erin@example.com', 'Nothing secure', 'plain'))).code, 250);
    assert.match(text(sink.deliveryTo('erin@example.com').message), /multipart\/signed/);
  } finally {
    await setPolicy(GLOBAL_LEVEL, {}, ['subjectTriggers', 'headerTriggers']);
  }
});

test('skip-sign and opaque domains: an unsigned copy for one, an opaque signed copy (openssl verifies it) for the other, multipart/signed for the rest', async () => {
  reset();
  await setPolicy(levelRef('address', 'alice@corp.test'), { skipSignDomains: ['fragile.example'], opaqueSignDomains: ['opaque.example'] });
  try {
    const msg = draft('alice@corp.test', 'x@fragile.example, y@opaque.example, z@example.com', 'Domains', 'Three ways.');
    const r = await sendTo(smtp.listening.port, 'alice@corp.test', ['x@fragile.example', 'y@opaque.example', 'z@example.com'], msg);
    assert.equal(r.code, 250, r.response);
    assert.equal(sink.deliveries.length, 3);
    assert.deepEqual(sink.deliveryTo('x@fragile.example').message, msg, 'unchanged: not signed');
    const opaque = sink.deliveryTo('y@opaque.example').message;
    assert.match(text(opaque), /Content-Type: application\/pkcs7-mime;[^\r\n]*smime-type=signed-data/i);
    const v = await opensslVerifyMime(world.dir, opaque, world.corpRoot);
    assert.ok(v.ok, v.detail);
    assert.match(text(v.content), /Three ways\./);
    assert.match(text(sink.deliveryTo('z@example.com').message), /multipart\/signed/);
  } finally {
    await setPolicy(levelRef('address', 'alice@corp.test'), {}, ['skipSignDomains', 'opaqueSignDomains']);
  }
});

test('subject tags on inbound mail, English and Japanese, per recipient; forged tags are removed; off by default', async () => {
  reset();
  const dave = world.pki.identity('rsa2048', 'dave');
  const good = signMessage(draft('dave@example.com', 'alice@corp.test', '[signed OK] [署名確認済] Invoice', 'Pay 100 yen.'), { signers: [{ certificate: dave.cert, key: dave.key }] });
  const tampered = Buffer.from(text(good).replace('Pay 100 yen.', 'Pay 900 yen.'), 'latin1');
  const unsigned = draft('eve@example.com', 'alice@corp.test', '[signed OK] trust me', 'Hi.');
  const subjectOf = async (m: Buffer) => {
    const subjects = readHeaderFields(m).filter((f) => f.name.toLowerCase() === 'subject');
    assert.equal(subjects.length, 1);
    return decodeHeaderText(subjects[0]!.value);
  };
  // Off by default: nothing changes.
  await sendTo(smtp.listening.port, 'dave@example.com', ['alice@corp.test'], good);
  assert.equal(await subjectOf(sink.deliveryTo('alice@corp.test').message), '[signed OK] [署名確認済] Invoice');
  await setPolicy(GLOBAL_LEVEL, { subjectTags: 'en' });
  await setPolicy(levelRef('address', 'bob@corp.test'), { subjectTags: 'ja' });
  try {
    const cases: Array<[Buffer, string, string]> = [
      [good, '[signed OK] Invoice', '[署名確認済] Invoice'],
      [tampered, '[signature INVALID] Invoice', '[署名不正] Invoice'],
      [unsigned, 'trust me', 'trust me'],
    ];
    for (const [m, en, ja] of cases) {
      reset();
      const r = await sendTo(lmtp.listening.port, 'dave@example.com', ['alice@corp.test', 'bob@corp.test'], m, { lmtp: true });
      assert.equal(r.accepted.length, 2);
      assert.equal(await subjectOf(sink.deliveryTo('alice@corp.test').message), en);
      assert.equal(await subjectOf(sink.deliveryTo('bob@corp.test').message), ja);
    }
    reset();
    // The tag is in the outer header only: the signature still verifies downstream.
    await sendTo(smtp.listening.port, 'dave@example.com', ['alice@corp.test'], good);
    assert.ok((await opensslVerifyMime(world.dir, sink.deliveryTo('alice@corp.test').message, world.pki.caPath)).ok);
    // Custom texts.
    reset();
    await setPolicy(GLOBAL_LEVEL, { subjectTagSigned: '(verified)' });
    await sendTo(smtp.listening.port, 'dave@example.com', ['alice@corp.test'], good);
    assert.equal(await subjectOf(sink.deliveryTo('alice@corp.test').message), '(verified) Invoice');
  } finally {
    await setPolicy(GLOBAL_LEVEL, {}, ['subjectTags', 'subjectTagSigned']);
    await setPolicy(levelRef('address', 'bob@corp.test'), {}, ['subjectTags']);
  }
});

test('subject tags: a forged tag written with look-alike characters is removed too (compatibility forms, invisible characters, other spacing, Cyrillic and Greek letters, other brackets)', async () => {
  // A reader sees each of these as the gateway's tag; an exact match removed none of them.
  const forged = [
    '[signed\u00a0OK]', '[signed  OK]', '[signed\tOK]', '\uff3bsigned OK\uff3d', '[\uff53\uff49\uff47\uff4e\uff45\uff44 OK]', '[sig\u200bned OK\u2060]',
    '[signed \u041e\u041a]', '[\u0455igned OK]', '[signed \u039fK]', '[\u202asigned OK\u202c]', '[SIGNED ok]', '[signed 0K]',
    '\uff3b\u7f72\u540d\u78ba\u8a8d\u6e08\uff3d', '[\u7f72\u540d\u200b\u78ba\u8a8d\u6e08]', '[signature\u00a0INVALID]',
    // Other brackets: a reader takes "(signed OK)" or "【署名確認済】" for the tag.
    '(signed OK)', '<signed OK>', '\u00absigned OK\u00bb', '\u3010\u7f72\u540d\u78ba\u8a8d\u6e08\u3011', '\u300c\u7f72\u540d\u78ba\u8a8d\u6e08\u300d',
  ];
  const subjectOf = (m: Buffer) => decodeHeaderText(readHeaderFields(m).find((f) => f.name.toLowerCase() === 'subject')!.value);
  await setPolicy(GLOBAL_LEVEL, { subjectTags: 'en' });
  await setPolicy(levelRef('address', 'bob@corp.test'), { subjectTags: 'ja' });
  try {
    for (const tag of forged) {
      reset();
      const subject = `=?utf-8?b?${Buffer.from(`${tag} trust me`).toString('base64')}?=`;
      const r = await sendTo(lmtp.listening.port, 'eve@example.com', ['alice@corp.test', 'bob@corp.test'], draft('eve@example.com', 'alice@corp.test', subject, 'Hi.'), { lmtp: true });
      assert.equal(r.accepted.length, 2);
      for (const to of ['alice@corp.test', 'bob@corp.test']) assert.equal(subjectOf(sink.deliveryTo(to).message), 'trust me', `${JSON.stringify(tag)} to ${to}`);
    }
    // What is not a tag stays as it was written.
    reset();
    const plain = 'Signed contract, OK? [draft] \u7f72\u540d\u304a\u9858\u3044\u3057\u307e\u3059';
    await sendTo(smtp.listening.port, 'eve@example.com', ['alice@corp.test'], draft('eve@example.com', 'alice@corp.test', `=?utf-8?b?${Buffer.from(plain).toString('base64')}?=`, 'Hi.'));
    assert.equal(subjectOf(sink.deliveryTo('alice@corp.test').message), plain);
  } finally {
    await setPolicy(GLOBAL_LEVEL, {}, ['subjectTags']);
    await setPolicy(levelRef('address', 'bob@corp.test'), {}, ['subjectTags']);
  }
});

/** What the gateway did for one recipient, read from what arrived (and openssl), the reply and the held list. */
async function observedAction(recipient: string, reply: Awaited<ReturnType<typeof sendTo>>, original: Buffer, heldBefore: number): Promise<{ action: string; sign: string }> {
  if (reply.rejected.some((r) => r.recipient === recipient && r.code === 554)) return { action: 'bounce', sign: 'none' };
  const copies = sink.deliveries.filter((d) => d.to.includes(recipient));
  if (copies.length === 0) {
    const held = await new HeldMessages(store).list();
    assert.ok(held.length > heldBefore && held.some((h) => h.recipients.includes(recipient)), `${recipient}: neither delivered, bounced nor held`);
    return { action: 'hold', sign: 'none' };
  }
  assert.equal(copies.length, 1);
  const m = copies[0]!.message;
  if (m.equals(original)) return { action: 'unchanged', sign: 'none' };
  const head = text(m).split('\r\n\r\n')[0]!;
  if (/smime-type=signed-data/i.test(head)) return { action: 'signed', sign: 'opaque' };
  if (/multipart\/signed/i.test(head)) return { action: 'signed', sign: 'detached' };
  assert.match(head, /application\/pkcs7-mime/i);
  const opened = await opensslDecryptMime(world.dir, m, carol().certPath, carol().keyPath);
  assert.ok(opened.ok, `only Carol has a certificate here: ${opened.detail}`);
  return /multipart\/signed/i.test(text(opened.content).split('\r\n\r\n')[0]!) ? { action: 'signed-encrypted', sign: 'detached' } : { action: 'encrypted', sign: 'none' };
}

test('gateway explain (the real launcher) says, recipient by recipient, what the gateway then does with the same message', async () => {
  const { runCli } = await import('../cli/run-cli.ts');
  await setPolicy(levelRef('address', 'alice@corp.test'), { skipSignDomains: ['fragile.example'], opaqueSignDomains: ['opaque.example'], requireEncryptionDomains: ['partner.example'] });
  await setPolicy(GLOBAL_LEVEL, { subjectTriggers: ['[secure]'] });
  await setPolicy(levelRef('address', 'dan@corp.test'), { missingCertificate: 'hold', sign: false });
  const scenarios: Array<{ from: string; to: string[]; subject: string }> = [
    { from: 'alice@corp.test', to: ['carol@example.com', 'erin@example.com', 'x@fragile.example', 'y@opaque.example', 'z@partner.example'], subject: 'Mixed' },
    { from: 'bob@corp.test', to: ['carol@example.com', 'erin@example.com'], subject: 'Domain requires' },
    { from: 'alice@corp.test', to: ['carol@example.com', 'erin@example.com'], subject: '[secure] Triggered' },
    { from: 'dan@corp.test', to: ['carol@example.com', 'erin@example.com'], subject: 'Held, unsigned' },
  ];
  try {
    for (const s of scenarios) {
      const explained = await runCli(['gateway', 'explain', '--from', s.from, ...s.to.flatMap((t) => ['--to', t]), '--subject', s.subject, '--domain', 'corp.test', '--json'], { env: world.env, cwd: world.dir });
      assert.equal(explained.status, 0, explained.stderr);
      const e = JSON.parse(explained.stdout.toString()) as { recipients: Array<{ recipient: string; action: string; sign: { mode: string } }> };
      reset();
      const heldBefore = (await new HeldMessages(store).list()).length;
      const msg = draft(s.from, s.to.join(', '), s.subject, `Body of ${s.subject}.`);
      const reply = await sendTo(lmtp.listening.port, s.from, s.to, msg, { lmtp: true });
      for (const r of e.recipients) {
        const seen = await observedAction(r.recipient, reply, msg, heldBefore);
        assert.deepEqual(seen, { action: r.action, sign: r.sign.mode }, `${s.subject}: ${r.recipient}`);
      }
      assert.deepEqual(e.recipients.map((r) => r.recipient), s.to);
    }
  } finally {
    await setPolicy(levelRef('address', 'alice@corp.test'), {}, ['skipSignDomains', 'opaqueSignDomains', 'requireEncryptionDomains']);
    await setPolicy(GLOBAL_LEVEL, {}, ['subjectTriggers']);
    await setPolicy(levelRef('address', 'dan@corp.test'), {}, ['missingCertificate', 'sign']);
  }
});

test('gateway held list, release and bounce (the real launcher): a released message passes the gateway again and leaves encrypted once the certificate is known; a bounced one becomes a DSN to its sender; each leaves the store only once accepted', async () => {
  const { runCli } = await import('../cli/run-cli.ts');
  const cli = (...args: string[]) => runCli(args, { env: world.env, cwd: world.dir });
  await setPolicy(levelRef('address', 'dan@corp.test'), { missingCertificate: 'hold' });
  try {
    reset();
    const first = draft('dan@corp.test', 'grace@example.com', 'For Grace', 'GRACE-SECRET');
    const second = draft('dan@corp.test', 'grace@example.com', 'Bounce me', 'BOUNCE-SECRET');
    // The first with DSN requests (RFC 3461): held with it, they go with it when it is released.
    const requests = { ret: 'HDRS', envid: 'held+1', notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;grace@example.com' };
    assert.equal((await sendTo(smtp.listening.port, 'dan@corp.test', ['grace@example.com'], first, { dsn: requests })).code, 250);
    assert.equal((await sendTo(smtp.listening.port, 'dan@corp.test', ['grace@example.com'], second)).code, 250);
    assert.equal(sink.deliveries.length, 0);
    const listed = await cli('gateway', 'held', 'list', '--json');
    assert.equal(listed.status, 0, listed.stderr);
    const held = (JSON.parse(listed.stdout.toString()).held as Array<{ id: string; sender: string; recipients: string[]; reason: string }>).filter((h) => h.sender === 'dan@corp.test' && h.recipients.includes('grace@example.com'));
    assert.equal(held.length, 2, listed.stdout.toString());
    assert.doesNotMatch(listed.stdout.toString(), /GRACE-SECRET|BOUNCE-SECRET/, 'the list never shows content');
    const ids = await Promise.all(held.map(async (h) => ({ id: h.id, subject: /Subject: (.*)/.exec(text(await (await new HeldMessages(store).find(h.id)).message()))![1]! })));
    const releaseId = ids.find((x) => x.subject === 'For Grace')!.id;
    const bounceId = ids.find((x) => x.subject === 'Bounce me')!.id;
    // Released before Grace's certificate is known: the gateway holds it again, and it stays held.
    const early = await cli('gateway', 'held', 'release', releaseId, '--via', `127.0.0.1:${smtp.listening.port}`);
    assert.equal(early.status, 0, early.stderr);
    assert.match(early.stdout.toString(), /held again by the gateway/);
    assert.equal((await new HeldMessages(store).find(releaseId)).generation, 1);
    assert.equal(sink.deliveries.length, 0);
    // Grace's certificate becomes known; released through the gateway, the copy leaves encrypted for her.
    const grace = world.pki.identity('rsa2048', 'grace');
    assert.equal((await cli('certs', 'import', grace.certPath)).status, 0);
    // With the next hop failing, the gateway answers 4xx: refused, and it stays held.
    sink.mode = 'tempfail';
    const failed = await cli('gateway', 'held', 'release', releaseId, '--via', `127.0.0.1:${smtp.listening.port}`);
    assert.notEqual(failed.status, 0);
    assert.match(failed.stderr, /was not accepted .*it stays held/);
    assert.equal((await new HeldMessages(store).find(releaseId)).generation, 1);
    sink.mode = 'accept';
    const released = await cli('gateway', 'held', 'release', releaseId, '--via', `127.0.0.1:${smtp.listening.port}`);
    assert.equal(released.status, 0, released.stderr);
    const delivered = sink.deliveryTo('grace@example.com');
    assert.deepEqual([delivered.dsn, delivered.rcptDsn], [{ ret: 'HDRS', envid: 'held+1' }, [{ notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;grace@example.com' }]], 'the sender\'s DSN requests, held and released with it');
    const copy = delivered.message;
    assert.doesNotMatch(text(copy), /GRACE-SECRET/);
    const opened = await opensslDecryptMime(world.dir, copy, grace.certPath, grace.keyPath);
    assert.ok(opened.ok, opened.detail);
    assert.match(text(opened.content), /GRACE-SECRET/);
    // Bounced: a DSN to Dan (inbound through the gateway, labelled), the content not in it.
    reset();
    const bounced = await cli('gateway', 'held', 'bounce', bounceId, '--via', `127.0.0.1:${smtp.listening.port}`, '--name', 'mx.corp.test');
    assert.equal(bounced.status, 0, bounced.stderr);
    const dsn = sink.deliveryTo('dan@corp.test');
    assert.equal(dsn.from, '');
    assert.match(text(dsn.message), /Final-Recipient: rfc822; grace@example\.com\r\nAction: failed\r\nStatus: 5\.7\.5/);
    assert.doesNotMatch(text(dsn.message), /BOUNCE-SECRET/);
    const remaining = (await new HeldMessages(store).list()).map((h) => h.id);
    assert.ok(!remaining.includes(releaseId) && !remaining.includes(bounceId));
    const again = await cli('gateway', 'held', 'release', releaseId, '--via', `127.0.0.1:${smtp.listening.port}`);
    assert.notEqual(again.status, 0);
    assert.match(again.stderr, /NOT_FOUND|No held message/);
  } finally {
    await setPolicy(levelRef('address', 'dan@corp.test'), {}, ['missingCertificate']);
  }
});
