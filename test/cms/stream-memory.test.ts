import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { openSync, writeSync, closeSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes, createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { TestPki } from '../helpers/pki.ts';

const pki = new TestPki();
after(() => pki.cleanup());
const id = pki.identity('p256', 'mem');

const MiB = 1024 * 1024;
/** Peak RSS growth allowed over the warmed-up process. Holding the content once would already cost 64 MiB, input plus output 128 MiB. */
const BOUND_MIB = 96;

test('a 64 MiB sign/verify/encrypt/decrypt round trip stays within a bounded RSS in a child process', () => {
  const content = join(pki.dir, 'big.bin');
  const fd = openSync(content, 'w');
  const block = randomBytes(MiB);
  const hash = createHash('sha256');
  for (let i = 0; i < 64; i++) {
    block[0] = i; // distinct blocks
    writeSync(fd, block);
    hash.update(block);
  }
  closeSync(fd);
  const src = (f: string) => JSON.stringify(pathToFileURL(join(import.meta.dirname, '../../src/', f)).href);
  // The child loads the modules, warms up on a small file, takes its RSS as the baseline, then runs the 64 MiB round trip.
  const script = `
    import { readFileSync, writeFileSync } from 'node:fs';
    const { signFile } = await import(${src('cms/stream/sign-stream.ts')});
    const { verifyFile } = await import(${src('cms/stream/verify-stream.ts')});
    const { encryptFile } = await import(${src('cms/stream/encrypt-stream.ts')});
    const { decryptFile } = await import(${src('cms/stream/decrypt-stream.ts')});
    const { parseCertificate } = await import(${src('x509/certificate.ts')});
    const { loadPrivateKey } = await import(${src('keys/private-key.ts')});
    const [dir, certPath, keyPath, big] = process.argv.slice(1);
    const certificate = parseCertificate(readFileSync(certPath));
    const key = loadPrivateKey(readFileSync(keyPath));
    const run = async (input, tag) => {
      await signFile(input, dir + '/' + tag + '.p7m', { signers: [{ certificate, key }] });
      const v = await verifyFile(dir + '/' + tag + '.p7m', { contentPath: dir + '/' + tag + '.ver' });
      if (v.status !== 'valid') throw new Error(v.message);
      await encryptFile(dir + '/' + tag + '.p7m', dir + '/' + tag + '.enc', { recipients: [{ certificate }] });
      await decryptFile(dir + '/' + tag + '.enc', dir + '/' + tag + '.dec', { keys: [{ key, certificate }] });
    };
    writeFileSync(dir + '/small.bin', 'warm-up');
    await run(dir + '/small.bin', 'small');
    const baseline = process.memoryUsage().rss;
    await run(big, 'big');
    console.log(JSON.stringify({ baseline: baseline / 1048576, peak: process.resourceUsage().maxRSS / 1024 }));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script, pki.dir, id.certPath, id.keyPath, content], { encoding: 'utf8' });
  const { baseline, peak } = JSON.parse(out.trim().split('\n').at(-1)!) as { baseline: number; peak: number };
  console.log(`# peak ${peak.toFixed(0)} MiB, baseline ${baseline.toFixed(0)} MiB`);
  assert.ok(peak - baseline < BOUND_MIB, `peak RSS ${peak.toFixed(0)} MiB is ${(peak - baseline).toFixed(0)} MiB above the ${baseline.toFixed(0)} MiB baseline`);
  // And the round trip was real: the verified content and the decrypted signature match.
  assert.equal(createHash('sha256').update(readFileSync(join(pki.dir, 'big.ver'))).digest('hex'), hash.digest('hex'));
  assert.deepEqual(readFileSync(join(pki.dir, 'big.dec')), readFileSync(join(pki.dir, 'big.p7m')));
  assert.equal(existsSync(join(pki.dir, 'big.p7m')), true);
});
