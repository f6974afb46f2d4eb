/**
 * docs/security.md section 27: the signing service's requests, played by an
 * unauthenticated client and by a tenant that tries to get more than it may: request
 * framing that two HTTP readers could see differently, a transfer coding read as the
 * message, a body invited before the key was checked, two credentials in one
 * request, input echoed into answers and the audit log, and batch uploads whose
 * text was not what was sent: an mbox whose bare "From " lines cut a message in two,
 * NDJSON that is not UTF-8, a multipart part in a transfer encoding. A real `startServer` on SQLite; requests
 * written byte by byte on a socket where a client library would refuse to send them.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { initCertificateAuthority } from '../../src/ca/init-certificate-authority.ts';
import { issueMailboxCertificate } from '../../src/ca/issue-mailbox-certificate.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { TenantDirectory } from '../../src/store/tenant-directory.ts';
import { startServer, type RunningServer } from '../../src/server/start-server.ts';
import { DEFAULT_BATCH_CONFIG } from '../../src/server/config.ts';

const LIMIT = 64 * 1024;
let dir: string;
let store: Store;
let server: RunningServer;
const keys: Record<string, string> = {};

const draft = (from: string, body = 'Hello.\r\n', subject = 'Statement') => `From: ${from}\r\nTo: reader@example.net\r\nSubject: ${subject}\r\n\r\n${body}`;

/**
 * Writes `parts` on one connection (a pause between them) and returns what came
 * back once the server closed it or `waitMs` passed: the raw answers, in order.
 */
function exchange(parts: Array<string | Buffer>, waitMs = 1500): Promise<{ text: string; closed: boolean }> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    const got: Buffer[] = [];
    let closed = false;
    socket.on('data', (d: Buffer) => got.push(d));
    socket.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' || e.code === 'EPIPE' ? undefined : reject(e)));
    socket.on('close', () => (closed = true));
    const timer = setTimeout(() => socket.destroy(), waitMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(got).toString('latin1'), closed });
    });
    void (async () => {
      for (const p of parts) {
        if (closed) return;
        socket.write(p);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
  });
}

const statuses = (text: string) => [...text.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1]));
const signHead = (key: string, extra: string) => `POST /api/v1/sign HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\nContent-Type: message/rfc822\r\n${extra}`;
const chunked = (body: string) => `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`;
const signedCount = async () => Number((await store.engine.all("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'api.sign'"))[0]!.n);

interface BatchView { state: string; total: number; signed: number; failures: Array<{ index: number; code: string; reason: string }> }

/** Uploads a batch as acme, waits until it is signed; its view and its result (the signed mbox). */
async function signBatch(type: string, body: string | Buffer): Promise<{ view: BatchView; result: Buffer }> {
  const auth = { authorization: `Bearer ${keys.acme!}` };
  const r = await fetch(new URL('/api/v1/batches', server.url), { method: 'POST', headers: { ...auth, 'content-type': type }, body });
  const created = await r.json() as { id: string };
  assert.equal(r.status, 202, JSON.stringify(created));
  let view: BatchView | undefined;
  for (let i = 0; i < 200 && view?.state !== 'done'; i++) {
    await new Promise((res) => setTimeout(res, 50));
    view = await (await fetch(new URL(`/api/v1/batches/${created.id}`, server.url), { headers: auth })).json() as BatchView;
  }
  assert.equal(view!.state, 'done', JSON.stringify(view));
  const result = Buffer.from(await (await fetch(new URL(`/api/v1/batches/${created.id}/result`, server.url), { headers: auth })).arrayBuffer());
  return { view: view!, result };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kakitome-hostile-api-'));
  store = await Store.open(openSqliteEngine(join(dir, 'store.db')), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'tester' });
  await initCertificateAuthority(store, { name: 'Hostile API CA', keyType: 'p256' });
  const tenants = new TenantDirectory(store);
  await tenants.addTenant('acme', ['acme.example']);
  await tenants.addTenant('globex', ['globex.example']);
  await issueMailboxCertificate(store, { email: 'news@acme.example', keyType: 'p256' });
  await issueMailboxCertificate(store, { email: 'ceo@acme.example', keyType: 'p256' });
  await issueMailboxCertificate(store, { email: 'info@globex.example', keyType: 'p256' });
  await tenants.registerIdentities('acme', ['news@acme.example', 'ceo@acme.example']);
  await tenants.registerIdentities('globex', ['info@globex.example']);
  keys.acme = (await tenants.createApiKey('acme', { scopes: ['sign'] })).token;
  keys.globex = (await tenants.createApiKey('globex', { scopes: ['sign'] })).token;
  keys.acmeAdmin = (await tenants.createApiKey('acme', { scopes: ['admin'] })).token;
  server = await startServer(store, {
    host: '127.0.0.1', port: 0, maxMessageBytes: LIMIT, shutdownGraceMs: 1000, revocation: 'allow-unknown',
    batch: { ...DEFAULT_BATCH_CONFIG, chunkMessages: 40, maxBatchBytes: 1024 * 1024, maxBatchMessages: 1000, pollMs: 50, leaseMs: 5000 },
  }, { log: () => {}, version: 'test' });
});
after(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('framing two readers could take differently is 400 and the connection closes; a refused body is never read as the next request', async () => {
  const m = draft('news@acme.example');
  const before = await signedCount();
  for (const [what, head] of [
    ['Content-Length with Transfer-Encoding', signHead(keys.acme!, `Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n`) + chunked(m)],
    ['two Content-Length fields', signHead(keys.acme!, `Content-Length: ${m.length}\r\nContent-Length: 4\r\n\r\n`) + m],
    ['Transfer-Encoding twice', signHead(keys.acme!, `Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n`) + chunked(m)],
    ['obs-fold', signHead(keys.acme!, `X-Folded: a\r\n b\r\nContent-Length: ${m.length}\r\n\r\n`) + m],
    ['bare LF', signHead(keys.acme!, `Content-Length: ${m.length}\r\n\r\n`).replace(/\r\n/g, '\n') + m],
  ] as const) {
    const { text, closed } = await exchange([head]);
    assert.deepEqual(statuses(text), [400], `${what}: ${text.slice(0, 200)}`);
    assert.ok(closed, `${what}: the connection is closed`);
  }
  // A request refused before its body is read (no key; the wrong media type; over the size from
  // Content-Length) whose body is another caller's request: that one is never run.
  const smuggled = `POST /api/v1/sign HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${keys.acme!}\r\nContent-Type: message/rfc822\r\nContent-Length: ${m.length}\r\n\r\n${m}`;
  for (const path of ['/api/v1/sign', '/api/v1/batches']) {
    const noKey = await exchange([`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: message/rfc822\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`]);
    assert.deepEqual(statuses(noKey.text), [401], noKey.text.slice(0, 300));
    const wrongType = await exchange([`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${keys.globex!}\r\nContent-Type: text/plain\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`]);
    assert.deepEqual(statuses(wrongType.text), [415], wrongType.text.slice(0, 300));
  }
  const tooLarge = await exchange([signHead(keys.globex!, `Content-Length: ${LIMIT + 1}\r\n\r\n`), smuggled]);
  assert.deepEqual(statuses(tooLarge.text), [413], tooLarge.text.slice(0, 300));
  assert.equal(await signedCount(), before, 'nothing was signed');
});

test('a transfer coding other than chunked is 501: its coded bytes are never signed or stored as the message', async () => {
  const m = draft('news@acme.example');
  const before = await signedCount();
  const batchesBefore = Number((await store.engine.all('SELECT COUNT(*) AS n FROM batches'))[0]!.n);
  for (const coding of ['gzip, chunked', 'deflate, chunked', 'x-custom, chunked', 'identity, chunked']) {
    const sign = await exchange([signHead(keys.acme!, `Transfer-Encoding: ${coding}\r\n\r\n`) + chunked(m)]);
    assert.deepEqual(statuses(sign.text), [501], `${coding}: ${sign.text.slice(0, 300)}`);
    assert.match(sign.text, /"code":"INVALID_ARGUMENT"/);
    const batch = await exchange([`POST /api/v1/batches HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${keys.acme!}\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: ${coding}\r\n\r\n` + chunked(`${JSON.stringify({ message: m })}\n`)]);
    assert.deepEqual(statuses(batch.text), [501], `${coding}: ${batch.text.slice(0, 300)}`);
  }
  // Every route that reads a body: the settings' JSON, an identity upload.
  for (const [method, path, type] of [['PATCH', '/api/v1/tenants/acme/settings', 'application/json'], ['POST', '/api/v1/identities', 'application/json'], ['POST', '/api/v1/identities', 'application/pkcs12']]) {
    const { text } = await exchange([`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${keys.acmeAdmin!}\r\nContent-Type: ${type}\r\nKakitome-Pkcs12-Password: \r\nTransfer-Encoding: gzip, chunked\r\n\r\n` + chunked('{"dkim": true}')]);
    assert.deepEqual(statuses(text), [501], `${method} ${path} ${type}: ${text.slice(0, 300)}`);
  }
  assert.equal(await signedCount(), before);
  assert.equal(Number((await store.engine.all('SELECT COUNT(*) AS n FROM batches'))[0]!.n), batchesBefore, 'no batch kept');
  // Chunked alone is read as always.
  const plain = await exchange([signHead(keys.acme!, `Transfer-Encoding: chunked\r\n\r\n`) + chunked(m)]);
  assert.deepEqual(statuses(plain.text), [200], plain.text.slice(0, 300));
});

test('Expect: 100-continue: no "100 Continue" before the key, the media type and the size passed', async () => {
  const m = draft('news@acme.example');
  const expect = (head: string) => exchange([`${head}Expect: 100-continue\r\n\r\n`], 1000);
  for (const [what, head, status] of [
    ['no key', `POST /api/v1/sign HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: message/rfc822\r\nContent-Length: ${LIMIT}\r\n`, 401],
    ['a wrong key', signHead(`kk_${'0'.repeat(16)}_${'A'.repeat(43)}`, `Content-Length: ${LIMIT}\r\n`), 401],
    ['over the size', signHead(keys.acme!, `Content-Length: ${LIMIT + 1}\r\n`), 413],
    ['the wrong media type', signHead(keys.acme!, `Content-Length: 100\r\n`).replace('message/rfc822', 'text/plain'), 415],
    ['a batch with no key', `POST /api/v1/batches HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/mbox\r\nContent-Length: 100000\r\n`, 401],
    ['an identity upload with no key', `POST /api/v1/identities HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/pkcs12\r\nContent-Length: 100000\r\n`, 401],
  ] as const) {
    const { text, closed } = await expect(head);
    assert.deepEqual(statuses(text), [status], `${what}: the final answer only, no 100 first: ${text.slice(0, 200)}`);
    assert.ok(closed, `${what}: the connection is closed (its body never came)`);
  }
  // A request that will be read gets its 100, then its answer.
  const good = await exchange([`${signHead(keys.acme!, `Content-Length: ${m.length}\r\n`)}Expect: 100-continue\r\n\r\n`, m]);
  assert.deepEqual(statuses(good.text), [100, 200], good.text.slice(0, 300));
});

test('two Authorization fields are 401 on /sign as on every other route, whichever comes first', async () => {
  const m = draft('news@acme.example');
  for (const path of ['/api/v1/sign', '/api/v1/verify', '/api/v1/batches']) {
    for (const [first, second] of [[keys.acme!, keys.globex!], [keys.globex!, keys.acme!], [keys.acme!, keys.acme!]]) {
      const { text } = await exchange([`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${first}\r\nAuthorization: Bearer ${second}\r\nContent-Type: message/rfc822\r\nContent-Length: ${m.length}\r\nConnection: close\r\n\r\n${m}`]);
      assert.deepEqual(statuses(text), [401], `${path}: ${text.slice(0, 300)}`);
    }
  }
});

test('an answer and the audit row of a refusal name a request\'s value in at most a line: no 16 KiB header echoed', async () => {
  const m = draft('news@acme.example');
  const long = `text/plain; x=${'\u00e9'.repeat(10)}${'A'.repeat(10_000)}`;
  const call = (path: string, type: string, method = 'POST') => fetch(new URL(path, server.url), { method, headers: { authorization: `Bearer ${keys.acme!}`, 'content-type': Buffer.from(type, 'latin1').toString('latin1') }, ...(method === 'GET' ? {} : { body: m }) });
  for (const [path, type, method] of [
    ['/api/v1/sign', long, 'POST'],
    ['/api/v1/batches', long, 'POST'],
    [`/api/v1/sign?${'z'.repeat(5000)}=1`, 'message/rfc822', 'POST'],
    [`/api/v1/${'C'.repeat(6000)}`, 'message/rfc822', 'GET'],
  ] as const) {
    const r = await call(path, type, method);
    const p = await r.json() as { detail: string };
    assert.ok(r.status >= 400, path.slice(0, 40));
    assert.ok(p.detail.length < 600, `${path.slice(0, 40)}: a detail of ${p.detail.length} characters`);
    assert.match(p.detail, /^[\x20-\x7e]*$/, 'printable ASCII only');
  }
  const rows = await store.engine.all("SELECT detail FROM audit_log WHERE action LIKE 'api.%.refused'");
  assert.ok(rows.length >= 3, 'the refusals are audited');
  for (const row of rows) assert.ok(String(row.detail).length < 700, `an audit row of ${String(row.detail).length} characters`);
});

test('an mbox batch: a bare "From " line in a body fails its message at its own index, never cuts it, never starts a message', async () => {
  const entry = (i: number, body: string, from = 'news@acme.example') => `From sender@acme.example Mon Dec  7 09:00:0${i} 2026\n${draft(from, body, `m${i}`).replace(/\r\n/g, '\n')}\n`;
  const upload = [
    entry(0, 'First.\n'),
    // A naive writer (cat) left a body line bare: no empty line before it, no date.
    entry(1, 'Dear customer,\nFrom now on, statements come monthly.\nRegards\n'),
    // After an empty line, but prose: no sender and date.
    entry(2, 'Dear customer,\n\nFrom next week, our hours change.\n'),
    // Text a customer put in the body, shaped as a From_ line and a message of its own, without the empty line.
    entry(3, 'Your note:\nFrom evil@example.com Mon Dec  7 09:00:00 2026\nFrom: ceo@acme.example\nTo: victim@example.net\nSubject: Wire the money\n\nPay now.\n'),
    entry(4, 'Last.\n'),
  ].join('');
  const { view, result: signed } = await signBatch('application/mbox', upload);
  assert.equal(view.total, 5, 'one entry per message the sender wrote');
  assert.deepEqual(view.failures.map((f) => [f.index, f.code]), [[1, 'MALFORMED'], [2, 'MALFORMED'], [3, 'MALFORMED']]);
  assert.match(view.failures[0]!.reason, /">From "/);
  assert.equal(view.signed, 2);
  const result = signed.toString('latin1');
  assert.match(result, /Subject: m0[\s\S]*Subject: m4/);
  assert.doesNotMatch(result, /Wire the money|From now on|From next week/, 'no part of a refused message was signed');
  // A file whose first line is a From_ line without a sender and date is no mbox.
  const bad = await fetch(new URL('/api/v1/batches', server.url), { method: 'POST', headers: { authorization: `Bearer ${keys.acme!}`, 'content-type': 'application/mbox' }, body: `From here on\n${draft('news@acme.example')}` });
  assert.equal(bad.status, 400, await bad.text());
});

test('an NDJSON line that is not UTF-8, or a message with a lone surrogate, fails at its index: no U+FFFD signed in its place', async () => {
  // "Dear customer" in Shift_JIS, put into the JSON string as raw bytes: decoded as UTF-8, every byte became U+FFFD.
  const sjis = Buffer.from([0x82, 0xa8, 0x8b, 0x71, 0x97, 0x6c]);
  // {"message": "From: ...\r\n\r\n<body>"}: the body's bytes as given.
  const line = (body: Buffer | string) => Buffer.concat([Buffer.from(`{"message": ${JSON.stringify(draft('news@acme.example', ''))}`.slice(0, -1)), Buffer.from(body), Buffer.from('"}\n')]);
  const upload = Buffer.concat([
    line('ok\\r\\n'),
    line(sjis),
    Buffer.from(`{"message": "${draft('news@acme.example').replace(/\r\n/g, '\\r\\n')}\\ud800"}\n`),
    Buffer.from(`${JSON.stringify({ base64: Buffer.concat([Buffer.from(draft('news@acme.example', '')), sjis, Buffer.from('\r\n')]).toString('base64') })}\n`),
  ]);
  const { view, result } = await signBatch('application/x-ndjson', upload);
  assert.equal(view.total, 4);
  assert.deepEqual(view.failures.map((f) => [f.index, f.code]), [[1, 'MALFORMED'], [2, 'MALFORMED']], JSON.stringify(view));
  assert.match(view.failures[0]!.reason, /not UTF-8/);
  assert.equal(view.signed, 2, 'the text line and the Shift_JIS bytes sent as base64 are signed');
  assert.equal(result.indexOf(Buffer.from('\ufffd')), -1, 'no replacement character was signed');
  assert.doesNotMatch(result.toString('latin1'), /=EF=BF=BD/i, 'nor one in quoted-printable');
});

test('a multipart part in a transfer encoding fails at its index: its quoted-printable or base64 form is never signed as the message', async () => {
  const b = 'kakitome-boundary';
  const message = 'From: news@acme.example\r\nTo: reader@example.net\r\nSubject: Prices\r\n\r\nPrice = 10 EUR, a line long enough to be cut by a soft line break somewhere.\r\n';
  const qp = message.replace(/=/g, '=3D').replace(/somewhere\./, '=\r\nsomewhere.');
  const part = (headers: string, body: string) => `--${b}\r\n${headers}\r\n${body}\r\n`;
  const upload = [
    part('Content-Type: message/rfc822\r\nContent-Transfer-Encoding: quoted-printable\r\n', qp),
    part('Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n', Buffer.from(message).toString('base64')),
    part('Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n', message),
    part('Content-Type: message/rfc822\r\n', message),
    `--${b}--\r\n`,
  ].join('');
  const { view, result } = await signBatch(`multipart/mixed; boundary=${b}`, upload);
  assert.equal(view.total, 4);
  assert.deepEqual(view.failures.map((f) => [f.index, f.code]), [[0, 'INVALID_ARGUMENT'], [1, 'INVALID_ARGUMENT']], JSON.stringify(view));
  assert.match(view.failures[0]!.reason, /Content-Transfer-Encoding quoted-printable/);
  assert.equal(view.signed, 2);
  assert.doesNotMatch(result.toString('latin1'), /Price =3D 10/, 'no quoted-printable form was signed as the text');
});
