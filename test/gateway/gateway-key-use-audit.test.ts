/**
 * Issue 12 item 5 and issue 13 (inbound performance): the gateway's crypto workers
 * get an inbound message's decryption key at once while its use's audit row is
 * committed (by the gateway's audit thread), and the decrypted message leaves only
 * once that commit is done. The guarantee is the old one: no decrypted content
 * leaves the gateway (relayed, or answered 250) before its key use is durable.
 * Shown against the real engines (SQLite and PostgreSQL), with the commit made to
 * fail (a trigger refusing the row) and to stall (the audit table locked by another
 * connection): nothing decrypted is relayed, the answer is 4xx, and every message
 * relayed decrypted has its record. While a commit stalls, mail that uses no key
 * goes through (the workers no longer wait in the commit's fsync).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { startGateway, type RunningGateway } from '../../src/gateway/start-gateway.ts';
import { resolveMasterKey } from '../../src/store/open-store.ts';
import type { Store } from '../../src/store/store.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { startPostgres, type PostgresServer } from '../store/postgres-server.ts';
import { createWorld, draft, openWorldStore, sendTo, Sink, type GatewayWorld } from './gateway-fixture.ts';

const SECRET = 'The vault code is 4711.';

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`inbound key uses on ${engine}: decrypted mail leaves only once its key use is committed`, () => {
    let pg: PostgresServer | undefined;
    let world: GatewayWorld;
    let store: Store;
    let sink: Sink;
    let gw: RunningGateway;
    const log = (event: string, fields: Record<string, unknown> = {}) => { if (process.env.GWLOG) console.log(Date.now() % 100000, event, JSON.stringify(fields)); };

    before(async () => {
      if (engine === 'postgres') pg = await startPostgres();
      world = await createWorld(pg?.url ?? '');
      store = await openWorldStore(world);
      sink = await new Sink().start();
      const policyPath = join(world.dir, 'policy.json');
      writeFileSync(policyPath, JSON.stringify({ revocation: 'allow-unknown' }));
      const masterKey = await resolveMasterKey({ home: world.home, env: world.env });
      gw = await startGateway(
        { listen: { host: '127.0.0.1', port: 0 }, nextHop: { host: '127.0.0.1', port: sink.port }, domains: new Set(['corp.test']), authservId: 'mx.corp.test', lmtp: false, policyPath, workers: 1 },
        store,
        log,
        { home: world.home, ...(pg ? { databaseUrl: pg.url } : {}), masterKey },
      );
    });

    after(async () => {
      await gw?.stop();
      await sink?.stop();
      await store?.close();
      world?.cleanup();
      pg?.stop();
    });

    const decryptUses = async () => Number((await store.engine.all("SELECT COUNT(*) AS n FROM audit_log WHERE actor = 'gateway' AND action = 'key.use.decrypt'"))[0]!.n);
    /** Encrypted to alice@corp.test (AES-GCM, unsigned: nothing to harvest, so the key use is the only write). */
    const sealed = async (subject: string) => {
      const alice = (await store.findRecipientCertificates('alice@corp.test'))[0]!.certificate;
      return encryptMessage(draft('dave@example.com', 'alice@corp.test', subject, SECRET), { recipients: [{ certificate: alice }] });
    };
    const delivered = () => sink.deliveries.filter((d) => d.message.toString('latin1').includes(SECRET));

    test('the commit fails: nothing is relayed, 451 is answered, no record; once it works the message goes through with its record', async () => {
      sink.reset();
      const uses = await decryptUses();
      // The audit table refuses the row: the engine's own failure, as a full disk would be.
      if (engine === 'sqlite') {
        await store.engine.run("CREATE TRIGGER test_refuse_decrypt BEFORE INSERT ON audit_log WHEN NEW.action = 'key.use.decrypt' BEGIN SELECT RAISE(ABORT, 'audit refused (test)'); END");
      } else {
        await store.engine.run("CREATE FUNCTION test_refuse_decrypt() RETURNS trigger AS $$ BEGIN IF NEW.action = 'key.use.decrypt' THEN RAISE EXCEPTION 'audit refused (test)'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql");
        await store.engine.run('CREATE TRIGGER test_refuse_decrypt BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION test_refuse_decrypt()');
      }
      try {
        const r = await sendTo(gw.listening.port, 'dave@example.com', ['alice@corp.test'], await sealed('Refused record'));
        assert.equal(r.code, 451, `a key use that could not be recorded defers the message: ${r.response}`);
        assert.equal(sink.deliveries.length, 0, 'nothing was relayed');
        assert.equal(await decryptUses(), uses);
      } finally {
        await store.engine.run(engine === 'sqlite' ? 'DROP TRIGGER test_refuse_decrypt' : 'DROP TRIGGER test_refuse_decrypt ON audit_log');
        if (engine === 'postgres') await store.engine.run('DROP FUNCTION test_refuse_decrypt()');
      }
      const again = await sendTo(gw.listening.port, 'dave@example.com', ['alice@corp.test'], await sealed('Recorded'));
      assert.equal(again.code, 250, again.response);
      assert.equal(delivered().length, 1, 'Postfix\'s retry goes through, decrypted');
      assert.equal(await decryptUses(), uses + 1, 'with its record');
    });

    test('the commit stalls: the decrypted message waits for it (nothing relayed, no answer) while mail that uses no key goes through; then it leaves with its record', async () => {
      sink.reset();
      const uses = await decryptUses();
      // Another connection holds the audit table (SQLite: the write lock; PostgreSQL: a SHARE lock, which INSERT waits for).
      let release!: () => Promise<void>;
      if (engine === 'sqlite') {
        const db = new DatabaseSync(join(world.home, 'kakitome.db'));
        db.exec('BEGIN IMMEDIATE');
        release = async () => {
          db.exec('ROLLBACK');
          db.close();
        };
      } else {
        let unlock!: () => void;
        const held = new Promise<void>((r) => (unlock = r));
        let locked!: () => void;
        const isLocked = new Promise<void>((r) => (locked = r));
        const tx = store.engine.transaction(async (t) => {
          await t.run('LOCK TABLE audit_log IN SHARE MODE');
          locked();
          await held;
        });
        await isLocked;
        release = async () => {
          unlock();
          await tx;
        };
      }
      let answered: number | undefined;
      let inbound: Promise<void> | undefined;
      try {
        inbound = sendTo(gw.listening.port, 'dave@example.com', ['alice@corp.test'], await sealed('Stalled record')).then((r) => void (answered = r.code));
        await new Promise((r) => setTimeout(r, 300));
        // Mail that uses no key (neither sender nor recipient ours) goes through the same worker meanwhile.
        const pass = await sendTo(gw.listening.port, 'erin@example.com', ['frank@example.org'], draft('erin@example.com', 'frank@example.org', 'Passing', 'No key needed.'));
        assert.equal(pass.code, 250, pass.response);
        assert.equal(sink.deliveryTo('frank@example.org').message.toString('latin1').includes('No key needed.'), true);
        await new Promise((r) => setTimeout(r, 700));
        assert.equal(answered, undefined, 'no answer while the key use is not committed');
        assert.equal(delivered().length, 0, 'nothing decrypted was relayed while the key use is not committed');
      } finally {
        await release();
      }
      await inbound;
      assert.equal(answered, 250);
      assert.equal(delivered().length, 1);
      assert.equal(await decryptUses(), uses + 1, 'the message left with its record');
    });

    test('many at once: every message relayed decrypted has its record', async () => {
      sink.reset();
      const uses = await decryptUses();
      const replies = await Promise.all(Array.from({ length: 12 }, async (_, i) => sendTo(gw.listening.port, 'dave@example.com', ['alice@corp.test'], await sealed(`Batch ${i}`))));
      assert.deepEqual(replies.map((r) => r.code), Array(12).fill(250));
      assert.equal(delivered().length, 12);
      assert.equal(await decryptUses(), uses + 12);
    });
  });
}
