/**
 * DKIM and sender authentication in the gateway, with a real DNS server (dnsmasq on
 * loopback, reached through the gateway's own node:dns Resolver: --dns-server) and
 * an SMTP client that speaks XFORWARD as Postfix does (ADDR, HELO, IDENT):
 * - outbound, policy dkim for corp.test: each copy (signed, signed and encrypted)
 *   is DKIM-signed after S/MIME; dkimpy verifies it over DNS and openssl cms the
 *   S/MIME layer; a domain without a key passes without DKIM, counted;
 * - inbound, policy senderAuthentication: dkim, spf and dmarc pass / fail / none in
 *   the same Authentication-Results field as smime; a forged field claiming our
 *   authserv-id is removed; a tampered body fails DKIM while smime is judged on
 *   its own; the DNS server down gives temperror and the message is delivered.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatDkimDnsRecord, generateDkimKey } from '../../src/dkim/dkim-key.ts';
import { signDkim } from '../../src/dkim/sign-dkim.ts';
import { createGatewayLog } from '../../src/gateway/gateway-log.ts';
import { startGateway, type RunningGateway } from '../../src/gateway/start-gateway.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { DkimKeyDirectory } from '../../src/store/dkim-key-directory.ts';
import type { Store } from '../../src/store/store.ts';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.ts';
import { smtpDialogue } from '../helpers/smtp-dialogue.ts';
import { dkimpyVerify } from '../peers/dkimpy.ts';
import { createWorld, draft, openWorldStore, opensslDecryptMime, opensslVerifyMime, Sink, type GatewayWorld } from './gateway-fixture.ts';

let world: GatewayWorld;
let store: Store;
let sink: Sink;
let dns: DnsServer;
let gw: RunningGateway;
const lines: Array<Record<string, unknown>> = [];
const senderKey = await generateDkimKey('rsa-2048');

/** One SMTP transaction as Postfix's content filter client makes it: EHLO, XFORWARD, MAIL, RCPT, DATA. */
async function sendWithXforward(port: number, xforward: string, from: string, to: string[], message: Buffer): Promise<string[]> {
  const body = message.toString('latin1').replace(/\r\n\./g, '\r\n..');
  const replies = await smtpDialogue(port, ['EHLO postfix.corp.test', `XFORWARD ${xforward}`, `MAIL FROM:<${from}>`, ...to.map((t) => `RCPT TO:<${t}>`), 'DATA', `${body}${body.endsWith('\r\n') ? '' : '\r\n'}.`, 'QUIT']);
  return replies.map((r) => r.text);
}

function arField(message: Buffer): string {
  const header = message.toString('latin1').split('\r\n\r\n')[0]!.replace(/\r\n[ \t]+/g, ' ');
  const fields = header.split('\r\n').filter((l) => /^Authentication-Results:/i.test(l));
  assert.equal(fields.length, 1, `one Authentication-Results field: ${fields.join(' | ')}`);
  return fields[0]!;
}

before(async () => {
  world = await createWorld();
  store = await openWorldStore(world);
  const dkim = new DkimKeyDirectory(store);
  const corpRsa = (await dkim.addKey('corp.test', 'gw2026', { algorithm: 'rsa-2048' })).dns;
  const corpEd = (await dkim.addKey('corp.test', 'gw2026e', { algorithm: 'ed25519' })).dns;
  const sender = formatDkimDnsRecord('sender.test', 's1', createPublicKey(senderKey));
  dns = await startDnsServer({
    // Every .test name is answered here: a name not listed is NXDOMAIN, as DMARC's tree walk expects.
    zones: ['test'],
    txt: [
      [corpRsa.name, corpRsa.value], [corpEd.name, corpEd.value], [sender.name, sender.value],
      ['sender.test', 'v=spf1 ip4:192.0.2.10 -all'], ['_dmarc.sender.test', 'v=DMARC1; p=reject'],
    ],
    a: [['sender.test', '192.0.2.10'], ['plain.test', '192.0.2.20']],
  });
  sink = await new Sink().start();
  const policyPath = join(world.dir, 'policy.json');
  writeFileSync(policyPath, JSON.stringify({
    // Messages over 64 KiB stream (the last outbound and inbound tests send such).
    global: { revocation: 'allow-unknown', streamAboveBytes: 65536 },
    domains: { 'corp.test': { dkim: true, senderAuthentication: true }, 'other.corp.test': { dkim: true } },
  }));
  gw = await startGateway({
    listen: { host: '127.0.0.1', port: 0 }, nextHop: { host: '127.0.0.1', port: sink.port }, domains: new Set(['corp.test', 'other.corp.test']),
    authservId: 'mx.corp.test', lmtp: false, policyPath, dnsServers: [dns.address],
  }, store, createGatewayLog((l) => lines.push(JSON.parse(l))));
});

after(async () => {
  await gw?.stop();
  await sink?.stop();
  await dns?.stop();
  await store?.close();
  world?.cleanup();
});

test('outbound: every copy DKIM-signed after S/MIME; dkimpy and openssl verify their layers', async () => {
  sink.reset();
  const carol = world.pki.identity('rsa2048', 'carol');
  const replies = await sendWithXforward(gw.listening.port, 'ADDR=10.0.0.5 HELO=laptop IDENT=Q1', 'alice@corp.test', ['carol@example.com', 'dave@example.org'],
    draft('Alice <alice@corp.test>', 'carol@example.com, dave@example.org', 'Plans', 'Hello both.'));
  assert.match(replies.at(-2)!, /^250 /, replies.join('\n'));
  const signedOnly = sink.deliveryTo('dave@example.org').message;
  const encrypted = sink.deliveryTo('carol@example.com').message;
  for (const [what, m] of [['signed', signedOnly], ['signed and encrypted', encrypted]] as const) {
    assert.match(m.toString('latin1'), /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=corp\.test; s=gw2026;/, what);
    assert.equal((await dkimpyVerify(m, dns, 0)).ok, true, `${what}: RSA DKIM`);
    assert.equal((await dkimpyVerify(m, dns, 1)).ok, true, `${what}: Ed25519 DKIM`);
  }
  assert.equal((await opensslVerifyMime(world.dir, signedOnly, world.corpRoot)).ok, true, 'the S/MIME signature under DKIM');
  const opened = await opensslDecryptMime(world.dir, encrypted, carol.certPath, carol.keyPath);
  assert.equal(opened.ok, true, opened.detail);
});

test('outbound: a domain whose policy wants DKIM but has no key passes without it, counted', async () => {
  sink.reset();
  const before = await gw.metrics.value('kakitome_gateway_dkim_no_key_total');
  const replies = await sendWithXforward(gw.listening.port, 'ADDR=10.0.0.5', 'bob@other.corp.test', ['dave@example.org'], draft('bob@other.corp.test', 'dave@example.org', 'NoKey', 'x'));
  assert.match(replies.at(-2)!, /^250 /);
  assert.doesNotMatch(sink.deliveryTo('dave@example.org').message.toString('latin1'), /DKIM-Signature/);
  assert.equal(await gw.metrics.value('kakitome_gateway_dkim_no_key_total'), before + 1);
  assert.equal(lines.filter((l) => l.event === 'message').at(-1)!.groups instanceof Array, true);
});

test('inbound: DKIM, SPF and DMARC pass beside smime in one field; a forged field of ours is removed', async () => {
  sink.reset();
  const base = draft('Sam <sam@sender.test>', 'alice@corp.test', 'Invoice', 'Please find the invoice.', 'Authentication-Results: mx.corp.test; smime=pass; dkim=pass; dmarc=pass\r\n');
  const signed = signDkim(base, { signers: [{ domain: 'sender.test', selector: 's1', key: senderKey }] });
  const replies = await sendWithXforward(gw.listening.port, 'ADDR=192.0.2.10 HELO=mail.sender.test IDENT=Q2', 'sam@sender.test', ['alice@corp.test'], signed);
  assert.match(replies.at(-2)!, /^250 /, replies.join('\n'));
  const ar = arField(sink.deliveryTo('alice@corp.test').message);
  assert.match(ar, /^Authentication-Results: mx\.corp\.test; smime=none /);
  assert.match(ar, /; dkim=pass header\.d=sender\.test header\.s=s1 header\.a=rsa-sha256 header\.b=\S{8}/);
  assert.match(ar, /; spf=pass smtp\.mailfrom=sam@sender\.test smtp\.helo=mail\.sender\.test/);
  assert.match(ar, /; dmarc=pass header\.from=sender\.test policy\.dmarc=reject/);
  assert.equal(await gw.metrics.value('kakitome_gateway_sender_auth_results_total', { method: 'dmarc', result: 'pass' }), 1);
});

test('inbound: a wrong client address fails SPF, a tampered body fails DKIM, DMARC fails; smime is judged on its own', async () => {
  sink.reset();
  const alice = await store.findSigningIdentity('alice@corp.test');
  // S/MIME-signed by a trusted signer, then DKIM-signed by sender.test; the body is altered in transit.
  const smime = signMessage(draft('alice@corp.test', 'alice@corp.test', 'Tampered', 'Original text.'), { signers: [{ certificate: alice!.certificate, key: alice!.key }], certificates: alice!.chain });
  const dkimSigned = signDkim(smime, { signers: [{ domain: 'sender.test', selector: 's1', key: senderKey }] }).toString('latin1');
  const tampered = Buffer.from(dkimSigned.replace(/\r\n--([^\r\n]+)--\r\n$/, '\r\n--$1--\r\nappended by a relay\r\n'), 'latin1');
  await sendWithXforward(gw.listening.port, 'ADDR=192.0.2.99 HELO=evil.test', 'sam@sender.test', ['alice@corp.test'], tampered);
  const ar = arField(sink.deliveryTo('alice@corp.test').message);
  assert.match(ar, /; dkim=fail reason="body hash did not verify" header\.d=sender\.test/);
  assert.match(ar, /; spf=fail smtp\.mailfrom=sam@sender\.test/);
  assert.match(ar, /; dmarc=none header\.from=corp\.test/, 'corp.test publishes no DMARC record');
  assert.match(ar, /smime=pass /, 'the epilogue is outside the S/MIME signature: smime judges its own bytes');

  sink.reset();
  const smimeTampered = Buffer.from(dkimSigned.replace('Original text.', 'Altered text.!'), 'latin1');
  await sendWithXforward(gw.listening.port, 'ADDR=192.0.2.10 HELO=mail.sender.test', 'sam@sender.test', ['alice@corp.test'], smimeTampered);
  const ar2 = arField(sink.deliveryTo('alice@corp.test').message);
  assert.match(ar2, /smime=fail /);
  assert.match(ar2, /; dkim=fail /);
  assert.match(ar2, /; spf=pass /);

  // sender.test's own mail, altered and from a host its SPF does not name: DMARC (p=reject) fails.
  sink.reset();
  const own = signDkim(draft('sam@sender.test', 'alice@corp.test', 'Wire', 'Account 1234.'), { signers: [{ domain: 'sender.test', selector: 's1', key: senderKey }] }).toString('latin1');
  await sendWithXforward(gw.listening.port, 'ADDR=192.0.2.99 HELO=evil.test', 'sam@sender.test', ['alice@corp.test'], Buffer.from(own.replace('Account 1234.', 'Account 9999.'), 'latin1'));
  const ar3 = arField(sink.deliveryTo('alice@corp.test').message);
  assert.match(ar3, /; dkim=fail reason="body hash did not verify"/);
  assert.match(ar3, /; spf=fail /);
  assert.match(ar3, /; dmarc=fail reason="p=REJECT" header\.from=sender\.test policy\.dmarc=reject/);
});

test('over streamAboveBytes: an outbound copy is DKIM-signed as it streams (dkimpy verifies it, openssl its S/MIME); inbound DKIM, SPF and DMARC are checked from the stream', async () => {
  sink.reset();
  // Whitespace runs, tabs and trailing blanks: the relaxed body canonicalization has work to do.
  const body = Array.from({ length: 6000 }, (_, i) => `Line ${i}\t of  the  report ${i % 7 === 0 ? '   ' : ''}`).join('\r\n');
  const outbound = draft('Alice <alice@corp.test>', 'dave@example.org', 'Big report', body);
  assert.ok(outbound.length > 65536);
  const replies = await sendWithXforward(gw.listening.port, 'ADDR=10.0.0.5 HELO=laptop IDENT=Q9', 'alice@corp.test', ['dave@example.org'], outbound);
  assert.match(replies.at(-2)!, /^250 /, replies.join('\n'));
  assert.equal(lines.filter((l) => l.event === 'message').at(-1)!.streamed, true);
  const copy = sink.deliveryTo('dave@example.org').message;
  assert.equal((await dkimpyVerify(copy, dns, 0)).ok, true, 'RSA DKIM over the streamed copy');
  assert.equal((await dkimpyVerify(copy, dns, 1)).ok, true, 'Ed25519 DKIM over the streamed copy');
  assert.equal((await opensslVerifyMime(world.dir, copy, world.corpRoot)).ok, true);

  sink.reset();
  const inbound = signDkim(draft('Sam <sam@sender.test>', 'alice@corp.test', 'Big invoice', body), { signers: [{ domain: 'sender.test', selector: 's1', key: senderKey }] });
  const r = await sendWithXforward(gw.listening.port, 'ADDR=192.0.2.10 HELO=mail.sender.test IDENT=Q10', 'sam@sender.test', ['alice@corp.test'], inbound);
  assert.match(r.at(-2)!, /^250 /, r.join('\n'));
  assert.equal(lines.filter((l) => l.event === 'message').at(-1)!.streamed, true);
  const ar = arField(sink.deliveryTo('alice@corp.test').message);
  assert.match(ar, /smime=none .*; dkim=pass header\.d=sender\.test/);
  assert.match(ar, /; spf=pass /);
  assert.match(ar, /; dmarc=pass /);
});

test('inbound: no records: dkim, spf and dmarc none; no client address: no spf', async () => {
  sink.reset();
  await sendWithXforward(gw.listening.port, 'ADDR=192.0.2.20 HELO=plain.test', 'pat@plain.test', ['alice@corp.test'], draft('pat@plain.test', 'alice@corp.test', 'Hi', 'x'));
  const ar = arField(sink.deliveryTo('alice@corp.test').message);
  assert.match(ar, /; dkim=none; spf=none smtp\.mailfrom=pat@plain\.test smtp\.helo=plain\.test; dmarc=none /);
  sink.reset();
  const localReplies = await sendWithXforward(gw.listening.port, 'ADDR=[UNAVAILABLE] HELO=laptop.local', 'pat@plain.test', ['alice@corp.test'], draft('pat@plain.test', 'alice@corp.test', 'Local', 'x'));
  assert.match(localReplies.at(-2)!, /^250 /, localReplies.join('\n'));
  const local = arField(sink.deliveryTo('alice@corp.test').message);
  assert.doesNotMatch(local, /spf=/);
  assert.match(local, /; dkim=none; dmarc=none/);
});

test('inbound: DNS down gives temperror, and the message is delivered', async () => {
  sink.reset();
  await dns.stop();
  try {
    const signed = signDkim(draft('sam@sender.test', 'alice@corp.test', 'DnsDown', 'x'), { signers: [{ domain: 'sender.test', selector: 's1', key: senderKey }] });
    const started = Date.now();
    const replies = await sendWithXforward(gw.listening.port, 'ADDR=192.0.2.10 HELO=mail.sender.test', 'sam@sender.test', ['alice@corp.test'], signed);
    assert.match(replies.at(-2)!, /^250 /, replies.join('\n'));
    assert.ok(Date.now() - started < 15_000, 'bounded by the per-message DNS deadline');
    const ar = arField(sink.deliveryTo('alice@corp.test').message);
    assert.match(ar, /; dkim=temperror /);
    assert.match(ar, /; spf=temperror /);
    assert.match(ar, /; dmarc=temperror/);
  } finally {
    await dns.start();
  }
});

test('--dns-server: IP addresses with or without a port; anything else refused at start', async () => {
  const { parseGatewayConfig } = await import('../../src/gateway/gateway-config.ts');
  const base = { listen: '127.0.0.1:10025', nextHop: '127.0.0.1:10026', domain: ['corp.test'] };
  assert.deepEqual(parseGatewayConfig({ ...base, dnsServer: ['127.0.0.1', '127.0.0.1:5353', '[::1]:53', '::1'] }, 'mx').dnsServers, ['127.0.0.1', '127.0.0.1:5353', '[::1]:53', '::1']);
  assert.equal(parseGatewayConfig(base, 'mx').dnsServers, undefined);
  for (const bad of ['dns.example.com', '127.0.0.1:0', '127.0.0.1:99999', '1.2.3']) {
    assert.throws(() => parseGatewayConfig({ ...base, dnsServer: [bad] }, 'mx'), /--dns-server/, bad);
  }
});
