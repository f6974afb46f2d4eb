/**
 * The gateway as Postfix's before-queue content filter (`smtpd_proxy_filter`,
 * docs/gateway.md "Before-queue (proxy) deployment"), with a real Postfix and the
 * real `kakitome gateway` process: Postfix's smtpd proxies the client's session to
 * the gateway, which relays to the after-filter listener, and the message is queued
 * once, only when the gateway answered 250. Outbound arrives signed (openssl cms
 * -verify), inbound verified (and decrypted) and labelled; with the gateway down or
 * failing the client is told 4xx and nothing is queued or delivered (the client
 * keeps the message), and the same message sent again once the gateway is back is
 * delivered; a policy bounce is the client's 554 at the end of DATA, no DSN.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { draft, openWorldStore, opensslVerifyMime, sendTo, Sink, type GatewayWorld } from './gateway-fixture.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { freePort, PostfixInstance } from './postfix-instance.ts';
import { checkInboundVerified, startGatewayProcess, startPostfixWorld, until, type PostfixWorld } from './gateway-process.ts';

let shared: PostfixWorld;
let world: GatewayWorld;
let sink: Sink;
let pf: PostfixInstance;
let ports: PostfixWorld['ports'];
let policyPath: string;

/** How many messages from `sender` Postfix's queue manager has seen (a message queued is logged `from=<...>` by qmgr). */
function queuedFrom(sender: string): number {
  return pf.log().split('\n').filter((l) => / postfix\/qmgr\[\d+\]: [0-9A-F]+: from=</.test(l) && l.includes(`from=<${sender}>`)).length;
}

function gatewayArgs(nextHop = ports.reinject): string[] {
  return ['--listen', `127.0.0.1:${ports.filter}`, '--next-hop', `127.0.0.1:${nextHop}`, '--domain', 'corp.test', '--authserv-id', 'mx.corp.test', '--policy', policyPath];
}

before(async () => {
  shared = await startPostfixWorld({ beforeQueue: true });
  ({ world, sink, pf, ports, policyPath } = shared);
});

after(async () => {
  await shared?.stop();
});

test('before-queue: outbound arrives signed (openssl), inbound verified with a forged Authentication-Results removed, inbound encrypted decrypted and verified; each queued once', async () => {
  const gw = await startGatewayProcess(world, gatewayArgs());
  try {
    sink.deliveries.length = 0;
    const out = await sendTo(ports.smtp, 'alice@corp.test', ['erin@example.com'], draft('alice@corp.test', 'erin@example.com', 'Before queue', 'Proxied once.'));
    assert.equal(out.code, 250, out.response);
    await until('the signed copy', () => sink.deliveries.length === 1, pf);
    const signed = sink.deliveryTo('erin@example.com').message;
    assert.match(signed.toString('latin1'), /multipart\/signed/);
    const verified = await opensslVerifyMime(world.dir, signed, world.corpRoot);
    assert.ok(verified.ok, verified.detail);
    assert.match(verified.content.toString('latin1'), /Proxied once\./);

    await checkInboundVerified(shared);

    // Inbound encrypted and signed (opaque signature inside): decrypted with Alice's key from the store, verified, labelled pass.
    sink.deliveries.length = 0;
    const store = await openWorldStore(world);
    const alice = (await store.findRecipientCertificates('alice@corp.test'))[0]!.certificate;
    await store.close();
    const dave = world.pki.identity('rsa2048', 'dave');
    const sealed = encryptMessage(draft('dave@example.com', 'alice@corp.test', 'Sealed before queue', 'The vault code is 4711.'), { recipients: [{ certificate: alice }], sign: { signers: [{ certificate: dave.cert, key: dave.key }] } });
    assert.equal((await sendTo(ports.smtp, 'dave@example.com', ['alice@corp.test'], sealed)).code, 250);
    await until('the decrypted message', () => sink.deliveries.length === 1, pf);
    const opened = sink.deliveryTo('alice@corp.test').message;
    assert.match(opened.toString('latin1').split('\r\n\r\n')[0]!, /^Authentication-Results: mx\.corp\.test; smime=pass/m);
    assert.doesNotMatch(opened.toString('latin1'), /application\/(x-)?pkcs7-mime; (name=smime\.p7m; )?smime-type=enveloped-data/);
    assert.match(opened.toString('latin1'), /^Subject: Sealed before queue\r\n[^]*\r\n\r\nThe vault code is 4711\.\r\n$/m);

    // Queued once: one queue file (one cleanup) per message, the after-filter listener's.
    // (postlogd writes cleanup's line asynchronously, possibly after the copy reached the sink: wait for the lines.)
    const cleanups = () => pf.log().split('\n').filter((l) => /postfix\/cleanup\[\d+\]: [0-9A-F]+: message-id=/.test(l));
    await until('Postfix to log the three cleanups', () => cleanups().length >= 3, pf, 10_000);
    assert.equal(cleanups().length, 3, pf.log().split('\n').slice(-40).join('\n'));
    assert.ok(gw.lines.filter((l) => l.includes('"event":"message"')).every((l) => JSON.parse(l).reply === 250));
  } finally {
    gw.child.kill('SIGTERM');
    assert.equal(await gw.exited, 0, gw.lines.join('\n'));
  }
});

test('before-queue: the gateway down or failing gives the client a 4xx and nothing is queued or delivered; sent again once it is back, delivered once', async () => {
  sink.deliveries.length = 0;
  const queuedBefore = queuedFrom('alice@corp.test');
  const message = draft('alice@corp.test', 'erin@example.com', 'Kept by the client', 'Resend me.');
  // 1. Nothing listens where the proxy filter should be.
  const down = await sendTo(ports.smtp, 'alice@corp.test', ['erin@example.com'], message);
  assert.ok(down.code >= 400 && down.code < 500, `a 4xx, got ${down.code} ${down.response}`);
  // Postfix's own text (SMTPD_PROXY_README: details are not for strangers); the reason is in its log.
  // (postlogd writes the line after smtpd's reply may have reached us: wait for it.)
  await until('Postfix to log the refused proxy connection', () => /warning: connect to proxy filter 127\.0\.0\.1:\d+: Connection refused/.test(pf.log()), pf, 10_000);
  // 2. The gateway is up, its next hop (the after-filter listener) is not: it answers 451 at the end of DATA.
  const deadHop = await freePort();
  const broken = await startGatewayProcess(world, gatewayArgs(deadHop));
  try {
    const failing = await sendTo(ports.smtp, 'alice@corp.test', ['erin@example.com'], message);
    assert.ok(failing.code >= 400 && failing.code < 500, `a 4xx, got ${failing.code} ${failing.response}`);
    // The gateway's own reply reaches the client through the proxy (only Postfix's own failures are worded by Postfix).
    assert.match(failing.response, /^451 4\.4\.0 The next hop did not accept/, failing.response);
    // The gateway wrote its line before its reply, but on a pipe this process reads on its own schedule: wait for it.
    await until('the gateway to log its 451', () => broken.lines.some((l) => l.includes('"event":"message"') && l.includes('"reply":451')), pf, 10_000);
  } finally {
    broken.child.kill('SIGTERM');
    assert.equal(await broken.exited, 0);
  }
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(queuedFrom('alice@corp.test'), queuedBefore, 'the client\'s message was never queued');
  assert.equal(sink.deliveries.filter((d) => d.to.includes('erin@example.com')).length, 0, 'nothing delivered, nothing passed around the gateway');
  // The only mail Postfix made of it: a notice to the postmaster per proxy failure (notify_classes; docs/gateway.md).
  assert.ok(sink.deliveries.every((d) => d.from === 'double-bounce@mx.corp.test' && d.to.includes('postmaster@mx.corp.test')), JSON.stringify(sink.deliveries.map((d) => [d.from, d.to])));
  // 3. Back: the client's retry is delivered, once, signed.
  const gw = await startGatewayProcess(world, gatewayArgs());
  try {
    const again = await sendTo(ports.smtp, 'alice@corp.test', ['erin@example.com'], message);
    assert.equal(again.code, 250, again.response);
    const toErin = () => sink.deliveries.filter((d) => d.to.includes('erin@example.com'));
    await until('the retry', () => toErin().length === 1, pf);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(toErin().length, 1);
    // qmgr's line comes through postlogd, on its own schedule: wait for it, then for it alone.
    await until('Postfix to log the retry\'s queueing', () => queuedFrom('alice@corp.test') >= queuedBefore + 1, pf, 10_000);
    assert.equal(queuedFrom('alice@corp.test'), queuedBefore + 1, 'queued once');
    assert.ok((await opensslVerifyMime(world.dir, sink.deliveryTo('erin@example.com').message, world.corpRoot)).ok);
  } finally {
    gw.child.kill('SIGTERM');
    await gw.exited;
  }
});

test('before-queue: encryption required and no certificate (policy bounce) is the client\'s 554 5.7.5 at the end of DATA; nothing is queued, no DSN is made', async () => {
  const policy = join(world.dir, 'bounce-policy.json');
  writeFileSync(policy, JSON.stringify({ global: { revocation: 'allow-unknown', subjectTriggers: ['[secure]'] }, domains: { 'corp.test': { missingCertificate: 'bounce' } } }));
  const gw = await startGatewayProcess(world, ['--listen', `127.0.0.1:${ports.filter}`, '--next-hop', `127.0.0.1:${ports.reinject}`, '--domain', 'corp.test', '--authserv-id', 'mx.corp.test', '--policy', policy]);
  try {
    sink.deliveries.length = 0;
    const queuedBefore = queuedFrom('alice@corp.test');
    const r = await sendTo(ports.smtp, 'alice@corp.test', ['frank@example.com'], draft('alice@corp.test', 'frank@example.com', '[secure] For Frank', 'NEVER-IN-CLEAR'));
    assert.equal(r.code, 554, r.response);
    assert.match(r.response, /5\.7\.5 .*Encryption to frank@example\.com is required by policy/);
    await new Promise((res) => setTimeout(res, 1500));
    assert.equal(queuedFrom('alice@corp.test'), queuedBefore, 'nothing queued');
    assert.equal(queuedFrom(''), 0, 'no DSN: the client was told');
    assert.equal(sink.deliveries.length, 0);
  } finally {
    gw.child.kill('SIGTERM');
    assert.equal(await gw.exited, 0);
  }
});

test('before-queue: a gateway slower than smtpd_proxy_timeout (its next hop stalls) has the client told 451 while the copy is still delivered: the message arrives, and a client\'s retry brings it twice, never zero times (docs/gateway.md: keep the timeout above the gateway\'s worst case)', async () => {
  // A Postfix of its own with a 2 s proxy timeout; the gateway relays straight to a sink that answers after 4 s.
  const slow = await new Sink().start();
  slow.mode = 'slow';
  slow.delayMs = 4000;
  const p = { smtp: await freePort(), reinject: await freePort(), filter: await freePort() };
  const short = new PostfixInstance({ smtpPort: p.smtp, reinjectPort: p.reinject, relayPort: sink.port, filterPort: p.filter, beforeQueue: true, proxyTimeoutSeconds: 2 });
  await short.start();
  const gw = await startGatewayProcess(world, ['--listen', `127.0.0.1:${p.filter}`, '--next-hop', `127.0.0.1:${slow.port}`, '--domain', 'corp.test', '--authserv-id', 'mx.corp.test', '--policy', policyPath]);
  try {
    const r = await sendTo(p.smtp, 'alice@corp.test', ['erin@example.com'], draft('alice@corp.test', 'erin@example.com', 'Slow gateway', 'Late.'));
    assert.match(r.response, /^451 4\.3\.0 Error: queue file write error/, r.response);
    // (postlogd writes the line after smtpd's reply may have reached us: wait for it.)
    await until('Postfix to log the proxy timeout', () => /warning: timeout talking to proxy 127\.0\.0\.1:\d+/.test(short.log()), short, 10_000);
    await until('the gateway\'s copy to arrive anyway', () => slow.deliveries.length === 1, short);
    assert.match(slow.deliveries[0]!.message.toString('latin1'), /multipart\/signed/);
    assert.equal(short.log().split('\n').filter((l) => / postfix\/qmgr\[\d+\]: [0-9A-F]+: from=<alice@corp\.test>/.test(l)).length, 0, 'Postfix queued nothing of it');
  } finally {
    gw.child.kill('SIGTERM');
    await gw.exited;
    await short.stop();
    await slow.stop();
  }
});
