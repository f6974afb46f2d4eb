/**
 * Expiry notices by mail at 30, 14 and 7 days, each once, in the person's
 * language, to a real SMTP sink; on PostgreSQL two nodes (two stores on one
 * database) running at the same moment send each notice once. Not told: a
 * revoked certificate, a disabled person, a person already renewed, a
 * certificate beyond 30 days. A refused mail is tried again at the next run.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { engineFactories } from '../store/engine-factories.ts';
import { Store } from '../../src/store/store.ts';
import { PeopleDirectory } from '../../src/store/people-directory.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { sendExpiryNotices } from '../../src/server/console/expiry-mailer.ts';
import { thresholdFor } from '../../src/store/expiry-notices.ts';
import { ja } from '../../src/server/console/messages/ja.ts';
import { en } from '../../src/server/console/messages/en.ts';
import { TestPki } from '../helpers/pki.ts';
import { Sink } from '../gateway/gateway-fixture.ts';

const DAY = 86_400_000;
const pki = new TestPki('Expiry Root');
/** A second CA: TestPki keeps one certificate per name, and a renewed person has two. */
const renewal = new TestPki('Renewal Root');

function text(message: Buffer): string {
  const raw = message.toString('latin1');
  return Buffer.from(raw.slice(raw.indexOf('\r\n\r\n') + 4), 'base64').toString('utf8');
}

for (const f of engineFactories('kakitome-expiry-')) {
  describe(`expiry notices on ${f.name}`, () => {
    let sink: Sink;
    let a: Store;
    let b: Store;
    let now = Date.now();
    const clock = () => new Date(now);
    before(async () => {
      await f.setup();
      sink = await new Sink().start();
      const master = masterKeyFromBytes(randomBytes(32));
      a = await Store.open(f.make(), { masterKey: master, actor: 'serve', clock });
      // Two nodes share a PostgreSQL; a SQLite store has one node (its file is one process's).
      b = f.name === 'postgres' ? await Store.open(f.make(), { masterKey: master, actor: 'serve', clock }) : a;
    });
    after(async () => {
      await a?.close();
      if (b !== a) await b?.close();
      await sink?.stop();
      await f.teardown();
    });

    test('each threshold once, in the person\'s language, never twice across nodes', async () => {
      const people = new PeopleDirectory(a, { passwordHash: { memoryKiB: 1024, passes: 1, parallelism: 1 } });
      const cert = (name: string, days: number) => pki.identity('p256', name, { notBefore: new Date(now - DAY), notAfter: new Date(now + days * DAY - 3_600_000) }).cert;
      await people.addPerson({ email: 'hanako@example.com', language: 'ja' });
      await people.addPerson({ email: 'jiro@example.com', language: 'en' });
      await people.addPerson({ email: 'renewed@example.com' });
      await people.addPerson({ email: 'gone@example.com' });
      await people.addPerson({ email: 'revoked@example.com' });
      await a.importCertificate(cert('hanako', 25));
      await a.importCertificate(cert('jiro', 40));
      await a.importCertificate(cert('renewed', 10));
      await a.importCertificate(renewal.identity('p256', 'renewed', { notBefore: new Date(now - DAY), notAfter: new Date(now + 100 * DAY) }).cert);
      await a.importCertificate(cert('gone', 5));
      await a.engine.run('UPDATE people SET disabled_at = ? WHERE email = ?', [new Date(now).toISOString(), 'gone@example.com']);
      const r = await a.importCertificate(cert('revoked', 5));
      await a.revokeCertificate(r.certificate.fingerprint256, 1);
      const mail = { relay: { host: '127.0.0.1', port: sink.port }, from: 'kakitome@example.com' };
      const run = (s: Store) => sendExpiryNotices({ store: s, mail, baseUrl: 'https://console.example.com', log: () => {} });

      // Two nodes at once: hanako's 30-day notice goes once.
      const [x, y] = await Promise.all([run(a), run(b)]);
      assert.equal(x.sent + y.sent, 1, JSON.stringify(sink.deliveries.map((d) => d.to)));
      assert.deepEqual(sink.deliveries.map((d) => d.to), [['hanako@example.com']]);
      const body = text(sink.deliveries[0]!.message);
      assert.ok(body.startsWith('あなたのメール証明書は'), body);
      assert.match(body, /あと25日/);
      assert.match(body, /https:\/\/console\.example\.com\/me/);
      assert.equal((await run(a)).sent + (await run(b)).sent, 0, 'sent once');

      // 12 days later: hanako's 14-day notice, jiro's 30-day one (in English).
      now += 12 * DAY;
      await Promise.all([run(a), run(b), run(a)]);
      assert.deepEqual(sink.deliveries.map((d) => d.to[0]).sort(), ['hanako@example.com', 'hanako@example.com', 'jiro@example.com']);
      const jiro = text(sink.deliveries.find((d) => d.to[0] === 'jiro@example.com')!.message);
      assert.ok(jiro.startsWith(en.expiryMail.body('', 0, '').slice(0, 20)), jiro);

      // A refused mail is released and sent at the next run.
      now += 7 * DAY;
      sink.mode = 'reject';
      const refused = await run(a);
      assert.equal(refused.sent, 0);
      assert.ok(refused.failed >= 1);
      sink.mode = 'accept';
      const n = sink.deliveries.length;
      await Promise.all([run(a), run(b)]);
      assert.equal(sink.deliveries.length, n + 1, 'hanako\'s 7-day notice, once');
      assert.match(text(sink.deliveries.at(-1)!.message), /あと6日/);
      assert.ok(ja.expiryMail.subject(6).includes('6'));
      const rows = await a.engine.all('SELECT threshold FROM expiry_notices ORDER BY threshold');
      assert.deepEqual(rows.map((row) => Number(row.threshold)), [7, 14, 30, 30]);
    });
  });
}

test('thresholds: the smallest one the days left fall under', () => {
  assert.deepEqual([31, 30, 15, 14, 8, 7, 1].map(thresholdFor), [undefined, 30, 30, 14, 14, 7, 7]);
});

after(() => {
  pki.cleanup();
  renewal.cleanup();
});
