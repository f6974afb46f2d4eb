import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { TestPki } from '../helpers/pki.ts';
import { BIN, draftMessage, runCli, runProcess } from './run-cli.ts';
import { formatMboxEntry, splitMbox } from '../../src/mime/mbox.ts';
import { createReadStream } from 'node:fs';
import { spawn } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';

const pki = new TestPki('CLI Batch Root');
const alice = pki.identity('rsa2048', 'alice');
const bob = pki.identity('rsa2048', 'bob');
const dir = pki.dir;
test.after(() => pki.cleanup());

const COUNT = 12;
const good = (i: number) => draftMessage(alice.email, bob.email, `batch message ${i}`, `Body ${i}\r\nFrom the desk of Alice\r\n`);
const bad = Buffer.from('this is not a message: no header section\r\n');

/** JSON Lines output of a batch, parsed (loosely typed: the shape is what is under test). */
function jsonLines(out: Buffer): any[] {
  return out.toString('utf8').trim().split('\n').map((l) => JSON.parse(l));
}

async function readMbox(path: string): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const e of splitMbox(createReadStream(path), 1 << 24)) out.push(e.message!);
  return out;
}

test('directory batch: every .eml signed into OUTDIR under its name; one bad message is reported and skipped; --json gives JSON Lines', async () => {
  const inDir = join(dir, 'outbox');
  const outDir = join(dir, 'signed');
  mkdirSync(inDir);
  for (let i = 0; i < COUNT; i++) writeFileSync(join(inDir, `m${String(i).padStart(2, '0')}.eml`), good(i));
  writeFileSync(join(inDir, 'm05-bad.eml'), bad);
  writeFileSync(join(inDir, 'notes.txt'), 'not an .eml: ignored');
  const r = await runCli(['sign', '--cert', alice.certPath, '--key', alice.keyPath, '-i', inDir, '-o', outDir, '--jobs', '2']);
  assert.equal(r.status, 2, 'the worst message (malformed) sets the status');
  assert.match(r.stderr, /m05-bad\.eml: MALFORMED: .*\(skipped\)/);
  assert.match(r.stderr, new RegExp(`${COUNT} of ${COUNT + 1} messages signed, 1 failed`));
  assert.ok(!r.stderr.includes('\x1b['), 'no progress bar when stderr is not a terminal');
  const written = readdirSync(outDir).sort();
  assert.equal(written.length, COUNT);
  assert.ok(!written.includes('m05-bad.eml') && !written.includes('notes.txt'));
  // The whole signed directory verifies as a batch, with a JSON report in input order.
  const v = await runCli(['verify', '--ca', pki.caPath, '-i', outDir, '-o', join(dir, 'verified'), '--json']);
  assert.equal(v.status, 0, v.stderr);
  const lines = jsonLines(v.stdout);
  const summary = lines.pop()!;
  assert.equal(summary.type, 'summary');
  assert.equal(summary.total, COUNT);
  assert.equal(summary.failed, 0);
  assert.deepEqual(lines.map((l) => l.name).sort(), written);
  assert.ok(lines.every((l) => l.type === 'message' && l.exitCode === 0 && l.verdict.status === 'trusted'));
  assert.match(readFileSync(join(dir, 'verified', 'm03.eml'), 'utf8'), /^Subject: batch message 3\r$/m);
  // OUTDIR may not be the input directory.
  const same = await runCli(['sign', '--cert', alice.certPath, '--key', alice.keyPath, '-i', inDir, '-o', inDir]);
  assert.equal(same.status, 2);
  assert.match(same.stderr, /input directory/);
});

test('mbox batch: sign, encrypt and decrypt keep order and From_ lines; a bad message is skipped, never lost among the others', async () => {
  const inPath = join(dir, 'outbox.mbox');
  const parts: Buffer[] = [];
  for (let i = 0; i < COUNT; i++) {
    if (i === 4) parts.push(formatMboxEntry('mallory@example.com Mon Nov 23 12:00:00 2026', bad));
    parts.push(formatMboxEntry(`alice@example.com Mon Nov 23 12:00:${String(i).padStart(2, '0')} 2026`, good(i)));
  }
  writeFileSync(inPath, Buffer.concat(parts));
  const signedPath = join(dir, 'signed.mbox');
  const s = await runCli(['sign', '--cert', alice.certPath, '--key', alice.keyPath, '-i', inPath, '-o', signedPath]);
  assert.equal(s.status, 2);
  assert.match(s.stderr, /message 5: MALFORMED/);
  const signed = await readMbox(signedPath);
  assert.equal(signed.length, COUNT);
  const fromLines = readFileSync(signedPath, 'latin1').split('\n').filter((l) => l.startsWith('From '));
  assert.equal(fromLines[0], 'From alice@example.com Mon Nov 23 12:00:00 2026');
  assert.equal(fromLines[COUNT - 1], `From alice@example.com Mon Nov 23 12:00:${COUNT - 1} 2026`);
  assert.ok(signed.every((m, i) => m.toString('latin1').includes(`Subject: batch message ${i}\r\n`)));
  // mboxrd: the body line "From the desk..." is stored quoted in the file and read back unquoted.
  assert.match(readFileSync(signedPath, 'latin1'), /^>From the desk of Alice\r$/m);
  assert.ok(signed.every((m) => /\nFrom the desk of Alice\r\n/.test(m.toString('latin1'))));

  const sealedPath = join(dir, 'sealed.mbox');
  const e = await runCli(['encrypt', '--to', bob.certPath, '-i', signedPath, '-o', sealedPath, '--jobs', '3']);
  assert.equal(e.status, 0, e.stderr);
  const plainPath = join(dir, 'plain.mbox');
  const d = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '--ca', pki.caPath, '-i', sealedPath, '-o', plainPath, '--json']);
  assert.equal(d.status, 0, d.stderr);
  const lines = jsonLines(d.stdout);
  assert.equal(lines.pop()!.succeeded, COUNT);
  // mbox results are reported in input order.
  assert.deepEqual(lines.map((l) => l.index), Array.from({ length: COUNT }, (_, i) => i));
  assert.ok(lines.every((l) => l.verdict.status === 'trusted'));
  const plain = await readMbox(plainPath);
  assert.equal(plain.length, COUNT);
  plain.forEach((m, i) => {
    const t = m.toString('utf8');
    assert.match(t, new RegExp(`Body ${i}`));
    assert.match(t, /\nFrom the desk of Alice\r\n/);
  });
});

test('mbox batch of many blocks: every signed entry in its place and whole while the output buffers are recycled (entries of other lengths before them, a block too large for one)', async () => {
  // About 200 blocks (the whole file, 1.4 MB, is under the 1.5 MiB tail: blocks of 8 KiB),
  // far more than the spare output buffers in circulation: each is written over many
  // times, by entries longer and shorter than the last ones in it. Message 300 needs
  // more than a spare holds (600 KiB of body), so its block gets a buffer of its own.
  const inPath = join(dir, 'many-blocks.mbox');
  const count = 1_400;
  const line = (i: number) => `${`${i} `.repeat(9)}${i}\r\n`;
  const body = (i: number) => `Body ${i}\r\n${line(i).repeat(i === 300 ? 12_000 : 4 + (i * 37) % 30)}From the desk of Alice\r\n`;
  const parts: Buffer[] = [];
  for (let i = 0; i < count; i++) parts.push(formatMboxEntry(`alice@example.com Mon Nov 23 12:00:00 2026`, draftMessage(alice.email, bob.email, `many ${i}`, body(i))));
  writeFileSync(inPath, Buffer.concat(parts));
  const outPath = join(dir, 'many-blocks-signed.mbox');
  const s = await runCli(['sign', '--cert', alice.certPath, '--key', alice.keyPath, '-i', inPath, '-o', outPath, '--jobs', '2']);
  assert.equal(s.status, 0, s.stderr);
  const signed = await readMbox(outPath);
  assert.equal(signed.length, count);
  signed.forEach((m, i) => {
    const t = m.toString('latin1');
    assert.ok(t.includes(`Subject: many ${i}\r\n`) && t.includes(body(i)), `entry ${i} is message ${i}, whole`);
  });
  // A real peer checks entries early, late, after the large one, and the large one.
  for (const i of [0, 299, 300, 301, count - 1]) {
    const file = join(dir, `many-${i}.eml`);
    writeFileSync(file, signed[i]!);
    const o = await runProcess('openssl', ['smime', '-verify', '-CAfile', pki.caPath, '-in', file, '-out', join(dir, `many-${i}.txt`)]);
    assert.equal(o.status, 0, `entry ${i}: openssl: ${o.stderr}`);
    assert.ok(readFileSync(join(dir, `many-${i}.txt`), 'latin1').includes(`${i} ${i} `));
  }
});

test('on a terminal, a progress bar is drawn on stderr and ends at the total', async () => {
  const inDir = join(dir, 'tty-in');
  mkdirSync(inDir);
  for (let i = 0; i < 4; i++) writeFileSync(join(inDir, `t${i}.eml`), good(i));
  // util-linux script(1) gives the child a real pseudo-terminal.
  const command = [process.execPath, BIN, 'sign', '--cert', alice.certPath, '--key', alice.keyPath, '-i', inDir, '-o', join(dir, 'tty-out'), '--jobs', '2']
    .map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = await runProcess('script', ['-qec', `${command} 2>&1 >/dev/null`, '/dev/null']);
  assert.equal(r.status, 0, r.stderr);
  const tty = r.stdout.toString('utf8');
  assert.match(tty, /\r\x1b\[Ksign \[#{28}\] 4\/4 /);
  // A new OUTDIR's outputs move the bar when staged, and are not counted again when published.
  assert.doesNotMatch(tty, /\] [5-9]\/4 /);
  assert.match(tty, /4 of 4 messages signed, 0 failed/);
});

test('a batch with credentials that do not work fails up front (exit 2) and writes nothing', async () => {
  const inDir = join(dir, 'outbox2');
  mkdirSync(inDir);
  writeFileSync(join(inDir, 'a.eml'), good(1));
  const outDir = join(dir, 'never');
  const r = await runCli(['sign', '--cert', alice.certPath, '--key', bob.keyPath, '-i', inDir, '-o', outDir]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /KEY_INVALID/);
  assert.equal(existsSync(outDir), false, 'OUTDIR is not even created');
  // The worker's error crosses to the main thread with its remedy: the CLI names its flag for it.
  const locked = join(dir, 'alice-locked.key');
  writeFileSync(locked, createPrivateKey(readFileSync(alice.keyPath)).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' }));
  const noPass = await runCli(['sign', '--cert', alice.certPath, '--key', locked, '-i', inDir, '-o', outDir]);
  assert.equal(noPass.status, 2);
  assert.match(noPass.stderr, /KEY_INVALID: .*give its passphrase\.\n  Give the passphrase with --pass /);
  assert.equal(existsSync(outDir), false);
});

test('an interrupted batch (SIGINT) leaves neither the mbox OUT nor its temporary file', async () => {
  const inPath = join(dir, 'long.mbox');
  const entries: Buffer[] = [];
  for (let i = 0; i < 3000; i++) entries.push(formatMboxEntry('alice@example.com Mon Nov 23 12:00:00 2026', good(i)));
  writeFileSync(inPath, Buffer.concat(entries));
  const outDir = join(dir, 'interrupted');
  mkdirSync(outDir);
  const outPath = join(outDir, 'long-signed.mbox');
  const child = spawn(process.execPath, [BIN, 'sign', '--cert', alice.certPath, '--key', alice.keyPath, '-i', inPath, '-o', outPath, '--jobs', '1'], { stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  // Interrupt once the temporary output exists, i.e. in the middle of writing.
  const deadline = Date.now() + 20_000;
  while (!readdirSync(outDir).some((n) => n.endsWith('.tmp')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(readdirSync(outDir).some((n) => n.endsWith('.tmp')), 'the batch started writing');
  child.kill('SIGINT');
  assert.equal(await exited, 'SIGINT', 'it cleans up, then ends by the signal (status 130 to a shell)');
  assert.deepEqual(readdirSync(outDir), []);
});

test('decrypt batch: a message written although its verdict fails (untrusted inner signer) is counted apart, never as failed; unwritten ones are the failures', async () => {
  // issue 12 item 7: the summary counted such a message as failed after writing its decrypted output.
  const { encryptMessage } = await import('../../src/smime/encrypt-message.ts');
  const { signMessage } = await import('../../src/smime/sign-message.ts');
  const stranger = new TestPki('CLI Batch Stranger Root');
  try {
    const carol = stranger.identity('rsa2048', 'carol');
    const inDir = join(dir, 'sealed-batch');
    const outDir = join(dir, 'opened-batch');
    mkdirSync(inDir);
    const sealed = (from: typeof alice) => encryptMessage(signMessage(draftMessage(from.email, bob.email, `from ${from.email}`, 'Quarterly figures.\r\n'), { signers: [{ certificate: from.cert, key: from.key }] }), { recipients: [{ certificate: bob.cert }] });
    writeFileSync(join(inDir, 'a-trusted.eml'), sealed(alice));
    writeFileSync(join(inDir, 'b-untrusted.eml'), sealed(carol));
    writeFileSync(join(inDir, 'c-bad.eml'), bad);
    const r = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '--ca', pki.caPath, '--revocation', 'off', '-i', inDir, '-o', outDir, '--json', '--jobs', '1']);
    const lines = jsonLines(r.stdout);
    const summary = lines.pop()!;
    assert.deepEqual(readdirSync(outDir).sort(), ['a-trusted.eml', 'b-untrusted.eml'], 'the untrusted one stays readable (archives)');
    const byName = new Map(lines.map((l) => [l.name, l]));
    assert.equal(byName.get('b-untrusted.eml').written, true);
    assert.equal(byName.get('b-untrusted.eml').exitCode, 1);
    assert.equal(byName.get('c-bad.eml').written, false);
    assert.deepEqual({ total: summary.total, succeeded: summary.succeeded, flagged: summary.flagged, failed: summary.failed, status: summary.status }, { total: 3, succeeded: 1, flagged: 1, failed: 1, status: 'failed' });
    assert.match(r.stderr, /b-untrusted\.eml: .*\(written\)/);
    assert.match(r.stderr, /c-bad\.eml: .*\(skipped\)/);
    assert.match(r.stderr, /1 of 3 messages decrypted, 1 decrypted and written with a problem \(see their reports\), 1 failed/);
  } finally {
    stranger.cleanup();
  }
});

test('directory batch of a large directory (its workers start before it is listed) with few messages in it: the workers it does not need end, and every message is signed', async () => {
  const inDir = join(dir, 'large-outbox');
  mkdirSync(inDir);
  // Enough entries for a directory larger than 16 KiB on ext4, tmpfs or btrfs.
  for (let i = 0; i < 1500; i++) writeFileSync(join(inDir, `attachment-with-a-long-name-${String(i).padStart(4, '0')}.txt`), '');
  for (let i = 0; i < 3; i++) writeFileSync(join(inDir, `m${i}.eml`), good(i));
  const outDir = join(dir, 'large-signed');
  const r = await runCli(['sign', '--cert', alice.certPath, '--key', alice.keyPath, '-i', inDir, '-o', outDir, '--jobs', '3']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /3 of 3 messages signed, 0 failed/);
  assert.deepEqual(readdirSync(outDir).sort(), ['m0.eml', 'm1.eml', 'm2.eml']);
  const v = await runCli(['verify', '--ca', pki.caPath, '-i', outDir, '-o', join(dir, 'large-verified')]);
  assert.equal(v.status, 0, v.stderr);
});
