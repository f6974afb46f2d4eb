/**
 * The internal CA certifies internationalised addresses (RFC 9598), end to end
 * through the CLI: `ca issue --email 山田@例え.jp` writes an SmtpUTF8Mailbox (no
 * emailAddress in the subject, an IA5String); `taro@例え.jp` an rfc822Name with the
 * domain as its A-label (RFC 5280 7.5). The store files both under their one form,
 * so signing from and encrypting to the address find them; `verify --json` on a
 * message From the address (a UTF-8 header, RFC 6532) says trusted, identity
 * matched; OpenSSL reads the otherName and accepts the chain for S/MIME signing.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, storeHomeEnv, type CliResult } from '../cli/run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-idn-ca-'));
mkdirSync(join(dir, 'user-home'));
after(() => rmSync(dir, { recursive: true, force: true }));
const env = storeHomeEnv(join(dir, 'home'), join(dir, 'user-home'));
const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }).toString('utf8');

async function ok(...args: string[]): Promise<CliResult> {
  const r = await runCli(args, { env, cwd: dir });
  assert.equal(r.status, 0, `kakitome ${args.join(' ')}\n${r.stderr}`);
  return r;
}
const json = (r: CliResult) => JSON.parse(r.stdout.toString('utf8'));
const message = (from: string, to: string) =>
  Buffer.from(`From: 山田 太郎 <${from}>\r\nTo: ${to}\r\nSubject: 会議\r\nDate: Mon, 23 Nov 2026 13:00:00 +0000\r\nMessage-ID: <idn-ca@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n金曜日の会議は四階です。\r\n`, 'utf8');

test('ca issue --email 山田@例え.jp: an SmtpUTF8Mailbox, filed, signs and verifies as trusted with the identity matched; OpenSSL accepts it', async () => {
  await ok('init');
  await ok('ca', 'init', '--name', 'IDN Corp', '-o', 'root.pem');

  const issued = json(await ok('ca', 'issue', '--email', '山田@例え.jp', '-o', 'yamada.pem', '--json')).certificates;
  assert.equal(issued.length, 1);
  assert.deepEqual(issued[0].emails, ['山田@例え.jp']);
  assert.equal(issued[0].subject, 'CN=山田@例え.jp', 'no emailAddress (an IA5String) in the subject');
  const text = openssl(['x509', '-in', 'yamada.pem', '-noout', '-text']);
  assert.match(text, /othername: SmtpUTF8Mailbox:+山田@例え\.jp/);
  assert.doesNotMatch(text, /email:/);

  // Filed under the one form of the address (the domain as its A-label), found by either spelling.
  for (const spelling of ['山田@例え.jp', '山田@xn--r8jz45g.jp']) {
    const listed = json(await ok('certs', 'list', '--email', spelling, '--json')).certificates;
    assert.deepEqual(listed.map((c: { fingerprint: string }) => c.fingerprint), [issued[0].fingerprint], spelling);
  }

  // Signed From the address with the store's key (found by address), verified as trusted.
  writeFileSync(join(dir, 'draft.eml'), message('山田@例え.jp', 'taro@example.com'));
  await ok('sign', '--from', '山田@例え.jp', '-i', 'draft.eml', '-o', 'signed.eml');
  const verdict = json(await ok('verify', '--json', '--no-harvest', '-i', 'signed.eml'));
  assert.equal(verdict.status, 'trusted', JSON.stringify(verdict.signers?.[0]?.trust));
  assert.equal(verdict.signers[0].identity.status, 'match');
  assert.equal(verdict.signers[0].identity.from, '山田@例え.jp');
  assert.deepEqual(verdict.signers[0].identity.certificateAddresses, ['山田@例え.jp']);

  // OpenSSL: the chain (as the message carries it) verifies for S/MIME signing, and so does the message.
  writeFileSync(join(dir, 'carried.pem'), execFileSync('openssl', ['pkcs7', '-print_certs'], { input: execFileSync('openssl', ['smime', '-pk7out', '-in', join(dir, 'signed.eml')]) }));
  assert.match(openssl(['verify', '-x509_strict', '-purpose', 'smimesign', '-CAfile', 'root.pem', '-untrusted', 'carried.pem', 'yamada.pem']), /yamada\.pem: OK/);
  openssl(['cms', '-verify', '-purpose', 'smimesign', '-in', 'signed.eml', '-CAfile', 'root.pem', '-out', 'openssl-read.eml']);
  assert.match(readFileSync(join(dir, 'openssl-read.eml'), 'utf8'), /^From: 山田 太郎 <山田@例え\.jp>\r$/m, 'the protected header, UTF-8 (RFC 6532)');

  // And mail to the address is encrypted to the certificate and opens with its key.
  await ok('encrypt', '--to', '山田@例え.jp', '-i', 'draft.eml', '-o', 'sealed.eml');
  await ok('decrypt', '-i', 'sealed.eml', '-o', 'opened.eml');
  assert.match(readFileSync(join(dir, 'opened.eml'), 'utf8'), /^From: 山田 太郎 <山田@例え\.jp>\r\n[^]*=E9=87=91=E6=9B=9C/m);
});

test('ca issue --email taro@例え.jp: an rfc822Name with the domain as its A-label (RFC 5280 7.5)', async () => {
  const [c] = json(await ok('ca', 'issue', '--email', 'taro@例え.jp', '--key-type', 'p256', '-o', 'taro.pem', '--json')).certificates;
  assert.deepEqual(c.emails, ['taro@xn--r8jz45g.jp']);
  assert.equal(c.subject, 'CN=taro@xn--r8jz45g.jp, emailAddress=taro@xn--r8jz45g.jp');
  assert.match(openssl(['x509', '-in', 'taro.pem', '-noout', '-ext', 'subjectAltName']), /email:taro@xn--r8jz45g\.jp/);
  // Refused: a domain of one label, with an empty label, with a final dot.
  for (const bad of ['山田@例え', 'yamada@例え..jp', '山田@例え.jp.']) {
    const r = await runCli(['ca', 'issue', '--email', bad, '--key-type', 'p256'], { env, cwd: dir });
    assert.notEqual(r.status, 0, bad);
    assert.match(r.stderr, /not a mailbox address/, bad);
  }
});

/** `openssl req -new` (a P-256 key) whose subjectAltName holds `san`, in a config file (FORMAT:UTF8 keeps the UTF-8 bytes as they are). */
function requestWithSan(name: string, san: string): string {
  writeFileSync(join(dir, `${name}.cnf`), `[req]\ndistinguished_name = dn\nreq_extensions = ext\nprompt = no\n[dn]\nCN = Requested by ${name}\n[ext]\nsubjectAltName = @alt\n[alt]\n${san}\n`, 'utf8');
  openssl(['req', '-new', '-config', `${name}.cnf`, '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`]);
  return `${name}.csr`;
}
const smtpUtf8 = (address: string) => `otherName.1 = 1.3.6.1.5.5.7.8.9;FORMAT:UTF8,UTF8:${address}`;

test('ca issue --csr with an SmtpUTF8Mailbox (RFC 9598) in the request: the address is certified in the profile\'s form, checked against --email', async () => {
  // Issued without --email: the request's one address, as an SmtpUTF8Mailbox; nothing said to be ignored but its commonName.
  const csr = requestWithSan('csr-yamada', smtpUtf8('山田@例え.jp'));
  const out = json(await ok('ca', 'issue', '--csr', csr, '-o', 'csr-yamada.pem', '--json'));
  assert.deepEqual(out.certificates[0].emails, ['山田@例え.jp']);
  assert.deepEqual(out.request.ignored, ['subject commonName "Requested by csr-yamada"']);
  const text = openssl(['x509', '-in', 'csr-yamada.pem', '-noout', '-text']);
  assert.match(text, /othername: SmtpUTF8Mailbox:+山田@例え\.jp/);
  assert.doesNotMatch(text, /email:/);
  assert.equal(openssl(['x509', '-in', 'csr-yamada.pem', '-noout', '-pubkey']), openssl(['pkey', '-in', 'csr-yamada.key', '-pubout']));
  // The same address by either spelling of its domain is the request's; another is not.
  assert.deepEqual(json(await ok('ca', 'issue', '--csr', csr, '--email', '山田@xn--r8jz45g.jp', '--json')).certificates[0].emails, ['山田@例え.jp']);
  const other = await runCli(['ca', 'issue', '--csr', csr, '--email', 'boss@example.com'], { env, cwd: dir });
  assert.equal(other.status, 1, other.stderr);
  assert.match(other.stderr, /IDENTITY_MISMATCH: The certification request names 山田@xn--r8jz45g\.jp, not boss@example\.com/);

  // An ASCII local part is an rfc822Name under the profile (the domain as its A-label), whatever form the request used.
  const taro = json(await ok('ca', 'issue', '--csr', requestWithSan('csr-taro', smtpUtf8('taro@例え.jp')), '--json')).certificates[0];
  assert.deepEqual(taro.emails, ['taro@xn--r8jz45g.jp']);
  // The profile's rules hold for requested addresses too: a decomposed local part (o + U+0301) is refused, not certified.
  const decomposed = await runCli(['ca', 'issue', '--csr', requestWithSan('csr-nfd', smtpUtf8('bo\u0301b@example.com')), '--json'], { env, cwd: dir });
  assert.equal(decomposed.status, 2);
  assert.equal(JSON.parse(decomposed.stdout.toString()).code, 'INVALID_ARGUMENT');
  assert.match(JSON.parse(decomposed.stdout.toString()).summary, /NFC/);
  // An SmtpUTF8Mailbox that is no UTF8String is malformed, not an address read from other bytes.
  const ia5 = await runCli(['ca', 'issue', '--csr', requestWithSan('csr-ia5', 'otherName.1 = 1.3.6.1.5.5.7.8.9;IA5:yamada@example.jp'), '--email', 'yamada@example.jp'], { env, cwd: dir });
  assert.equal(ia5.status, 2);
  assert.match(ia5.stderr, /MALFORMED: .*SmtpUTF8Mailbox is not a UTF8String/);
});
