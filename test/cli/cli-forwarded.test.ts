/**
 * Forwarded mail on the command line (issue 12, item 1): `verify` and `decrypt` show
 * each attached message's own verdict, in the human report and under
 * attachedMessages of --json, and the exit status stays the outer message's.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestPki } from '../helpers/pki.ts';
import { NssPeer } from '../peers/nss.ts';
import { runCli } from './run-cli.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';

const pki = new TestPki('Kakitome CLI Forwarding Root');
const alice = pki.identity('rsa2048', 'alice');
const bob = pki.identity('rsa2048', 'bob');
let nss: NssPeer | undefined;
after(() => {
  nss?.work.cleanup();
  pki.cleanup();
});

const crlf = (s: string): Buffer => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'latin1');
const file = (name: string, data: Uint8Array): string => {
  const p = join(pki.dir, name);
  writeFileSync(p, data);
  return p;
};

/** `openssl cms -sign` of a mail by alice, with its own From/To/Subject. */
function aliceSigned(): Buffer {
  const inPath = file('in.txt', crlf('Content-Type: text/plain\n\nRevenue is up 4%.\n'));
  const outPath = join(pki.dir, 'alice-signed.eml');
  execFileSync('openssl', ['cms', '-sign', '-signer', alice.certPath, '-inkey', alice.keyPath, '-from', alice.email, '-to', bob.email, '-subject', 'Figures', '-in', inPath, '-out', outPath], { stdio: 'ignore' });
  return crlf(readFileSync(outPath, 'latin1'));
}

function forward(from: string, inner: Buffer, filename: string): Buffer {
  return Buffer.concat([
    crlf(`From: ${from}\nTo: erin@example.com\nSubject: Fwd: Figures\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="f"\n\n--f\nContent-Type: text/plain\n\nForwarding this.\n--f\nContent-Type: message/rfc822\nContent-Disposition: attachment; filename="${filename}"\n\n`),
    inner,
    crlf('\n--f--\n'),
  ]);
}

test('verify: the forwarded message\'s verdict is shown under its name; the exit status is the outer message\'s', async () => {
  const signed = file('signed-fwd.eml', signMessage(forward(bob.email, aliceSigned(), 'figures.eml'), { signers: [{ certificate: bob.cert, key: bob.key }] }));
  const human = await runCli(['verify', '--ca', pki.caPath, '--revocation', 'off', '-i', signed, '-o', join(pki.dir, 'out1.eml')]);
  assert.equal(human.status, 0, human.stderr);
  assert.match(human.stderr, /^OK: Signed by bob@example\.com/);
  assert.match(human.stderr, /\nattached message 2 \("figures\.eml"\): trusted: Signed by alice@example\.com/);
  assert.match(human.stderr, /\n {2}signer 1: alice@example\.com/);

  const json = await runCli(['verify', '--ca', pki.caPath, '--revocation', 'off', '--json', '-i', signed]);
  const v = JSON.parse(json.stdout.toString());
  assert.equal(v.status, 'trusted');
  assert.equal(v.signers.length, 1);
  assert.equal(v.attachedMessages[0].part, '2');
  assert.equal(v.attachedMessages[0].filename, 'figures.eml');
  assert.equal(v.attachedMessages[0].verdict.status, 'trusted');
  assert.deepEqual(v.attachedMessages[0].verdict.signers[0].email, ['alice@example.com']);

  // Outer unsigned, forwarded message trusted: still unsigned, exit 1, nothing written.
  const unsigned = file('unsigned-fwd.eml', forward('mallory@example.net', aliceSigned(), 'figures.eml'));
  const u = await runCli(['verify', '--ca', pki.caPath, '--revocation', 'off', '--json', '-i', unsigned]);
  assert.equal(u.status, 1);
  const uv = JSON.parse(u.stdout.toString());
  assert.equal(uv.status, 'unsigned');
  assert.equal(uv.signers.length, 0);
  assert.equal(uv.attachedMessages[0].verdict.status, 'trusted');
});

test('decrypt: an unauthenticated CBC message forwarded inside (NSS) is reported UNAUTH_ENC, the outer message is written unchanged', async () => {
  nss ??= await NssPeer.create(pki, [bob], [bob]);
  const der = await nss.encrypt(crlf('Content-Type: text/plain\n\nMeet at noon.\n'), [bob]);
  const inner = crlf(`From: alice@example.com\nTo: bob@example.com\nSubject: sealed\nMIME-Version: 1.0\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\nContent-Transfer-Encoding: base64\n\n${der.toString('base64').replace(/.{76}/g, '$&\n')}\n`);
  const sealed = file('sealed-fwd.eml', encryptMessage(forward(alice.email, inner, 'tb.eml'), { recipients: [{ certificate: bob.cert }] }));
  const out = join(pki.dir, 'plain.eml');
  const r = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '--ca', pki.caPath, '--revocation', 'off', '-i', sealed, '-o', out]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /\nAttached message 2 \("tb\.eml"\) could not be opened \(UNAUTH_ENC\)/);
  const written = readFileSync(out);
  assert.ok(written.includes(inner), 'the forwarded message is written as received');
  assert.ok(!written.includes(Buffer.from('Meet at noon')));

  const json = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '--json', '-i', sealed]);
  const v = JSON.parse(json.stdout.toString());
  assert.equal(v.attachedMessages[0].error.code, 'UNAUTH_ENC');
  assert.equal(v.attachedMessages[0].verdict, undefined);
});
