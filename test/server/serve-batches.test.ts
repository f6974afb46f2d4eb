/**
 * Batches over a real socket, on SQLite (chunk bytes in files beside the store)
 * and on PostgreSQL (in the batch_blobs table): mbox, NDJSON and multipart
 * uploads, progress, the result verified by `openssl cms -verify` (a sample of
 * messages), bad messages reported at their index and never signed,
 * Idempotency-Key, tenancy (another tenant's batch is 404), size limits, deletion
 * and expiry. The queue's lease rules are checked with two queues and a clock.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { encodePem } from '../../src/asn1/pem.ts';
import { initCertificateAuthority } from '../../src/ca/init-certificate-authority.ts';
import { issueMailboxCertificate } from '../../src/ca/issue-mailbox-certificate.ts';
import { splitMbox } from '../../src/mime/mbox.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { Store } from '../../src/store/store.ts';
import { TenantDirectory } from '../../src/store/tenant-directory.ts';
import { BatchDirectory } from '../../src/store/batch-directory.ts';
import { BatchQueue } from '../../src/store/batch-queue.ts';
import { openBatchBlobs, type BatchBlobs } from '../../src/store/batch-blobs.ts';
import { auditRowOf } from '../../src/store/record-key-use.ts';
import type { SqlEngine } from '../../src/store/sql-engine.ts';
import { DEFAULT_BATCH_CONFIG, batchConfigOf, resolveServeConfig } from '../../src/server/config.ts';
import { startServer, type RunningServer } from '../../src/server/start-server.ts';
import { engineFactories } from '../store/engine-factories.ts';
import { rawRequest } from './raw-request.ts';

const master = masterKeyFromBytes(randomBytes(32));
const MESSAGE_LIMIT = 64 * 1024;
const BATCH_LIMIT = 256 * 1024;

/** One message of a batch: its index in Subject and body, so the result can be matched to the upload. */
function draft(i: number, from = 'Acme News <news@acme.example>', extra = ''): string {
  return `From: ${from}\r\nTo: reader${i}@example.net\r\nSubject: Statement ${i}\r\nDate: Sun, 06 Dec 2026 10:00:00 +0000\r\nMessage-ID: <${i}.${randomBytes(4).toString('hex')}@acme.example>\r\n${extra}Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nDear reader ${i},\r\nFrom the desk of the editor: your statement is ready (d\u00e9tails inside).\r\n`;
}

/** An mbox (mboxrd): the envelope names the index; the body's "From the desk" line is quoted. */
function mboxOf(messages: readonly string[]): string {
  return messages.map((m, i) => `From sender-${i}@acme.example Sun Dec  6 10:00:00 2026\n${m.replace(/^(>*From )/gm, '>$1')}\n`).join('');
}

async function entriesOf(body: Buffer): Promise<Array<{ envelope: string; message: Buffer }>> {
  const out: Array<{ envelope: string; message: Buffer }> = [];
  for await (const e of splitMbox((async function* () { yield body; })(), 1 << 30)) out.push({ envelope: e.envelope, message: e.message! });
  return out;
}

const subjectIndex = (m: Buffer) => Number(/^Subject: Statement (\d+)\r$/m.exec(m.toString('latin1'))?.[1]);

for (const f of engineFactories('kakitome-batches-')) {
  describe(`batches on ${f.name}`, () => {
    let store: Store;
    let server: RunningServer;
    const dir = mkdtempSync(join(tmpdir(), 'kakitome-batches-files-'));
    const rootPem = join(dir, 'root.pem');
    const keys: Record<string, string> = {};
    /** SHA-256 fingerprint of news@acme.example's certificate: what its signatures' audit rows name. */
    let newsCertificate = '';
    const logs: Array<Record<string, unknown>> = [];

    const call = (path: string, init: { key?: string; body?: string | Uint8Array; type?: string; method?: string; headers?: Record<string, string> } = {}) => fetch(new URL(path, server.url), {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers: { ...(init.key ? { authorization: `Bearer ${init.key}` } : {}), ...(init.type ? { 'content-type': init.type } : {}), ...init.headers },
      ...(init.body !== undefined ? { body: init.body } : {}),
    });
    const upload = (body: string | Uint8Array, type: string, key = keys.acme!, headers: Record<string, string> = {}, query = '') => call(`/api/v1/batches${query}`, { key, body, type, headers });
    async function problem(r: Response, status: number, code: string): Promise<{ detail: string }> {
      const text = await r.text();
      assert.equal(r.status, status, text);
      assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.equal(JSON.parse(text).code, code, text);
      return JSON.parse(text);
    }
    interface BatchView { id: string; state: string; total: number; signed: number; failed: number; pending: number; failures: Array<{ index: number; code: string; reason: string; remedy?: string }>; nextFailuresFrom?: number; result?: string; expiresAt?: string }
    async function accepted(r: Response): Promise<BatchView> {
      const text = await r.text();
      assert.equal(r.status, 202, text);
      const view = JSON.parse(text) as BatchView;
      assert.equal(r.headers.get('location'), `/api/v1/batches/${view.id}`);
      return view;
    }
    async function finished(id: string, key = keys.acme!): Promise<BatchView> {
      for (let i = 0; i < 600; i++) {
        const view = await (await call(`/api/v1/batches/${id}`, { key })).json() as BatchView;
        if (view.state === 'done') return view;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`batch ${id} did not finish`);
    }
    async function result(id: string): Promise<Array<{ envelope: string; message: Buffer }>> {
      const r = await call(`/api/v1/batches/${id}/result`, { key: keys.acme! });
      const body = Buffer.from(await r.arrayBuffer());
      assert.equal(r.status, 200, body.toString());
      assert.equal(r.headers.get('content-type'), 'application/mbox');
      assert.equal(Number(r.headers.get('content-length')), body.length);
      return entriesOf(body);
    }
    function opensslVerify(signed: Buffer): string {
      const file = join(dir, `signed-${randomBytes(4).toString('hex')}.eml`);
      writeFileSync(file, signed);
      return execFileSync('openssl', ['cms', '-verify', '-in', file, '-CAfile', rootPem, '-purpose', 'smimesign'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString('utf8');
    }
    const batchRows = async () => Number((await store.engine.all('SELECT COUNT(*) AS n FROM batches'))[0]!.n);

    before(async () => {
      await f.setup();
      store = await Store.open(f.make(), { masterKey: master, actor: 'tester' });
      const { root } = await initCertificateAuthority(store, { name: 'Batch Test CA', keyType: 'p256' });
      writeFileSync(rootPem, encodePem('CERTIFICATE', root.certificate.der));
      const tenants = new TenantDirectory(store);
      await tenants.addTenant('acme', ['acme.example']);
      await tenants.addTenant('globex', ['globex.example']);
      newsCertificate = (await issueMailboxCertificate(store, { email: 'news@acme.example', keyType: 'p256' }))[0]!.certificate.fingerprint256;
      await issueMailboxCertificate(store, { email: 'info@globex.example', keyType: 'p256' });
      await tenants.registerIdentities('acme', ['news@acme.example', 'lapsed@acme.example']);
      await tenants.registerIdentities('globex', ['info@globex.example']);
      keys.acme = (await tenants.createApiKey('acme', { scopes: ['sign'] })).token;
      keys.acmeVerify = (await tenants.createApiKey('acme', { scopes: ['verify'] })).token;
      keys.globex = (await tenants.createApiKey('globex', { scopes: ['sign'] })).token;
      server = await startServer(store, {
        host: '127.0.0.1', port: 0, maxMessageBytes: MESSAGE_LIMIT, shutdownGraceMs: 5000, revocation: 'allow-unknown',
        batch: { ...DEFAULT_BATCH_CONFIG, chunkMessages: 40, maxBatchBytes: BATCH_LIMIT, maxBatchMessages: 1000, pollMs: 100, leaseMs: 5000 },
      }, {
        log: (e) => logs.push(e), version: 'test',
        // On SQLite as `kakitome serve` runs: chunks signed, and uploads cut into chunks, in the batch thread
        // (the body handed over from the serving thread); on PostgreSQL both on the serving thread.
        ...(f.name === 'sqlite' ? { batchThread: { location: { home: dirname(f.url()), masterKey: master }, write: (text: string) => { for (const l of text.split('\n').filter(Boolean)) logs.push(JSON.parse(l)); } } } : {}),
      });
    });
    after(async () => {
      await server?.close();
      rmSync(dir, { recursive: true, force: true });
      await f.teardown();
    });

    test('an mbox batch: progress, bad messages reported at their index and skipped, the result in order with its envelopes; openssl verifies a sample', async () => {
      const messages = Array.from({ length: 200 }, (_, i) => draft(i));
      messages[7] = draft(7, 'news@acme.example', 'From: ceo@acme.example\r\n');              // two From fields
      messages[61] = draft(61, 'ceo@globex.example');                                          // another tenant's domain
      messages[120] = draft(120, '"ceo@bank.example" <news@acme.example>');                     // a display name showing another address
      messages[199] = draft(199, 'lapsed@acme.example');                                       // the tenant's address, with no current certificate
      const view = await accepted(await upload(mboxOf(messages), 'application/mbox'));
      assert.ok(['queued', 'running', 'done'].includes(view.state));
      assert.equal(view.total, 200);
      if (f.name === 'sqlite') {
        // The batch thread sends its log lines on the turn after its answer (line-log.ts): the line may come after the 202.
        const cut = () => logs.some((l) => l.msg === 'batch upload' && l.batch === view.id && l.messages === 200 && l.chunks === 5);
        for (let i = 0; i < 500 && !cut(); i++) await new Promise((r) => setTimeout(r, 20));
        assert.ok(cut(), 'cut into chunks in the batch thread');
      }
      const done = await finished(view.id);
      assert.deepEqual({ total: done.total, signed: done.signed, failed: done.failed, pending: done.pending }, { total: 200, signed: 196, failed: 4, pending: 0 });
      assert.deepEqual(done.failures.map((x) => [x.index, x.code]), [[7, 'MALFORMED'], [61, 'FORBIDDEN'], [120, 'IDENTITY_MISMATCH'], [199, 'KEY_INVALID']]);
      assert.match(done.failures[1]!.reason, /outside the domains of tenant "acme"/);
      // Each failure keeps its error's remedy, as problem details do (none for a message that cannot be read or shows another sender).
      assert.deepEqual([done.failures[0]!.remedy, done.failures[2]!.remedy, done.failures[3]!.remedy], [undefined, undefined, 'tenantIdentity']);
      assert.equal(done.result, `/api/v1/batches/${view.id}/result`);
      assert.ok(new Date(done.expiresAt!).getTime() > Date.now() + 23 * 3600_000);

      const out = await result(view.id);
      const expected = Array.from({ length: 200 }, (_, i) => i).filter((i) => ![7, 61, 120, 199].includes(i));
      assert.deepEqual(out.map((e) => subjectIndex(e.message)), expected);
      assert.deepEqual(out.map((e) => e.envelope.split(' ')[0]), expected.map((i) => `sender-${i}@acme.example`));
      for (const k of [0, 1, 60, 100, out.length - 1]) {
        const text = opensslVerify(out[k]!.message);
        assert.match(text, new RegExp(`Dear reader ${expected[k]},`));
        // The mbox quoting came back off: the signed body has the line as the sender wrote it.
        assert.match(text, /^From the desk of the editor/m);
      }
      // Each message was signed as POST /sign signs: audited per message as the uploading key, one row
      // naming the certificate, the batch and the message's index (written with its chunk's completion).
      const audit = await store.auditLog({ limit: 10_000 });
      const rows = audit.filter((e) => e.action === 'api.batches.sign' && e.detail?.includes(`, batch ${view.id} message `));
      assert.deepEqual(rows.map((e) => Number(/ message (\d+)$/.exec(e.detail!)?.[1])).sort((x, y) => x - y), expected, 'one row per signed message, none for the refused');
      for (const e of rows) {
        assert.equal(e.object, newsCertificate);
        assert.match(e.actor, /^api:acme\//);
        assert.match(e.detail!, /^news@acme\.example, \d+ bytes, batch /);
      }
      assert.ok(audit.some((e) => e.action === 'api.batches.create' && e.object === view.id && e.actor.startsWith('api:acme/')));
    });

    test('an NDJSON batch (text and base64 lines) and a multipart/mixed one; lines and parts that are no message are failures', async () => {
      const lines = [
        JSON.stringify({ message: draft(0) }),
        JSON.stringify({ base64: Buffer.from(draft(1)).toString('base64') }),
        '',
        '{"message": "unterminated',
        JSON.stringify({ message: 42 }),
        JSON.stringify({ message: draft(4), extra: true }),
        JSON.stringify({ base64: 'not base64!' }),
        JSON.stringify({ base64: Buffer.alloc(MESSAGE_LIMIT + 1, 0x41).toString('base64') }),
        `${JSON.stringify({ message: draft(7) })}\r`,
      ];
      const view = await accepted(await upload(lines.join('\n'), 'application/x-ndjson'));
      const done = await finished(view.id);
      assert.equal(done.total, 8, 'the empty line is no message');
      assert.deepEqual(done.failures.map((x) => [x.index, x.code]), [[2, 'MALFORMED'], [3, 'MALFORMED'], [4, 'MALFORMED'], [5, 'MALFORMED'], [6, 'LIMIT']]);
      const out = await result(view.id);
      assert.deepEqual(out.map((e) => subjectIndex(e.message)), [0, 1, 7]);
      assert.match(out[0]!.envelope, /^MAILER-DAEMON \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$/);
      for (const e of out) assert.match(opensslVerify(e.message), /Dear reader/);

      const boundary = `b-${randomBytes(6).toString('hex')}`;
      const multipart = [
        'preamble, ignored',
        `--${boundary}\r\nContent-Type: message/rfc822\r\n\r\n${draft(0)}`,
        `--${boundary}\r\n\r\n${draft(1)}`,
        `--${boundary}\r\nContent-Type: text/plain\r\n\r\nnot a message`,
        `--${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Disposition: form-data; name="m"; filename="3.eml"\r\n\r\n${draft(3)}`,
        `--${boundary}--\r\nepilogue, ignored`,
      ].join('\r\n');
      const mixed = await finished((await accepted(await upload(multipart, `multipart/mixed; boundary="${boundary}"`))).id);
      assert.deepEqual(mixed.failures.map((x) => [x.index, x.code]), [[2, 'INVALID_ARGUMENT']]);
      const parts = await result(mixed.id);
      assert.deepEqual(parts.map((e) => subjectIndex(e.message)), [0, 1, 3]);
      assert.match(opensslVerify(parts[2]!.message), /Dear reader 3,/);

      // Framing that breaks refuses the whole upload, and nothing of it is kept.
      const before = await batchRows();
      await problem(await upload(multipart.slice(0, multipart.indexOf(`--${boundary}--`) - 2), `multipart/mixed; boundary="${boundary}"`), 400, 'MALFORMED');
      await problem(await upload(draft(0), 'multipart/mixed'), 400, 'MALFORMED');
      await problem(await upload(`Not an mbox\n${mboxOf([draft(0)])}`, 'application/mbox'), 400, 'MALFORMED');
      await problem(await upload('\n\n', 'application/x-ndjson'), 400, 'INVALID_ARGUMENT');
      await problem(await upload(draft(0), 'message/rfc822'), 415, 'INVALID_ARGUMENT');
      assert.equal(await batchRows(), before);
    });

    test('sign options apply to every message; Idempotency-Key: a retry gets the same batch, another request under the key 422', async () => {
      const body = mboxOf([draft(0), draft(1)]);
      const key = randomUUID();
      const first = await accepted(await upload(body, 'application/mbox', keys.acme!, { 'idempotency-key': key }, '?hash=sha384&opaque=true'));
      const again = await upload(body, 'application/mbox', keys.acme!, { 'idempotency-key': key }, '?opaque=true&hash=sha384');
      assert.equal(again.headers.get('idempotent-replayed'), 'true');
      assert.equal((await accepted(again)).id, first.id);
      await problem(await upload(mboxOf([draft(0), draft(2)]), 'application/mbox', keys.acme!, { 'idempotency-key': key }, '?hash=sha384&opaque=true'), 422, 'CONFLICT');
      await problem(await upload(body, 'application/mbox', keys.acme!, { 'idempotency-key': key }, '?hash=sha384'), 422, 'CONFLICT');
      await problem(await upload(body, 'application/mbox', keys.acme!, { 'idempotency-key': 'bad key with spaces' }), 400, 'INVALID_ARGUMENT');
      await problem(await upload(body, 'application/mbox', keys.acme!, {}, '?hash=md5'), 400, 'INVALID_ARGUMENT');
      // The same key is another tenant's own: it names a different batch there.
      const theirs = await accepted(await upload(mboxOf([draft(0, 'info@globex.example')]), 'application/mbox', keys.globex!, { 'idempotency-key': key }));
      assert.notEqual(theirs.id, first.id);

      await finished(first.id);
      const out = await result(first.id);
      assert.equal(out.length, 2);
      assert.equal(Number((await store.engine.all('SELECT COUNT(*) AS n FROM batches WHERE idempotency_key = ?', [key]))[0]!.n), 2);
      for (const e of out) {
        assert.match(e.message.toString('latin1'), /application\/pkcs7-mime; smime-type=signed-data/);
        assert.match(opensslVerify(e.message), /Dear reader/);
      }
    });

    test('a batch is its tenant\'s alone: another tenant gets 404, a key without scope sign 403, no key 401; DELETE removes it and its bytes', async () => {
      const view = await accepted(await upload(mboxOf([draft(0)]), 'application/mbox'));
      await finished(view.id);
      for (const path of [`/api/v1/batches/${view.id}`, `/api/v1/batches/${view.id}/result`]) {
        await problem(await call(path, { key: keys.globex! }), 404, 'NOT_FOUND');
        await problem(await call(path, { key: keys.acmeVerify! }), 403, 'FORBIDDEN');
        await problem(await call(path), 401, 'UNAUTHENTICATED');
      }
      await problem(await call(`/api/v1/batches/${view.id}`, { key: keys.globex!, method: 'DELETE' }), 404, 'NOT_FOUND');
      await problem(await call('/api/v1/batches/not-a-uuid', { key: keys.acme! }), 400, 'INVALID_ARGUMENT');
      await problem(await call(`/api/v1/batches/${randomUUID()}`, { key: keys.acme! }), 404, 'NOT_FOUND');
      await problem(await upload(mboxOf([draft(0)]), 'application/mbox', keys.acmeVerify!), 403, 'FORBIDDEN');

      const blobs = await openBatchBlobs(store.engine);
      const stored = async () => f.name === 'sqlite' ? existsSync(join(batchesDir(), view.id)) : Number((await store.engine.all('SELECT COUNT(*) AS n FROM batch_blobs WHERE batch_id = ?', [view.id]))[0]!.n) > 0;
      assert.equal(blobs.kind, f.name === 'sqlite' ? 'files' : 'table');
      assert.ok(await stored());
      const del = await call(`/api/v1/batches/${view.id}`, { key: keys.acme!, method: 'DELETE' });
      assert.equal(del.status, 204);
      assert.equal(await stored(), false);
      await problem(await call(`/api/v1/batches/${view.id}`, { key: keys.acme! }), 404, 'NOT_FOUND');
      await problem(await call(`/api/v1/batches/${view.id}`, { key: keys.acme!, method: 'DELETE' }), 404, 'NOT_FOUND');
    });

    test('GET /api/v1/batches: the tenant\'s own batches, newest first, paged without loss or repeat; hostile queries 400', async () => {
      for (let i = 0; i < 3; i++) await accepted(await upload(mboxOf([draft(i)]), 'application/mbox'));
      const theirs = await accepted(await upload(mboxOf([draft(0, 'info@globex.example')]), 'application/mbox', keys.globex!));
      const expected = (await store.engine.all("SELECT id FROM batches WHERE tenant = 'acme' ORDER BY created_at DESC, id DESC")).map((r) => String(r.id));
      assert.ok(expected.length >= 3);
      const listed: string[] = [];
      let before: string | undefined;
      for (let pages = 0; pages < 100; pages++) {
        const r = await call(`/api/v1/batches?limit=2${before ? `&before=${before}` : ''}`, { key: keys.acme! });
        const text = await r.text();
        assert.equal(r.status, 200, text);
        const page = JSON.parse(text) as { batches: Array<BatchView & { failures?: unknown }>; next?: string };
        assert.ok(page.batches.length <= 2);
        for (const b of page.batches) {
          assert.equal(b.failures, undefined, 'a listed batch has no failures list');
          assert.equal(b.pending, b.total - b.signed - b.failed < 0 ? 0 : b.total - b.signed - b.failed);
        }
        listed.push(...page.batches.map((b) => b.id));
        if (!page.next) break;
        before = page.next;
      }
      assert.deepEqual(listed, expected, 'every batch of the tenant once, newest first');
      assert.ok(!listed.includes(theirs.id), 'another tenant\'s batch is not listed');
      const globex = await (await call('/api/v1/batches', { key: keys.globex! })).json() as { batches: Array<{ id: string }>; next?: string };
      assert.ok(globex.batches.some((b) => b.id === theirs.id));
      assert.ok(globex.batches.every((b) => !expected.includes(b.id)));
      for (const q of ['limit=0', 'limit=101', 'limit=abc', 'limit=', 'before=%21%21', `before=${'A'.repeat(201)}`, `before=${Buffer.from('2026-12-06 x').toString('base64url')}`, 'other=1']) {
        await problem(await call(`/api/v1/batches?${q}`, { key: keys.acme! }), 400, 'INVALID_ARGUMENT');
      }
      await problem(await call('/api/v1/batches', { key: keys.acmeVerify! }), 403, 'FORBIDDEN');
      await problem(await call('/api/v1/batches'), 401, 'UNAUTHENTICATED');
      const audited = await store.engine.all("SELECT actor, detail FROM audit_log WHERE action = 'api.batches.list'");
      assert.ok(audited.some((r) => String(r.actor).startsWith('api:acme/') && /batches/.test(String(r.detail))));
    });

    const batchesDir = () => join(dirname(f.url()), 'batches');

    test('size limits: 413 from Content-Length before reading, from a chunked body as it passes the limit, past the message count; nothing is kept', async () => {
      const before = await batchRows();
      const url = new URL('/api/v1/batches', server.url);
      const headers = { authorization: `Bearer ${keys.acme!}`, 'content-type': 'application/mbox' };
      const lie = await rawRequest(url, { ...headers, 'content-length': String(10 * 1024 ** 3) }, async (req) => { req.write('From x'); });
      assert.equal(lie.status, 413);
      assert.equal(JSON.parse(lie.body).code, 'LIMIT');
      let sent = 0;
      const chunk = Buffer.from(mboxOf(Array.from({ length: 60 }, (_, i) => draft(i))));
      const chunked = await rawRequest(url, { ...headers, 'transfer-encoding': 'chunked' }, async (req, answered) => {
        while (!answered() && sent < 64 * 1024 * 1024) {
          if (!req.write(chunk)) await new Promise((r) => setTimeout(r, 5));
          sent += chunk.length;
          await new Promise((r) => setImmediate(r));
        }
      });
      assert.equal(chunked.status, 413);
      assert.match(JSON.parse(chunked.body).detail, /larger than this service accepts/);
      assert.ok(sent < 16 * 1024 * 1024, `refused while the client was still sending (${sent} bytes sent)`);
      const many = Array.from({ length: 1001 }, () => JSON.stringify({ message: 'From: news@acme.example\r\n\r\nx\r\n' })).join('\n');
      await problem(await upload(many, 'application/x-ndjson'), 413, 'LIMIT');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(await batchRows(), before);
      if (f.name === 'sqlite') {
        const known = new Set((await store.engine.all('SELECT id FROM batches')).map((r) => String(r.id)));
        assert.deepEqual(readdirSync(batchesDir()).filter((d) => !known.has(d)), [], 'no bytes left behind');
      }
    });

    test('the result is 409 until the batch is done; an upload that stopped (its lease lapsed) is removed with its bytes; done batches expire', async () => {
      const blobs = await openBatchBlobs(store.engine);
      const acme = new BatchDirectory(store, blobs);
      const id = await acme.begin({ tenant: 'acme', keyId: 'k', mediaType: 'application/mbox', options: {}, leaseMs: 1 });
      await acme.addChunk(id, { seq: 0, firstIndex: 0, messages: 1, bytes: Buffer.from('x') });
      await problem(await call(`/api/v1/batches/${id}/result`, { key: keys.acme! }), 409, 'CONFLICT');
      const done = await accepted(await upload(mboxOf([draft(0)]), 'application/mbox'));
      await finished(done.id);
      await new Promise((r) => setTimeout(r, 5));
      // A store whose clock is two days on: the done batch is past its retention, the stopped upload past its lease.
      const later = await Store.open(f.make(), { masterKey: master, actor: 'serve', clock: () => new Date(Date.now() + 48 * 3600_000) });
      try {
        assert.ok(await new BatchDirectory(later, blobs).expire() >= 2);
      } finally {
        await later.close();
      }
      assert.equal(await acme.find('acme', id), undefined);
      await problem(await call(`/api/v1/batches/${done.id}`, { key: keys.acme! }), 404, 'NOT_FOUND');
      if (f.name === 'sqlite') assert.ok(!existsSync(join(batchesDir(), done.id)) && !existsSync(join(batchesDir(), id)));
      const audit = await store.auditLog({ limit: 100_000 });
      assert.ok(audit.some((e) => e.action === 'batch.expire' && e.object === done.id));
      assert.ok(audit.some((e) => e.action === 'batch.abandoned' && e.object === id));
    });

    /**
     * A queued batch of one chunk of `messages`, claimable only by a queue whose clock is an hour on (the
     * chunk may be retried from 59 minutes on): by the test's queues, not by the server's own worker.
     */
    async function queuedChunk(tenant: string, messages: number): Promise<{ blobs: BatchBlobs; directory: BatchDirectory; id: string; later: number }> {
      const blobs = await openBatchBlobs(store.engine);
      const directory = new BatchDirectory(store, blobs);
      const id = await directory.begin({ tenant, keyId: 'k', mediaType: 'application/mbox', options: {}, leaseMs: 60_000 });
      await directory.addChunk(id, { seq: 0, firstIndex: 0, messages, bytes: Buffer.from('x') });
      const later = Date.now() + 3600_000;
      await store.engine.run('UPDATE batch_chunks SET lease_until = ? WHERE batch_id = ?', [new Date(later - 60_000).toISOString(), id]);
      await store.engine.run("UPDATE batches SET state = 'queued', total = ?, chunks = 1 WHERE id = ?", [messages, id]);
      return { blobs, directory, id, later };
    }

    test('the queue: a chunk whose lease lapsed goes to the next claimer; the first node\'s late completion changes nothing', async () => {
      const { directory, id, later } = await queuedChunk('queue-test', 2);
      let now = later;
      const a = new BatchQueue(store.engine, () => new Date(now));
      const b = new BatchQueue(store.engine, () => new Date(now));
      const held = await a.claim('node-a', 10_000);
      assert.ok(held && held.batchId === id, 'node a claims the chunk');
      assert.equal(await b.claim('node-b', 10_000).then((c) => c?.batchId === id), false, 'not while node a holds the lease');
      now += 11_000;
      const taken = await b.claim('node-b', 10_000);
      assert.ok(taken && taken.batchId === id && taken.attempts === 2, 'node b takes it once the lease lapsed');
      assert.equal(await a.renew(held, 10_000), false);
      // Each outcome carries its signed message's audit row, naming the node's output.
      const signedRow = (name: string) => auditRowOf({ at: new Date(now), actor: 'api:queue-test/k', action: 'api.batches.sign', object: 'cert', detail: `batch ${id} message 0 ${name}` });
      const outcome = (name: string) => ({ signed: 1, failed: 1, failures: [{ index: 1, code: 'KEY_INVALID' as const, reason: name, remedy: 'tenantIdentity' as const }], output: name, outputBytes: 10, audit: [signedRow(name)] });
      assert.equal(await a.complete(held, outcome('out-0-a'), 1000), false, 'node a lost the lease: its output is not the chunk\'s');
      assert.equal(await b.complete(taken, outcome('out-0-b'), 1000), true);
      assert.equal(await b.complete(taken, outcome('out-0-b'), 1000), false, 'completed once');
      const batch = (await directory.find('queue-test', id))!;
      assert.deepEqual([batch.state, batch.signed, batch.failed], ['done', 1, 1]);
      assert.deepEqual((await directory.resultParts(id)).map((p) => p.output), ['out-0-b']);
      assert.deepEqual(await directory.failures(id, 0, 10), [{ index: 1, code: 'KEY_INVALID', reason: 'out-0-b', remedy: 'tenantIdentity' }]);
      // The audit log holds the row of the completion that counted, once, and none of the lost one.
      const rows = (await store.engine.all('SELECT detail FROM audit_log WHERE detail LIKE ?', [`batch ${id} message 0 %`])).map((r) => String(r.detail));
      assert.deepEqual(rows, [`batch ${id} message 0 out-0-b`]);
      await directory.remove('queue-test', id);
    });

    test('a chunk\'s completion that fails after its audit rows were written leaves neither the rows nor a readable output', async () => {
      const { blobs, directory, id, later: now } = await queuedChunk('queue-fail', 3);
      // The store fails in the completing transaction after the rows went in (the database went away, a disk
      // full): the statement that moves the batch's counters throws, as a failed COMMIT would.
      const failing: SqlEngine = {
        ...store.engine,
        dialect: store.engine.dialect,
        all: (sql, params) => store.engine.all(sql, params),
        run: (sql, params) => store.engine.run(sql, params),
        transaction: (fn) => store.engine.transaction((tx) => fn({
          all: (sql, params) => tx.all(sql, params),
          run: async (sql, params) => {
            if (sql.startsWith('UPDATE batches SET chunks_done')) {
              const written = await tx.all('SELECT COUNT(*) AS n FROM audit_log WHERE detail LIKE ?', [`%batch ${id} %`]);
              assert.equal(Number(written[0]!.n), 3, 'the rows were written in this transaction');
              throw new Error('the store went away');
            }
            return tx.run(sql, params);
          },
        })),
      };
      const queue = new BatchQueue(failing, () => new Date(now));
      const chunk = await queue.claim('node-a', 10_000);
      assert.ok(chunk && chunk.batchId === id);
      const audit = [0, 1, 2].map((i) => auditRowOf({ at: new Date(now), actor: 'api:queue-fail/k', action: 'api.batches.sign', object: 'cert', detail: `batch ${id} message ${i}` }));
      await blobs.put(id, 'out-0-a', Buffer.from('signed'));
      await assert.rejects(queue.complete(chunk, { signed: 3, failed: 0, failures: [], output: 'out-0-a', outputBytes: 6, audit }, 1000), /the store went away/);
      assert.equal(Number((await store.engine.all('SELECT COUNT(*) AS n FROM audit_log WHERE detail LIKE ?', [`%batch ${id} %`]))[0]!.n), 0, 'no audit row');
      assert.deepEqual(await directory.resultParts(id), [], 'nothing of the chunk readable');
      const batch = (await directory.find('queue-fail', id))!;
      assert.deepEqual([batch.state, batch.chunksDone, batch.signed], ['running', 0, 0]);
      // The same completion on a store that works: the rows and the output together.
      assert.ok(await new BatchQueue(store.engine, () => new Date(now)).complete(chunk, { signed: 3, failed: 0, failures: [], output: 'out-0-a', outputBytes: 6, audit }, 1000));
      assert.equal(Number((await store.engine.all('SELECT COUNT(*) AS n FROM audit_log WHERE detail LIKE ?', [`%batch ${id} %`]))[0]!.n), 3);
      assert.deepEqual((await directory.resultParts(id)).map((p) => p.output), ['out-0-a']);
      await directory.remove('queue-fail', id);
    });

    test('maxUnfinishedBatches: a tenant with that many batches being received or signed gets 429 RATE_LIMITED (Retry-After) for the next, another tenant does not; once one is done the next is taken', async () => {
      const limit = DEFAULT_BATCH_CONFIG.maxUnfinishedBatches;
      const globex = new BatchDirectory(store, await openBatchBlobs(store.engine));
      const open: string[] = [];
      for (let i = 0; i < limit; i++) open.push(await globex.begin({ tenant: 'globex', keyId: 'k', mediaType: 'application/mbox', options: {}, leaseMs: 60_000 }));
      // One of them queued for signing: still unfinished.
      await store.engine.run("UPDATE batches SET state = 'queued' WHERE id = ?", [open[0]!]);
      assert.equal(await globex.countUnfinished('globex'), limit);
      const globexMbox = mboxOf([draft(0, 'info@globex.example')]);
      const refused = await upload(globexMbox, 'application/mbox', keys.globex!);
      assert.equal(refused.headers.get('retry-after'), '30');
      assert.match((await problem(refused, 429, 'RATE_LIMITED')).detail, new RegExp(`Tenant "globex" has ${limit} batches being received or signed`));
      assert.equal(await globex.countUnfinished('globex'), limit, 'nothing begun for the refused upload');
      await finished((await accepted(await upload(mboxOf([draft(0)]), 'application/mbox'))).id);
      // One done (a finished batch no longer counts): the next upload is taken and signed.
      await store.engine.run("UPDATE batches SET state = 'done' WHERE id = ?", [open[1]!]);
      assert.equal(await globex.countUnfinished('globex'), limit - 1);
      const taken = await accepted(await upload(globexMbox, 'application/mbox', keys.globex!));
      assert.equal((await finished(taken.id, keys.globex!)).signed, 1);
      for (const id of [...open, taken.id]) await globex.remove('globex', id);
    });
  });
}

test('batch options are checked at start: --batch-poll takes whole milliseconds from 50 to 60000', () => {
  assert.equal(batchConfigOf(resolveServeConfig({}, {})).pollMs, DEFAULT_BATCH_CONFIG.pollMs);
  assert.equal(batchConfigOf(resolveServeConfig({ batchPoll: '100' }, {})).pollMs, 100);
  for (const bad of ['49', '60001', '0.5', '1s', '', '-100']) {
    assert.throws(() => resolveServeConfig({ batchPoll: bad }, {}), (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT' && /--batch-poll/.test(e.message), bad);
  }
});
