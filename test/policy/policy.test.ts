/**
 * The gateway policy's pure parts (issue 13, "Policy"): the file forms and their
 * refusals (every one names the setting, and the level), inheritance global ←
 * domain ← address with the level that set each value, and the per-recipient
 * decisions the gateway and `gateway explain` share (required encryption, triggers,
 * skip-sign and opaque domains).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KakitomeError } from '../../src/errors.ts';
import { formatPolicyDocument, levelRef, parsePolicyDocument, type PolicyLevels } from '../../src/policy/policy-levels.ts';
import { DEFAULT_SETTINGS, settingFromWords, type PartialSettings } from '../../src/policy/policy-settings.ts';
import { describeSource, resolveDomainPolicy, resolvePolicy } from '../../src/policy/resolve-policy.ts';
import { decideEncryptionWanted, decideRecipient } from '../../src/policy/decide-recipient.ts';
import { findEncryptionTriggers } from '../../src/policy/find-encryption-triggers.ts';
import { readHeaderFields } from '../../src/gateway/rewrite-header-section.ts';

function refused(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof KakitomeError && e.code === 'INVALID_ARGUMENT' && message.test(e.message), `expected ${message}`);
}

function levels(global: PartialSettings, domains: Record<string, PartialSettings> = {}, addresses: Record<string, PartialSettings> = {}): PolicyLevels {
  return { global, domains: new Map(Object.entries(domains)), addresses: new Map(Object.entries(addresses)) };
}

test('policy file: the flat global form of before still reads; the levelled form reads every level, normalised', () => {
  assert.deepEqual(parsePolicyDocument('{}', 'p'), { global: {} });
  assert.deepEqual(parsePolicyDocument('{"sign": false, "revocation": "allow-unknown", "maxMessageBytes": 2048}', 'p'), { global: { sign: false, revocation: 'allow-unknown', maxMessageBytes: 2048 } });
  const doc = parsePolicyDocument(JSON.stringify({
    global: { encrypt: 'if-possible' },
    domains: { 'Corp.Test.': { encrypt: 'required', skipSignDomains: ['Relay.Example', 'relay.example'] } },
    addresses: { 'CEO@corp.test': { subjectTags: 'ja', subjectTriggers: [' [secure] ', '[暗号化]'] } },
  }), 'p');
  assert.deepEqual(doc.global, { encrypt: 'if-possible' });
  assert.deepEqual(doc.domains?.get('corp.test'), { encrypt: 'required', skipSignDomains: ['relay.example'] });
  assert.deepEqual(doc.addresses?.get('ceo@corp.test'), { subjectTags: 'ja', subjectTriggers: ['[secure]', '[暗号化]'] });
  assert.equal(parsePolicyDocument('{"domains": {}}', 'p').global, undefined, 'a part not given is not replaced');
  // Export and import again: the same levels.
  const lv = { global: doc.global!, domains: doc.domains!, addresses: doc.addresses! };
  const again = parsePolicyDocument(formatPolicyDocument(lv), 'export');
  assert.deepEqual(again, { global: lv.global, domains: lv.domains, addresses: lv.addresses });
});

test('policy file: every bad value is refused with the file, the level and the setting named', () => {
  refused(() => parsePolicyDocument('{', 'f.json'), /f\.json: not valid JSON/);
  refused(() => parsePolicyDocument('[]', 'f.json'), /must be a JSON object/);
  refused(() => parsePolicyDocument('{"sing": true}', 'f.json'), /f\.json, global: unknown setting "sing"/);
  refused(() => parsePolicyDocument('{"encrypt": "always"}', 'f.json'), /"encrypt" must be "never", "if-possible" or "required"; it is "always"/);
  refused(() => parsePolicyDocument('{"sign": "yes"}', 'f.json'), /"sign" must be true or false/);
  refused(() => parsePolicyDocument('{"missingCertificate": "drop"}', 'f.json'), /"missingCertificate" must be "bounce" or "hold"/);
  refused(() => parsePolicyDocument('{"maxMessageBytes": 1e12}', 'f.json'), /"maxMessageBytes" must be an integer/);
  assert.equal(parsePolicyDocument('{"unauthenticatedEncryption": "deliver-decrypted"}', 'f.json').global?.unauthenticatedEncryption, 'deliver-decrypted');
  assert.equal(parsePolicyDocument('{"unauthenticatedEncryption": "hold", "noticeLanguage": "ja"}', 'f.json').global?.unauthenticatedEncryption, 'hold');
  refused(() => parsePolicyDocument('{"unauthenticatedEncryption": "drop"}', 'f.json'), /"unauthenticatedEncryption" must be "deliver-encrypted", "deliver-decrypted" or "hold"/);
  refused(() => parsePolicyDocument('{"noticeLanguage": "fr"}', 'f.json'), /"noticeLanguage" must be "both", "en" or "ja"/);
  refused(() => parsePolicyDocument('{"subjectTriggers": "[secure]"}', 'f.json'), /"subjectTriggers" must be a list/);
  refused(() => parsePolicyDocument('{"subjectTriggers": ["a\\r\\nBcc: x@evil"]}', 'f.json'), /"subjectTriggers" must be a list/);
  refused(() => parsePolicyDocument('{"headerTriggers": ["Bad Name: yes"]}', 'f.json'), /"headerTriggers"/);
  refused(() => parsePolicyDocument('{"skipSignDomains": ["*.example.com"]}', 'f.json'), /"skipSignDomains" must be a list of at most 64 mail domains/);
  refused(() => parsePolicyDocument(JSON.stringify({ skipSignDomains: Array.from({ length: 65 }, (_, i) => `d${i}.example`) }), 'f.json'), /skipSignDomains/);
  refused(() => parsePolicyDocument('{"subjectTags": "fr"}', 'f.json'), /"subjectTags" must be "off", "en" or "ja"/);
  refused(() => parsePolicyDocument('{"domains": {"corp.test": {"maxConnections": 5}}}', 'f.json'), /domain corp\.test: "maxConnections" is process-wide and is set at the global level only/);
  refused(() => parsePolicyDocument('{"domains": {"corp.test": {"encrypt": "maybe"}}}', 'f.json'), /f\.json, domain corp\.test: "encrypt" must be/);
  refused(() => parsePolicyDocument('{"addresses": {"ceo@corp.test": {"sign": 1}}}', 'f.json'), /address ceo@corp\.test: "sign" must be true or false/);
  refused(() => parsePolicyDocument('{"domains": {"user@corp.test": {}}}', 'f.json'), /"user@corp\.test" is not a mail domain/);
  refused(() => parsePolicyDocument('{"addresses": {"corp.test": {}}}', 'f.json'), /"corp\.test" is not a mail address/);
  refused(() => parsePolicyDocument('{"domains": {"Corp.test": {}, "corp.test": {}}}', 'f.json'), /the domain corp\.test is given twice/);
  refused(() => parsePolicyDocument('{"global": {}, "sign": true}', 'f.json'), /"sign" beside "global"/);
  refused(() => parsePolicyDocument('{"domains": []}', 'f.json'), /"domains" must be an object/);
  // The CLI's words go through the same checks.
  assert.equal(settingFromWords('sign', ['off'], 'x', false), false);
  assert.deepEqual(settingFromWords('subjectTriggers', ['[secure]', '[暗号化]'], 'x', false), ['[secure]', '[暗号化]']);
  assert.equal(settingFromWords('maxConnections', ['50'], 'x', true), 50);
  refused(() => settingFromWords('encrypt', ['required', 'please'], 'policy set', false), /policy set: "encrypt" must be/);
  refused(() => settingFromWords('relayTimeoutMs', ['5000'], 'policy set --domain corp.test', false), /process-wide/);
});

test('inheritance: address overrides domain overrides global overrides the default; the level that set each value is recorded', () => {
  const lv = levels(
    { encrypt: 'never', subjectTags: 'en', hideSubject: true },
    { 'corp.test': { encrypt: 'if-possible', missingCertificate: 'hold' } },
    { 'ceo@corp.test': { encrypt: 'required' }, 'bob@other.test': { sign: false } },
  );
  const ceo = resolvePolicy(lv, 'CEO@Corp.Test');
  assert.equal(ceo.settings.encrypt, 'required');
  assert.equal(describeSource(ceo.sources.encrypt), 'address ceo@corp.test');
  assert.equal(ceo.settings.missingCertificate, 'hold');
  assert.equal(describeSource(ceo.sources.missingCertificate), 'domain corp.test');
  assert.equal(ceo.settings.subjectTags, 'en');
  assert.equal(describeSource(ceo.sources.subjectTags), 'global');
  assert.equal(ceo.settings.sign, true);
  assert.equal(describeSource(ceo.sources.sign), 'default');
  const alice = resolvePolicy(lv, 'alice@corp.test');
  assert.equal(alice.settings.encrypt, 'if-possible', 'the domain level, not the ceo\'s');
  const bob = resolvePolicy(lv, 'bob@other.test');
  assert.equal(bob.settings.encrypt, 'never', 'no domain level: global');
  assert.equal(bob.settings.sign, false);
  assert.equal(resolvePolicy(lv, 'carol@sub.corp.test').settings.encrypt, 'never', 'a subdomain is a level of its own');
  // A domain's own policy (as the console shows it): its level over global, none of its addresses'.
  const corp = resolveDomainPolicy(lv, 'Corp.Test.');
  assert.equal(corp.owner, 'corp.test');
  assert.equal(corp.settings.encrypt, 'if-possible');
  assert.equal(describeSource(corp.sources.missingCertificate), 'domain corp.test');
  assert.equal(describeSource(corp.sources.subjectTags), 'global');
  assert.equal(resolveDomainPolicy(lv, 'other.test').settings.sign, true, 'bob\'s address level is not the domain\'s');
  // Unset at the address level: the domain's value shows through; unset there too: the global's.
  const unset = levels(lv.global, { 'corp.test': { missingCertificate: 'hold' } }, {});
  assert.equal(resolvePolicy(unset, 'ceo@corp.test').settings.encrypt, 'never');
  assert.equal(describeSource(resolvePolicy(unset, 'ceo@corp.test').sources.encrypt), 'global');
  assert.deepEqual(resolvePolicy(levels({}), 'x@y.test').settings, DEFAULT_SETTINGS);
  assert.equal(levelRef('address', 'A@B.test').name, 'a@b.test');
});

test('decisions: required with no valid certificate bounces or holds (nothing is sent); a trigger forces required even over encrypt=never', () => {
  const lv = levels({ encrypt: 'never', subjectTriggers: ['[secure]'] }, { 'corp.test': { encrypt: 'required' } }, { 'hold@corp.test': { missingCertificate: 'hold' } });
  const valid = { status: 'valid' as const, fingerprint: 'ab'.repeat(32), subject: 'CN=carol' };
  const p = resolvePolicy(lv, 'alice@corp.test');
  const w = decideEncryptionWanted(p, 'erin@example.com', []);
  assert.equal(w.mode, 'required');
  assert.deepEqual(w.because, [{ setting: 'encrypt', value: '"required"', source: 'domain corp.test' }]);
  const bounce = decideRecipient(p, 'erin@example.com', w, true, { status: 'missing' });
  assert.equal(bounce.action, 'bounce');
  assert.equal(bounce.encrypt.encrypted, false);
  assert.match(bounce.summary, /required by encrypt="required" \(domain corp\.test\) and no certificate is known.*delivery status notification.*missingCertificate=bounce, default/);
  const refusedCert = decideRecipient(p, 'erin@example.com', w, true, { status: 'refused', code: 'CERT_REVOKED', message: 'revoked' });
  assert.equal(refusedCert.action, 'bounce', 'a revoked certificate is no certificate');
  assert.equal(decideRecipient(resolvePolicy(lv, 'hold@corp.test'), 'erin@example.com', w, true, { status: 'missing' }).action, 'hold');
  assert.equal(decideRecipient(p, 'carol@example.com', w, true, valid).action, 'signed-encrypted');
  // Outside corp.test encrypt is never; the subject trigger makes it required.
  const other = resolvePolicy(lv, 'dan@other.test');
  const never = decideEncryptionWanted(other, 'carol@example.com', []);
  assert.equal(never.mode, 'never');
  assert.equal(decideRecipient(other, 'carol@example.com', never, true, undefined).action, 'signed');
  const triggered = decideEncryptionWanted(other, 'carol@example.com', [{ kind: 'subject', trigger: '[secure]' }]);
  assert.equal(triggered.mode, 'required');
  assert.match(triggered.because[0]!.source, /subjectTriggers \(global\)/);
  assert.equal(decideRecipient(other, 'erin@example.com', triggered, true, { status: 'missing' }).action, 'bounce');
  // requireEncryptionDomains works per recipient domain.
  const partner = levels({ requireEncryptionDomains: ['partner.example'] });
  const pp = resolvePolicy(partner, 'alice@corp.test');
  assert.equal(decideEncryptionWanted(pp, 'x@partner.example', []).mode, 'required');
  assert.equal(decideEncryptionWanted(pp, 'x@example.com', []).mode, 'if-possible');
});

test('decisions: skip-sign and opaque domains, sign off, and a sender without a key', () => {
  const lv = levels({ skipSignDomains: ['fragile.example'], opaqueSignDomains: ['opaque.example'] });
  const p = resolvePolicy(lv, 'alice@corp.test');
  const decide = (to: string, cert?: 'valid', signer = true) => decideRecipient(p, to, decideEncryptionWanted(p, to, []), signer, cert ? { status: 'valid', fingerprint: 'cd'.repeat(32), subject: 'CN=x' } : { status: 'missing' });
  assert.deepEqual([decide('a@fragile.example').action, decide('a@fragile.example').sign.mode], ['unchanged', 'none']);
  assert.equal(decide('a@fragile.example', 'valid').action, 'encrypted', 'skip-sign: not signed even inside the encryption');
  assert.deepEqual([decide('a@opaque.example').action, decide('a@opaque.example').sign.mode], ['signed', 'opaque']);
  assert.equal(decide('a@opaque.example', 'valid').sign.mode, 'detached', 'inside encryption no relay can touch the signature');
  assert.equal(decide('a@example.com').sign.mode, 'detached');
  const noKey = decide('a@example.com', undefined, false);
  assert.equal(noKey.action, 'unchanged');
  assert.equal(noKey.sign.because[0]!.setting, 'signer');
  const off = resolvePolicy(levels({ sign: false }), 'alice@corp.test');
  assert.equal(decideRecipient(off, 'a@example.com', decideEncryptionWanted(off, 'a@example.com', []), true, { status: 'missing' }).action, 'unchanged');
});

test('triggers: subject texts (also inside RFC 2047 encoded-words) and header fields, matched case-insensitively; the edits remove what must not leave', () => {
  const settings = { subjectTriggers: ['[secure]', '[暗号化]'], headerTriggers: ['X-Kakitome-Encrypt: yes', 'Sensitivity: Company-Confidential'] };
  const fields = (head: string) => readHeaderFields(Buffer.from(`${head}\r\n\r\nbody\r\n`));
  const plain = findEncryptionTriggers(fields('Subject: Re: [SECURE] figures'), settings);
  assert.deepEqual(plain.matches, [{ kind: 'subject', trigger: '[secure]' }]);
  assert.equal(plain.subject, 'Re: figures');
  const ja = findEncryptionTriggers(fields(`Subject: =?UTF-8?B?${Buffer.from('【至急】[暗号化] 見積書').toString('base64')}?=`), settings);
  assert.deepEqual(ja.matches.map((m) => m.trigger), ['[暗号化]']);
  assert.equal(ja.subject, '【至急】 見積書');
  const header = findEncryptionTriggers(fields('Subject: hello\r\nX-Kakitome-Encrypt:  YES \r\nSensitivity: company-confidential'), settings);
  assert.deepEqual(header.matches.map((m) => m.trigger), ['X-Kakitome-Encrypt: yes', 'Sensitivity: Company-Confidential']);
  assert.equal(header.subject, undefined, 'the Subject is left alone');
  const [s, x, sens] = fields('Subject: hello\r\nX-Kakitome-Encrypt: yes\r\nSensitivity: company-confidential');
  assert.deepEqual([header.removeField(s!), header.removeField(x!), header.removeField(sens!)], [false, true, false], 'our field goes, a client\'s stays');
  assert.deepEqual(findEncryptionTriggers(fields('Subject: nothing secure here\r\nX-Kakitome-Encrypt: no'), settings).matches, []);
  assert.deepEqual(findEncryptionTriggers(fields('Subject: [secure]'), { subjectTriggers: [], headerTriggers: ['X-Flag'] }).matches, [], 'no triggers configured: none');
  assert.deepEqual(findEncryptionTriggers(fields('X-Flag: anything'), { subjectTriggers: [], headerTriggers: ['X-Flag'] }).matches.length, 1, '"Name" alone: any value');
});
