/**
 * readSigningAddress: the one From mailbox a service may sign as, refused when a
 * reader could see someone else (the same rules verify applies afterwards).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readSigningAddress, SigningAddressAnswers } from '../../src/smime/read-signing-address.ts';
import { isKakitomeError } from '../../src/errors.ts';

const msg = (headers: string) => Buffer.from(`${headers}To: bob@example.net\r\nSubject: s\r\n\r\nbody\r\n`);
const refused = (headers: string, code: string, pattern?: RegExp, answers?: SigningAddressAnswers) =>
  assert.throws(() => readSigningAddress(msg(headers), undefined, answers), (e) => isKakitomeError(e) && e.code === code && (!pattern || pattern.test(e.message)));

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
  const answers = new SigningAddressAnswers();
  const read = (headers: string) => readSigningAddress(msg(headers), undefined, answers);
  const sends = ['From: Acme News <News@Acme.example>\r\n', 'From: news@acme.example\r\nSender: relay@platform.example\r\n', 'Sender: relay@platform.example\r\nFrom: news@acme.example\r\n'];
  for (const headers of sends) assert.equal(read(headers), readSigningAddress(msg(headers)));
  for (const headers of sends) assert.equal(read(headers), read(headers));
  assert.equal(answers.size, 2, 'one answer per From and Sender pair (the order of the fields does not matter)');
  const misleading = 'From: "ceo@bank.example" <news@acme.example>\r\n';
  const errors = [0, 1, 2].map(() => {
    try {
      read(misleading);
    } catch (e) {
      return e as Error & { code: string };
    }
    throw new Error('not refused');
  });
  assert.equal(answers.size, 3, 'the refusal is kept');
  assert.equal(new Set(errors).size, 3, 'each refusal is an error of its own');
  for (const e of errors) {
    assert.ok(isKakitomeError(e, 'IDENTITY_MISMATCH'));
    assert.equal(e.message, errors[0]!.message);
  }
  // The same From value with a Sender that names two mailboxes is judged on its own.
  refused('From: news@acme.example\r\nSender: a@acme.example, b@acme.example\r\n', 'IDENTITY_MISMATCH', /Sender field names 2 mailboxes/, answers);
  assert.equal(read('From: news@acme.example\r\n'), 'news@acme.example');
  // Two From fields are refused however often the first one was seen alone.
  refused('From: news@acme.example\r\nFrom: news@acme.example\r\n', 'MALFORMED', /more than one From/, answers);
  // A value too long to keep is still read and judged, and not kept.
  const before = answers.size;
  const long = `From: "${'x'.repeat(400)} ceo@bank.example" <news@acme.example>\r\n`;
  refused(long, 'IDENTITY_MISMATCH', /ceo@bank\.example/, answers);
  refused(long, 'IDENTITY_MISMATCH', /ceo@bank\.example/, answers);
  assert.equal(answers.size, before);
});

test('the answers are bounded and owned by their caller', () => {
  const answers = new SigningAddressAnswers(4);
  for (let i = 0; i < 10; i++) {
    assert.equal(readSigningAddress(msg(`From: user${i}@acme.example\r\n`), undefined, answers), `user${i}@acme.example`);
    assert.ok(answers.size <= 4, `at most 4 kept (${answers.size})`);
  }
  // Emptied when full: after 10 reads, the last 2 are kept.
  assert.equal(answers.size, 2);
  // Another caller's answers are its own.
  const other = new SigningAddressAnswers();
  assert.equal(readSigningAddress(msg('From: user1@acme.example\r\n'), undefined, other), 'user1@acme.example');
  assert.equal([answers.size, other.size].join(), '2,1');
});
