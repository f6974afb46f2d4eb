/**
 * The gateway behind a real Postfix (Debian's package, a private instance on
 * loopback configured with the main.cf/master.cf lines of docs/gateway.md), run as
 * the real `kakitome gateway` process: mail submitted to Postfix goes through the
 * after-queue content filter and back, and arrives at a sink; what arrives is
 * checked with `openssl cms`. Outbound sign/encrypt split, inbound verify with a
 * forged Authentication-Results, the gateway down or its next hop down (nothing
 * lost, everything delivered once it is back), kill -9 in the middle of a stream
 * (every message arrives; duplicates counted), Postfix's queue full (452 4.3.1 from
 * the reinjection listener: 451, kept, delivered once there is room), SIGHUP reload,
 * SIGTERM exit 0, LMTP.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createWorld, draft, opensslDecryptMime, opensslVerifyMime, sendTo, Sink, type GatewayWorld } from './gateway-fixture.ts';
import { freePort, PostfixInstance, waitForPort } from './postfix-instance.ts';
import { smtpDialogue } from '../helpers/smtp-dialogue.ts';
import { checkInboundVerified, startGatewayProcess, startPostfixWorld, until, type PostfixWorld } from './gateway-process.ts';

let world: GatewayWorld;
let sink: Sink;
let pf: PostfixInstance;
let ports: { smtp: number; reinject: number; filter: number; metrics: number };
let policyPath: string;

function gatewayArgs(nextHop = ports.reinject): string[] {
  return ['--listen', `127.0.0.1:${ports.filter}`, '--next-hop', `127.0.0.1:${nextHop}`, '--domain', 'corp.test', '--authserv-id', 'mx.corp.test', '--policy', policyPath, '--metrics', `127.0.0.1:${ports.metrics}`];
}

let shared: PostfixWorld;

before(async () => {
  shared = await startPostfixWorld();
  ({ world, sink, pf, ports, policyPath } = shared);
});

after(async () => {
  await shared?.stop();
});

test('through Postfix: outbound split (encrypted for Carol, signed for Erin) and inbound verified with a forged Authentication-Results removed; SIGHUP reloads, SIGTERM exits 0', async () => {
  const gw = await startGatewayProcess(world, gatewayArgs());
  try {
    const carol = world.pki.identity('rsa2048', 'carol');
    const out = await sendTo(ports.smtp, 'alice@corp.test', ['carol@example.com', 'erin@example.com'], draft('alice@corp.test', 'carol@example.com, erin@example.com', 'Through Postfix', 'Relayed twice.'));
    assert.equal(out.code, 250, out.response);
    await until('both copies', () => sink.deliveries.length === 2, pf);
    const toCarol = sink.deliveryTo('carol@example.com');
    const opened = await opensslDecryptMime(world.dir, toCarol.message, carol.certPath, carol.keyPath);
    assert.ok(opened.ok, opened.detail);
    assert.ok((await opensslVerifyMime(world.dir, opened.content, world.corpRoot)).ok);
    assert.ok((await opensslVerifyMime(world.dir, sink.deliveryTo('erin@example.com').message, world.corpRoot)).ok, 'Postfix did not damage the signature');

    await checkInboundVerified(shared);
    const messageLines = gw.lines.filter((l) => l.includes('"event":"message"')).map((l) => JSON.parse(l));
    assert.ok(messageLines.every((l) => typeof l.queueId === 'string' && l.queueId.length > 0), 'Postfix\'s queue id (XFORWARD IDENT) is in every log line');
    const metrics = await (await fetch(`http://127.0.0.1:${ports.metrics}/metrics`)).text();
    assert.match(metrics, /kakitome_gateway_smime_results_total\{result="pass"\} 1/);

    writeFileSync(policyPath, JSON.stringify({ revocation: 'allow-unknown', sign: false }));
    gw.child.kill('SIGHUP');
    await until('the reload', () => gw.lines.some((l) => l.includes('"event":"reloaded"')), pf);
  } finally {
    gw.child.kill('SIGTERM');
    assert.equal(await gw.exited, 0, gw.lines.join('\n'));
    writeFileSync(policyPath, JSON.stringify({ revocation: 'allow-unknown' }));
  }
});

test('through Postfix: the sender\'s DSN requests (NOTIFY=SUCCESS, ORCPT, RET, ENVID) cross the gateway with both copies (encrypted for Carol, signed for Erin) and reach the sink intact', async () => {
  sink.deliveries.length = 0;
  const gw = await startGatewayProcess(world, gatewayArgs());
  try {
    const requests = { ret: 'HDRS', envid: 'ENV-2026+12=07', notify: ['SUCCESS'], orcpt: 'rfc822;board@corp.test' };
    const out = await sendTo(ports.smtp, 'alice@corp.test', ['carol@example.com', 'erin@example.com'], draft('alice@corp.test', 'carol@example.com, erin@example.com', 'DSN through Postfix', 'Tell me when it arrives.'), { dsn: requests });
    assert.equal(out.code, 250, out.response);
    // (Before the fix, Postfix also sent Alice a "relayed" notice through the gateway: a third delivery.)
    await until('both copies', () => sink.deliveries.length >= 2, pf);
    for (const to of ['carol@example.com', 'erin@example.com']) {
      const d = sink.deliveryTo(to);
      assert.deepEqual(d.dsn, { ret: 'HDRS', envid: 'ENV-2026+12=07' }, `${to}: RET and ENVID`);
      assert.deepEqual(d.rcptDsn, [{ notify: ['SUCCESS'], orcpt: 'rfc822;board@corp.test' }], `${to}: NOTIFY and ORCPT`);
    }
    // The requests went on with the message: nobody along the way answered them with a "relayed" DSN of its own.
    assert.doesNotMatch(pf.log(), /delivery status notification/);
  } finally {
    gw.child.kill('SIGTERM');
    await gw.exited;
  }
});

test('through Postfix: two RCPTs that differ only in case and in their DSN requests (Postfix keeps both) reach the sink as two recipients, each with its own NOTIFY and ORCPT', async () => {
  sink.deliveries.length = 0;
  const gw = await startGatewayProcess(world, gatewayArgs());
  try {
    const msg = draft('alice@corp.test', 'erin@example.com', 'Two mailboxes', 'Case matters in a local part.').toString('latin1');
    const replies = await smtpDialogue(ports.smtp, [
      'EHLO client.test',
      'MAIL FROM:<alice@corp.test> RET=HDRS ENVID=case-1',
      'RCPT TO:<erin@example.com> NOTIFY=NEVER',
      'RCPT TO:<Erin@example.com> NOTIFY=SUCCESS ORCPT=rfc822;Erin@example.com',
      'DATA',
      `${msg}.`,
      'QUIT',
    ]);
    assert.deepEqual(replies.slice(2).map((r) => r.code), [250, 250, 250, 354, 250, 221], replies.map((r) => r.text).join('\n'));
    await until('the copy', () => sink.deliveries.some((d) => d.to.includes('erin@example.com')), pf);
    // A second copy (there should be none) would be in Postfix's queue until delivered: wait for the queue to empty.
    await until('the queue to empty', async () => (await pf.queued()) === 0, pf);
    const d = sink.deliveryTo('erin@example.com');
    assert.deepEqual(d.dsn, { ret: 'HDRS', envid: 'case-1' });
    const byRecipient = Object.fromEntries(d.to.map((r, i) => [r, d.rcptDsn[i]]));
    // Postfix writes an ORCPT of its own where the client gave none.
    assert.deepEqual(byRecipient, { 'erin@example.com': { notify: ['NEVER'], orcpt: 'rfc822;erin@example.com' }, 'Erin@example.com': { notify: ['SUCCESS'], orcpt: 'rfc822;Erin@example.com' } }, JSON.stringify(d.to));
  } finally {
    gw.child.kill('SIGTERM');
    await gw.exited;
  }
});

test('through Postfix: the gateway down, or its next hop down, loses nothing; everything is delivered once they are back', async () => {
  sink.deliveries.length = 0;
  // 1. No gateway at all: Postfix keeps the messages (connection refused = deferred).
  for (let i = 0; i < 3; i++) assert.equal((await sendTo(ports.smtp, 'erin@example.com', ['alice@corp.test'], draft('erin@example.com', 'alice@corp.test', `Down ${i}`, 'Wait for me.'))).code, 250);
  await until('Postfix to defer them', async () => /status=deferred/.test(pf.log()), pf);
  assert.equal(sink.deliveries.length, 0, 'nothing passes around the filter');
  // 2. A gateway whose next hop is down: 4xx, Postfix keeps them.
  const deadHop = await freePort();
  const broken = await startGatewayProcess(world, gatewayArgs(deadHop));
  await pf.flush();
  await until('the gateway to answer 4xx', () => broken.lines.filter((l) => l.includes('"event":"message"') && l.includes('"reply":451')).length >= 3, pf);
  assert.equal(sink.deliveries.length, 0);
  broken.child.kill('SIGTERM');
  assert.equal(await broken.exited, 0);
  // 3. Everything back: each message arrives exactly once.
  const gw = await startGatewayProcess(world, gatewayArgs());
  try {
    await pf.flush();
    await until('all three', () => sink.deliveries.length >= 3, pf);
    // Any further copy would be in Postfix's queue until delivered: wait for the queue to empty.
    await until('the queue to empty', async () => (await pf.queued()) === 0, pf);
    const subjects = sink.deliveries.map((d) => /Subject: (Down \d)/.exec(d.message.toString('latin1'))?.[1]).sort();
    assert.deepEqual(subjects, ['Down 0', 'Down 1', 'Down 2']);
  } finally {
    gw.child.kill('SIGTERM');
    await gw.exited;
  }
});

test('through Postfix: kill -9 of the gateway in the middle of a stream of messages; every message arrives (duplicates counted, none lost)', async () => {
  sink.deliveries.length = 0;
  sink.mode = 'slow';
  sink.delayMs = 150;
  const N = 12;
  let gw = await startGatewayProcess(world, gatewayArgs());
  try {
    const sent = [];
    for (let i = 0; i < N; i++) sent.push(sendTo(ports.smtp, 'alice@corp.test', ['erin@example.com'], draft('alice@corp.test', 'erin@example.com', `Stream ${i}`, `Message ${i}.`)));
    for (const r of await Promise.all(sent)) assert.equal(r.code, 250);
    await until('some to arrive', () => sink.deliveries.length >= 2, pf);
    gw.child.kill('SIGKILL');
    await gw.exited;
    const atKill = sink.deliveries.length;
    gw = await startGatewayProcess(world, gatewayArgs());
    sink.mode = 'accept';
    await pf.flush();
    await until('every message', () => new Set(sink.deliveries.map((d) => /Subject: (Stream \d+)/.exec(d.message.toString('latin1'))?.[1])).size === N, pf, 60_000);
    const duplicates = sink.deliveries.length - N;
    assert.ok(duplicates >= 0);
    // The figure the issue asks for: how many arrived twice (accepted by the next hop, the 250 lost with the process).
    console.log(`kill -9: ${atKill} delivered before the kill, ${N} distinct delivered in all, ${duplicates} duplicate(s)`);
    for (const d of sink.deliveries) assert.match(d.message.toString('latin1'), /multipart\/signed/, 'every copy signed, none passed around the gateway');
  } finally {
    sink.mode = 'accept';
    gw.child.kill('SIGTERM');
    await gw.exited;
  }
});

test('through Postfix with LMTP (--lmtp, the lmtp filter transport of docs/gateway.md): a recipient the next hop defers is retried alone by Postfix, the other is not delivered twice', async () => {
  const lp = { smtp: await freePort(), reinject: await freePort(), filter: await freePort() };
  const lpf = new PostfixInstance({ smtpPort: lp.smtp, reinjectPort: lp.reinject, relayPort: sink.port, filterPort: lp.filter, lmtp: true });
  await lpf.start();
  // The gateway's next hop is the sink itself here, so that the next hop can defer one recipient.
  const gw = await startGatewayProcess(world, ['--listen', `127.0.0.1:${lp.filter}`, '--next-hop', `127.0.0.1:${sink.port}`, '--domain', 'corp.test', '--policy', policyPath, '--lmtp']);
  try {
    sink.deliveries.length = 0;
    sink.refuse.set('erin@example.com', 450);
    const r = await sendTo(lp.smtp, 'alice@corp.test', ['carol@example.com', 'erin@example.com'], draft('alice@corp.test', 'carol@example.com, erin@example.com', 'Per recipient', 'LMTP.'));
    assert.equal(r.code, 250);
    await until('Carol\'s copy', () => sink.deliveries.length === 1, lpf);
    await until('Erin deferred', () => gw.lines.some((l) => l.includes('"event":"message"') && l.includes('"temporary":1')), lpf);
    sink.refuse.clear();
    await lpf.flush();
    await until('Erin\'s copy', () => sink.deliveries.some((d) => d.to.includes('erin@example.com')), lpf);
    // A second copy for either would be in Postfix's queue until delivered (the next hop is the sink): flush, wait for the queue to empty.
    await lpf.flush();
    await until('the queue to empty', async () => (await lpf.queued()) === 0, lpf);
    assert.equal(sink.deliveries.filter((d) => d.to.includes('carol@example.com')).length, 1, 'Carol got exactly one copy');
    assert.equal(sink.deliveries.filter((d) => d.to.includes('erin@example.com')).length, 1, 'Erin got exactly one copy');
    assert.match(sink.deliveryTo('carol@example.com').message.toString('latin1'), /application\/pkcs7-mime/);
    assert.match(sink.deliveryTo('erin@example.com').message.toString('latin1'), /multipart\/signed/);
  } finally {
    sink.refuse.clear();
    gw.child.kill('SIGTERM');
    assert.equal(await gw.exited, 0);
    await lpf.stop();
  }
});

test('through Postfix with LMTP, policy: a trigger forces encryption and leaves no trace; encrypt required without a certificate is bounced with Postfix\'s RFC 3464 DSN; a store edit (kakitome policy set) reaches the running gateway; a held message released through Postfix leaves encrypted; SIGHUP imports a changed levelled file; CBC mail held with a notice, released --as encrypted and opened by openssl', async () => {
  const { runCli } = await import('../cli/run-cli.ts');
  const cli = async (...args: string[]) => {
    const r = await runCli(args, { env: world.env, cwd: world.dir });
    assert.equal(r.status, 0, `kakitome ${args.join(' ')}\n${r.stderr}`);
    return r.stdout.toString();
  };
  const lp = { smtp: await freePort(), reinject: await freePort(), filter: await freePort() };
  const lpf = new PostfixInstance({ smtpPort: lp.smtp, reinjectPort: lp.reinject, relayPort: sink.port, filterPort: lp.filter, lmtp: true });
  await lpf.start();
  const levelled = join(world.dir, 'levelled.json');
  const policy = (addresses: object) => writeFileSync(levelled, JSON.stringify({ global: { revocation: 'allow-unknown', subjectTriggers: ['[secure]'] }, domains: { 'corp.test': { missingCertificate: 'bounce' } }, addresses }));
  policy({});
  const gw = await startGatewayProcess(world, ['--listen', `127.0.0.1:${lp.filter}`, '--next-hop', `127.0.0.1:${lp.reinject}`, '--domain', 'corp.test', '--authserv-id', 'mx.corp.test', '--policy', levelled, '--lmtp']);
  const carol = world.pki.identity('rsa2048', 'carol');
  const frank = world.pki.identity('rsa2048', 'frank');
  const text = (b: Buffer) => b.toString('latin1');
  try {
    // 1. "[secure]": Carol's copy encrypted (openssl), the trigger gone; Frank (no certificate) bounced by Postfix with a DSN to Alice.
    sink.deliveries.length = 0;
    const r = await sendTo(lp.smtp, 'alice@corp.test', ['carol@example.com', 'frank@example.com'], draft('alice@corp.test', 'carol@example.com, frank@example.com', '[secure] Board minutes', 'POSTFIX-SECRET'));
    assert.equal(r.code, 250);
    await until('Carol\'s copy and the DSN', () => sink.deliveries.some((d) => d.to.includes('carol@example.com')) && sink.deliveries.some((d) => d.to.includes('alice@corp.test')), lpf);
    const toCarol = sink.deliveryTo('carol@example.com').message;
    assert.doesNotMatch(text(toCarol), /POSTFIX-SECRET|\[secure\]/);
    const opened = await opensslDecryptMime(world.dir, toCarol, carol.certPath, carol.keyPath);
    assert.ok(opened.ok, opened.detail);
    assert.ok((await opensslVerifyMime(world.dir, opened.content, world.corpRoot)).ok);
    assert.match(text(opened.content), /^Subject: Board minutes\r$/m);
    assert.equal(sink.deliveries.filter((d) => d.to.includes('frank@example.com')).length, 0, 'nothing reaches Frank');
    const dsn = text(sink.deliveryTo('alice@corp.test').message).replace(/\r\n[ \t]+/g, ' ');
    assert.match(dsn, /multipart\/report;\s+report-type=delivery-status/);
    assert.match(dsn, /Final-Recipient: rfc822; frank@example\.com/);
    assert.match(dsn, /Status: 5\.7\.5/);
    assert.match(dsn, /Encryption to frank@example\.com is required by policy/);
    // 2. An edit in the store, made with the CLI while the gateway runs: Alice's mail is held from now on.
    await cli('policy', 'set', '--address', 'alice@corp.test', 'missingCertificate', 'hold');
    await until('the gateway to see the edit (at most 10 s)', () => gw.lines.some((l) => l.includes('"event":"policy-refreshed"')), lpf, 20_000);
    sink.deliveries.length = 0;
    assert.equal((await sendTo(lp.smtp, 'alice@corp.test', ['frank@example.com'], draft('alice@corp.test', 'frank@example.com', '[secure] For Frank', 'HELD-THROUGH-POSTFIX'))).code, 250);
    let held: Array<{ id: string; recipients: string[] }> = [];
    await until('the message to be held', async () => {
      held = JSON.parse(await cli('gateway', 'held', 'list', '--json')).held.filter((h: { recipients: string[] }) => h.recipients.includes('frank@example.com'));
      return held.length === 1;
    }, lpf);
    assert.equal(sink.deliveries.length, 0);
    // Frank's certificate becomes known; released through Postfix, the copy leaves encrypted for him.
    await cli('certs', 'import', frank.certPath);
    assert.match(await cli('gateway', 'held', 'release', held[0]!.id, '--via', `127.0.0.1:${lp.smtp}`), /released/);
    await until('Frank\'s copy', () => sink.deliveries.some((d) => d.to.includes('frank@example.com')), lpf);
    const toFrank = sink.deliveryTo('frank@example.com').message;
    assert.doesNotMatch(text(toFrank), /HELD-THROUGH-POSTFIX/);
    const frankOpened = await opensslDecryptMime(world.dir, toFrank, frank.certPath, frank.keyPath);
    assert.ok(frankOpened.ok, frankOpened.detail);
    assert.match(text(frankOpened.content), /HELD-THROUGH-POSTFIX/);
    // 3. SIGHUP with a changed levelled file: Alice's address level now turns signing off (and replaces the CLI's edit).
    policy({ 'alice@corp.test': { sign: false } });
    gw.child.kill('SIGHUP');
    await until('the reload', () => gw.lines.some((l) => l.includes('"event":"reloaded"')), lpf);
    sink.deliveries.length = 0;
    assert.equal((await sendTo(lp.smtp, 'alice@corp.test', ['frank@example.com'], draft('alice@corp.test', 'frank@example.com', 'After SIGHUP', 'Unsigned now.'))).code, 250);
    await until('the copy after SIGHUP', () => sink.deliveries.length === 1, lpf);
    const after = await opensslDecryptMime(world.dir, sink.deliveryTo('frank@example.com').message, frank.certPath, frank.keyPath);
    assert.ok(after.ok, after.detail);
    assert.doesNotMatch(text(after.content).split('\r\n\r\n')[0]!, /multipart\/signed/, 'encrypted, not signed: sign=false from the reloaded file');
    assert.equal(JSON.parse(await cli('policy', 'show', '--address', 'alice@corp.test', '--json')).settings.missingCertificate, undefined, 'the file\'s addresses replaced the CLI\'s edit');
    // 4. unauthenticatedEncryption: hold. CBC mail from outside (openssl, as Outlook sends it) is held still encrypted,
    // Alice gets the gateway's notice; released --as encrypted to the reinjection listener, openssl opens what she gets.
    const refreshed = gw.lines.filter((l) => l.includes('"event":"policy-refreshed"')).length;
    await cli('policy', 'set', '--address', 'alice@corp.test', 'unauthenticatedEncryption', 'hold');
    await until('the gateway to see the hold', () => gw.lines.filter((l) => l.includes('"event":"policy-refreshed"')).length > refreshed, lpf, 20_000);
    const { Workdir } = await import('../peers/run-peer.ts');
    const { opensslEncrypt } = await import('../peers/openssl.ts');
    const { openWorldStore } = await import('./gateway-fixture.ts');
    const { findEnvelopeKeys } = await import('../../src/store/find-envelope-keys.ts');
    const { findMessageEnvelope } = await import('../../src/smime/find-message-envelope.ts');
    const w = new Workdir('gw-postfix-hold');
    const store = await openWorldStore(world);
    try {
      const alice = (await store.findRecipientCertificates('alice@corp.test'))[0]!;
      const alicePem = w.write('alice.pem', `-----BEGIN CERTIFICATE-----\n${Buffer.from(alice.certificate.der).toString('base64').replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`);
      const der = await opensslEncrypt(w, Buffer.from('Content-Type: text/html\r\n\r\n<p>CBC-HELD-THROUGH-POSTFIX</p>\r\n'), { recipients: [{ id: { certPath: alicePem } as never }], cipher: 'aes-256-cbc' });
      const cbc = Buffer.from('From: erin@example.com\r\nTo: alice@corp.test\r\nSubject: Invoice\r\nMIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n' + der.toString('base64').replace(/.{1,76}/g, '$&\r\n'));
      sink.deliveries.length = 0;
      assert.equal((await sendTo(lp.smtp, 'erin@example.com', ['alice@corp.test'], cbc)).code, 250);
      await until('the notice to Alice', () => sink.deliveries.some((d) => d.to.includes('alice@corp.test')), lpf);
      const notice = sink.deliveryTo('alice@corp.test');
      assert.equal(notice.from, '', 'the notice has the null sender');
      assert.match(text(notice.message), /smime=neutral[^]*UNAUTH_ENC/);
      assert.doesNotMatch(text(notice.message), /CBC-HELD-THROUGH-POSTFIX|Invoice|pkcs7/);
      const cbcHeld = JSON.parse(await cli('gateway', 'held', 'list', '--json')).held.filter((h: { reasonCode: string }) => h.reasonCode === 'UNAUTH_ENC');
      assert.equal(cbcHeld.length, 1);
      assert.ok(text(notice.message).includes(cbcHeld[0].id), 'the notice names the id to quote');
      sink.deliveries.length = 0;
      assert.match(await cli('gateway', 'held', 'release', cbcHeld[0].id, '--as', 'encrypted', '--authserv-id', 'mx.corp.test', '--via', `127.0.0.1:${lp.reinject}`), /released/);
      await until('the released copy', () => sink.deliveries.some((d) => d.to.includes('alice@corp.test')), lpf);
      const released = sink.deliveryTo('alice@corp.test').message;
      assert.match(text(released), /^Authentication-Results: mx\.corp\.test; smime=neutral/m);
      const attached = text(released).split(/Content-Type: message\/rfc822[^]*?\r\n\r\n/)[1]!.split(/\r\n--/)[0]!;
      assert.ok(attached.includes(der.toString('base64').slice(0, 76)), 'the original, still encrypted');
      const keys = await findEnvelopeKeys(store, findMessageEnvelope(cbc)!);
      const keyPath = w.write('alice.key', keys[0]!.key.export({ format: 'pem', type: 'pkcs8' }) as string);
      const viaOpenssl = await opensslDecryptMime(world.dir, Buffer.from(attached, 'latin1'), alicePem, keyPath);
      assert.ok(viaOpenssl.ok, viaOpenssl.detail);
      assert.match(text(viaOpenssl.content), /CBC-HELD-THROUGH-POSTFIX/);
      assert.equal(JSON.parse(await cli('gateway', 'held', 'list', '--json')).held.filter((h: { reasonCode: string }) => h.reasonCode === 'UNAUTH_ENC').length, 0, 'released: gone from the store');
    } finally {
      await store.close();
      w.cleanup();
    }
  } finally {
    gw.child.kill('SIGTERM');
    assert.equal(await gw.exited, 0, gw.lines.join('\n'));
    await lpf.stop();
    writeFileSync(levelled, JSON.stringify({ global: { revocation: 'allow-unknown' }, domains: {}, addresses: {} }));
    await runCli(['policy', 'import', levelled], { env: world.env, cwd: world.dir });
  }
});

test('through Postfix: its queue full (queue_minfree above the free space): :25 answers 452, the reinjection listener\'s 452 becomes the gateway\'s 451 and Postfix keeps the messages; once there is room each is delivered once', async () => {
  sink.deliveries.length = 0;
  const { signMessage } = await import('../../src/smime/sign-message.ts');
  const dave = world.pki.identity('rsa2048', 'dave');
  // 1. Two messages in Postfix's queue, one each way, waiting for the (stopped) gateway (beside any an earlier test left there).
  const senders = ['alice@corp.test', 'dave@example.com'];
  const before = await pf.queued({ senders });
  assert.equal((await sendTo(ports.smtp, 'alice@corp.test', ['erin@example.com'], draft('alice@corp.test', 'erin@example.com', 'Full out', 'Outbound while full.'))).code, 250);
  const inbound = signMessage(draft('dave@example.com', 'alice@corp.test', 'Full in', 'Inbound while full.'), { signers: [{ certificate: dave.cert, key: dave.key }] });
  assert.equal((await sendTo(ports.smtp, 'dave@example.com', ['alice@corp.test'], inbound)).code, 250);
  await until('both in the queue', async () => (await pf.queued({ senders })) === before + 2, pf);
  // 2. The queue's file system "full": Postfix wants more free space than the disk has (the check behind 452 4.3.1).
  await pf.setParameter('queue_minfree', String(2 ** 50));
  const gw = await startGatewayProcess(world, gatewayArgs());
  try {
    const refused = await sendTo(ports.smtp, 'erin@example.com', ['alice@corp.test'], draft('erin@example.com', 'alice@corp.test', 'Refused', 'No room.'));
    assert.equal(refused.code, 452, `Postfix takes no new mail while full: ${refused.response}`);
    await pf.flush();
    // Ours by Subject: Postfix also tells its postmaster about the shortage (notify_classes resource), and an earlier test may have left a message queued.
    const subjects = () => sink.deliveries.map((d) => /^Subject: (Full (?:out|in))\r$/m.exec(d.message.toString('latin1'))?.[1]).filter((x) => x !== undefined);
    const ours = () => sink.deliveries.filter((d) => /^Subject: Full (out|in)\r$/m.test(d.message.toString('latin1')));
    const deferredByGateway = () => gw.lines.filter((l) => l.includes('"event":"message"') && /"reply":4\d\d/.test(l));
    await until('the gateway to answer 4xx for each queued message', () => deferredByGateway().length >= before + 2, pf);
    // Postfix writes its own log line after it has read the gateway's reply, which the gateway logged first: wait for it.
    await until('Postfix to log the deferral with the next hop\'s reason', () => /status=deferred \(.*Insufficient system storage/.test(pf.log()), pf, 10_000);
    assert.equal(ours().length, 0, 'nothing delivered while the queue is full');
    assert.equal(await pf.queued({ senders }), before + 2, 'Postfix still holds both');
    // 3. Room again: both are delivered, each once.
    await pf.setParameter('queue_minfree');
    await pf.flush();
    await until('both delivered', () => ours().length >= 2, pf);
    // A second copy would be in Postfix's queue until delivered: flush, and wait for the queue to empty.
    await pf.flush();
    await until('the queue to empty', async () => (await pf.queued()) === 0, pf);
    assert.deepEqual(subjects().sort(), ['Full in', 'Full out'], 'each message once');
    assert.ok((await opensslVerifyMime(world.dir, ours().find((d) => d.to.includes('erin@example.com'))!.message, world.corpRoot)).ok, 'the outbound copy left signed');
    const got = ours().find((d) => d.to.includes('alice@corp.test'))!.message;
    assert.match(got.toString('latin1'), /^Authentication-Results: mx\.corp\.test; smime=pass/m);
    assert.ok((await opensslVerifyMime(world.dir, got, world.pki.caPath)).ok);
  } finally {
    await pf.setParameter('queue_minfree');
    gw.child.kill('SIGTERM');
    assert.equal(await gw.exited, 0, gw.lines.join('\n'));
  }
});
