/**
 * docs/security.md section 4 ("The gateway's directions"): an envelope address in one
 * of our domains is ours however the domain is written. --domain takes the ASCII
 * form (xn--...); an SMTPUTF8 client may name the same domain by its Unicode labels
 * (RFC 6531 3.2, RFC 5890 2.3.2.1: one domain, two spellings). Mail from outside to
 * bob@例え.jp was classified "pass" when we serve xn--r8jz45g.jp, so it skipped the
 * inbound work (decryption, verification, the forged Authentication-Results removal
 * and the labels) on its way to bob's mailbox; mail from us to it went out as outbound.
 *
 * And the encryption decision for an outside recipient is the same for every spelling
 * (session 15): the store found the certificate of dave@xn--r8jz45g.jp for that
 * spelling only, and a policy's requireEncryptionDomains ["xn--r8jz45g.jp"] did not
 * cover dave@例え.jp: a sender chose the spelling that went out in clear. The gateway
 * test (test/gateway/gateway-smtp.test.ts, "one mailbox, one copy") sends both.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyRecipients } from '../../src/gateway/classify-recipients.ts';
import { domainOf, isOurAddress } from '../../src/gateway/mail-domain.ts';
import { randomBytes } from 'node:crypto';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { resolvePolicy } from '../../src/policy/resolve-policy.ts';
import { decideEncryptionWanted } from '../../src/policy/decide-recipient.ts';
import { TestPki } from '../helpers/pki.ts';

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

test('one domain, one encryption decision: the store finds the certificate of dave@xn--r8jz45g.jp for dave@例え.jp and any case of the domain, and the policy\'s domain lists and levels cover every spelling', async () => {
  const pki = new TestPki('IDN Root');
  const store = await Store.open(openSqliteEngine(':memory:'), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'test' });
  try {
    const dave = pki.identity('p256', 'dave', { domain: 'xn--r8jz45g.jp' });
    await store.importCertificate(dave.cert);
    for (const spelling of ['dave@xn--r8jz45g.jp', 'dave@例え.jp', 'Dave@例え.JP', 'dave@XN--R8JZ45G.JP', 'dave@xn--r8jz45g.jp.']) {
      const found = await store.findRecipientCertificates(spelling);
      assert.deepEqual(found.map((r) => r.certificate.fingerprint256), [dave.cert.fingerprint256], spelling);
    }
  } finally {
    await store.close();
    pki.cleanup();
  }
  const levels = { global: {}, domains: new Map([['xn--r8jz45g.jp', { encrypt: 'required' as const }]]), addresses: new Map([['erin@xn--bcher-kva.example', { sign: false }]]) };
  assert.equal(resolvePolicy(levels, 'dave@例え.jp').settings.encrypt, 'required', 'the domain level of xn--r8jz45g.jp');
  assert.equal(resolvePolicy(levels, 'erin@BÜCHER.example').settings.sign, false, 'the address level of erin@xn--bcher-kva.example');
  const policy = resolvePolicy({ global: { requireEncryptionDomains: ['xn--r8jz45g.jp'] }, domains: new Map(), addresses: new Map() }, 'alice@corp.test');
  for (const recipient of ['dave@xn--r8jz45g.jp', 'dave@例え.jp', 'dave@例え.JP']) assert.equal(decideEncryptionWanted(policy, recipient, []).mode, 'required', recipient);
});
