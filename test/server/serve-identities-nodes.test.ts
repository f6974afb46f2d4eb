/**
 * Two `kakitome serve` processes on one PostgreSQL (two nodes behind a load
 * balancer): an identity uploaded, issued or retired through one is used by the
 * other from its very next request, without a restart (the service reads
 * identities from the store on every request; nothing is cached per node).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodePem } from '../../src/asn1/pem.ts';
import { OID } from '../../src/asn1/oids.ts';
import { issueCertificate } from '../../src/x509/issue.ts';
import { storeHomeEnv } from '../cli/run-cli.ts';
import { TestPki } from '../helpers/pki.ts';
import { startPostgres, type PostgresServer } from '../store/postgres-server.ts';
import { kakitomeOk, startServe, type ServeProcess } from './serve-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-serve-nodes-'));
const partner = new TestPki('Partner Nodes CA');
let pg: PostgresServer;
let env: NodeJS.ProcessEnv;
let nodes: ServeProcess[] = [];
let admin = '';
let signer = '';

const kk = (...args: string[]) => kakitomeOk(env, ...args);

before(async () => {
  pg = await startPostgres();
  mkdirSync(join(dir, 'user'));
  env = { ...storeHomeEnv(join(dir, 'home'), join(dir, 'user')), KAKITOME_DATABASE_URL: pg.url };
  await kk('init');
  await kk('ca', 'init', '--name', 'Nodes CA', '--key-type', 'p256', '-o', join(dir, 'root.pem'));
  await kk('tenant', 'add', 'acme', '--domain', 'acme.example');
  admin = JSON.parse(await kk('tenant', 'key', 'acme', '--scope', 'admin', '--json')).key;
  signer = JSON.parse(await kk('tenant', 'key', 'acme', '--scope', 'sign', '--json')).key;
  nodes = await Promise.all([0, 1].map(() => startServe(['--http', '127.0.0.1:0'], env)));
});

after(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  pg?.stop();
  partner.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const url = (node: number, path: string) => new URL(path, String(nodes[node]!.listening.http!.url));

async function signAt(node: number, from: string): Promise<Response> {
  return fetch(url(node, '/api/v1/sign'), { method: 'POST', headers: { authorization: `Bearer ${signer}`, 'content-type': 'message/rfc822' }, body: `From: ${from}\r\nTo: a@example.net\r\nSubject: nodes\r\n\r\nHello.\r\n` });
}

/** openssl's view of who signed: the signer certificate's SHA-256 fingerprint. */
async function signerAt(node: number, from: string, ca: string): Promise<string> {
  const r = await signAt(node, from);
  const body = Buffer.from(await r.arrayBuffer());
  assert.equal(r.status, 200, body.toString());
  writeFileSync(join(dir, 'signed.eml'), body);
  execFileSync('openssl', ['cms', '-verify', '-in', join(dir, 'signed.eml'), '-CAfile', ca, '-signer', join(dir, 'signer.pem'), '-out', '/dev/null'], { stdio: 'pipe' });
  return new X509Certificate(readFileSync(join(dir, 'signer.pem'))).fingerprint256.replaceAll(':', '').toLowerCase();
}

function partnerP12(email: string, name: string): { p12: Buffer; fingerprint: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const cert = issueCertificate({ subject: { commonName: email }, publicKey, issuer: partner.caCert, signingKey: partner.caKey, keyUsage: ['digitalSignature'], extKeyUsage: [OID.emailProtection], emails: [email] });
  writeFileSync(join(dir, `${name}.key`), privateKey.export({ format: 'pem', type: 'pkcs8' }));
  writeFileSync(join(dir, `${name}.pem`), encodePem('CERTIFICATE', cert.der));
  execFileSync('openssl', ['pkcs12', '-export', '-inkey', join(dir, `${name}.key`), '-in', join(dir, `${name}.pem`), '-passout', 'pass:pw', '-out', join(dir, `${name}.p12`)], { stdio: 'pipe' });
  return { p12: readFileSync(join(dir, `${name}.p12`)), fingerprint: cert.fingerprint256 };
}

test('an identity uploaded, renewed or retired through one node counts on the other at its next request', async () => {
  // Node 1 has served the address before (refused: no identity yet), so anything it kept would show.
  assert.equal((await signAt(1, 'news@acme.example')).status, 403);
  const first = partnerP12('news@acme.example', 'first');
  const up = await fetch(url(0, '/api/v1/identities'), { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/pkcs12', 'kakitome-pkcs12-password': 'pw' }, body: first.p12 });
  assert.equal(up.status, 201, await up.text());
  assert.equal(await signerAt(1, 'news@acme.example', partner.caPath), first.fingerprint);

  // A renewal through node 1 is used by node 0 at once.
  const renewed = partnerP12('news@acme.example', 'renewed');
  const up2 = await fetch(url(1, '/api/v1/identities'), { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/pkcs12', 'kakitome-pkcs12-password': 'pw' }, body: renewed.p12 });
  assert.equal(up2.status, 201, await up2.text());
  assert.equal(await signerAt(0, 'news@acme.example', partner.caPath), renewed.fingerprint);

  // Retired through node 0: node 1 stops signing with it at once.
  const del = await fetch(url(0, '/api/v1/identities/news@acme.example'), { method: 'DELETE', headers: { authorization: `Bearer ${admin}` } });
  assert.equal(del.status, 200, await del.text());
  const refused = await signAt(1, 'news@acme.example');
  assert.equal(refused.status, 422);
  assert.equal((await refused.json() as { code: string }).code, 'KEY_INVALID');

  // Issued by the internal CA through node 1: node 0 signs with it, openssl verifies up to the CA's root.
  const issued = await fetch(url(1, '/api/v1/identities'), { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ email: 'news@acme.example', keyType: 'p256' }) });
  const body = await issued.json() as { certificate: string };
  assert.equal(issued.status, 201, JSON.stringify(body));
  assert.equal(await signerAt(0, 'news@acme.example', join(dir, 'root.pem')), body.certificate);
});
