/**
 * docs/security.md section 29: the gateway's headers and envelope. The attacker is
 * anyone on the Internet who can send mail to the organisation's MX, or an insider
 * whose certificate says what they like:
 *
 * - ciphertext encrypted for Alice (no secret: it crossed the Internet) sent to
 *   Mallory, alone or beside Alice: before the fix the gateway decrypted it with
 *   Alice's key for Mallory. Now a copy is opened only with keys whose certificates
 *   name its SMTP recipient;
 * - an insider writing a colleague's From over their own envelope sender: signed with
 *   the colleague's key before; now only the envelope sender's From is signed;
 * - a recipient of ours written with the percent hack (before-queue): passed with its
 *   forged results; pass-through mail now loses them too;
 * - 120 recipients through Postfix (50 a delivery): every copy deferred forever before;
 * - an inbound header section over the limits: 451 at every retry before, now 554;
 * - a forged envelope sender of ours, on mail Postfix forwards outside (an alias of
 *   ours to an outside address, a domain Postfix relays for that is no --domain):
 *   before the fix the gateway signed it with that person's key (a signing oracle
 *   from the Internet). Now the envelope sender counts as ours only when Postfix says
 *   the client was one of its own (XFORWARD SOURCE=LOCAL: local_header_rewrite_clients);
 * - Authentication-Results claiming our authserv-id in every spelling a reader may
 *   take for ours (folded, other case, comments, a version, a final dot, an encoded
 *   word, a quoted string) removed; another id that merely starts with ours kept;
 * - what the gateway writes from hostile text (the Subject it tags, the signer's
 *   address from a certificate) never carries a control character, a line break or
 *   a line longer than RFC 5322 allows.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { draft, openWorldStore, opensslDecryptMime, opensslVerifyMime, sendTo, Sink } from '../gateway/gateway-fixture.ts';
import { startGateway } from '../../src/gateway/start-gateway.ts';
import { releaseHeldMessage } from '../../src/gateway/release-held-message.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { HeldMessages } from '../../src/store/held-messages.ts';
import { startGatewayProcess, startPostfixWorld, until, type PostfixWorld } from '../gateway/gateway-process.ts';
import { formatAuthenticationResults } from '../../src/gateway/authentication-results.ts';
import { classifyRecipients, vouchesForSender } from '../../src/gateway/classify-recipients.ts';
import type { GatewayContext } from '../../src/gateway/gateway-context.ts';
import { labelWith } from '../../src/gateway/process-inbound.ts';
import { readHeaderFields } from '../../src/gateway/rewrite-header-section.ts';
import { tagSubject } from '../../src/gateway/tag-subject.ts';

let w: PostfixWorld;

before(async () => {
  w = await startPostfixWorld();
});

after(async () => {
  await w?.stop();
});

function gatewayArgs(): string[] {
  return ['--listen', `127.0.0.1:${w.ports.filter}`, '--next-hop', `127.0.0.1:${w.ports.reinject}`, '--domain', 'corp.test', '--authserv-id', 'mx.corp.test', '--policy', w.policyPath];
}

test('through Postfix: mail from the Internet with a forged envelope sender of ours, forwarded outside by an alias, is not signed with that person\'s key; the same sender from one of Postfix\'s own clients still is', { timeout: 120_000 }, async () => {
  // An alias of ours delivering outside, as people forward to a private mailbox.
  await w.pf.setParameter('virtual_alias_maps', 'inline:{ forward@corp.test=carol@example.com }');
  const gw = await startGatewayProcess(w.world, gatewayArgs());
  try {
    // The Internet: no client of Postfix's own (local_header_rewrite_clients matches nobody, XFORWARD SOURCE=REMOTE).
    await w.pf.setParameter('local_header_rewrite_clients', '');
    const forged = await sendTo(w.ports.smtp, 'alice@corp.test', ['forward@corp.test'], draft('alice@corp.test', 'forward@corp.test', 'Wire the money', 'Signed by Alice? No.'));
    assert.equal(forged.code, 250, forged.response);
    await until('the forwarded copy', () => w.sink.deliveries.length === 1, w.pf);
    const got = w.sink.deliveryTo('carol@example.com').message;
    // Before the fix: signed with Alice's key and encrypted for Carol (whose certificate the store holds), who could open it.
    assert.doesNotMatch(got.toString('latin1'), /application\/(x-)?pkcs7-(mime|signature)/i, 'a forged sender of ours from the Internet is neither signed nor encrypted with the company\'s keys');
    assert.match(got.toString('latin1'), /Signed by Alice\? No\./);
    const line = gw.lines.map((l) => JSON.parse(l)).find((l) => l.event === 'message');
    assert.equal(line.source, 'REMOTE');
    assert.deepEqual(line.groups.map((g: { direction: string; action: string }) => [g.direction, g.action]), [['pass', 'unchanged']]);

    // One of Postfix's own clients (the host itself, Postfix's default): Alice's mail is signed as before.
    w.sink.deliveries.length = 0;
    await w.pf.setParameter('local_header_rewrite_clients');
    const own = await sendTo(w.ports.smtp, 'alice@corp.test', ['forward@corp.test'], draft('alice@corp.test', 'forward@corp.test', 'Forwarded', 'Really Alice.'));
    assert.equal(own.code, 250, own.response);
    await until('the signed copy', () => w.sink.deliveries.length === 1, w.pf);
    const carol = w.world.pki.identity('rsa2048', 'carol');
    const opened = await opensslDecryptMime(w.world.dir, w.sink.deliveryTo('carol@example.com').message, carol.certPath, carol.keyPath);
    assert.ok(opened.ok, opened.detail);
    assert.ok((await opensslVerifyMime(w.world.dir, opened.content, w.world.corpRoot)).ok);
  } finally {
    gw.child.kill('SIGTERM');
    await gw.exited;
    await w.pf.setParameter('local_header_rewrite_clients');
    await w.pf.setParameter('virtual_alias_maps');
    w.sink.deliveries.length = 0;
  }
});

test('through Postfix: a message for 120 of our recipients, Postfix handing the gateway 50 a transaction, reaches each of them once (the gateway pipelines 50 RCPTs to Postfix\'s reinjection listener, which answers them in one write)', { timeout: 120_000 }, async () => {
  const gw = await startGatewayProcess(w.world, gatewayArgs());
  try {
    const to = Array.from({ length: 120 }, (_, i) => `user${i}@corp.test`);
    const sent = await sendTo(w.ports.smtp, 'dave@example.com', to, draft('dave@example.com', 'all@corp.test', 'To everyone', 'Hello all.', 'Authentication-Results: mx.corp.test; smime=pass\r\n'));
    assert.equal(sent.code, 250, sent.response);
    await until('every copy', () => new Set(w.sink.deliveries.flatMap((d) => d.to)).size === to.length, w.pf, 60_000);
    assert.equal(w.sink.deliveries.flatMap((d) => d.to).length, to.length, 'each recipient once');
    for (const d of w.sink.deliveries) {
      const head = d.message.toString('latin1').split('\r\n\r\n')[0]!;
      assert.deepEqual(head.match(/^Authentication-Results:[^\r]*/gim), ['Authentication-Results: mx.corp.test; smime=none reason="The message is not'], head);
    }
  } finally {
    gw.child.kill('SIGTERM');
    await gw.exited;
    w.sink.deliveries.length = 0;
  }
});

const ctx = { authservId: 'mx.corp.test' } as GatewayContext;
const headOf = (m: Buffer) => m.toString('latin1').split('\r\n\r\n')[0]!;

/** Every field of the head, and no line that is not a field or its continuation, none over 998 characters, no control character but CRLF. */
function checkHead(m: Buffer): void {
  const head = headOf(m);
  assert.doesNotMatch(head, /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n/, 'no control character or bare CR/LF');
  for (const line of head.split('\r\n')) {
    assert.ok(line.length <= 998, `a line of ${line.length} characters`);
    assert.match(line, /^([!-9;-~]+:|[ \t])/, `not a field or its continuation: ${JSON.stringify(line.slice(0, 80))}`);
  }
}

test('forged Authentication-Results: every spelling of our authserv-id a reader may take for ours is removed, another id that starts or ends like ours is kept, and ours is the one left', () => {
  const forged = [
    'Authentication-Results: mx.corp.test; smime=pass',
    'authentication-results: MX.Corp.TEST; smime=pass',
    'AUTHENTICATION-RESULTS:mx.corp.test;smime=pass',
    'Authentication-Results:\r\n mx.corp.test;\r\n\tsmime=pass',
    'Authentication-Results : mx.corp.test; smime=pass',
    'Authentication-Results:\tmx.corp.test\t;\tsmime=pass',
    'Authentication-Results: (forged) mx.corp.test; smime=pass',
    'Authentication-Results: (a (nested \\) one)) mx.corp.test; smime=pass',
    'Authentication-Results: mx.corp.test 1; smime=pass',
    'Authentication-Results: mx.corp.test(x); smime=pass',
    'Authentication-Results: "mx.corp.test"; smime=pass',
    'Authentication-Results: " mx.corp.test. "; smime=pass',
    'Authentication-Results: mx.corp.test.; smime=pass',
    'Authentication-Results: MX.CORP.TEST..; smime=pass',
    'Authentication-Results: mx.corp.test/1; smime=pass',
    'Authentication-Results: =?us-ascii?Q?mx.corp.test?=; smime=pass',
    'Authentication-Results: =?utf-8?B?bXguY29ycC50ZXN0OyBzbWltZT1wYXNz?=',
    'X-Kakitome-Verdict: pass',
    'x-kakitome-anything:\r\n folded',
    'X-KAKITOME-A : b',
  ];
  const kept = [
    'Authentication-Results: mx.corp.test.evil; smime=pass',
    'Authentication-Results: evil-mx.corp.test; smime=pass',
    'Authentication-Results: mx.corp.tes; smime=pass',
    'Authentication-Results: other.example; dkim=pass (mx.corp.test)',
    'ARC-Authentication-Results: i=1; mx.corp.test; smime=pass',
    'X-Kakitome: not ours',
  ];
  const many = Array.from({ length: 5000 }, (_, i) => forged[i % forged.length]!);
  const received = Buffer.from(`${[...forged, ...kept, ...many].join('\r\n')}\r\nFrom: eve@example.com\r\nSubject: hi\r\n\r\nbody\r\n`, 'latin1');
  const labelled = labelWith(ctx, received, { result: 'none', reason: 'The message is not signed.' }, []);
  const names = readHeaderFields(labelled).map((f) => `${f.name.trim()}: ${f.value}`);
  assert.deepEqual(names, [
    'Authentication-Results: mx.corp.test; smime=none reason="The message is not signed."',
    ...kept.map((k) => { const f = readHeaderFields(Buffer.from(`${k}\r\n\r\n`))[0]!; return `${f.name.trim()}: ${f.value}`; }),
    'From: eve@example.com',
    'Subject: hi',
  ]);
  // Ours, then a forgery after it (a second pass, as a re-queued message gets): ours alone again, the others kept.
  const end = readHeaderFields(labelled)[0]!.raw.length;
  const again = labelWith(ctx, Buffer.concat([labelled.subarray(0, end), Buffer.from('Authentication-Results: mx.corp.test.; smime=pass\r\n'), labelled.subarray(end)]), { result: 'none', reason: 'The message is not signed.' }, []);
  assert.deepEqual(readHeaderFields(again).map((f) => `${f.name.trim()}: ${f.value}`), names);
});

test('subject tags: an encoded word carrying NUL, ESC, CR or LF never puts a control character, a line break or a field of its own into the header; two Subject fields become one, a tag the sender wrote is not kept', () => {
  const settings = { subjectTags: 'en', subjectTagSigned: '', subjectTagInvalid: '' } as const;
  const q = (t: string) => `=?utf-8?B?${Buffer.from(t).toString('base64')}?=`;
  for (const subject of [
    q('pay\u0000now'),
    q('\u001b[2Jcleared'),
    q('a\r\nAuthentication-Results: mx.corp.test; smime=pass'),
    q('a\nX-Kakitome-Verdict: pass'),
    q('a\rBcc: x@evil.test'),
    `${q('[signed OK]')} really ${'long '.repeat(400)}`,
  ]) {
    for (const result of ['pass', 'fail'] as const) {
      const m = tagSubject(Buffer.from(`From: eve@example.com\r\nSubject: ${subject}\r\nSubject: [signed OK] second\r\n\r\nbody\r\n`, 'latin1'), result, settings);
      checkHead(m);
      const fields = readHeaderFields(m);
      assert.deepEqual(fields.map((f) => f.name), ['From', 'Subject'], JSON.stringify(subject));
      const shown = m.toString('latin1');
      assert.ok(!/authentication-results:|x-kakitome-|bcc:/i.test(headOf(m).split('\r\n').filter((l) => !l.startsWith('Subject:') && !/^[ \t]/.test(l)).join('\n')), shown.slice(0, 300));
    }
  }
});

test('Authentication-Results from hostile text: a signer address with CR, LF, NUL, ";", "(", quotes, non-ASCII or 2,000 characters, and a 1,900-character MAIL FROM, make one field of lines within 998 characters', () => {
  const hostile = ['a;b@x.example', 'a\r\nX-Kakitome-Verdict: pass@x.example', 'a\u0000b@x.example', '"ceo"@corp.test', 'a(b)c@x.example', 'ä@例え.jp', `${'a'.repeat(2000)}@x.example`, `ceo@corp.test${'.x'.repeat(700)}`];
  for (const email of hostile) {
    const field = formatAuthenticationResults('mx.corp.test', { result: 'neutral', code: 'CERT_UNTRUSTED', reason: `Signed by ${email}.`, signer: { email, serial: '01' } }, [
      { method: 'spf', result: 'fail', properties: [['smtp.mailfrom', `${'b'.repeat(1900)}@evil.example`], ['smtp.helo', `h${';'.repeat(50)}`]] },
    ]);
    const m = Buffer.concat([field, Buffer.from('From: eve@example.com\r\n\r\nbody\r\n')]);
    checkHead(m);
    const fields = readHeaderFields(m);
    assert.deepEqual(fields.map((f) => f.name), ['Authentication-Results', 'From'], JSON.stringify(email.slice(0, 40)));
    assert.match(fields[0]!.value, /^mx\.corp\.test; smime=neutral reason="/);
  }
});

test('an inbound header section the gateway cannot read (a 1 MiB line, more than 1 MiB of fields) is refused for good (554), not deferred at every retry; thousands of forged fields within the limit are removed and the message delivered', { timeout: 120_000 }, async () => {
  const store = await openWorldStore(w.world);
  const sink = await new Sink().start();
  const policyPath = join(w.world.dir, 'policy-31.json');
  writeFileSync(policyPath, JSON.stringify({ revocation: 'allow-unknown' }));
  const lines: string[] = [];
  const gw = await startGateway({ listen: { host: '127.0.0.1', port: 0 }, nextHop: { host: '127.0.0.1', port: sink.port }, domains: new Set(['corp.test']), authservId: 'mx.corp.test', lmtp: false, policyPath }, store, (event, fields = {}) => lines.push(JSON.stringify({ event, ...fields })));
  try {
    const forged = 'Authentication-Results: mx.corp.test; smime=pass\r\n';
    for (const extra of [`X-Long: ${'a'.repeat(1024 * 1024 + 10)}\r\n${forged}`, `${forged}${'X-F: 0123456789012345678901234567890123456789\r\n'.repeat(30_000)}`]) {
      const r = await sendTo(gw.listening.port, 'eve@example.com', ['bob@corp.test'], draft('eve@example.com', 'bob@corp.test', 'Big', 'b', extra));
      assert.equal(r.code, 554, r.response);
      assert.match(r.response, /LIMIT/);
    }
    assert.equal(sink.deliveries.length, 0);
    const within = await sendTo(gw.listening.port, 'eve@example.com', ['bob@corp.test'], draft('eve@example.com', 'bob@corp.test', 'Many', 'b', forged.repeat(15_000)));
    assert.equal(within.code, 250, within.response);
    const head = headOf(sink.deliveryTo('bob@corp.test').message);
    assert.equal(head.match(/^Authentication-Results:/gim)?.length, 1);
    assert.match(head, /^Authentication-Results: mx\.corp\.test; smime=none/);
  } finally {
    await gw.stop();
    await sink.stop();
    await store.close();
  }
});

test('through Postfix: an insider Postfix relays for (its own client) who writes another colleague\'s From does not get the mail signed with that colleague\'s key; From naming the envelope sender (any case) is signed', { timeout: 120_000 }, async () => {
  const gw = await startGatewayProcess(w.world, gatewayArgs());
  try {
    const impersonating = await sendTo(w.ports.smtp, 'mallory@corp.test', ['erin@example.com'], draft('Alice <alice@corp.test>', 'erin@example.com', 'From Alice?', 'Mallory wrote this.'));
    assert.equal(impersonating.code, 250, impersonating.response);
    await until('the impersonating copy', () => w.sink.deliveries.length === 1, w.pf);
    const got = w.sink.deliveryTo('erin@example.com').message;
    assert.doesNotMatch(headOf(got), /multipart\/signed|pkcs7/i, 'not signed with Alice\'s key');
    assert.equal((await opensslVerifyMime(w.world.dir, got, w.world.corpRoot)).ok, false);
    w.sink.deliveries.length = 0;
    const own = await sendTo(w.ports.smtp, 'Alice@Corp.Test', ['erin@example.com'], draft('Alice <alice@corp.test>', 'erin@example.com', 'From Alice', 'Alice wrote this.'));
    assert.equal(own.code, 250, own.response);
    await until('Alice\'s copy', () => w.sink.deliveries.length === 1, w.pf);
    assert.ok((await opensslVerifyMime(w.world.dir, w.sink.deliveryTo('erin@example.com').message, w.world.corpRoot)).ok);
    const groups = gw.lines.map((l) => JSON.parse(l)).filter((l) => l.event === 'message').map((l) => l.groups[0]);
    assert.deepEqual(groups.map((g) => [g.direction, g.action, g.verdictCode]), [['outbound', 'unchanged', 'FROM_NOT_SENDER'], ['outbound', 'signed', undefined]]);
  } finally {
    gw.child.kill('SIGTERM');
    await gw.exited;
    w.sink.deliveries.length = 0;
  }
});

test('inbound decryption: ciphertext encrypted for Alice (captured on its way: no secret) sent to Mallory, or to Alice and Mallory at once, reaches Mallory unopened; Alice\'s copy is decrypted, each recipient gets one copy', { timeout: 120_000 }, async () => {
  const store = await openWorldStore(w.world);
  const sink = await new Sink().start();
  const policyPath = join(w.world.dir, 'policy-31-keys.json');
  writeFileSync(policyPath, JSON.stringify({ revocation: 'allow-unknown' }));
  const gw = await startGateway({ listen: { host: '127.0.0.1', port: 0 }, nextHop: { host: '127.0.0.1', port: sink.port }, domains: new Set(['corp.test']), authservId: 'mx.corp.test', lmtp: false, policyPath }, store, () => {});
  try {
    const alice = (await store.findSigningCertificate('alice@corp.test'))!;
    const secret = 'THE-PLAINTEXT-FOR-ALICE';
    const ciphertext = encryptMessage(draft('partner@example.com', 'alice@corp.test', 'For Alice', secret), { recipients: [{ certificate: alice }] });
    const has = (d: { message: Buffer }) => d.message.toString('latin1').includes(secret);
    // Mallory alone (an insider, or anyone writing to an address of ours they read).
    let r = await sendTo(gw.listening.port, 'eve@example.com', ['mallory@corp.test'], ciphertext);
    assert.equal(r.code, 250, r.response);
    const alone = sink.deliveryTo('mallory@corp.test');
    assert.equal(has(alone), false, 'not decrypted for Mallory');
    assert.match(headOf(alone.message), /smime=neutral[\s\S]*NOT_RECIPIENT/);
    sink.deliveries.length = 0;
    // Alice and Mallory in one transaction: Alice's copy opened, Mallory's not.
    r = await sendTo(gw.listening.port, 'eve@example.com', ['Mallory@corp.test', 'alice@corp.test'], ciphertext);
    assert.equal(r.code, 250, r.response);
    assert.equal(has(sink.deliveryTo('alice@corp.test')), true, 'Alice\'s copy is decrypted');
    assert.equal(has(sink.deliveryTo('Mallory@corp.test')), false, 'Mallory\'s copy is not');
    assert.equal(sink.deliveries.flatMap((d) => d.to).length, 2);
  } finally {
    await gw.stop();
    await sink.stop();
    await store.close();
  }
});

test('before-queue Postfix: a recipient of ours written with the percent hack (bob%corp.test@mx.corp.test, which Postfix rewrites to bob@corp.test after the gateway) gets no forged Authentication-Results of ours', { timeout: 180_000 }, async () => {
  const bq = await startPostfixWorld({ beforeQueue: true });
  try {
    // Postfix's default mydestination names the host itself: the percent hack applies there.
    await bq.pf.setParameter('mydestination', 'mx.corp.test');
    const gw = await startGatewayProcess(bq.world, ['--listen', `127.0.0.1:${bq.ports.filter}`, '--next-hop', `127.0.0.1:${bq.ports.reinject}`, '--domain', 'corp.test', '--authserv-id', 'mx.corp.test', '--policy', bq.policyPath]);
    try {
      const r = await sendTo(bq.ports.smtp, 'eve@example.com', ['bob%corp.test@mx.corp.test'], draft('eve@example.com', 'bob@corp.test', 'Trust me', 'Forged.', 'Authentication-Results: MX.corp.test.; smime=pass\r\nX-Kakitome-Verdict: trusted\r\n'));
      assert.equal(r.code, 250, r.response);
      await until('the copy', () => bq.sink.deliveries.length === 1, bq.pf);
      const d = bq.sink.deliveryTo('bob@corp.test');
      assert.doesNotMatch(headOf(d.message), /smime=pass|X-Kakitome-/i);
    } finally {
      gw.child.kill('SIGTERM');
      await gw.exited;
    }
  } finally {
    await bq.stop();
  }
});

test('direction: recipients of ours in every spelling Postfix delivers to ours are inbound, others are not; a sender of ours is outbound only when Postfix vouches for the client; the null sender never is', () => {
  const ours = new Set(['corp.test']);
  const of = (sender: string, to: string[], source?: string) => Object.fromEntries(classifyRecipients(sender, to, ours, vouchesForSender(source)));
  assert.deepEqual(of('eve@evil.test', ['bob@CORP.TEST', 'bob@corp.test.', '@relay.test:bob@corp.test', '"x@evil.test"@corp.test', '"bob@corp.test"@evil.test', 'bob@sub.corp.test', 'bob@corp.test.evil', 'bob@corp.tes']), {
    inbound: ['bob@CORP.TEST', 'bob@corp.test.', '@relay.test:bob@corp.test', '"x@evil.test"@corp.test'],
    pass: ['"bob@corp.test"@evil.test', 'bob@sub.corp.test', 'bob@corp.test.evil', 'bob@corp.tes'],
  });
  assert.deepEqual(of('Alice@Corp.Test.', ['carol@example.com', 'bob@corp.test'], 'LOCAL'), { outbound: ['carol@example.com'], inbound: ['bob@corp.test'] });
  assert.deepEqual(of('alice@corp.test', ['carol@example.com', 'bob@corp.test'], 'REMOTE'), { pass: ['carol@example.com'], inbound: ['bob@corp.test'] });
  assert.deepEqual(of('alice@corp.test', ['carol@example.com'], 'remote'), { pass: ['carol@example.com'] });
  assert.deepEqual(of('alice@corp.test', ['carol@example.com'], '[UNAVAILABLE]'), { outbound: ['carol@example.com'] });
  assert.deepEqual(of('', ['carol@example.com', 'bob@corp.test']), { pass: ['carol@example.com'], inbound: ['bob@corp.test'] });
});

test('inbound decryption held by policy (CBC, unauthenticatedEncryption hold), in memory and streamed: Alice\'s ciphertext sent to Alice and Mallory is held for Alice alone, so no release can open it for Mallory, who gets hers unopened', { timeout: 120_000 }, async () => {
  const store = await openWorldStore(w.world);
  const sink = await new Sink().start();
  const policyPath = join(w.world.dir, 'policy-31-hold.json');
  // streamAboveBytes 8192: the second message (padded past it) takes the streaming path.
  writeFileSync(policyPath, JSON.stringify({ revocation: 'allow-unknown', unauthenticatedEncryption: 'hold', streamAboveBytes: 8192 }));
  const gw = await startGateway({ listen: { host: '127.0.0.1', port: 0 }, nextHop: { host: '127.0.0.1', port: sink.port }, domains: new Set(['corp.test']), authservId: 'mx.corp.test', lmtp: false, policyPath }, store, () => {});
  try {
    const alice = (await store.findSigningCertificate('alice@corp.test'))!;
    for (const body of ['CBC-SECRET short', `CBC-SECRET long ${'x'.repeat(16384)}`]) {
      const before = (await new HeldMessages(store).list()).length;
      sink.deliveries.length = 0;
      const ciphertext = encryptMessage(draft('partner@example.com', 'alice@corp.test', 'CBC for Alice', body), { recipients: [{ certificate: alice }], contentEncryption: 'aes-256-cbc' });
      const r = await sendTo(gw.listening.port, 'eve@example.com', ['mallory@corp.test', 'alice@corp.test'], ciphertext);
      assert.equal(r.code, 250, r.response);
      const held = (await new HeldMessages(store).list()).slice(before);
      assert.deepEqual(held.map((h) => h.recipients), [['alice@corp.test']], `held for Alice alone (${body.length} bytes)`);
      const mallory = sink.deliveryTo('mallory@corp.test');
      assert.doesNotMatch(mallory.message.toString('latin1'), /CBC-SECRET/);
      assert.match(headOf(mallory.message), /NOT_RECIPIENT/);
    }
  } finally {
    await gw.stop();
    await sink.stop();
    await store.close();
  }
});

test('a held CBC message whose recipients its keys do not all name (held before the rule) is not released decrypted; encrypted it still may be', { timeout: 120_000 }, async () => {
  const store = await openWorldStore(w.world);
  const sink = await new Sink().start();
  try {
    const alice = (await store.findSigningCertificate('alice@corp.test'))!;
    const ciphertext = encryptMessage(draft('partner@example.com', 'alice@corp.test', 'CBC for Alice', 'CBC-SECRET held'), { recipients: [{ certificate: alice }], contentEncryption: 'aes-256-cbc' });
    const id = await new HeldMessages(store).hold({ sender: 'eve@example.com', recipients: ['alice@corp.test', 'mallory@corp.test'], message: ciphertext, reasonCode: 'UNAUTH_ENC', reason: 'held before the rule' });
    const via = { host: '127.0.0.1', port: sink.port };
    await assert.rejects(releaseHeldMessage(store, id, { via, as: 'decrypted', authservId: 'mx.corp.test' }), (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT' && /--as encrypted/.test(e.message));
    assert.equal(sink.deliveries.length, 0);
    assert.equal(await releaseHeldMessage(store, id, { via, as: 'encrypted', authservId: 'mx.corp.test' }), 'released');
    assert.doesNotMatch(sink.deliveries.map((d) => d.message.toString('latin1')).join(''), /CBC-SECRET/);
  } finally {
    await sink.stop();
    await store.close();
  }
});
