/**
 * Issue 9, item 7: revocation.
 *
 * The attacks: (1) a message carries a fresh "good" OCSP response or CRL for its
 * signer; before the fix the answer was cached and reused for later messages that
 * carry nothing, and (2) it was believed over the CA's online answer, so a stapled
 * "good" from before a revocation outlived the revocation. (3) "Revocation unknown"
 * was said only deep in the report, never in the summary line, and could not be
 * required with a code of its own. (4) The internal CA's issuing-CA certificate
 * named no CRL or OCSP location, so its own mail was "revocation unknown" and
 * failed under hard-fail although the responder answered for the leaf.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { Readable } from 'node:stream';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSignerValidator, type SignerValidatorOptions } from '../../src/pki/create-signer-validator.ts';
import { createHttpFetcher } from '../../src/pki/create-http-fetcher.ts';
import { buildOcspRequest } from '../../src/pki/check-ocsp.ts';
import { signData } from '../../src/cms/signed-data/sign.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { verifyMessageStream } from '../../src/smime/verify-message-stream.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { implicit, oid } from '../../src/asn1/der.ts';
import { encodePem } from '../../src/asn1/pem.ts';
import type { MessageVerdict } from '../../src/smime/verdict.ts';
import { rootCa, subCa, endEntity, buildCrl, freePort, StaticHttpServer, OpensslOcspResponder, type Party } from '../pki/pki-builder.ts';
import { runCli, BIN, draftMessage, type CliResult } from '../cli/run-cli.ts';

const loopback = createHttpFetcher({ allowInternal: ['127.0.0.1'] });
let http: StaticHttpServer;
let root: Party;
let ocspGood: OpensslOcspResponder; // says "good" for every leaf it knows
let ocspRevoked: OpensslOcspResponder; // the CA's real responder after the revocation
const L: Record<string, Party> = {};
let dir: string;

before(async () => {
  http = new StaticHttpServer(); // serves nothing: every CRL download is a 404
  await http.start();
  root = rootCa('Item7 Root');
  dir = mkdtempSync(join(tmpdir(), 'kakitome-item7-'));
  writeFileSync(join(dir, 'root.pem'), encodePem('CERTIFICATE', root.cert.der));
  ocspGood = new OpensslOcspResponder(await freePort());
  ocspRevoked = new OpensslOcspResponder(await freePort());
  // Their only revocation location answers 404: whatever is known, the message carried.
  L.staple = endEntity(root, 'staple@example.com', { ocspUrls: [http.url('/ocsp-down')] });
  L.crlStaple = endEntity(root, 'crlstaple@example.com', { crlDistributionPoints: [http.url('/crl-down.crl')] });
  // Its certificate names the responder that knows about the revocation.
  L.fired = endEntity(root, 'fired@example.com', { ocspUrls: [ocspRevoked.url] });
  L.nowhere = endEntity(root, 'nowhere@example.com');
  const before = new Date(Date.now() - 600_000);
  await Promise.all([
    ocspGood.start(root, root, [{ cert: L.staple.cert }, { cert: L.fired.cert }]),
    ocspRevoked.start(root, root, [{ cert: L.staple.cert }, { cert: L.fired.cert, revoked: { date: before, reason: 'keyCompromise' } }]),
  ]);
});

after(async () => {
  await Promise.all([ocspGood?.stop(), ocspRevoked?.stop(), http?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

/** A fresh OCSP response from a real responder, as a sender would staple it. */
async function ocspResponseFrom(responder: OpensslOcspResponder, leaf: Party): Promise<Uint8Array> {
  const res = await fetch(responder.url, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: buildOcspRequest(leaf.cert, root.cert) });
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * An opaque signed message whose SignedData carries revocation evidence: CRLs, and
 * OCSP responses as RevocationInfoChoice other id-ri-ocsp-response (RFC 5940).
 */
function signedCarrying(signer: Party, subject: string, evidence: { crls?: Uint8Array[]; ocsp?: Uint8Array[] } = {}): Buffer {
  const inner = Buffer.from(`Content-Type: text/plain; charset=us-ascii\r\n\r\n${subject}: please pay.\r\n`);
  const carried = [...(evidence.crls ?? []).map((c) => Buffer.from(c)), ...(evidence.ocsp ?? []).map((o) => implicit(1, true, oid('1.3.6.1.5.5.7.16.2'), o))];
  const der = signData(inner, { signers: [{ certificate: signer.cert, key: signer.key }], crls: carried });
  const b64 = der.toString('base64').replace(/.{76}/g, '$&\r\n');
  const from = signer.cert.emailAddresses[0]!;
  return Buffer.from(
    `From: ${from}\r\nTo: victim@example.com\r\nSubject: ${subject}\r\nDate: Mon, 23 Nov 2026 13:00:00 +0000\r\nMIME-Version: 1.0\r\n` +
      `Content-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64}\r\n`,
  );
}

function validator(mode: 'require' | 'allow-unknown', extra: SignerValidatorOptions = {}) {
  return createSignerValidator({ anchors: [root.cert], fetcher: loopback, revocation: { mode, timeoutMs: 3000 }, ...extra });
}

async function bothWays(message: Buffer, validateSigner: ReturnType<typeof validator>): Promise<MessageVerdict> {
  const a = await verifyMessage(message, { validateSigner });
  const b = await verifyMessageStream(Readable.from([message]), { validateSigner });
  assert.equal(b.status, a.status, 'the streaming twin decides the same');
  assert.equal(b.code, a.code);
  assert.equal(b.summary, a.summary);
  return a;
}

test('a carried OCSP response is used for its own message only, never for the next one', async () => {
  const v = validator('require');
  const stapled = await bothWays(signedCarrying(L.staple!, 'With staple', { ocsp: [await ocspResponseFrom(ocspGood, L.staple!)] }), v);
  assert.equal(stapled.status, 'trusted', stapled.summary);
  assert.equal(stapled.signers[0]!.trust!.revocation.certificates[0]!.source, 'embedded-ocsp');
  // The same signer, the same validator, nothing carried: no answer to reuse.
  const bare = await bothWays(signedCarrying(L.staple!, 'Without staple'), v);
  assert.equal(bare.status, 'valid-untrusted');
  assert.equal(bare.code, 'REVOCATION_UNKNOWN');
  assert.equal(bare.signers[0]!.trust!.revocation.status, 'unknown');
});

test('a carried CRL is used for its own message only, never for the next one', async () => {
  const v = validator('require');
  const stapled = await bothWays(signedCarrying(L.crlStaple!, 'With CRL', { crls: [buildCrl({ issuer: root })] }), v);
  assert.equal(stapled.status, 'trusted', stapled.summary);
  assert.equal(stapled.signers[0]!.trust!.revocation.certificates[0]!.source, 'embedded-crl');
  const bare = await bothWays(signedCarrying(L.crlStaple!, 'Without CRL'), v);
  assert.equal(bare.code, 'REVOCATION_UNKNOWN');
});

test('a fresh online answer beats carried evidence: a stapled "good" does not outlive the revocation', async () => {
  const staleGood = await ocspResponseFrom(ocspGood, L.fired!);
  const v = await bothWays(signedCarrying(L.fired!, 'Stapled before revocation', { ocsp: [staleGood], crls: [buildCrl({ issuer: root })] }), validator('allow-unknown'));
  assert.equal(v.status, 'valid-untrusted');
  assert.equal(v.code, 'CERT_REVOKED');
  const rev = v.signers[0]!.trust!.revocation;
  assert.equal(rev.status, 'revoked');
  assert.equal(rev.certificates[0]!.source, 'ocsp');
  assert.equal(rev.certificates[0]!.reason, 'keyCompromise');
});

test('the summary line says "revocation unknown"; policy "require" makes it REVOCATION_UNKNOWN', async () => {
  const msg = signMessage(draftMessage('nowhere@example.com', 'b@example.com', 'No revocation info'), { signers: [{ certificate: L.nowhere!.cert, key: L.nowhere!.key }] });
  const allowed = await bothWays(msg, validator('allow-unknown'));
  assert.equal(allowed.status, 'trusted');
  assert.match(allowed.summary, /revocation unknown for the signer's certificate/);
  const required = await bothWays(msg, validator('require'));
  assert.equal(required.status, 'valid-untrusted');
  assert.equal(required.code, 'REVOCATION_UNKNOWN');
  assert.match(required.summary, /revocation unknown for the signer's certificate and policy requires it \(REVOCATION_UNKNOWN\)/);

  // An intermediate without an answer is named as well.
  const quiet = subCa(root, 'Item7 Quiet CA');
  const leaf = endEntity(quiet, 'quiet@example.com', { crlDistributionPoints: [http.url('/served.crl')] });
  http.files.set('/served.crl', buildCrl({ issuer: quiet }));
  const viaQuiet = signMessage(draftMessage('quiet@example.com', 'b@example.com', 'Hi'), { signers: [{ certificate: leaf.cert, key: leaf.key }], certificates: [quiet.cert] });
  const v = await bothWays(viaQuiet, validator('allow-unknown'));
  assert.equal(v.status, 'trusted');
  assert.match(v.summary, /revocation unknown for the CA certificate ".*Item7 Quiet CA.*"/);
  assert.deepEqual(v.signers[0]!.trust!.revocation.certificates.map((c) => [c.role, c.status, c.source]), [['signer', 'good', 'crl'], ['ca', 'unknown', undefined]]);

  // The command line: the summary line, the stable code, exit 1.
  writeFileSync(join(dir, 'nowhere.eml'), msg);
  const cliAllowed = await runCli(['verify', '--ca', join(dir, 'root.pem'), '-i', join(dir, 'nowhere.eml')]);
  assert.equal(cliAllowed.status, 0, cliAllowed.stderr);
  assert.match(cliAllowed.stderr.split('\n')[0]!, /^OK: .*revocation unknown/);
  const cliRequired = await runCli(['verify', '--ca', join(dir, 'root.pem'), '--revocation', 'require', '--json', '-i', join(dir, 'nowhere.eml')]);
  assert.equal(cliRequired.status, 1, cliRequired.stderr);
  assert.equal(JSON.parse(cliRequired.stdout.toString()).code, 'REVOCATION_UNKNOWN');
});

// ---------------------------------------------------------------------------------
// Our own CA, end to end through the command line.

const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
});

/** `kakitome ca ocsp` in the background, until stopped. */
async function startCaOcsp(env: NodeJS.ProcessEnv, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [BIN, 'ca', 'ocsp', '--port', String(port), '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ca ocsp did not start: ${out}`)), 30_000);
    const seen = (d: Buffer) => {
      out += d.toString();
      if (out.includes('listening')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', seen);
    child.stderr!.on('data', seen);
    child.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`ca ocsp exited: ${out}`));
    });
  });
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await done;
}

test('our own CA: ca init + issue + ca ocsp + verify under require is trusted, each certificate with its status and source; a revoked issuing CA is refused', async () => {
  const work = mkdtempSync(join(tmpdir(), 'kakitome-item7-ca-'));
  mkdirSync(join(work, 'user-home'));
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: join(work, 'user-home'), KAKITOME_HOME: join(work, 'ca-home'), KAKITOME_DATABASE_URL: '' };
  delete env.KAKITOME_MASTER_KEY;
  delete env.KAKITOME_MASTER_KEY_FILE;
  // The verifier has no store: only root.pem.
  const reader: NodeJS.ProcessEnv = { ...env };
  delete reader.KAKITOME_HOME;
  const crls = new StaticHttpServer();
  await crls.start();
  const ocspPort = await freePort();
  const ok = async (e: NodeJS.ProcessEnv, ...args: string[]): Promise<CliResult> => {
    const r = await runCli(args, { env: e, cwd: work });
    assert.equal(r.status, 0, `kakitome ${args.join(' ')}\n${r.stderr}`);
    return r;
  };
  const verify = (...extra: string[]) => runCli(['verify', '--ca', 'root.pem', '--revocation', 'require', '--allow-internal-fetch', '127.0.0.1', '--json', '-i', 'signed.eml', ...extra], { env: reader, cwd: work });
  const publishCrls = async () => {
    await ok(env, 'ca', 'crl', '-o', 'issuing.crl');
    await ok(env, 'ca', 'crl', '--ca', 'Rev Corp Root CA', '-o', 'root.crl');
    crls.files.set('/issuing.crl', readFileSync(join(work, 'issuing.crl')));
    crls.files.set('/root.crl', readFileSync(join(work, 'root.crl')));
  };
  const sources = (r: CliResult) => JSON.parse(r.stdout.toString()).signers[0].revocation.certificates.map((c: { role: string; status: string; source?: string }) => `${c.role}:${c.status}:${c.source}`);
  try {
    await ok(env, 'init');
    const init = JSON.parse((await ok(env, 'ca', 'init', '--name', 'Rev Corp', '--key-type', 'p256', '--ocsp-url', `http://127.0.0.1:${ocspPort}/`, '--crl-url', crls.url('/issuing.crl'), '--root-crl-url', crls.url('/root.crl'), '-o', 'root.pem', '--json')).stdout.toString());
    await ok(env, 'ca', 'issue', '--email', 'alice@example.com', '--key-type', 'p256');
    writeFileSync(join(work, 'draft.eml'), draftMessage('alice@example.com', 'bob@example.com', 'Quarterly figures'));
    await ok(env, 'sign', '--from', 'alice@example.com', '-i', 'draft.eml', '-o', 'signed.eml');

    // OCSP answers for the mailbox certificate and for the issuing CA.
    let responder = await startCaOcsp(env, ocspPort);
    const viaOcsp = await verify();
    assert.equal(viaOcsp.status, 0, viaOcsp.stderr);
    const v = JSON.parse(viaOcsp.stdout.toString());
    assert.equal(v.status, 'trusted');
    assert.doesNotMatch(v.summary, /revocation unknown/);
    assert.deepEqual(sources(viaOcsp), ['signer:good:ocsp', 'ca:good:ocsp']);
    assert.match(v.signers[0].revocation.certificates[1].subject, /Rev Corp S\/MIME CA/);

    // The CRLs alone (the responder down): the root's CRL covers the issuing CA.
    await stop(responder);
    await publishCrls();
    const viaCrl = await verify();
    assert.equal(viaCrl.status, 0, viaCrl.stderr);
    assert.deepEqual(sources(viaCrl), ['signer:good:crl', 'ca:good:crl']);

    // With the CA's own store, its certificates are answered from its records: no CRL or
    // OCSP location reachable (the responder down, the CRLs gone, loopback not allowed), and
    // still not "unknown" under require (before: REVOCATION_UNKNOWN).
    const served = new Map(crls.files);
    crls.files.clear();
    const withStore = () => runCli(['verify', '--revocation', 'require', '--json', '-i', 'signed.eml'], { env, cwd: work });
    const fromStore = await withStore();
    assert.equal(fromStore.status, 0, fromStore.stderr);
    assert.deepEqual(sources(fromStore), ['signer:good:internal-ca', 'ca:good:internal-ca']);
    for (const [k, body] of served) crls.files.set(k, body);

    // The issuing CA revoked: refused, by OCSP and by the root's CRL.
    await ok(env, 'ca', 'revoke', '--fingerprint', init.issuing.fingerprint, '--reason', 'cACompromise');
    responder = await startCaOcsp(env, ocspPort);
    const revokedOcsp = await verify();
    assert.equal(revokedOcsp.status, 1, revokedOcsp.stderr);
    assert.equal(JSON.parse(revokedOcsp.stdout.toString()).code, 'CERT_REVOKED');
    assert.deepEqual(sources(revokedOcsp), ['signer:good:ocsp', 'ca:revoked:ocsp']);
    await stop(responder);
    await publishCrls();
    const revokedCrl = await verify();
    assert.equal(revokedCrl.status, 1, revokedCrl.stderr);
    assert.equal(JSON.parse(revokedCrl.stdout.toString()).code, 'CERT_REVOKED');
    assert.deepEqual(sources(revokedCrl), ['signer:good:crl', 'ca:revoked:crl']);
    crls.files.clear();
    const revokedStore = await withStore();
    assert.equal(revokedStore.status, 1, revokedStore.stderr);
    assert.equal(JSON.parse(revokedStore.stdout.toString()).code, 'CERT_REVOKED');
    assert.deepEqual(sources(revokedStore), ['signer:good:internal-ca', 'ca:revoked:internal-ca']);
    assert.match(JSON.parse(revokedStore.stdout.toString()).signers[0].revocation.message, /according to the internal CA's own records in the key store/);
  } finally {
    await crls.stop();
    rmSync(work, { recursive: true, force: true });
  }
});

test('ca init refuses revocation URLs that leave the issuing CA (or the mailboxes) without a source', async () => {
  const work = mkdtempSync(join(tmpdir(), 'kakitome-item7-init-'));
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: work, KAKITOME_HOME: join(work, 'home'), KAKITOME_DATABASE_URL: '' };
  delete env.KAKITOME_MASTER_KEY;
  delete env.KAKITOME_MASTER_KEY_FILE;
  try {
    assert.equal((await runCli(['init'], { env })).status, 0);
    const crlOnly = await runCli(['ca', 'init', '--name', 'Half Corp', '--key-type', 'p256', '--crl-url', 'http://pki.example.com/issuing.crl'], { env });
    assert.equal(crlOnly.status, 2, crlOnly.stderr);
    assert.match(crlOnly.stderr, /INVALID_ARGUMENT: The issuing CA's certificate would name no revocation source/);
    const rootOnly = await runCli(['ca', 'init', '--name', 'Half Corp', '--key-type', 'p256', '--root-crl-url', 'http://pki.example.com/root.crl'], { env });
    assert.equal(rootOnly.status, 2, rootOnly.stderr);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
