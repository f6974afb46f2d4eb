/**
 * `kakitome sign --dkim` through the real launcher: S/MIME with the store's identity,
 * then DKIM with the From domain's key; dkimpy verifies the DKIM signature over DNS
 * (dnsmasq on loopback), openssl cms the S/MIME one. Without a DKIM key, or with a
 * signer from files, nothing is written.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { draftMessage, runCli } from './run-cli.ts';
import { startDnsServer } from '../helpers/dns-server.ts';
import { dkimpyVerify } from '../peers/dkimpy.ts';
import { runPeer } from '../peers/run-peer.ts';

const home = mkdtempSync(join(tmpdir(), 'kakitome-cli-dkim-'));
after(() => rmSync(home, { recursive: true, force: true }));
const env = { ...process.env, KAKITOME_HOME: join(home, 'store'), KAKITOME_MASTER_KEY: '', KAKITOME_DATABASE_URL: '' };
const kk = (...args: string[]) => runCli(args, { env });

test('sign --dkim: S/MIME then DKIM, each verified by an independent tool', async () => {
  assert.equal((await kk('init')).status, 0);
  assert.equal((await kk('ca', 'init', '--name', 'DKIM CLI Corp', '-o', join(home, 'root.pem'))).status, 0);
  assert.equal((await kk('ca', 'issue', '--email', 'alice@example.com', '-o', join(home, 'alice.pem'))).status, 0);
  assert.equal((await kk('ca', 'issue', '--email', 'bob@nokey.example', '-o', join(home, 'bob.pem'))).status, 0);
  const added = await kk('dkim', 'add', 'example.com', '--selector', 'cli1', '--json');
  assert.equal(added.status, 0, added.stderr);
  const record = JSON.parse(added.stdout.toString()).key.dns as { name: string; value: string };
  const dns = await startDnsServer({ zones: ['example.com'], txt: [[record.name, record.value]] });
  try {
    writeFileSync(join(home, 'draft.eml'), draftMessage('Alice <alice@example.com>', 'bob@example.net', 'Signed twice'));
    const r = await kk('sign', '--dkim', '-i', join(home, 'draft.eml'), '-o', join(home, 'signed.eml'));
    assert.equal(r.status, 0, r.stderr);
    const signed = readFileSync(join(home, 'signed.eml'));
    assert.match(signed.toString('latin1'), /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=example\.com; s=cli1;/);
    assert.equal((await dkimpyVerify(signed, dns)).ok, true);
    const v = await runPeer('openssl', ['cms', '-verify', '-in', join(home, 'signed.eml'), '-CAfile', join(home, 'root.pem'), '-purpose', 'smimesign', '-out', '/dev/null']);
    assert.equal(v.status, 0, v.stderr);

    writeFileSync(join(home, 'bob.eml'), draftMessage('bob@nokey.example', 'x@example.net', 'No key'));
    const none = await kk('sign', '--dkim', '-i', join(home, 'bob.eml'), '-o', join(home, 'bob-signed.eml'));
    assert.notEqual(none.status, 0);
    assert.match(none.stderr, /No active DKIM key for nokey\.example/);
    assert.equal(existsSync(join(home, 'bob-signed.eml')), false, 'nothing written');

    const files = await kk('sign', '--dkim', '--cert', join(home, 'alice.pem'), '--key', join(home, 'alice.pem'), '-i', join(home, 'draft.eml'));
    assert.equal(files.status, 2);
    assert.match(files.stderr, /--dkim takes the DKIM keys from the key store/);
  } finally {
    await dns.stop();
  }
});
