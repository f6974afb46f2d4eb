/**
 * readSigningAddress: the one From mailbox a service may sign as, refused when a
 * reader could see someone else (the same rules verify applies afterwards).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readSigningAddress } from '../../src/smime/read-signing-address.ts';
import { isKakitomeError } from '../../src/errors.ts';

const msg = (headers: string) => Buffer.from(`${headers}To: bob@example.net\r\nSubject: s\r\n\r\nbody\r\n`);
const refused = (headers: string, code: string, pattern?: RegExp) =>
  assert.throws(() => readSigningAddress(msg(headers)), (e) => isKakitomeError(e) && e.code === code && (!pattern || pattern.test(e.message)));

test('the From mailbox, lower-cased, with a plain display name', () => {
  assert.equal(readSigningAddress(msg('From: Acme News <News@Acme.example>\r\n')), 'news@acme.example');
  assert.equal(readSigningAddress(msg('From: news@acme.example\r\nSender: relay@platform.example\r\n')), 'news@acme.example');
  assert.equal(readSigningAddress(msg('From: =?UTF-8?B?5pel5pys6YqA6KGM?= <info@bank.example>\r\n')), 'info@bank.example');
});

test('what a careful verifier refuses is refused before signing', () => {
  refused('From: a@acme.example\r\nFrom: b@acme.example\r\n', 'MALFORMED', /more than one From/);
  refused('Sender: a@acme.example\r\nSender: b@acme.example\r\nFrom: a@acme.example\r\n', 'MALFORMED');
  refused('', 'IDENTITY_MISMATCH', /no From address/);
  refused('From: a@acme.example, b@acme.example\r\n', 'IDENTITY_MISMATCH', /2 mailboxes/);
  refused('From: "ceo@bank.example" <news@acme.example>\r\n', 'IDENTITY_MISMATCH', /ceo@bank\.example/);
  refused('From: news@acme.example (ceo@bank.example)\r\n', 'IDENTITY_MISMATCH');
  refused('From: "ceo\uFF20bank.example" <news@acme.example>\r\n', 'IDENTITY_MISMATCH');
  refused('From: =?UTF-8?Q?ceo=40bank.example?= <news@acme.example>\r\n', 'IDENTITY_MISMATCH');
  refused('From: "\u202egro.elpmaxe@oec" <news@acme.example>\r\n', 'IDENTITY_MISMATCH');
});

test('answers kept between messages are the same as the first: addresses, and refusals as fresh errors with the same code and words', () => {
  const sends = ['From: Acme News <News@Acme.example>\r\n', 'From: news@acme.example\r\nSender: relay@platform.example\r\n', 'Sender: relay@platform.example\r\nFrom: news@acme.example\r\n'];
  for (const headers of sends) assert.equal(readSigningAddress(msg(headers)), readSigningAddress(msg(headers)));
  const misleading = 'From: "ceo@bank.example" <news@acme.example>\r\n';
  const errors = [0, 1, 2].map(() => {
    try {
      readSigningAddress(msg(misleading));
    } catch (e) {
      return e as Error & { code: string };
    }
    throw new Error('not refused');
  });
  assert.equal(new Set(errors).size, 3, 'each refusal is an error of its own');
  for (const e of errors) {
    assert.ok(isKakitomeError(e, 'IDENTITY_MISMATCH'));
    assert.equal(e.message, errors[0]!.message);
  }
  // The same From value with a Sender that names two mailboxes is judged on its own.
  refused('From: news@acme.example\r\nSender: a@acme.example, b@acme.example\r\n', 'IDENTITY_MISMATCH', /Sender field names 2 mailboxes/);
  assert.equal(readSigningAddress(msg('From: news@acme.example\r\n')), 'news@acme.example');
  // Two From fields are refused however often the first one was seen alone.
  refused('From: news@acme.example\r\nFrom: news@acme.example\r\n', 'MALFORMED', /more than one From/);
  // A value too long to keep is still read and judged.
  const long = `From: "${'x'.repeat(400)} ceo@bank.example" <news@acme.example>\r\n`;
  refused(long, 'IDENTITY_MISMATCH', /ceo@bank\.example/);
  refused(long, 'IDENTITY_MISMATCH', /ceo@bank\.example/);
});
