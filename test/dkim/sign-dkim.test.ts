/**
 * signDkim against independent verifiers over real DNS: dkimpy (python3-dkim's
 * dkimverify) and mailauth fetch the key records from dnsmasq on loopback. DKIM
 * after S/MIME leaves the S/MIME layer verifiable by openssl cms; oversigning
 * makes an added From, Subject or Reply-To fail; relaxed canonicalization survives
 * refolding; a changed body fails.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { formatDkimDnsRecord, generateDkimKey } from '../../src/dkim/dkim-key.ts';
import { canonicalizeBodyRelaxed, canonicalizeHeaderRelaxed, signDkim } from '../../src/dkim/sign-dkim.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.ts';
import { errorCode } from '../helpers/error-code.ts';
import { TestPki } from '../helpers/pki.ts';
import { dkimpyVerify } from '../peers/dkimpy.ts';
import { runPeer, Workdir } from '../peers/run-peer.ts';

const rsa = await generateDkimKey('rsa-2048');
const ed = await generateDkimKey('ed25519');
const signers = [{ domain: 'example.test', selector: 'r1', key: rsa }, { domain: 'example.test', selector: 'e1', key: ed }];
const pki = new TestPki('DKIM Test Root');
const alice = pki.identity('rsa2048', 'alice');
const work = new Workdir('kakitome-dkim-');
let dns: DnsServer;

const message = Buffer.from(
  'From: Alice <alice@example.test>\r\nTo: bob@other.test\r\nSubject:   Quarterly   report \r\n\tfolded\r\n' +
  'Date: Mon, 23 Nov 2026 13:00:00 +0000\r\nMessage-ID: <q1@example.test>\r\nMIME-Version: 1.0\r\n' +
  'Content-Type: text/plain; charset=utf-8\r\nX-Mailer: test\r\n\r\nHello  Bob, \r\n\r\nsee you.\r\n\r\n\r\n',
);

async function mailauthResults(signed: Buffer) {
  const r = new Resolver({ timeout: 1000, tries: 1 });
  r.setServers([dns.address]);
  const v = await dkimVerify(signed, { resolver: (name: string, type: string) => r.resolve(name, type as 'TXT') as Promise<string[][]> });
  return v.results.map((x) => `${x.status.result} ${x.selector}`);
}

before(async () => {
  const records = [formatDkimDnsRecord('example.test', 'r1', createPublicKey(rsa)), formatDkimDnsRecord('example.test', 'e1', createPublicKey(ed))];
  dns = await startDnsServer({ zones: ['example.test'], txt: records.map((r) => [r.name, r.value] as const) });
});
after(async () => {
  await dns.stop();
  pki.cleanup();
  work.cleanup();
});

describe('signDkim', () => {
  test('relaxed canonicalization is RFC 6376 section 3.4.5\'s example', () => {
    const header = Buffer.from('A: X\r\nB : Y\t\r\n\tZ  \r\n');
    assert.equal(canonicalizeHeaderRelaxed({ name: 'A', raw: header.subarray(0, 6) }), 'a:X');
    assert.equal(canonicalizeHeaderRelaxed({ name: 'B ', raw: header.subarray(6) }), 'b:Y Z');
    assert.equal(canonicalizeBodyRelaxed(Buffer.from(' C \r\nD \t E\r\n\r\n\r\n')).toString(), ' C\r\nD E\r\n');
    assert.equal(canonicalizeBodyRelaxed(Buffer.from('\r\n\r\n')).length, 0, 'an empty body canonicalizes to nothing');
    assert.equal(canonicalizeBodyRelaxed(Buffer.from('no line break')).toString(), 'no line break\r\n');
  });

  test('RSA and Ed25519 signatures verify with dkimpy and mailauth over real DNS', async () => {
    const signed = signDkim(message, { signers });
    assert.ok(signed.subarray(signed.length - message.length).equals(message), 'the message follows, byte for byte');
    assert.equal((await dkimpyVerify(signed, dns, 0)).ok, true, 'dkimpy: rsa-sha256');
    assert.equal((await dkimpyVerify(signed, dns, 1)).ok, true, 'dkimpy: ed25519-sha256');
    assert.deepEqual(await mailauthResults(signed), ['pass r1', 'pass e1']);
    const field = signed.toString('latin1').split('\r\n\r\n')[0]!;
    assert.match(field, /h=from:from:/, 'From is oversigned');
    assert.doesNotMatch(field, /\bl=/, 'no body length limit');
    for (const line of field.split('\r\n')) assert.ok(line.length <= 78, `folded: ${line}`);
  });

  test('relaxed canonicalization survives refolding and an added unsigned field', async () => {
    const signed = signDkim(message, { signers: [signers[0]!] }).toString('latin1');
    const refolded = signed.replace('Subject:   Quarterly   report \r\n\tfolded', 'Subject: Quarterly report\r\n folded').replace('X-Mailer: test', 'X-Mailer: test\r\nReceived: by relay.example.net');
    assert.equal((await dkimpyVerify(Buffer.from(`Received: from a by b\r\n${refolded}`, 'latin1'), dns)).ok, true);
  });

  test('a changed body, an added From, Subject or Reply-To, or a second Content-Type fail', async () => {
    const signed = signDkim(message, { signers: [signers[0]!] }).toString('latin1');
    const tampered = {
      body: signed.replace('see you.', 'send money.'),
      from: signed.replace('X-Mailer: test', 'X-Mailer: test\r\nFrom: ceo@example.test'),
      fromOnTop: `From: ceo@example.test\r\n${signed}`,
      subject: signed.replace('X-Mailer: test', 'X-Mailer: test\r\nSubject: Urgent'),
      replyTo: signed.replace('X-Mailer: test', 'X-Mailer: test\r\nReply-To: thief@evil.test'),
      contentType: signed.replace('X-Mailer: test', 'X-Mailer: test\r\nContent-Type: text/html'),
    };
    for (const [what, m] of Object.entries(tampered)) {
      assert.equal((await dkimpyVerify(Buffer.from(m, 'latin1'), dns)).ok, false, `${what} must break the signature`);
    }
    assert.deepEqual(await mailauthResults(Buffer.from(tampered.replyTo, 'latin1')), ['fail r1']);
  });

  test('DKIM after S/MIME: both verify, the S/MIME layer with openssl cms', async () => {
    const smime = signMessage(message, { signers: [{ certificate: alice.cert, key: alice.key }] });
    const signed = signDkim(smime, { signers });
    assert.equal((await dkimpyVerify(signed, dns, 0)).ok, true);
    assert.equal((await dkimpyVerify(signed, dns, 1)).ok, true);
    assert.match(signed.toString('latin1').split('\r\n\r\n')[0]!, /h=[^;]*content-type:content-type/, 'the multipart/signed Content-Type (boundary, protocol) is covered');
    const path = join(work.dir, 'dkim-smime.eml');
    writeFileSync(path, signed);
    const r = await runPeer('openssl', ['cms', '-verify', '-in', path, '-CAfile', pki.caPath, '-purpose', 'smimesign', '-out', '/dev/null']);
    assert.equal(r.status, 0, r.stderr);
  });

  test('bare LF input leaves in canonical CRLF form and verifies', async () => {
    const lf = Buffer.from(message.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
    const signed = signDkim(lf, { signers: [signers[0]!] });
    assert.doesNotMatch(signed.toString('latin1'), /[^\r]\n/);
    assert.equal((await dkimpyVerify(signed, dns)).ok, true);
  });

  test('refused: no From field, weak or unsuitable keys, no signer', () => {
    assert.equal(errorCode(() => signDkim(Buffer.from('To: a@b.test\r\n\r\nhi\r\n'), { signers })), 'MALFORMED');
    assert.equal(errorCode(() => signDkim(message, { signers: [{ domain: 'example.test', selector: 's', key: generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey }] })), 'KEY_INVALID');
    assert.equal(errorCode(() => signDkim(message, { signers: [{ domain: 'example.test', selector: 's', key: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey }] })), 'KEY_INVALID');
    assert.equal(errorCode(() => signDkim(message, { signers: [{ domain: 'example.test', selector: 's', key: createPublicKey(rsa) }] })), 'KEY_INVALID');
    assert.equal(errorCode(() => signDkim(message, { signers: [{ domain: 'example.test', selector: 'bad selector', key: rsa }] })), 'INVALID_ARGUMENT');
    assert.equal(errorCode(() => signDkim(message, { signers: [] })), 'INVALID_ARGUMENT');
  });
});
