/**
 * The DNS work a received message can cause is bounded (bounded-resolver.ts), and
 * authenticateSender turns every DNS failure into temperror, never an exception:
 * a message with 60 DKIM signatures under different selectors, a DNS server that
 * swallows queries (real UDP socket, never answers), a server that is down.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { generateDkimKey, formatDkimDnsRecord } from '../../src/dkim/dkim-key.ts';
import { createPublicKey } from 'node:crypto';
import { authenticateSender } from '../../src/dkim/authenticate-sender.ts';
import { boundedLookup, createDnsResolver } from '../../src/dkim/bounded-resolver.ts';
import { signDkim } from '../../src/dkim/sign-dkim.ts';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.ts';

const key = await generateDkimKey('ed25519');
let dns: DnsServer;
let blackhole: Socket;

before(async () => {
  const r = formatDkimDnsRecord('sender.test', 'k0', createPublicKey(key));
  dns = await startDnsServer({ zones: ['test'], txt: [[r.name, r.value], ['sender.test', 'v=spf1 ip4:192.0.2.10 -all']] });
  blackhole = createSocket('udp4');
  await new Promise<void>((resolve) => blackhole.bind(0, '127.0.0.1', () => resolve()));
});
after(async () => {
  await dns.stop();
  blackhole.close();
});

const message = Buffer.from('From: sam@sender.test\r\nTo: a@corp.test\r\nSubject: s\r\nDate: Sun, 06 Dec 2026 12:00:00 +0000\r\n\r\nbody\r\n');

test('a message with 60 DKIM signatures costs at most the lookup budget and reports at most 8', async () => {
  let signed = signDkim(message, { signers: [{ domain: 'sender.test', selector: 'k0', key }] });
  for (let i = 1; i < 60; i++) signed = signDkim(signed, { signers: [{ domain: `d${i}.sender.test`, selector: `k${i}`, key }] });
  const resolver = createDnsResolver([dns.address]);
  let queries = 0;
  const counting = { resolve: (name: string, type: string) => { queries++; return resolver.resolve(name, type as 'TXT'); } } as unknown as typeof resolver;
  const results = await authenticateSender(signed, { sender: 'sam@sender.test', ip: '192.0.2.10', helo: 'mail.sender.test', authservId: 'mx.corp.test' }, boundedLookup(counting, { maxLookups: 20, deadlineMs: 8000, queryTimeoutMs: 1000, tries: 1 }));
  assert.ok(queries <= 20, `${queries} queries reached the server`);
  const dkim = results.filter((r) => r.method === 'dkim');
  assert.equal(dkim.length, 8);
  assert.ok(results.some((r) => r.method === 'spf'), 'SPF still evaluated (its own lookups within the budget, or temperror)');
  assert.ok(results.some((r) => r.method === 'dmarc'));
});

test('a DNS server that never answers: temperror within the deadline', async () => {
  const port = blackhole.address().port;
  const started = Date.now();
  const results = await authenticateSender(signDkim(message, { signers: [{ domain: 'sender.test', selector: 'k0', key }] }), { sender: 'sam@sender.test', ip: '192.0.2.10', authservId: 'mx' },
    boundedLookup(createDnsResolver([`127.0.0.1:${port}`], { queryTimeoutMs: 5000, tries: 3 }), { maxLookups: 40, deadlineMs: 1500, queryTimeoutMs: 5000, tries: 3 }));
  assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
  assert.deepEqual(results.map((r) => `${r.method}=${r.result}`), ['dkim=temperror', 'spf=temperror', 'dmarc=temperror']);
});

test('good DNS: pass for what is published', async () => {
  const results = await authenticateSender(signDkim(message, { signers: [{ domain: 'sender.test', selector: 'k0', key }] }), { sender: 'sam@sender.test', ip: '192.0.2.10', helo: 'mail.sender.test', authservId: 'mx' }, boundedLookup(createDnsResolver([dns.address])));
  assert.deepEqual(results.map((r) => `${r.method}=${r.result}`), ['dkim=pass', 'spf=pass', 'dmarc=none']);
  assert.deepEqual(results[0]!.properties.map(([k]) => k), ['header.d', 'header.s', 'header.a', 'header.b']);
});
