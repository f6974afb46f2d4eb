/**
 * The gateway's pure parts: option validation (a typo is refused at start with
 * what is wrong; the policy's: gateway-policy.test.ts), the Authentication-Results writer against header
 * injection, and the authserv-id reader that decides which arriving fields are
 * forgeries of ours.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseGatewayConfig } from '../../src/gateway/gateway-config.ts';
import { authservIdOf, claimsAuthservId, formatAuthenticationResults } from '../../src/gateway/authentication-results.ts';
import { classifyRecipients } from '../../src/gateway/classify-recipients.ts';
import { replyForMessage, replyForRecipient } from '../../src/smtp/reply-for-outcomes.ts';
import { failedTransform } from '../../src/gateway/transform-message.ts';
import { KakitomeError } from '../../src/errors.ts';

function expectCode(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof KakitomeError && e.code === code && message.test(e.message));
}

const ok = { listen: '127.0.0.1:10025', nextHop: '127.0.0.1:10026', domain: ['Example.COM'] };

test('gateway options: the exact form parses; every wrong value is refused with the option named', async () => {
  const c = parseGatewayConfig({ ...ok, domain: ['example.com', 'example.org'], authservId: 'mx.example.com', policy: 'p.json' });
  assert.deepEqual(c.listen, { host: '127.0.0.1', port: 10025 });
  assert.deepEqual([...c.domains], ['example.com', 'example.org']);
  assert.equal(c.authservId, 'mx.example.com');
  assert.equal(parseGatewayConfig({ ...ok, listen: '[::1]:25' }).listen.host, '::1');
  assert.deepEqual([...parseGatewayConfig(ok, 'h').domains], ['example.com']);
  assert.equal(parseGatewayConfig({ ...ok, workers: '0' }).workers, 0, 'crypto on the main thread');
  assert.equal(parseGatewayConfig({ ...ok, workers: '3' }).workers, 3);
  assert.equal(parseGatewayConfig(ok).workers, (await import('node:os')).availableParallelism() - 1, 'one per CPU but one by default');
  const refused: Array<[object, RegExp]> = [
    [{ ...ok, listen: undefined }, /--listen HOST:PORT/],
    [{ ...ok, nextHop: undefined }, /--next-hop HOST:PORT/],
    [{ ...ok, domain: [] }, /--domain/],
    [{ ...ok, listen: '127.0.0.1' }, /--listen "127\.0\.0\.1": give HOST:PORT/],
    [{ ...ok, listen: '127.0.0.1:0' }, /port must be 1-65535/],
    [{ ...ok, listen: '127.0.0.1:70000' }, /port must be 1-65535/],
    [{ ...ok, nextHop: 'bad host:25' }, /--next-hop/],
    [{ ...ok, nextHop: '127.0.0.1:10025' }, /relay to itself/],
    [{ ...ok, domain: ['*.example.com'] }, /--domain "\*\.example\.com"/],
    [{ ...ok, domain: ['user@example.com'] }, /--domain/],
    [{ ...ok, authservId: 'mx;smime=pass' }, /--authserv-id/],
    [{ ...ok, metrics: 'localhost' }, /--metrics/],
    [{ ...ok, workers: '-1' }, /--workers "-1": give the number of crypto worker threads, 0/],
    [{ ...ok, workers: '65' }, /--workers "65"/],
    [{ ...ok, workers: 'two' }, /--workers "two"/],
  ];
  for (const [o, message] of refused) expectCode(() => parseGatewayConfig(o), 'INVALID_ARGUMENT', message);
});

test('Authentication-Results: hostile text in the reason or signer cannot add a header field or a result', () => {
  const field = formatAuthenticationResults('mx.example.com', {
    result: 'fail',
    code: 'BAD_SIG',
    reason: 'bad "quote" \\ and\r\nX-Injected: yes; smime=pass',
    signer: { email: 'evil"@x; smime=pass', serial: '0A1B' },
  }).toString('latin1');
  const lines = field.split('\r\n').filter(Boolean);
  assert.ok(lines.every((l, i) => i === 0 || /^[ \t]/.test(l)), `one field, folded only: ${field}`);
  assert.equal((field.match(/smime=/g) ?? []).length, 3, 'the result, and the two quoted attempts');
  assert.match(field.replace(/\r\n[ \t]/g, ' '), /^Authentication-Results: mx\.example\.com; smime=fail reason="bad \\"quote\\" \\\\ and\?\?X-Injected: yes; smime=pass"/);
  assert.match(field.replace(/\r\n[ \t]/g, ' '), /smime\.smime-identifier="evil\\"@x; smime=pass"/);
  assert.match(field, /smime\.verdict-code=BAD_SIG/);
});

test('authserv-id: read past comments and quotes, compared case-insensitively', () => {
  assert.equal(authservIdOf('mx.example.com; smime=pass'), 'mx.example.com');
  assert.equal(authservIdOf(' (a (nested) comment) MX.Example.COM 1; none'), 'mx.example.com');
  assert.equal(authservIdOf('"mx.example.com"; none'), 'mx.example.com');
  assert.equal(authservIdOf('mx.example.com.evil; none'), 'mx.example.com.evil');
  const field = (value: string) => ({ name: 'authentication-RESULTS', value, raw: Buffer.alloc(0) });
  assert.equal(claimsAuthservId(field('MX.example.com;smime=pass'), 'mx.example.com'), true);
  assert.equal(claimsAuthservId(field('mx.example.com.evil; smime=pass'), 'mx.example.com'), false);
  assert.equal(claimsAuthservId(field('(unclosed comment mx.example.com; smime=pass'), 'mx.example.com'), false);
});

test('directions: our recipients are inbound whoever sends; outside recipients of our senders outbound; the rest passes', () => {
  const d = classifyRecipients('alice@Corp.test', ['bob@corp.test', 'carol@example.com'], new Set(['corp.test']));
  assert.deepEqual(d.get('inbound'), ['bob@corp.test']);
  assert.deepEqual(d.get('outbound'), ['carol@example.com']);
  const bounce = classifyRecipients('', ['x@example.com'], new Set(['corp.test']));
  assert.deepEqual(bounce.get('pass'), ['x@example.com']);
  assert.deepEqual(classifyRecipients('eve@corp.test.evil', ['y@example.com'], new Set(['corp.test'])).get('pass'), ['y@example.com']);
});

test('SMTP reply for many copies: 250 only when all were accepted; any deferral is 451; only refusals pass the 5xx back', () => {
  const a = { recipient: 'a', status: 'accepted' as const, code: 250, response: 'ok' };
  const t = { recipient: 't', status: 'temporary' as const, code: 451, response: 'later' };
  const p = { recipient: 'p', status: 'permanent' as const, code: 550, response: 'no' };
  assert.equal(replyForMessage([a, a]).code, 250);
  assert.equal(replyForMessage([a, t, p]).code, 451);
  assert.equal(replyForMessage([a, p]).code, 550);
  assert.equal(replyForMessage([]).code, 451);
});

test('SMTP reply with deferrals: how many recipients were deferred, and the first cause, never a copy only held back for another\'s', () => {
  const a = { recipient: 'a@example.com', status: 'accepted' as const, code: 250, response: 'ok' };
  const p = { recipient: 'p@example.com', status: 'permanent' as const, code: 550, response: '550 5.1.1 no such user' };
  const heldBack = { recipient: 'h@example.com', status: 'temporary' as const, code: 451, response: 'Held back: another copy of the message could not be made; try again later.', own: { enhanced: '4.3.0' }, heldBack: true as const };
  const failed = { recipient: 'f@example.com', status: 'temporary' as const, code: 451, response: 'The gateway could not process the message (INTERNAL); try again later.', own: { enhanced: '4.3.0' } };
  const busy = { recipient: 'b@example.com', status: 'temporary' as const, code: 450, response: '450 4.2.0 mailbox busy' };
  let r = replyForMessage([heldBack, a, failed, p]);
  assert.deepEqual([r.code, r.enhanced], [451, '4.3.0']);
  assert.equal(r.text, 'Not every copy was relayed: 2 of 4 recipients deferred (1 accepted, 1 refused); the first cause, for <f@example.com>: The gateway could not process the message (INTERNAL); try again later.');
  r = replyForMessage([a, busy, { ...busy, recipient: 'c@example.com', response: '451 4.3.0 later' }]);
  assert.deepEqual([r.code, r.enhanced], [451, '4.4.0']);
  assert.equal(r.text, 'The next hop did not accept every copy yet: 2 of 3 recipients deferred (1 accepted, 0 refused); the first cause, for <b@example.com>: 450 4.2.0 mailbox busy; try again later.');
});

test('a copy the gateway could not make (the store down) is its own 451 4.3.0 naming the system code, never "the next hop did not accept"', () => {
  const down = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
  const { groups, errorCode } = failedTransform('outbound', ['carol@example.com'], down);
  assert.equal(errorCode, 'INTERNAL', 'the metric label stays the code');
  assert.equal(groups[0]!.failure!.cause, 'ECONNREFUSED');
  const outcome = { recipient: 'carol@example.com', ...groups[0]!.failure! };
  const whole = replyForMessage([outcome]);
  assert.deepEqual([whole.code, whole.enhanced], [451, '4.3.0']);
  assert.equal(whole.text, 'Not every copy was relayed: 1 of 1 recipients deferred (0 accepted, 0 refused); the first cause, for <carol@example.com>: The gateway could not process the message (INTERNAL: ECONNREFUSED); try again later.');
  assert.equal(replyForRecipient(outcome).text, 'The gateway could not process the message (INTERNAL: ECONNREFUSED); try again later.', 'LMTP');
  assert.doesNotMatch(whole.text, /5432|127\.0\.0\.1/, 'no address of the store: the reply may reach a client (before-queue)');
  // A code that is not a plain token is left out; a next hop's deferral still says it was the next hop.
  assert.equal(failedTransform('inbound', ['a@corp.test'], Object.assign(new Error('x'), { code: 'odd code: 127.0.0.1' })).groups[0]!.failure!.cause, undefined);
  assert.match(replyForMessage([{ recipient: 't', status: 'temporary', code: 451, response: '451 4.3.0 Error: queue file write error' }]).text, /^The next hop did not accept every copy yet/);
});

test('kakitome gateway (the real launcher): a wrong option or a missing store exits 2 at start, saying what to give', async () => {
  const { runCli, USER_COMPILE_CACHE } = await import('../cli/run-cli.ts');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-gw-cli-'));
  try {
    const env = { ...process.env, ...USER_COMPILE_CACHE, HOME: dir, KAKITOME_HOME: '', KAKITOME_DATABASE_URL: '' };
    const bad = await runCli(['gateway', '--listen', '127.0.0.1', '--next-hop', '127.0.0.1:10026', '--domain', 'example.com'], { env });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--listen "127\.0\.0\.1": give HOST:PORT/);
    const noStore = await runCli(['gateway', '--listen', '127.0.0.1:10025', '--next-hop', '127.0.0.1:10026', '--domain', 'example.com'], { env });
    assert.equal(noStore.status, 2);
    assert.match(noStore.stderr, /gateway needs a key store/);
    const missingHome = await runCli(['gateway', '--listen', '127.0.0.1:10025', '--next-hop', '127.0.0.1:10026', '--domain', 'example.com', '--home', join(dir, 'none')], { env });
    assert.equal(missingHome.status, 2);
    assert.match(missingHome.stderr, /No key store in .*kakitome init/);
    // A port another process holds: the error names the address, not a file.
    const { createServer } = await import('node:net');
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const held = (holder.address() as { port: number }).port;
    try {
      const home = join(dir, 'store');
      assert.equal((await runCli(['init', '--home', home], { env })).status, 0);
      const inUse = await runCli(['gateway', '--listen', `127.0.0.1:${held}`, '--next-hop', '127.0.0.1:10026', '--domain', 'example.com', '--home', home, '--workers', '0'], { env });
      assert.equal(inUse.status, 2, inUse.stderr);
      assert.match(inUse.stderr, new RegExp(`127\\.0\\.0\\.1:${held}: address already in use\\.\\n  Another process listens there`));
    } finally {
      holder.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the log (pino): one JSON line per event with the gateway\'s fields only: level, time, event, then the event\'s own', async () => {
  const { createGatewayLog } = await import('../../src/gateway/gateway-log.ts');
  const lines: string[] = [];
  const log = createGatewayLog((line) => lines.push(line));
  log('message', { queueId: 'Q1', recipients: 2, groups: [{ direction: 'outbound', action: 'signed' }], reply: 250, ms: 1.5 });
  log('reload-failed', { error: 'bad file' });
  assert.equal(lines.length, 2);
  assert.ok(lines.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n')));
  const first = JSON.parse(lines[0]!);
  assert.deepEqual(Object.keys(first), ['level', 'time', 'event', 'queueId', 'recipients', 'groups', 'reply', 'ms']);
  assert.equal(first.level, 'info');
  assert.match(first.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.deepEqual(JSON.parse(lines[1]!), { ...JSON.parse(lines[1]!), level: 'warn', event: 'reload-failed', error: 'bad file' });
});
