import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAddressList, parseAddresses } from '../../src/mime/parse-addresses.ts';

test('parseAddressList reads the structure first, then decodes encoded-words in names and comments', () => {
  const l = parseAddressList('=?utf-8?q?=3Calice=40example=2Ecom=3E=2C?= <Mallory@Example.com> (=?utf-8?q?a=40b.c?=), "Doe, J. (x)" <j@x.example>');
  assert.deepEqual(l.mailboxes, [
    { address: 'mallory@example.com', displayName: '<alice@example.com>,', displayNameRaw: '=?utf-8?q?=3Calice=40example=2Ecom=3E=2C?=' },
    { address: 'j@x.example', displayName: 'Doe, J. (x)', displayNameRaw: 'Doe, J. (x)' },
  ]);
  assert.deepEqual(l.comments, ['a@b.c']);
  assert.deepEqual(l.commentsRaw, ['=?utf-8?q?a=40b.c?=']);
  assert.deepEqual(l.problems, []);
});

test('parseAddressList: groups, nested comments, quoted local parts, obsolete spacing', () => {
  const g = parseAddressList('team (the (whole) team): a@example.com, B@Example.COM;, c@example.com');
  assert.deepEqual(g.mailboxes.map((m) => m.address), ['a@example.com', 'b@example.com', 'c@example.com']);
  assert.deepEqual(g.groups, ['team']);
  assert.deepEqual(g.comments, ['the (whole) team']);
  assert.deepEqual(parseAddresses('"alice"@example.com, "john doe"@example.com, "a@b"@evil.example, alice . smith @ example.com'), [
    'alice@example.com', '"john doe"@example.com', '"a@b"@evil.example', 'alice.smith@example.com',
  ]);
});

test('parseAddressList reports what it cannot read and takes no address from it', () => {
  for (const [value, problem, kept] of [
    ['<alice@example.com> <mallory@example.com>', /two angle addresses/, []],
    ['"Alice <alice@example.com>', /quoted string is not closed/, []],
    ['Alice (comment <alice@example.com>', /comment is not closed/, []],
    ['<alice@example.com', /angle address is not closed/, []],
    ['<@relay.example:mallory@example.com>', /source route/, []],
    ['<alice@example.com> trailing', /text after an angle address/, []],
    ['Alice alice@example.com', /local part .* is not RFC 5322 syntax/, []],
    ['alice@', /empty local part or domain/, []],
    ['alice.@example.com', /ends with a dot/, []],
    ['<>', /empty/, []],
    ['a@example.com; b@example.com', /";" outside a group/, ['b@example.com']],
    ['team: a@example.com', /group is not closed/, ['a@example.com']],
  ] as const) {
    const l = parseAddressList(value);
    assert.ok(l.problems.some((p) => problem.test(p)), `${value}: ${l.problems.join('; ')}`);
    assert.deepEqual(l.mailboxes.map((m) => m.address), kept, value);
  }
});
