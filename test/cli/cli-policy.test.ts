/**
 * `kakitome policy show|set|unset|import|export` through the real launcher (issue 13,
 * "Policy"): levels set and unset, the resolved policy with each value's level,
 * export and import round trip (a flat file replaces only the global level), and
 * bad input refused with exit 2 naming the setting, the level or the file, with
 * nothing changed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, USER_COMPILE_CACHE } from './run-cli.ts';

let dir: string;
let env: NodeJS.ProcessEnv;

async function ok(...args: string[]): Promise<string> {
  const r = await runCli(args, { env, cwd: dir });
  assert.equal(r.status, 0, `kakitome ${args.join(' ')}\n${r.stderr}`);
  return r.stdout.toString();
}

async function refused(args: string[], message: RegExp): Promise<void> {
  const r = await runCli(args, { env, cwd: dir });
  assert.equal(r.status, 2, `kakitome ${args.join(' ')} should exit 2\n${r.stderr}`);
  assert.match(r.stderr, message);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kakitome-cli-policy-'));
  mkdirSync(join(dir, 'user'));
  env = { ...process.env, ...USER_COMPILE_CACHE, HOME: join(dir, 'user'), KAKITOME_HOME: join(dir, 'home'), KAKITOME_DATABASE_URL: '' };
  delete env.KAKITOME_MASTER_KEY;
  await ok('init');
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('policy set, show --for, unset: address overrides domain overrides global, and show says which level set each value', async () => {
  await ok('policy', 'set', 'encrypt', 'never');
  await ok('policy', 'set', '--domain', 'Corp.Test', 'encrypt', 'required');
  await ok('policy', 'set', '--address', 'ceo@corp.test', 'encrypt', 'if-possible');
  await ok('policy', 'set', '--domain', 'corp.test', 'subjectTriggers', '[secure]', '[暗号化]');
  await ok('policy', 'set', 'sign', 'off');
  const resolved = (who: string) => ok('policy', 'show', '--for', who, '--json').then((t) => JSON.parse(t).settings);
  let ceo = await resolved('ceo@corp.test');
  assert.deepEqual(ceo.encrypt, { value: 'if-possible', source: 'address ceo@corp.test' });
  assert.deepEqual(ceo.subjectTriggers, { value: ['[secure]', '[暗号化]'], source: 'domain corp.test' });
  assert.deepEqual(ceo.sign, { value: false, source: 'global' });
  assert.deepEqual(ceo.missingCertificate, { value: 'bounce', source: 'default' });
  assert.deepEqual((await resolved('alice@corp.test')).encrypt, { value: 'required', source: 'domain corp.test' });
  assert.deepEqual((await resolved('x@other.test')).encrypt, { value: 'never', source: 'global' });
  assert.match(await ok('policy', 'show', '--for', 'ceo@corp.test'), /^encrypt\s+"if-possible"\s+\(address ceo@corp\.test\)$/m);
  assert.match(await ok('policy', 'unset', '--address', 'ceo@corp.test', 'encrypt'), /1 of 1 setting/);
  ceo = await resolved('ceo@corp.test');
  assert.deepEqual(ceo.encrypt, { value: 'required', source: 'domain corp.test' }, 'unset: the domain shows through');
  assert.deepEqual(JSON.parse(await ok('policy', 'show', '--domain', 'corp.test', '--json')).settings, { encrypt: 'required', subjectTriggers: ['[secure]', '[暗号化]'] });
});

test('policy export and import: a round trip; a flat file replaces only the global level; --merge sets over', async () => {
  const exported = await ok('policy', 'export');
  const doc = JSON.parse(exported);
  assert.deepEqual(doc.global, { encrypt: 'never', sign: false });
  assert.deepEqual(doc.domains['corp.test'].encrypt, 'required');
  const file = join(dir, 'policy.json');
  await ok('policy', 'export', '-o', file);
  assert.equal(readFileSync(file, 'utf8'), exported);
  assert.match(await ok('policy', 'import', file), /already holds this policy; nothing changed/);
  writeFileSync(join(dir, 'flat.json'), JSON.stringify({ revocation: 'allow-unknown' }));
  await ok('policy', 'import', join(dir, 'flat.json'));
  let now = JSON.parse(await ok('policy', 'export'));
  assert.deepEqual(now.global, { revocation: 'allow-unknown' });
  assert.deepEqual(now.domains, doc.domains, 'a flat file never erases domain levels');
  writeFileSync(join(dir, 'merge.json'), JSON.stringify({ domains: { 'new.test': { hideSubject: true } } }));
  await ok('policy', 'import', '--merge', join(dir, 'merge.json'));
  now = JSON.parse(await ok('policy', 'export'));
  assert.deepEqual(Object.keys(now.domains).sort(), ['corp.test', 'new.test']);
  await ok('policy', 'import', file);
  assert.equal(await ok('policy', 'export'), exported, 'the export restores everything');
});

test('bad input exits 2 naming the setting, level or file, and changes nothing', async () => {
  const before = await ok('policy', 'export');
  await refused(['policy', 'set', 'encrypt', 'sometimes'], /"encrypt" must be "never", "if-possible" or "required"; it is "sometimes"/);
  await refused(['policy', 'set', 'sing', 'true'], /unknown setting "sing"/);
  await refused(['policy', 'set', '--domain', 'corp.test', 'maxConnections', '5'], /"maxConnections" is process-wide and is set at the global level only/);
  await refused(['policy', 'set', '--domain', '*.corp.test', 'sign', 'on'], /not a mail domain/);
  await refused(['policy', 'set', '--address', 'nobody', 'sign', 'on'], /not a mail address/);
  await refused(['policy', 'set', '--domain', 'a.test', '--address', 'b@a.test', 'sign', 'on'], /not both/);
  await refused(['policy', 'set', 'skipSignDomains', 'ok.example', 'not a domain'], /"skipSignDomains" must be a list of at most 64 mail domains/);
  await refused(['policy', 'set', 'relayTimeoutMs', '10'], /"relayTimeoutMs" must be an integer from 1000/);
  await refused(['policy', 'unset', 'sing'], /unknown setting "sing"/);
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ global: { sign: true }, addresses: { 'ceo@corp.test': { missingCertificate: 'drop' } } }));
  await refused(['policy', 'import', join(dir, 'bad.json')], /bad\.json, address ceo@corp\.test: "missingCertificate" must be "bounce" or "hold"/);
  await refused(['policy', 'import', join(dir, 'missing.json')], /cannot read it/);
  assert.equal(await ok('policy', 'export'), before, 'nothing of a refused file or value was stored');
});

test('gateway held release and bounce of an unknown id point at gateway held list', async () => {
  for (const action of ['release', 'bounce']) {
    const r = await runCli(['gateway', 'held', action, '7ee64f0d235162da34cfb7dac8838711', '--via', '127.0.0.1:9'], { env, cwd: dir });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /NOT_FOUND: No held message 7ee64f0d235162da34cfb7dac8838711 \(released or bounced already\?\)\.\n {2}The held messages and their ids: kakitome gateway held list\./);
  }
});
