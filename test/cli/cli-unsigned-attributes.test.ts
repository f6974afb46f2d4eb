/**
 * Signatures without signed attributes (issue 12 item 7): Netscape-era clients and
 * some AS2 receipts sign the content itself, as `openssl cms -sign -noattr` does.
 * RFC 8551 2.5 requires signed attributes, so they stay refused by default; the
 * legacy opt-in of issue 9 (--allow-legacy, allowLegacy) accepts them, flagged: the
 * summary says the trust rests on a legacy form.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { TestPki } from '../helpers/pki.ts';
import { OPENSSL, requireOpenssl } from '../peers/openssl.ts';
import { runPeerOk } from '../peers/run-peer.ts';
import { runCli } from './run-cli.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { verifyMessageStream } from '../../src/smime/verify-message-stream.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';

const pki = new TestPki('Kakitome No-Attributes Root');
after(() => pki.cleanup());
const alice = pki.identity('rsa2048', 'alice');
const validateSigner = createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' } });

/** `openssl cms -sign -noattr`: multipart/signed (or opaque with -nodetach) whose SignerInfo has no signed attributes. */
async function signNoAttr(name: string, opaque: boolean): Promise<string> {
  requireOpenssl();
  const input = join(pki.dir, `${name}.txt`);
  const out = join(pki.dir, `${name}.eml`);
  const { writeFileSync } = await import('node:fs');
  writeFileSync(input, 'Content-Type: text/plain\r\n\r\nReceipt for message 42: processed.\r\n');
  await runPeerOk(OPENSSL, ['cms', '-sign', '-noattr', '-md', 'sha256', ...(opaque ? ['-nodetach'] : []), '-in', input, '-signer', alice.certPath, '-inkey', alice.keyPath, '-from', alice.email, '-to', 'partner@example.com', '-subject', 'MDN', '-out', out]);
  // The premise: OpenSSL verifies what it wrote.
  await runPeerOk(OPENSSL, ['cms', '-verify', '-in', out, '-CAfile', pki.caPath, '-out', join(pki.dir, `${name}.out`)]);
  return out;
}

for (const opaque of [false, true]) {
  const form = opaque ? 'opaque' : 'multipart/signed';
  test(`verify (${form}): refused by default (ATTR_INVALID), accepted with --allow-legacy and flagged`, async () => {
    const msg = await signNoAttr(opaque ? 'opaque' : 'detached', opaque);
    const refused = await runCli(['verify', '--ca', pki.caPath, '--revocation', 'off', '--json', '-i', msg]);
    assert.equal(refused.status, 1, refused.stderr);
    const rv = JSON.parse(refused.stdout.toString());
    assert.equal(rv.status, 'invalid');
    assert.equal(rv.code, 'ATTR_INVALID');
    // The verdict is the library's, as the API and the console show it: the option in its terms.
    assert.match(JSON.stringify(rv), /legacy forms allowed \(allowLegacy\)/);
    assert.doesNotMatch(JSON.stringify(rv), /--allow-legacy/);

    const allowed = await runCli(['verify', '--ca', pki.caPath, '--revocation', 'off', '--allow-legacy', '-i', msg, '-o', join(pki.dir, `${form.replace('/', '-')}.out.eml`)]);
    assert.equal(allowed.status, 0, allowed.stderr);
    assert.match(allowed.stderr.split('\n')[0]!, /^OK: .*only because legacy .*no signed attributes/);
    const json = await runCli(['verify', '--ca', pki.caPath, '--revocation', 'off', '--allow-legacy', '--json', '-i', msg]);
    const v = JSON.parse(json.stdout.toString());
    assert.equal(v.status, 'trusted');
    assert.ok(v.signers[0].trust.legacy.some((l: string) => /no signed attributes/.test(l)), json.stdout.toString());
  });
}

test('library: allowLegacy is read in memory; the streaming verifier says it cannot check such a signature', async () => {
  const { readFileSync } = await import('node:fs');
  const msg = readFileSync(await signNoAttr('stream', false));
  assert.equal((await verifyMessage(msg, { validateSigner })).code, 'ATTR_INVALID');
  assert.equal((await verifyMessage(msg, { validateSigner, allowLegacy: true })).status, 'trusted');
  const streamed = await verifyMessageStream(Readable.from([msg]), { validateSigner, allowLegacy: true });
  assert.equal(streamed.status, 'invalid');
  assert.match(streamed.signers[0]!.message, /streaming verifier cannot check/);
});
