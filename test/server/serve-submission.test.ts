/**
 * SMTP submission (issue 10): a real client (nodemailer, STARTTLS verified against
 * the test's certificate, AUTH with the tenant name and an API key) sends to the
 * submission port, which signs by From and relays to a real SMTP sink
 * (test/gateway's Sink); what arrives is verified with `openssl cms -verify`.
 * The no-loss rule: 250 only after the relay accepted, 4xx whenever it did not or
 * the store or the service failed, 5xx (and nothing relayed) for a message the
 * signing rules refuse. Through `kakitome serve` and a real Postfix:
 * serve-submission-postfix.test.ts.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { encodePem } from '../../src/asn1/pem.ts';
import { OID } from '../../src/asn1/oids.ts';
import { initCertificateAuthority } from '../../src/ca/init-certificate-authority.ts';
import { issueMailboxCertificate } from '../../src/ca/issue-mailbox-certificate.ts';
import { importPkcs12 } from '../../src/keys/import-pkcs12.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { Metrics } from '../../src/server/metrics.ts';
import { RateLimiter } from '../../src/server/rate-limiter.ts';
import type { LogEntry, ServiceContext } from '../../src/server/service-context.ts';
import { resolveSubmissionConfig, type SubmissionConfig } from '../../src/server/smtp/submission-config.ts';
import { startSubmission, type RunningSubmission } from '../../src/server/smtp/start-submission.ts';
import { addTenantIdentityFromPkcs12 } from '../../src/store/add-tenant-identity.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { Store } from '../../src/store/store.ts';
import { TenantDirectory } from '../../src/store/tenant-directory.ts';
import { issueCertificate } from '../../src/x509/issue.ts';
import { isKakitomeError } from '../../src/errors.ts';
import { Sink, opensslVerifyMime } from '../gateway/gateway-fixture.ts';
import { freePort } from '../gateway/postfix-instance.ts';
import { TestPki } from '../helpers/pki.ts';
import { smtpDialogue } from '../helpers/smtp-dialogue.ts';
import { assertRelayedDsn } from '../helpers/delivery-status.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-submit-'));
const master = masterKeyFromBytes(randomBytes(32));
const internalRoot = join(dir, 'internal-root.pem');
const tlsCert = join(dir, 'smtp.pem');
const tlsKey = join(dir, 'smtp.key');

function message(from: string, extra = '', body = 'Your November statement is ready.'): Buffer {
  return Buffer.from(`From: ${from}\r\nTo: customer@example.net\r\nSubject: Statement\r\nDate: Sun, 06 Dec 2026 10:00:00 +0000\r\nMessage-ID: <${randomBytes(6).toString('hex')}@acme.example>\r\n${extra}Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${body}\r\n`);
}

interface Reply { code: number; response: string }

/** One transaction with nodemailer's SMTP connection: STARTTLS (unless `plain`), AUTH, MAIL, RCPT, DATA; the reply to whichever step failed, or to DATA. */
function submit(port: number, o: { user?: string; pass?: string; plain?: boolean; from?: string; to?: string[]; body?: Buffer | string; dsn?: Record<string, unknown> }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const c = new SMTPConnection({ host: '127.0.0.1', port, logger: false, socketTimeout: 60_000, ...(o.plain ? { ignoreTLS: true } : { requireTLS: true, tls: { ca: [readFileSync(tlsCert)], servername: 'localhost' } }) });
    let settled = false;
    const done = (r: Reply) => {
      if (settled) return;
      settled = true;
      c.close();
      resolve(r);
    };
    c.on('error', (e: Error & { responseCode?: number; response?: string }) => (settled ? undefined : e.responseCode ? done({ code: e.responseCode, response: e.response ?? e.message }) : reject(e)));
    c.connect((err?: Error | null) => {
      if (err) return reject(err);
      const send = () => c.send({ from: o.from ?? 'bounces@platform.example', to: o.to ?? ['customer@example.net'], ...(o.dsn ? { dsn: o.dsn } : {}) } as never, typeof o.body === 'string' ? Buffer.from(o.body) : (o.body ?? message('news@acme.example')), ((e: (Error & { responseCode?: number; response?: string }) | null, info?: { response: string }) => {
        if (e) return done({ code: e.responseCode ?? 0, response: e.response ?? e.message });
        done({ code: Number(info!.response.slice(0, 3)), response: info!.response });
      }) as never);
      if (o.user === undefined) return send();
      c.login({ user: o.user, pass: o.pass ?? '' }, (e?: (Error & { responseCode?: number; response?: string }) | null) => (e ? done({ code: e.responseCode ?? 0, response: e.response ?? e.message }) : send()));
    });
  });
}

describe('SMTP submission', () => {
  let store: Store;
  let tenants: TenantDirectory;
  let sink: Sink;
  let smtp: RunningSubmission;
  let ctx: ServiceContext;
  const logs: LogEntry[] = [];
  const keys: Record<string, string> = {};
  const keyIds: Record<string, string> = {};
  let newsFingerprint = '';

  const config = (relayPort: number, over: Partial<SubmissionConfig> = {}): SubmissionConfig => ({
    ...resolveSubmissionConfig({ smtp: '127.0.0.1:0', relay: `127.0.0.1:${relayPort}`, smtpTlsCert: tlsCert, smtpTlsKey: tlsKey }, 256 * 1024)!,
    relayTimeoutMs: 5_000,
    ...over,
  });
  const send = (o: Parameters<typeof submit>[1]) => submit(smtp.listening.port, { user: 'acme', pass: keys.acme!, ...o });

  before(async () => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', tlsKey, '-out', tlsCert, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'pipe' });
    store = await Store.open(openSqliteEngine(join(dir, 'kakitome.db')), { masterKey: master, actor: 'tester' });
    const { root } = await initCertificateAuthority(store, { name: 'Submit Test CA', keyType: 'p256' });
    writeFileSync(internalRoot, encodePem('CERTIFICATE', root.certificate.der));
    tenants = new TenantDirectory(store);
    await tenants.addTenant('acme', ['acme.example']);
    await tenants.addTenant('globex', ['globex.example']);
    const [news] = await issueMailboxCertificate(store, { email: 'news@acme.example', keyType: 'p256' });
    newsFingerprint = news!.certificate.fingerprint256;
    await issueMailboxCertificate(store, { email: 'info@globex.example', keyType: 'p256' });
    await tenants.registerIdentities('acme', ['news@acme.example']);
    await tenants.registerIdentities('globex', ['info@globex.example']);
    for (const [name, tenant, scopes, rate] of [['acme', 'acme', ['sign'], undefined], ['acmeVerify', 'acme', ['verify'], undefined], ['globex', 'globex', ['sign'], undefined], ['limited', 'acme', ['sign'], 2], ['doomed', 'acme', ['sign'], undefined]] as const) {
      const k = await tenants.createApiKey(tenant, { scopes: [...scopes], ...(rate ? { ratePerMinute: rate } : {}) });
      keys[name] = k.token;
      keyIds[name] = k.key.id;
    }
    sink = await new Sink().start();
    ctx = {
      store, tenants, metrics: new Metrics(), rateLimiter: new RateLimiter(), log: (e) => logs.push(e), version: 'test', shuttingDown: () => false,
      config: { host: '127.0.0.1', port: 0, maxMessageBytes: 256 * 1024, shutdownGraceMs: 1000, revocation: 'allow-unknown' },
    };
    smtp = await startSubmission(ctx, config(sink.port));
  });
  after(async () => {
    await smtp?.stop();
    await sink?.stop();
    await store?.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  test('nodemailer over STARTTLS with AUTH: signed by From, relayed with the envelope unchanged, 250 only after the relay accepted; openssl verifies', async () => {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: smtp.listening.port, secure: false, requireTLS: true, auth: { user: 'acme', pass: keys.acme! }, tls: { ca: [readFileSync(tlsCert)], servername: 'localhost' } });
    const before = sink.deliveries.length;
    const info = await transport.sendMail({ envelope: { from: 'bounces+123@platform.example', to: ['a@example.net', 'b@example.org'] }, raw: message('Acme News <news@acme.example>', '', 'Grüße: your statement.') });
    transport.close();
    assert.match(info.response, /^250 2\.0\.0 Signed and relayed/);
    assert.equal(sink.deliveries.length, before + 1);
    const d = sink.deliveries.at(-1)!;
    assert.equal(d.from, 'bounces+123@platform.example');
    assert.deepEqual(d.to, ['a@example.net', 'b@example.org']);
    assert.match(d.message.toString('latin1'), /^From: Acme News <news@acme\.example>\r\n/);
    const v = await opensslVerifyMime(dir, d.message, internalRoot);
    assert.ok(v.ok, v.detail);
    assert.match(v.content.toString('latin1'), /your statement/);
    const line = logs.find((l) => l.msg === 'message' && l.reply === 250)!;
    assert.equal(line.listener, 'smtp');
    assert.equal(line.tenant, 'acme');
    assert.equal(line.outcome, 'relayed');
    assert.equal(line.relayAccepted, 2);
    assert.ok(!JSON.stringify(logs).includes('news@acme.example') && !JSON.stringify(logs).includes('a@example.net'), 'no address in the log');
  });

  test('DSN (RFC 3461): the client\'s RET, ENVID, NOTIFY and ORCPT go to the relay with the signed message; an ORCPT that cannot be relayed is refused (501 5.5.4)', async () => {
    const before = sink.deliveries.length;
    const r = await send({ to: ['a@example.net'], dsn: { ret: 'HDRS', envid: 'stmt-11', notify: ['FAILURE', 'DELAY'], orcpt: 'rfc822;customer@example.net' } });
    assert.equal(r.code, 250, r.response);
    const d = sink.deliveries.at(-1)!;
    assert.equal(sink.deliveries.length, before + 1);
    assert.deepEqual([d.dsn, d.rcptDsn], [{ ret: 'HDRS', envid: 'stmt-11' }, [{ notify: ['FAILURE', 'DELAY'], orcpt: 'rfc822;customer@example.net' }]]);
    const bad = await send({ to: ['a@example.net'], dsn: { orcpt: `rfc822;${'x'.repeat(600)}@example.net` } });
    assert.equal(bad.code, 501, bad.response);
    assert.match(bad.response, /5\.5\.4 Bad DSN parameter: ORCPT is longer than 500/);
    assert.equal(sink.deliveries.length, before + 1, 'nothing relayed');
  });

  test('DSN: RCPTs that differ only in case are two mailboxes (RFC 5321 2.4), both relayed, each with its own NOTIFY and ORCPT', async () => {
    // Loopback without a certificate, so that a plain client can write different parameters per recipient.
    const local = await startSubmission(ctx, { ...config(sink.port, { maxRecipients: 2 }), tls: undefined });
    try {
      const before = sink.deliveries.length;
      const replies = await smtpDialogue(local.listening.port, [
        'EHLO client.test',
        `AUTH PLAIN ${Buffer.from(`\0acme\0${keys.acme!}`).toString('base64')}`,
        'MAIL FROM:<bounces@platform.example> RET=HDRS',
        'RCPT TO:<Customer@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Customer@example.net',
        'RCPT TO:<customer@example.net> NOTIFY=NEVER',
        // A third mailbox is over maxRecipients, though smtp-server counts one address so far.
        'RCPT TO:<CUSTOMER@example.net>',
        'DATA',
        `${message('news@acme.example').toString('latin1')}.`,
        'QUIT',
      ]);
      assert.deepEqual(replies.slice(2).map((r) => r.code), [235, 250, 250, 250, 452, 354, 250, 221], replies.map((r) => r.text).join('\n'));
      assert.equal(sink.deliveries.length, before + 1);
      const d = sink.deliveries.at(-1)!;
      assert.deepEqual(d.to, ['Customer@example.net', 'customer@example.net']);
      assert.deepEqual(d.rcptDsn, [{ notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;Customer@example.net' }, { notify: ['NEVER'] }]);
      assert.deepEqual(d.dsn, { ret: 'HDRS', envid: null });
    } finally {
      await local.stop();
    }
  });

  test('RFC 3461 4.1, 6.2: toward a relay that does not advertise DSN, recipients who asked NOTIFY=SUCCESS get the sender a "relayed" DSN (the gateway\'s, headers only); a relay with DSN: none', async () => {
    const plain = await new Sink({ dsn: false }).start();
    // Loopback without a certificate, so that a plain client can write different parameters per recipient.
    const local = await startSubmission(ctx, { ...config(plain.port), tls: undefined });
    const dialogue = (port: number) => smtpDialogue(port, [
      'EHLO client.test',
      `AUTH PLAIN ${Buffer.from(`\0acme\0${keys.acme!}`).toString('base64')}`,
      'MAIL FROM:<bounces@platform.example> RET=FULL ENVID=stmt+2B12',
      'RCPT TO:<carol@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c+2Bx@example.com',
      'RCPT TO:<erin@example.com> NOTIFY=FAILURE',
      'DATA',
      `${message('news@acme.example', '', 'STATEMENT-BODY').toString('latin1')}.`,
      'QUIT',
    ]);
    try {
      const replies = await dialogue(local.listening.port);
      assert.deepEqual(replies.slice(2).map((r) => r.code), [235, 250, 250, 250, 354, 250, 221], replies.map((r) => r.text).join('\n'));
      assert.equal(plain.deliveries.length, 2, 'the signed message, the relayed DSN to its sender');
      assert.deepEqual(plain.deliveries[0]!.to, ['carol@example.com', 'erin@example.com']);
      assertRelayedDsn(plain.deliveryTo('bounces@platform.example'), { envid: 'stmt+12', recipients: [{ recipient: 'carol@example.com', orcpt: 'rfc822;c+x@example.com' }], body: /STATEMENT-BODY/ });
      assert.equal(logs.filter((l) => l.msg === 'message').at(-1)!.relayedDsn, 'accepted');
    } finally {
      await local.stop();
      await plain.stop();
    }
    // The same toward a relay that advertises DSN: the parameters go on with the message, no DSN of ours.
    const withDsn = await startSubmission(ctx, { ...config(sink.port), tls: undefined });
    try {
      const before = sink.deliveries.length;
      const replies = await dialogue(withDsn.listening.port);
      assert.equal(replies.at(-2)!.code, 250, replies.map((r) => r.text).join('\n'));
      assert.equal(sink.deliveries.length, before + 1, 'the signed message only');
      assert.equal(sink.deliveries.at(-1)!.rcptDsn![0]!.notify!.join(), 'SUCCESS,FAILURE');
      assert.equal(logs.filter((l) => l.msg === 'message').at(-1)!.relayedDsn, undefined);
    } finally {
      await withDsn.stop();
    }
  });

  test('AUTH: a wrong key, another tenant\'s name, a key without sign, no AUTH at all', async () => {
    const wrong = await send({ pass: `kk_${keyIds.acme}_${'A'.repeat(43)}` });
    assert.equal(wrong.code, 535, wrong.response);
    assert.equal((await send({ user: 'globex' })).code, 535, 'the username is the key\'s tenant');
    assert.equal((await send({ pass: 'not a key' })).code, 535);
    const verifyOnly = await send({ pass: keys.acmeVerify! });
    assert.equal(verifyOnly.code, 535);
    assert.match(verifyOnly.response, /scope verify; submission needs sign/);
    const anonymous = await submit(smtp.listening.port, {});
    assert.equal(anonymous.code, 530, anonymous.response);
  });

  test('AUTH without TLS is refused (538) on a port with a certificate; a port without one may only listen on loopback', async () => {
    const plain = await submit(smtp.listening.port, { user: 'acme', pass: keys.acme!, plain: true });
    assert.equal(plain.code, 538, plain.response);
    assert.throws(() => resolveSubmissionConfig({ smtp: '0.0.0.0:2525', relay: '127.0.0.1:25' }, 1024 * 1024), (e: unknown) => isKakitomeError(e, 'INVALID_ARGUMENT') && /in clear/.test((e as Error).message));
    assert.throws(() => resolveSubmissionConfig({ smtp: '127.0.0.1:2525' }, 1024 * 1024), /--relay/);
    assert.throws(() => resolveSubmissionConfig({ smtp: '127.0.0.1:2525', relay: '127.0.0.1:25', smtpTlsCert: tlsCert }, 1024 * 1024), /both/);
    assert.throws(() => resolveSubmissionConfig({ smtp: '127.0.0.1:2525', relay: '127.0.0.1:25', smtpTlsCert: tlsCert, smtpTlsKey: tlsCert }, 1024 * 1024), /not a usable certificate and key/);
    // Loopback without a certificate: AUTH in clear is accepted, from loopback only.
    const local = await startSubmission(ctx, { ...config(sink.port), tls: undefined });
    try {
      const r = await submit(local.listening.port, { user: 'acme', pass: keys.acme!, plain: true });
      assert.equal(r.code, 250, r.response);
    } finally {
      await local.stop();
    }
  });

  test('refused by the signing rules: 5xx with the reason, nothing relayed', async () => {
    const before = sink.deliveries.length;
    const outside = await send({ body: message('ceo@bank.example') });
    assert.equal(outside.code, 550, outside.response);
    assert.match(outside.response, /5\.7\.1 FORBIDDEN: The From address ceo@bank\.example is outside the domains of tenant "acme"/);
    const theirs = await send({ body: message('info@globex.example') });
    assert.equal(theirs.code, 550, theirs.response);
    const twoFrom = await send({ body: message('news@acme.example', 'From: other@acme.example\r\n') });
    assert.ok(twoFrom.code >= 550 && twoFrom.code < 560, twoFrom.response);
    const display = await send({ body: message('"ceo@bank.example" <news@acme.example>') });
    assert.equal(display.code, 550, display.response);
    assert.match(display.response, /IDENTITY_MISMATCH/);
    const noIdentity = await send({ body: message('nobody@acme.example') });
    assert.ok(noIdentity.code >= 550, noIdentity.response);
    const garbage = await send({ body: randomBytes(3000).toString('latin1').replace(/\r?\n\.\r?\n/g, '') });
    assert.ok(garbage.code >= 550 && garbage.code < 560, garbage.response);
    assert.equal(sink.deliveries.length, before, 'nothing was relayed');
    const refused = (await store.auditLog({ limit: 500 })).filter((e) => e.action === 'smtp.sign.refused');
    assert.ok(refused.some((e) => e.actor === `api:acme/${keyIds.acme}` && /FORBIDDEN/.test(e.detail ?? '')));
  });

  test('oversized: 552 before it is kept, nothing relayed', async () => {
    const before = sink.deliveries.length;
    const big = await send({ body: message('news@acme.example', '', 'x'.repeat(76).concat('\r\n').repeat(4000)) });
    assert.equal(big.code, 552, big.response);
    assert.equal(sink.deliveries.length, before);
  });

  test('the relay down, deferring or dropping the connection: 451, nothing lost: the client retries and it arrives once', async () => {
    const before = sink.deliveries.length;
    for (const mode of ['tempfail', 'drop'] as const) {
      sink.mode = mode;
      const r = await send({});
      assert.equal(r.code, 451, `${mode}: ${r.response}`);
    }
    sink.mode = 'accept';
    // No relay listening at all.
    const gone = await startSubmission(ctx, config(await freePort()));
    try {
      const r = await submit(gone.listening.port, { user: 'acme', pass: keys.acme! });
      assert.equal(r.code, 451, r.response);
    } finally {
      await gone.stop();
    }
    assert.equal(sink.deliveries.length, before, 'nothing delivered while the client was told 451');
    assert.ok(logs.some((l) => l.msg === 'message' && l.reply === 451 && l.outcome === 'deferred' && l.code === 'RELAY'));
    // The client keeps the message and retries: it arrives once.
    const retry = await send({});
    assert.equal(retry.code, 250, retry.response);
    assert.equal(sink.deliveries.length, before + 1);
    // A permanent refusal by the relay is passed on as its 5xx.
    sink.mode = 'reject';
    const rejected = await send({});
    sink.mode = 'accept';
    assert.equal(rejected.code, 554, rejected.response);
  });

  test('a new identity is used from the next message on, without a restart', async () => {
    const partner = new TestPki('Submission Partner CA');
    try {
      const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const cert = issueCertificate({ subject: { commonName: 'news@acme.example' }, publicKey, issuer: partner.caCert, signingKey: partner.caKey, keyUsage: ['digitalSignature'], extKeyUsage: [OID.emailProtection], emails: ['news@acme.example'] });
      writeFileSync(join(dir, 'renew.key'), privateKey.export({ format: 'pem', type: 'pkcs8' }));
      writeFileSync(join(dir, 'renew.pem'), encodePem('CERTIFICATE', cert.der));
      execFileSync('openssl', ['pkcs12', '-export', '-inkey', join(dir, 'renew.key'), '-in', join(dir, 'renew.pem'), '-passout', 'pass:pw', '-out', join(dir, 'renew.p12')], { stdio: 'pipe' });
      await addTenantIdentityFromPkcs12(store, tenants, 'acme', importPkcs12(readFileSync(join(dir, 'renew.p12')), 'pw'), 'test');
      const before = sink.deliveries.length;
      assert.equal((await send({})).code, 250);
      const d = sink.deliveries[before]!;
      assert.ok((await opensslVerifyMime(dir, d.message, partner.caPath)).ok, 'signed by the new identity');
      assert.ok(!(await opensslVerifyMime(dir, d.message, internalRoot)).ok, 'not by the old one');
      assert.notEqual(cert.fingerprint256, newsFingerprint);
    } finally {
      partner.cleanup();
    }
  });

  test('rate limit per key (451 with the wait), a key revoked after AUTH stops at the next message; every use audited', async () => {
    const results: number[] = [];
    for (let i = 0; i < 3; i++) results.push((await send({ pass: keys.limited! })).code);
    assert.deepEqual(results, [250, 250, 451]);
    assert.ok(logs.some((l) => l.code === 'RATE_LIMITED' && l.reply === 451));
    // One session: AUTH, a message, the key revoked, the next MAIL refused.
    const replies = await new Promise<number[]>((resolve, reject) => {
      const c = new SMTPConnection({ host: '127.0.0.1', port: smtp.listening.port, logger: false, requireTLS: true, tls: { ca: [readFileSync(tlsCert)], servername: 'localhost' } });
      const out: number[] = [];
      c.on('error', reject);
      c.connect(() => c.login({ user: 'acme', pass: keys.doomed! }, () => c.send({ from: 'b@platform.example', to: ['x@example.net'] }, message('news@acme.example'), ((e1: { responseCode?: number } | null) => {
        out.push(e1 ? e1.responseCode ?? 0 : 250);
        tenants.revokeApiKey(keyIds.doomed!).then(() => c.send({ from: 'b@platform.example', to: ['x@example.net'] }, message('news@acme.example'), ((e2: { responseCode?: number } | null) => {
          out.push(e2 ? e2.responseCode ?? 0 : 250);
          c.close();
          resolve(out);
        }) as never), reject);
      }) as never)));
    });
    assert.deepEqual(replies, [250, 535]);
    const audit = await store.auditLog({ limit: 1000 });
    assert.ok(audit.some((e) => e.action === 'smtp.sign' && e.actor === `api:acme/${keyIds.acme}`));
    assert.ok(audit.some((e) => e.action === 'key.use.sign' && e.actor === `api:acme/${keyIds.acme}`));
  });

  test('messages at once: the relay connections stay open for the next ones, beyond the pool\'s default of 16 (none opened again)', async () => {
    // The sink holds each reply until the whole wave is there, so that every message of a wave is at the relay at once
    // (a fixed delay could end before the last ones arrive on a loaded machine: fewer connections, then more in the next wave).
    let release = () => {};
    try {
      const wave = async () => {
        release = sink.holdReplies();
        const sending = Promise.all(Array.from({ length: 24 }, () => send({})));
        await sink.whenPending(24, 60_000);
        release();
        const replies = await sending;
        assert.deepEqual(replies.map((r) => r.code), replies.map(() => 250), JSON.stringify(replies.find((r) => r.code !== 250)));
      };
      await wave();
      const opened = sink.connections;
      await wave();
      assert.equal(sink.connections, opened, 'the second wave found its connections in the pool (with at most 16 kept, 8 were opened again)');
    } finally {
      release();
    }
  });

  test('the store gone: 4xx, never 5xx (the client keeps the message)', async () => {
    const before = sink.deliveries.length;
    await store.close();
    const r = await send({});
    assert.ok(r.code >= 400 && r.code < 500, `${r.code} ${r.response}`);
    assert.equal(sink.deliveries.length, before);
  });
});
