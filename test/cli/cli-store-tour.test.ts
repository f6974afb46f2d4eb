/**
 * Issue 5, "done when", purely through the real `kakitome` launcher: the
 * "Five-minute tour with the store" of docs/store.md, command for command. Alice runs
 * the CA in her home; Bob has his own home; they exchange signed and encrypted mail
 * by address, Bob's certificate is renewed and the old mail still opens, and a
 * backup restored into a new home decrypts it too. Once with both stores on SQLite,
 * once with Alice's store on PostgreSQL (a real server on loopback).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, USER_COMPILE_CACHE, type CliResult } from './run-cli.ts';
import { startPostgres, type PostgresServer } from '../store/postgres-server.ts';

const roots: string[] = [];
let pg: PostgresServer | undefined;
after(() => {
  pg?.stop();
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

function workdir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-tour-'));
  roots.push(dir);
  // HOME too: a developer's own ~/.kakitome must not take part.
  mkdirSync(join(dir, 'user-home'));
  return dir;
}

/** The environment of one user: their home, nothing inherited from the machine's store settings. */
function userEnv(dir: string, home: string, databaseUrl = ''): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...USER_COMPILE_CACHE, HOME: join(dir, 'user-home'), KAKITOME_HOME: join(dir, home), KAKITOME_DATABASE_URL: databaseUrl };
  delete env.KAKITOME_MASTER_KEY;
  delete env.KAKITOME_MASTER_KEY_FILE;
  return env;
}

async function ok(dir: string, env: NodeJS.ProcessEnv, ...args: string[]): Promise<CliResult> {
  const r = await runCli(args, { env, cwd: dir });
  assert.equal(r.status, 0, `kakitome ${args.join(' ')}\n${r.stderr}`);
  return r;
}

const json = (r: CliResult) => JSON.parse(r.stdout.toString());

function draft(from: string, to: string, subject: string, body: string): string {
  return `From: ${from}\r\nTo: ${to}\r\nSubject: ${subject}\r\nDate: Mon, 23 Nov 2026 13:00:00 +0000\r\n\r\n${body}\r\n`;
}

/** Recipient serial numbers of an encrypted message, from `inspect --json`. */
async function recipientSerials(dir: string, env: NodeJS.ProcessEnv, file: string): Promise<string> {
  const r = await ok(dir, env, 'inspect', '--json', '-i', file);
  return r.stdout.toString();
}

async function tour(aliceDatabaseUrl = ''): Promise<void> {
  const dir = workdir();
  const alice = userEnv(dir, 'alice-home', aliceDatabaseUrl);
  const bob = userEnv(dir, 'bob-home');

  // 1. Alice: a store, a CA, certificates for herself and Bob; Bob's key handed over as .p12.
  await ok(dir, alice, 'init');
  // Each command that writes -o FILE says which file it wrote.
  assert.match((await ok(dir, alice, 'ca', 'init', '--name', 'Example Corp', '-o', 'root.pem')).stdout.toString(), /^Wrote the root certificate \(PEM\) to root\.pem\.$/m);
  await ok(dir, alice, 'ca', 'issue', '--email', 'alice@example.com');
  const bobIssued = json(await ok(dir, alice, 'ca', 'issue', '--email', 'bob@example.com', '--json')).certificates[0];
  // (umask 077; openssl rand -base64 18 > bob-p12.pass): no passphrase on a command line.
  writeFileSync(join(dir, 'bob-p12.pass'), `${randomBytes(18).toString('base64')}\n`, { mode: 0o600 });
  assert.equal((await ok(dir, alice, 'keys', 'export', '--id', bobIssued.keyId, '--reason', 'hand over to Bob', '--pass', 'file:bob-p12.pass', '-o', 'bob.p12')).stdout.toString(), `Wrote key ${bobIssued.keyId} (PKCS#12) to bob.p12.\n`);

  // 2. Bob: his own store, trusting Example Corp's root, holding his key.
  await ok(dir, bob, 'init');
  await ok(dir, bob, 'certs', 'import', 'root.pem', '--trust', 'trusted');
  await ok(dir, bob, 'keys', 'import', '--p12', 'bob.p12', '--pass', 'file:bob-p12.pass');

  // 3. Alice signs by address; Bob verifies with the store's anchors and keeps her certificate.
  writeFileSync(join(dir, 'hello.eml'), draft('Alice <alice@example.com>', 'bob@example.com', 'Hello', 'Hi Bob, shall we talk in private?'));
  await ok(dir, alice, 'sign', '--from', 'alice@example.com', '-i', 'hello.eml', '-o', 'hello-signed.eml');
  await ok(dir, bob, 'verify', '--no-harvest', '-i', 'hello-signed.eml');
  assert.equal(json(await ok(dir, bob, 'certs', 'list', '--email', 'alice@example.com', '--json')).certificates.length, 0, '--no-harvest keeps nothing');
  const verified = await ok(dir, bob, 'verify', '-i', 'hello-signed.eml', '-o', 'hello-read.eml');
  assert.match(verified.stderr, /^OK: Signed by alice@example\.com/);
  assert.match(verified.stderr, /kept the certificate of alice@example\.com/);
  assert.match(readFileSync(join(dir, 'hello-read.eml'), 'latin1'), /Hi Bob, shall we talk in private\?/);
  const harvested = json(await ok(dir, bob, 'certs', 'list', '--email', 'alice@example.com', '--json')).certificates;
  assert.equal(harvested.length, 1);
  assert.equal(harvested[0].trust, 'harvested');

  // 4. Bob answers signed and encrypted to Alice's address; the cipher comes from her announced capabilities.
  writeFileSync(join(dir, 'reply.eml'), draft('Bob <bob@example.com>', 'alice@example.com', 'Re: Hello', 'Yes. The meeting is on Friday.'));
  await ok(dir, bob, 'encrypt', '--to', 'alice@example.com', '--sign', '-i', 'reply.eml', '-o', 'reply-sealed.eml');
  const replyInspect = JSON.parse(await recipientSerials(dir, bob, 'reply-sealed.eml'));
  assert.match(JSON.stringify(replyInspect), /aes-256-gcm/, 'Alice announced AES-GCM in her signature');
  assert.equal((JSON.stringify(replyInspect).match(/"ktri"/g) ?? []).length, 2, 'Alice and Bob (Sent copy)');
  const aliceReads = await ok(dir, alice, 'decrypt', '-i', 'reply-sealed.eml', '-o', 'reply-read.eml');
  assert.match(aliceReads.stderr, /Signed by bob@example\.com: the signature is valid and the certificate is trusted/);
  assert.match(readFileSync(join(dir, 'reply-read.eml'), 'latin1'), /The meeting is on Friday/);
  // Bob's Sent copy opens with his own key.
  await ok(dir, bob, 'decrypt', '-i', 'reply-sealed.eml', '-o', 'reply-sent-copy.eml');

  // 5. Alice encrypts to Bob's address; Bob decrypts without naming a key.
  writeFileSync(join(dir, 'secret.eml'), draft('Alice <alice@example.com>', 'bob@example.com', 'Friday', 'Room 4.12, bring the draft.'));
  await ok(dir, alice, 'encrypt', '--to', 'bob@example.com', '-i', 'secret.eml', '-o', 'secret-sealed.eml');
  await ok(dir, bob, 'decrypt', '-i', 'secret-sealed.eml', '-o', 'secret-read.eml');
  assert.match(readFileSync(join(dir, 'secret-read.eml'), 'latin1'), /Room 4\.12/);

  // 6. Bob's certificate is renewed (new key); the old mail still opens from Bob's store.
  const renewed = json(await ok(dir, alice, 'ca', 'renew', '--fingerprint', bobIssued.fingerprint, '--json')).certificate;
  assert.notEqual(renewed.keyId, bobIssued.keyId);
  await ok(dir, alice, 'keys', 'export', '--id', renewed.keyId, '--reason', 'renewed certificate for Bob', '--pass', 'file:bob-p12.pass', '-o', 'bob-renewed.p12');
  await ok(dir, bob, 'keys', 'import', '--p12', 'bob-renewed.p12', '--pass', 'file:bob-p12.pass');
  await ok(dir, bob, 'decrypt', '-i', 'secret-sealed.eml', '-o', 'secret-read-again.eml');
  assert.match(readFileSync(join(dir, 'secret-read-again.eml'), 'latin1'), /Room 4\.12/);
  // Bob's next signed mail announces the renewed certificate; once Alice has verified it,
  // new mail to him goes to it (until then, his last signed mail named the old one).
  writeFileSync(join(dir, 'renewed.eml'), draft('Bob <bob@example.com>', 'alice@example.com', 'New certificate', 'I have a new certificate.'));
  await ok(dir, bob, 'sign', '--from', 'bob@example.com', '-i', 'renewed.eml', '-o', 'renewed-signed.eml');
  await ok(dir, alice, 'verify', '-i', 'renewed-signed.eml');
  await ok(dir, alice, 'encrypt', '--to', 'bob@example.com', '-i', 'secret.eml', '-o', 'secret2-sealed.eml');
  assert.match(await recipientSerials(dir, alice, 'secret2-sealed.eml'), new RegExp(renewed.serial, 'i'));
  await ok(dir, bob, 'decrypt', '-i', 'secret2-sealed.eml', '-o', 'secret2-read.eml');

  // 7. The expiry report: Bob's certificates expire within 400 days (exit 1 means "something expires").
  const expiring = await runCli(['expiring', '--within', '400'], { env: bob, cwd: dir });
  assert.equal(expiring.status, 1, expiring.stderr);
  assert.match(expiring.stdout.toString(), /bob@example\.com/);
  assert.equal((await runCli(['expiring', '--within', '30'], { env: bob, cwd: dir })).status, 0);

  // 8. Backup, restore into a new home (the database and the master key, kept apart), decrypt the old mail.
  await ok(dir, bob, 'backup', '-o', 'bob-backup.db');
  mkdirSync(join(dir, 'restored-home'), { mode: 0o700 });
  copyFileSync(join(dir, 'bob-backup.db'), join(dir, 'restored-home', 'kakitome.db'));
  copyFileSync(join(dir, 'bob-home', 'master.key'), join(dir, 'restored-home', 'master.key'));
  const restored = userEnv(dir, 'restored-home');
  await ok(dir, restored, 'decrypt', '-i', 'secret-sealed.eml', '-o', 'secret-from-backup.eml');
  assert.match(readFileSync(join(dir, 'secret-from-backup.eml'), 'latin1'), /Room 4\.12/);
}

test('the store tour on SQLite: CA, two users, signed and encrypted mail by address, renewal, backup', async () => {
  await tour();
});

test('the store tour with the CA operator on PostgreSQL', async () => {
  pg = await startPostgres();
  await tour(pg.url);
});

test('errors say what to do: no store, unknown addresses, a key the store does not hold', async () => {
  const dir = workdir();
  writeFileSync(join(dir, 'hello.eml'), draft('Carol <carol@example.com>', 'dave@example.com', 'Hi', 'Hello.'));
  // No store configured at all (no KAKITOME_HOME, no ~/.kakitome): files are required.
  const bare = { ...userEnv(dir, 'unused'), KAKITOME_HOME: '' };
  const noSigner = await runCli(['sign', '-i', 'hello.eml'], { env: bare, cwd: dir });
  assert.equal(noSigner.status, 2);
  assert.match(noSigner.stderr, /--cert FILE --key FILE/);
  assert.match(noSigner.stderr, /kakitome init/);
  const noStoreAddress = await runCli(['encrypt', '--to', 'dave@example.com', '-i', 'hello.eml'], { env: bare, cwd: dir });
  assert.equal(noStoreAddress.status, 2);
  assert.match(noStoreAddress.stderr, /dave@example\.com/);
  assert.match(noStoreAddress.stderr, /key store/);
  const noKey = await runCli(['decrypt', '-i', 'hello.eml'], { env: bare, cwd: dir });
  assert.equal(noKey.status, 2);
  assert.match(noKey.stderr, /--p12 FILE/);
  // A home named explicitly but never initialised.
  const empty = await runCli(['sign', '--from', 'carol@example.com', '-i', 'hello.eml'], { env: { ...bare, KAKITOME_HOME: join(dir, 'nowhere') }, cwd: dir });
  assert.equal(empty.status, 2);
  assert.match(empty.stderr, /No key store in .*nowhere.*kakitome init/);

  const carol = userEnv(dir, 'carol-home');
  await ok(dir, carol, 'init');
  // No CA yet: nothing to sign OCSP answers for, said as such (it printed "Every CA has a current OCSP signing certificate.").
  const noCa = await runCli(['ca', 'ocsp-signer'], { env: carol, cwd: dir });
  assert.equal(noCa.status, 1, noCa.stderr);
  assert.match(noCa.stderr, /NOT_FOUND.*no internal CA.*kakitome ca init/s);
  await ok(dir, carol, 'ca', 'init', '--name', 'Carol Corp', '--key-type', 'p256');
  await ok(dir, carol, 'ca', 'issue', '--email', 'carol@example.com', '--key-type', 'p256');
  const unknownSigner = await runCli(['sign', '--from', 'erin@example.com', '-i', 'hello.eml'], { env: carol, cwd: dir });
  assert.equal(unknownSigner.status, 2);
  assert.match(unknownSigner.stderr, /no current signing key for erin@example\.com.*kakitome ca issue --email erin@example\.com/s);
  const unknownRecipient = await runCli(['encrypt', '--to', 'dave@example.com', '-i', 'hello.eml', '-o', 'out.eml'], { env: carol, cwd: dir });
  assert.equal(unknownRecipient.status, 2);
  assert.match(unknownRecipient.stderr, /No current certificate for dave@example\.com/);
  assert.match(unknownRecipient.stderr, /kakitome certs import/);
  assert.match(unknownRecipient.stderr, /signed message from dave@example\.com/);
  assert.throws(() => readFileSync(join(dir, 'out.eml')), 'a failed command leaves no OUT file');
  // Without --from, the From address picks the identity.
  await ok(dir, carol, 'sign', '-i', 'hello.eml', '-o', 'hello-signed.eml');
  assert.match((await ok(dir, carol, 'verify', '-i', 'hello-signed.eml')).stderr, /^OK: Signed by carol@example\.com/);
  // A message for a key held elsewhere: the store cannot open it (exit 1, NOT_RECIPIENT).
  await ok(dir, carol, 'encrypt', '--to', 'carol@example.com', '-i', 'hello.eml', '-o', 'sealed.eml');
  // The store finds the envelope's keys under an outer signature too (opaque, or multipart/signed).
  await ok(dir, carol, 'sign', '--opaque', '-i', 'sealed.eml', '-o', 'signed-sealed.eml');
  await ok(dir, carol, 'sign', '-i', 'sealed.eml', '-o', 'detached-sealed.eml');
  for (const f of ['signed-sealed.eml', 'detached-sealed.eml']) {
    const r = await ok(dir, carol, 'decrypt', '-i', f, '-o', `${f}.plain`);
    assert.match(r.stderr, /^OK: Decrypted\. Signed by carol@example\.com/);
    assert.match(readFileSync(join(dir, `${f}.plain`), 'latin1'), /Hello\./);
  }
  const other = userEnv(dir, 'other-home');
  await ok(dir, other, 'init');
  const notMine = await runCli(['decrypt', '-i', 'sealed.eml'], { env: other, cwd: dir });
  assert.equal(notMine.status, 1, notMine.stderr);
  assert.match(notMine.stderr, /NOT_RECIPIENT|holds no private key/);
});
