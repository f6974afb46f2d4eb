/**
 * docs/security.md section 27: the gateway's headers and envelope. The attacker is
 * anyone on the Internet who can send mail to the organisation's MX, or an insider
 * whose certificate says what they like:
 *
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
import { draft, opensslDecryptMime, opensslVerifyMime, sendTo } from '../gateway/gateway-fixture.ts';
import { startGatewayProcess, startPostfixWorld, until, type PostfixWorld } from '../gateway/gateway-process.ts';

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
