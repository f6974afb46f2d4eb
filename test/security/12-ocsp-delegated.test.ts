/**
 * Issue 9, item 12 (second half): `kakitome ca ocsp` is a network-facing process;
 * it must not hold a CA key, and it must not be held open by slow or oversized
 * requests. Built here: an internal CA on a SQLite store, the responder started as
 * the CLI starts it, `openssl ocsp` as the real client, and raw sockets playing
 * slowloris (headers and body dripped a byte at a time), oversized headers and a
 * connection flood.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { encodePem } from '../../src/asn1/pem.ts';
import { decode, readBitString } from '../../src/asn1/ber.ts';
import { initCertificateAuthority } from '../../src/ca/init-certificate-authority.ts';
import { issueMailboxCertificate } from '../../src/ca/issue-mailbox-certificate.ts';
import { revokeIssuedCertificate } from '../../src/ca/revoke-issued-certificate.ts';
import { renewOcspSigningCertificates, findOcspSigningCertificate } from '../../src/ca/issue-ocsp-signing-certificate.ts';
import { startOcspResponder, type RunningOcspResponder } from '../../src/ca/ocsp-responder.ts';
import type { CertificateAuthority } from '../../src/ca/certificate-authority.ts';
import type { Certificate } from '../../src/x509/certificate.ts';
import { isKakitomeError } from '../../src/errors.ts';
import { identifierFor } from '../../src/cms/identifier.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-ocsp-delegated-'));
let store: Store;
let root: CertificateAuthority;
let issuing: CertificateAuthority;
let alice: Certificate;
let bob: Certificate;
/** Every certificate whose private key anything asked the store for, and why. */
const keysOpened: { fingerprint: string; purpose: string }[] = [];
const exec = promisify(execFile);
const pem = (name: string, ...certs: Certificate[]) => {
  const p = join(dir, name);
  writeFileSync(p, certs.map((c) => encodePem('CERTIFICATE', c.der)).join(''));
  return p;
};
const keyHash = (c: Certificate) => createHash('sha1').update(readBitString(decode(c.spki, { der: true }).children()[1]!).bytes).digest('hex').toUpperCase();

before(async () => {
  store = await Store.open(openSqliteEngine(join(dir, 'kakitome.db')), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'ocsp-test' });
  ({ root, issuing } = await initCertificateAuthority(store, { name: 'Delegation Corp', keyType: 'p256' }));
  alice = (await issueMailboxCertificate(store, { email: 'alice@example.com', keyType: 'p256' }))[0]!.certificate;
  bob = (await issueMailboxCertificate(store, { email: 'bob@example.com', keyType: 'p256' }))[0]!.certificate;
  await revokeIssuedCertificate(store, bob.fingerprint256, 'keyCompromise');
  pem('alice.pem', alice);
  pem('bob.pem', bob);
  pem('issuing.pem', issuing.certificate);
  pem('chain.pem', issuing.certificate, root.certificate);
  const use = store.usePrivateKeyFor.bind(store);
  store.usePrivateKeyFor = (cert, purpose) => {
    keysOpened.push({ fingerprint: cert.fingerprint256, purpose });
    return use(cert, purpose);
  };
});
after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const ocsp = async (url: string, cert: string, ...extra: string[]) => {
  const r = await exec('openssl', ['ocsp', '-issuer', join(dir, 'issuing.pem'), '-cert', join(dir, cert), '-url', url, '-CAfile', join(dir, 'chain.pem'), '-resp_text', ...extra]);
  return r.stdout + r.stderr;
};

test('answers are signed by a delegated certificate (id-kp-OCSPSigning, ocsp-nocheck) that openssl verifies; no CA key is opened', async () => {
  keysOpened.length = 0;
  const responder = await startOcspResponder(store, {}, { signerCheckSeconds: 0 });
  try {
    const [delegate] = responder.signers().filter((c) => Buffer.compare(c.issuer, issuing.certificate.subject) === 0);
    assert.ok(delegate, 'the issuing CA has a delegate');
    assert.deepEqual(delegate.extendedKeyUsage, ['1.3.6.1.5.5.7.3.9']);
    assert.ok(delegate.extensions.has('1.3.6.1.5.5.7.48.1.5'), 'id-pkix-ocsp-nocheck');
    assert.deepEqual([...delegate.keyUsage!], ['digitalSignature']);
    assert.notEqual(keyHash(delegate), keyHash(issuing.certificate));

    const good = await ocsp(responder.url, 'alice.pem');
    assert.match(good, /Response verify OK/);
    assert.match(good, /alice\.pem: good/);
    assert.match(good, new RegExp(`Responder Id: ${keyHash(delegate)}`));
    assert.match(good, /OCSP Signing/);
    assert.match(good, /OCSP No Check/);
    assert.doesNotMatch(good, /WARNING: no nonce/);
    const revoked = await ocsp(responder.url, 'bob.pem');
    assert.match(revoked, /Response verify OK/);
    assert.match(revoked, /bob\.pem: revoked/);

    // The root's delegate answers for the issuing CA itself (RFC 6960 4.2.2.2: issued by the CA that issued the certificate).
    const rootDelegate = responder.signers().find((c) => Buffer.compare(c.issuer, root.certificate.subject) === 0)!;
    pem('root.pem', root.certificate);
    const r = await exec('openssl', ['ocsp', '-issuer', join(dir, 'root.pem'), '-cert', join(dir, 'issuing.pem'), '-url', responder.url, '-CAfile', join(dir, 'root.pem'), '-resp_text']);
    assert.match(r.stdout + r.stderr, /Response verify OK/);
    assert.match(r.stdout + r.stderr, new RegExp(`Responder Id: ${keyHash(rootDelegate)}`));

    // Its key is sealed in the store but never offered to decrypt (keyUsage digitalSignature only).
    for (const d of responder.signers()) {
      assert.deepEqual(await store.findDecryptionKeys([identifierFor(d), identifierFor(d, 'subjectKeyIdentifier')]), []);
    }

    const caFingerprints = [root.certificate.fingerprint256, issuing.certificate.fingerprint256];
    assert.ok(keysOpened.length > 0);
    for (const k of keysOpened) {
      assert.ok(!caFingerprints.includes(k.fingerprint), `the responder opened a CA key (${k.purpose})`);
      assert.equal(k.purpose, 'ocsp-responder');
    }
  } finally {
    await responder.close();
  }
});

test('a response is signed once and reused per certificate, but a revocation shows at once', async () => {
  const carol = (await issueMailboxCertificate(store, { email: 'carol@example.com', keyType: 'p256' }))[0]!.certificate;
  pem('carol.pem', carol);
  const responder = await startOcspResponder(store);
  try {
    const ask = async (name: string) => {
      const out = join(dir, `${name}-${randomBytes(4).toString('hex')}.der`);
      const text = await ocsp(responder.url, 'carol.pem', '-no_nonce', '-respout', out);
      return { text, der: readFileSync(out) };
    };
    const first = await ask('first');
    assert.match(first.text, /carol\.pem: good/);
    await new Promise((r) => setTimeout(r, 1100)); // a fresh signature would carry a later producedAt
    const second = await ask('second');
    assert.deepEqual(second.der, first.der, 'the same signed bytes, not a new signature');
    await revokeIssuedCertificate(store, carol.fingerprint256, 'keyCompromise');
    const third = await ask('third');
    assert.match(third.text, /carol\.pem: revoked/);
  } finally {
    await responder.close();
  }
});

test('a revoked delegate is replaced by `renewOcspSigningCertificates` and the running responder switches to the new one', async () => {
  const responder = await startOcspResponder(store, {}, { signerCheckSeconds: 0 });
  try {
    const old = (await findOcspSigningCertificate(store, issuing))!;
    assert.equal((await renewOcspSigningCertificates(store)).length, 0, 'nothing due');
    await revokeIssuedCertificate(store, old.fingerprint256, 'superseded');
    const issued = await renewOcspSigningCertificates(store);
    assert.deepEqual(issued.map((s) => s.ca.name), [issuing.name]);
    const text = await ocsp(responder.url, 'alice.pem');
    assert.match(text, /Response verify OK/);
    assert.match(text, new RegExp(`Responder Id: ${keyHash(issued[0]!.certificate)}`));
  } finally {
    await responder.close();
  }
});

test('a CA without a current delegate: the responder refuses to start rather than sign with the CA key', async () => {
  const other = await Store.open(openSqliteEngine(':memory:'), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'ocsp-test' });
  try {
    const { issuing: ca } = await initCertificateAuthority(other, { name: 'Lapsed Corp', keyType: 'p256' });
    await revokeIssuedCertificate(other, (await findOcspSigningCertificate(other, ca))!.fingerprint256, 'superseded');
    await assert.rejects(startOcspResponder(other), (e) => isKakitomeError(e, 'KEY_INVALID') && e.remedy === 'ocspSigner' && /OCSP signing certificate/.test(e.message));
  } finally {
    await other.close();
  }
});

/** Opens a raw connection; resolves what the server sent once it closes the connection. */
function rawConnection(url: string): { socket: Socket; closed: Promise<string>; connected: Promise<void> } {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  const chunks: Buffer[] = [];
  socket.on('data', (d) => chunks.push(d));
  socket.on('error', () => undefined);
  const closed = new Promise<string>((resolve) => socket.once('close', () => resolve(Buffer.concat(chunks).toString('latin1'))));
  const connected = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, closed, connected };
}

/** Writes `bytes` one at a time every `ms` until the server closes; returns how many it accepted. */
async function drip(socket: Socket, bytes: Buffer, ms: number): Promise<number> {
  for (let i = 0; i < bytes.length; i++) {
    if (socket.destroyed || socket.writableEnded || socket.closed) return i;
    socket.write(bytes.subarray(i, i + 1));
    await new Promise((r) => setTimeout(r, ms));
  }
  return bytes.length;
}

test('slowloris headers and bodies, oversized headers and a connection flood are cut off', async () => {
  const responder: RunningOcspResponder = await startOcspResponder(store, {}, { headersTimeoutMs: 500, requestTimeoutMs: 1000, maxConnections: 4, maxHeaderBytes: 4096 });
  try {
    // Headers dripped one byte per 50 ms: 80 bytes would take 4 s, the bound is 0.5 s.
    const slowHead = rawConnection(responder.url);
    await slowHead.connected;
    const head = Buffer.from(`GET /${'A'.repeat(40)} HTTP/1.1\r\nHost: ocsp\r\nX-Slow: ${'z'.repeat(20)}\r\n\r\n`);
    const sentHead = await drip(slowHead.socket, head, 50);
    assert.ok(sentHead < head.length, `the server waited for all ${head.length} header bytes`);
    assert.match(await slowHead.closed, /^(HTTP\/1\.1 408|$)/);

    // A complete header, then the body dripped: the whole-request bound (1 s) cuts it.
    const slowBody = rawConnection(responder.url);
    await slowBody.connected;
    slowBody.socket.write('POST / HTTP/1.1\r\nHost: ocsp\r\nContent-Type: application/ocsp-request\r\nContent-Length: 100\r\n\r\n');
    const sentBody = await drip(slowBody.socket, randomBytes(100), 50);
    assert.ok(sentBody < 100, 'the server waited for the whole dripped body');
    assert.match(await slowBody.closed, /^(HTTP\/1\.1 408|$)/);

    // Headers beyond maxHeaderBytes: 431 and the connection closed.
    const big = rawConnection(responder.url);
    await big.connected;
    big.socket.write(`GET / HTTP/1.1\r\nHost: ocsp\r\nX-Big: ${'b'.repeat(16 * 1024)}\r\n\r\n`);
    assert.match(await big.closed, /^HTTP\/1\.1 431/);

    // A declared body over the bound is refused before it is read.
    const huge = await fetch(responder.url, { method: 'POST', body: Buffer.alloc(64 * 1024), headers: { 'content-type': 'application/ocsp-request' } });
    assert.equal(huge.status, 413);

    // Four idle connections fill the server; a fifth is dropped at once, with no answer.
    const idle = Array.from({ length: 4 }, () => rawConnection(responder.url));
    await Promise.all(idle.map((c) => c.connected));
    await new Promise((r) => setTimeout(r, 50));
    const fifth = rawConnection(responder.url);
    fifth.socket.write('GET / HTTP/1.1\r\nHost: ocsp\r\n\r\n');
    assert.equal(await fifth.closed, '');
    for (const c of idle) c.socket.destroy();
    await Promise.all(idle.map((c) => c.closed));
    // Room again: a real client is served.
    assert.match(await ocsp(responder.url, 'alice.pem'), /alice\.pem: good/);
  } finally {
    await responder.close();
  }
});
