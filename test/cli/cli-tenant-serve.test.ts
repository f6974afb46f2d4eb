/**
 * `kakitome tenant` and `kakitome serve` through the real launcher: a fresh store
 * needs only `tenant key default`; a PKCS#12 becomes an identity; the served
 * verdict is the CLI's `verify --json`; bad configuration stops the server before
 * it listens; SIGTERM lets the request in flight finish and exits 0.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { BIN, draftMessage, runCli, storeHomeEnv } from './run-cli.ts';
import { TestPki } from '../helpers/pki.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-cli-serve-'));
const home = join(dir, 'home');
const env = storeHomeEnv(home, dir);
const pki = new TestPki('Serve Test Root');
after(() => {
  pki.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

async function kk(...args: string[]) {
  const r = await runCli(args, { env });
  return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr };
}

function startServe(args: string[]): Promise<{ url: string; child: ReturnType<typeof spawn>; lines: Array<Record<string, unknown>>; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Array<Record<string, unknown>> = [];
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      const entry = JSON.parse(l) as Record<string, unknown>;
      lines.push(entry);
      if (entry.msg === 'listening') resolve({ url: String(entry.url), child, lines, exited });
    });
    void exited.then((code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
  });
}

test('tenant commands, serve, the CLI verdict over HTTP, and a graceful SIGTERM', async () => {
  assert.equal((await kk('init')).status, 0);
  // A fresh store: the implicit tenant "default" takes a key.
  const created = await kk('tenant', 'key', 'default', '--scope', 'sign,verify', '--json');
  assert.equal(created.status, 0, created.stderr);
  const { key, record } = JSON.parse(created.stdout) as { key: string; record: { id: string; scopes: string[] } };
  assert.match(key, /^kk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
  assert.deepEqual(record.scopes, ['sign', 'verify']);
  const listed = await kk('tenant', 'keys', '--json');
  assert.ok(!listed.stdout.includes(key.slice(20)), 'the secret is shown once, never listed');

  const alice = pki.identity('rsa2048', 'alice');
  const p12 = join(dir, 'alice.p12');
  execFileSync('openssl', ['pkcs12', '-export', '-inkey', alice.keyPath, '-in', alice.certPath, '-passout', 'pass:secret', '-out', p12]);
  const added = await kk('tenant', 'identity', 'default', '--p12', p12, '--pass', 'pass:secret', '--json');
  assert.equal(added.status, 0, added.stderr);
  assert.deepEqual(JSON.parse(added.stdout).identities, ['alice@example.com']);
  assert.equal((await kk('certs', 'import', pki.caPath, '--trust', 'trusted')).status, 0);

  // Another tenant cannot take an address outside its domains, nor a domain already taken.
  assert.equal((await kk('tenant', 'add', 'acme', '--domain', 'acme.example')).status, 0);
  const outside = await kk('tenant', 'identity', 'acme', '--p12', p12, '--pass', 'pass:secret');
  assert.equal(outside.status, 1);
  assert.match(outside.stderr, /FORBIDDEN: alice@example\.com is outside the domains of tenant "acme"/);
  // An identity issued by the internal CA, within the tenant's domains only.
  assert.equal((await kk('ca', 'init', '--name', 'Serve CLI CA', '--key-type', 'p256')).status, 0);
  const issued = await kk('tenant', 'identity', 'acme', '--email', 'news@acme.example', '--key-type', 'p256', '--json');
  assert.equal(issued.status, 0, issued.stderr);
  assert.deepEqual(JSON.parse(issued.stdout).tenant.identities, ['news@acme.example']);
  // Retired: its key stops signing; the address stays the tenant's; another tenant's address is not found.
  const retired = await kk('tenant', 'retire-identity', 'acme', 'news@acme.example', '--json');
  assert.equal(retired.status, 0, retired.stderr);
  assert.equal(JSON.parse(retired.stdout).retired.length, 1);
  assert.equal(JSON.parse((await kk('tenant', 'retire-identity', 'acme', 'news@acme.example', '--json')).stdout).retired.length, 0);
  assert.match((await kk('tenant', 'retire-identity', 'acme', 'alice@example.com')).stderr, /NOT_FOUND: alice@example\.com is not an identity of tenant "acme"/);
  assert.equal((await kk('tenant', 'identity', 'acme', '--email', 'news@acme.example', '--key-type', 'p256')).status, 0, 'a new identity for the retired address');
  assert.equal((await kk('tenant', 'identity', 'acme', '--email', 'news@other.example')).status, 1);
  assert.equal((await kk('tenant', 'add', 'globex', '--domain', 'ACME.example')).status, 2);
  assert.equal((await kk('tenant', 'add', 'nodomain')).status, 2);
  assert.equal((await kk('tenant', 'key', 'acme', '--scope', 'sign,root')).status, 2);
  assert.equal((await kk('tenant', 'key', 'nobody')).status, 1);
  // An unknown key id points at the list that shows key ids (tenant keys), not at tenant list.
  for (const args of [['tenant', 'limit', '3f9c0a1b2c3d4e5f', '--none'], ['tenant', 'revoke-key', '3f9c0a1b2c3d4e5f']]) {
    const unknown = await kk(...args);
    assert.equal(unknown.status, 1, args.join(' '));
    assert.match(unknown.stderr, /NOT_FOUND: No API key 3f9c0a1b2c3d4e5f\.\n  The API key ids are the first column of kakitome tenant keys \[NAME\]\./);
  }

  // Configuration is checked before anything listens.
  const badAddress = await kk('serve', '--http', 'localhost');
  assert.equal(badAddress.status, 2);
  assert.match(badAddress.stderr, /--http localhost: give HOST:PORT/);
  const badSize = await kk('serve', '--http', '127.0.0.1:0', '--max-message-size', '12XB');
  assert.equal(badSize.status, 2);
  assert.match(badSize.stderr, /--max-message-size 12XB/);
  // The submission port: no AUTH in clear beyond loopback, and --relay needed.
  const clear = await kk('serve', '--smtp', '0.0.0.0:2525', '--relay', '127.0.0.1:25');
  assert.equal(clear.status, 2);
  assert.match(clear.stderr, /without --smtp-tls-cert\/--smtp-tls-key: API keys would cross the network in clear/);
  assert.equal((await kk('serve', '--smtp', '127.0.0.1:2525')).status, 2);
  assert.equal((await kk('serve', '--http', '127.0.0.1:0', '--relay', '127.0.0.1:25')).status, 2);

  const { url, child, lines, exited } = await startServe(['--http', '127.0.0.1:0', '--max-message-size', '1MiB']);
  // A failing assertion must not leave the server running.
  after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const message = draftMessage('Alice <alice@example.com>', 'bob@example.net', 'Served');
  const signed = await fetch(new URL('/api/v1/sign', url), { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'message/rfc822' }, body: message });
  const signedBytes = Buffer.from(await signed.arrayBuffer());
  assert.equal(signed.status, 200, signedBytes.toString());
  const signedPath = join(dir, 'signed.eml');
  writeFileSync(signedPath, signedBytes);
  execFileSync('openssl', ['cms', '-verify', '-in', signedPath, '-CAfile', pki.caPath, '-out', join(dir, 'content.eml')], { stdio: 'pipe' });

  // The verdict over HTTP is the CLI's verify --json.
  const served = await (await fetch(new URL('/api/v1/verify', url), { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'message/rfc822' }, body: signedBytes })).json();
  const cli = await runCli(['verify', '--json', '--no-harvest', '-i', signedPath], { env });
  assert.equal(cli.status, 0, cli.stderr);
  // The one difference: the clock each read when it checked validity.
  const withoutClock = (v: unknown) => JSON.parse(JSON.stringify(v).replace(/"time":"[^"]+"/g, '"time":"T"'));
  assert.match(JSON.stringify(served), /"clock":\{"source":"now","time":"20/);
  assert.deepEqual(withoutClock(served), withoutClock(JSON.parse(cli.stdout.toString())));

  // SIGTERM during a request: no new connection is accepted, the request finishes, exit 0.
  const inflight = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpRequest(new URL('/api/v1/sign', url), { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'message/rfc822', 'transfer-encoding': 'chunked' } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.write(message.subarray(0, 40));
    // SIGTERM once the server is answering it (a fixed 300 ms could end before it read the request on a loaded
    // machine: the connection, not yet a request, would then be closed as idle): /metrics counts it, and itself.
    const inFlight = async () => Number(/^kakitome_http_requests_in_flight (\d+)$/m.exec(await (await fetch(new URL('/metrics', url))).text())?.[1] ?? 0);
    void (async () => {
      const deadline = Date.now() + 20_000;
      while ((await inFlight()) < 2) {
        if (Date.now() > deadline) throw new Error('the server never counted the request in flight');
        await new Promise((r) => setTimeout(r, 20));
      }
      child.kill('SIGTERM');
      setTimeout(() => req.end(message.subarray(40)), 700);
    })().catch(reject);
  });
  const result = await inflight;
  assert.equal(result.status, 200, result.body);
  assert.match(result.body, /multipart\/signed/);
  await assert.rejects(fetch(new URL('/healthz', url)), 'no new connection after SIGTERM');
  assert.equal(await exited, 0);
  // The request in flight was answered (and logged) after the stop began, before the store closed (the /metrics polls aside).
  assert.deepEqual(lines.filter((l) => l.route !== '/metrics').slice(-3).map((l) => `${l.msg}${l.status ? ` ${l.status} ${l.route}` : ''}`), ['stopping', 'request 200 /api/v1/sign', 'stopped']);
  assert.ok(!JSON.stringify(lines).includes(key.slice(20)));
});
