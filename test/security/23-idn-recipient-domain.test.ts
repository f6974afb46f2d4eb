/**
 * docs/security.md section 4 ("The gateway's directions"): an envelope address in one
 * of our domains is ours however the domain is written. --domain takes the ASCII
 * form (xn--...); an SMTPUTF8 client may name the same domain by its Unicode labels
 * (RFC 6531 3.2, RFC 5890 2.3.2.1: one domain, two spellings). Mail from outside to
 * bob@例え.jp was classified "pass" when we serve xn--r8jz45g.jp, so it skipped the
 * inbound work (decryption, verification, the forged Authentication-Results removal
 * and the labels) on its way to bob's mailbox; mail from us to it went out as outbound.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyRecipients } from '../../src/gateway/classify-recipients.ts';
import { domainOf, isOurAddress } from '../../src/gateway/mail-domain.ts';

const ours = new Set(['xn--r8jz45g.jp', 'xn--bcher-kva.example', 'corp.test']);

test('a recipient in our domain written with Unicode labels (or upper case, or a final dot) is inbound, not passed through', () => {
  const d = classifyRecipients('eve@attacker.example', ['bob@例え.jp', 'carol@BÜCHER.example', 'dan@Corp.Test.', 'erin@例え.jp.evil.example'], ours);
  assert.deepEqual(d.get('inbound'), ['bob@例え.jp', 'carol@BÜCHER.example', 'dan@Corp.Test.']);
  assert.deepEqual(d.get('pass'), ['erin@例え.jp.evil.example']);
  assert.equal(isOurAddress('alice@例え.jp', ours), true, 'an internal sender by its Unicode domain is ours');
  assert.equal(domainOf('bob@例え.jp'), 'xn--r8jz45g.jp');
  // A domain that has no ASCII form (not IDNA-valid) is nobody's, never ours.
  assert.equal(isOurAddress('x@a\u200d\u0000.jp', ours), false);
});
