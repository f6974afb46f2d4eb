/**
 * Issue 12, item 5: key uses at gateway rates with the same audit guarantees, on
 * both engines. A key is handed out only after its use is committed; uses that
 * arrive together share a commit and lookups that arrive together share a query;
 * a crash never leaves an answer whose key use has no record; a store opened
 * without its master key reads certificates and trust anchors and refuses keys.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { TestPki } from '../helpers/pki.ts';
import { engineFactories } from './engine-factories.ts';
import { Store } from '../../src/store/store.ts';
import type { SqlEngine, SqlExecutor } from '../../src/store/sql-engine.ts';
import type { AuditRow } from '../../src/store/record-key-use.ts';
import { createStoreTrustStore } from '../../src/store/store-trust-store.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { identifierFor } from '../../src/cms/identifier.ts';
import { isKakitomeError } from '../../src/errors.ts';

const pki = new TestPki('Key Use Audit Root');
const alice = pki.identity('rsa2048', 'alice');
const bob = pki.identity('p256', 'bob');
const master = masterKeyFromBytes(randomBytes(32));
after(() => pki.cleanup());

const isAuditInsert = (sql: string) => /^INSERT INTO audit_log/.test(sql);

/** The engine, counting the commits that carry audit rows and the key lookups; `failAudit` makes audit inserts fail. */
function instrumented(engine: SqlEngine) {
  const counts = { auditCommits: 0, lookups: 0, failAudit: false, stallAudit: undefined as Promise<void> | undefined };
  const watch = (x: SqlExecutor, onAudit: () => void): SqlExecutor => ({
    all: (sql, params) => {
      if (/JOIN private_keys/.test(sql)) counts.lookups++;
      return x.all(sql, params);
    },
    run: (sql, params) => {
      if (isAuditInsert(sql)) {
        if (counts.failAudit) return Promise.reject(new Error('disk full (test)'));
        onAudit();
        // A commit that takes its time (a slow disk): the insert waits for the test to let it go.
        const stall = counts.stallAudit;
        if (stall) return stall.then(() => x.run(sql, params));
      }
      return x.run(sql, params);
    },
  });
  const wrapped: SqlEngine = {
    dialect: engine.dialect,
    ...watch(engine, () => counts.auditCommits++),
    transaction: (fn) => engine.transaction(async (tx) => {
      let audited = false;
      const out = await fn(watch(tx, () => (audited = true)));
      if (audited) counts.auditCommits++;
      return out;
    }),
    close: () => engine.close(),
  };
  return { engine: wrapped, counts };
}

const decryptUses = async (store: Store) => Number((await store.engine.all("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'key.use.decrypt'"))[0]!.n);

for (const f of engineFactories('kakitome-key-use-')) {
  describe(`key uses on ${f.name}`, () => {
    let store: Store;
    let counts: ReturnType<typeof instrumented>['counts'];
    before(async () => {
      await f.setup();
      const w = instrumented(f.make());
      counts = w.counts;
      store = await Store.open(w.engine, { masterKey: master, actor: 'gateway' });
      await store.importPrivateKey(alice.key, { certificates: [alice.cert] });
      await store.importPrivateKey(bob.key, { certificates: [bob.cert] });
      await store.importCertificate(pki.caCert, { trust: 'trusted' });
    });
    after(async () => {
      await store.close();
      await f.teardown();
    });

    test('200 lookups at once: each key comes back after its use is committed, in shared commits and queries', async () => {
      const before = await decryptUses(store);
      const commits = counts.auditCommits;
      const lookups = counts.lookups;
      // A second connection sees the record as soon as the caller has its key.
      const observer = await Store.open(f.make(), {});
      try {
        const seen: number[] = [];
        const results = await Promise.all(Array.from({ length: 200 }, async (_, i) => {
          const who = i % 2 ? bob : alice;
          const found = await store.findDecryptionKeys([identifierFor(who.cert, i % 4 < 2 ? 'issuerAndSerialNumber' : 'subjectKeyIdentifier')]);
          seen.push((await decryptUses(observer)) - before);
          return { who, found };
        }));
        for (const { who, found } of results) {
          assert.deepEqual(found.map((k) => k.certificate.fingerprint256), [who.cert.fingerprint256], 'each envelope gets its own key only');
          assert.deepEqual(found[0]!.key.export({ format: 'der', type: 'pkcs8' }), who.key.export({ format: 'der', type: 'pkcs8' }));
        }
        assert.equal((await decryptUses(observer)) - before, 200, 'every use is recorded');
        assert.ok(seen.every((n) => n >= 1), 'no caller had its key before a record was visible');
        assert.ok(counts.auditCommits - commits <= 20, `200 uses took ${counts.auditCommits - commits} commits: they must share them`);
        assert.ok(counts.lookups - lookups <= 40, `200 lookups took ${counts.lookups - lookups} queries: they must share them`);
      } finally {
        await observer.close();
      }
    });

    test('auditGroupMs: a caller alone commits at once; after a shared commit rows wait for the group time and share the next, each caller after its row is visible', async () => {
      // Wide enough that a loaded machine's stalls fit in it: three lone commits must take less, ten rows 10 ms apart must fall within it.
      const groupMs = 1500;
      const w = instrumented(f.make());
      const grouped = await Store.open(w.engine, { actor: 'serve', auditGroupMs: groupMs });
      const observer = await Store.open(f.make(), {});
      const visible = async (detail: string) => (await observer.engine.all("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'test.grouped' AND detail = ?", [detail]))[0]!.n;
      try {
        // One caller at a time (a client sending one message after another): never held back.
        const alone = performance.now();
        for (const i of [1, 2, 3]) await grouped.audit('test.grouped', undefined, `alone ${i}`);
        assert.ok(performance.now() - alone < groupMs, 'three rows one after another did not wait for the group time');
        assert.equal(w.counts.auditCommits, 3);
        // Two rows at once share a commit; from then on the group time applies.
        const first = performance.now();
        await Promise.all([grouped.audit('test.grouped', undefined, 'first'), grouped.audit('test.grouped', undefined, 'second')]);
        assert.equal(Number(await visible('first')) + Number(await visible('second')), 2);
        assert.equal(w.counts.auditCommits, 4);
        // Ten rows, one every 10 ms, all within the group time of that commit.
        const resolved: number[] = [];
        await Promise.all(Array.from({ length: 10 }, async (_, i) => {
          await new Promise((r) => setTimeout(r, i * 10));
          await grouped.audit('test.grouped', undefined, `wave ${i}`);
          assert.equal(Number(await visible(`wave ${i}`)), 1, 'the caller goes on only once its row is committed');
          resolved.push(performance.now());
        }));
        assert.equal(w.counts.auditCommits, 5, `ten rows within the group time took ${w.counts.auditCommits - 4} commits`);
        assert.ok(Math.min(...resolved) >= first + groupMs - 5, 'the second commit waited for the group time');
      } finally {
        await observer.close();
        await grouped.close();
      }
    });

    test('lookups sharing a query never lend a key: a serial number under another issuer finds nothing', async () => {
      const other = new TestPki('Another Root');
      try {
        const forged = { kind: 'issuerAndSerialNumber' as const, issuer: other.caCert.subject, serial: alice.cert.serial };
        const [mine, theirs] = await Promise.all([store.findDecryptionKeys([forged]), store.findDecryptionKeys([identifierFor(alice.cert)])]);
        assert.deepEqual(mine, []);
        assert.equal(theirs.length, 1);
      } finally {
        other.cleanup();
      }
    });

    test('a failed audit commit hands out no key, to any caller of that commit', async () => {
      const before = await decryptUses(store);
      counts.failAudit = true;
      try {
        const all = await Promise.allSettled(Array.from({ length: 10 }, () => store.findDecryptionKeys([identifierFor(alice.cert)])));
        assert.ok(all.every((r) => r.status === 'rejected' && /disk full/.test(String(r.reason))), 'no key without its record');
      } finally {
        counts.failAudit = false;
      }
      assert.equal(await decryptUses(store), before);
      assert.equal((await store.findDecryptionKeys([identifierFor(alice.cert)])).length, 1, 'the next commit works again');
    });

    test('keys handed out while their uses commit: `recorded` settles only once every record is visible; a failed commit rejects it', async () => {
      const before = await decryptUses(store);
      const observer = await Store.open(f.make(), {});
      try {
        let go!: () => void;
        counts.stallAudit = new Promise<void>((r) => (go = r));
        let settled = false;
        const found = await Promise.all([alice, bob].map((who) => store.findDecryptionKeysRecording([identifierFor(who.cert)])));
        // The keys are here, and they work, while nothing is recorded yet.
        assert.deepEqual(found.map((x) => x.keys.map((k) => k.certificate.fingerprint256)), [[alice.cert.fingerprint256], [bob.cert.fingerprint256]]);
        assert.deepEqual(found[0]!.keys[0]!.key.export({ format: 'der', type: 'pkcs8' }), alice.key.export({ format: 'der', type: 'pkcs8' }));
        const recorded = Promise.all(found.map((x) => x.recorded)).then(() => (settled = true));
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(settled, false, '`recorded` waits for the commit');
        assert.equal(await decryptUses(observer), before);
        counts.stallAudit = undefined;
        go();
        await recorded;
        assert.equal(await decryptUses(observer), before + 2, 'once `recorded` resolved, every use is committed');

        counts.failAudit = true;
        try {
          const failed = await store.findDecryptionKeysRecording([identifierFor(alice.cert)]);
          assert.equal(failed.keys.length, 1);
          await assert.rejects(failed.recorded, /disk full/, 'a failed commit rejects `recorded`: the caller releases nothing');
        } finally {
          counts.failAudit = false;
        }
        assert.equal(await decryptUses(observer), before + 2);
        const none = await store.findDecryptionKeysRecording([identifierFor(pki.caCert)]);
        assert.deepEqual(none.keys, []);
        await none.recorded;
      } finally {
        counts.stallAudit = undefined;
        await observer.close();
      }
    });

    test('with an audit writer (another thread commits), a recording lookup hands its rows over before its caller has the keys, not at the end of the turn', async () => {
      const calls: AuditRow[][] = [];
      const commits: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
      let released = false;
      const writer = (rows: AuditRow[]) => {
        calls.push(rows);
        return released ? Promise.resolve() : new Promise<void>((resolve, reject) => commits.push({ resolve, reject }));
      };
      const other = await Store.open(f.make(), { masterKey: master, actor: 'gateway', auditWriter: writer });
      try {
        const found = await other.findDecryptionKeysRecording([identifierFor(alice.cert), identifierFor(bob.cert)]);
        // The caller would now decrypt synchronously: the rows must already be on their way.
        assert.equal(calls.length, 1, 'one call, made before the keys were handed out');
        assert.deepEqual(calls[0]!.map((r) => [r[2], r[3], r[5]]).sort(), [['gateway', 'key.use.decrypt', alice.cert.fingerprint256], ['gateway', 'key.use.decrypt', bob.cert.fingerprint256]].sort());
        assert.equal(found.keys.length, 2);
        let settled = false;
        const recorded = found.recorded.then(() => (settled = true));
        await new Promise((r) => setTimeout(r, 20));
        assert.equal(settled, false, '`recorded` waits for the writer');
        // A second lookup while the first batch is still being committed is not held behind it.
        const second = await other.findDecryptionKeysRecording([identifierFor(alice.cert)]);
        assert.equal(calls.length, 2, 'handed over at once, not after the batch in flight');
        commits[0]!.resolve();
        await recorded;
        commits[1]!.reject(new Error('disk full (test)'));
        await assert.rejects(second.recorded, /disk full/, 'a failed commit rejects `recorded`');
      } finally {
        released = true;
        for (const c of commits) c.resolve();
        await other.close();
      }
    });

    test('an opened key is reused only while its row holds the same sealed bytes', async () => {
      const [k] = await store.findDecryptionKeys([identifierFor(bob.cert)]);
      const rows = await store.engine.all('SELECT sealed FROM private_keys WHERE id = ?', [k!.keyId]);
      const sealed = Buffer.from(rows[0]!.sealed as Uint8Array);
      const altered = Buffer.from(sealed);
      altered[altered.length - 1]! ^= 1;
      await store.engine.run('UPDATE private_keys SET sealed = ? WHERE id = ?', [altered, k!.keyId]);
      try {
        await assert.rejects(store.findDecryptionKeys([identifierFor(bob.cert)]), (e) => isKakitomeError(e, 'KEY_INVALID'));
      } finally {
        await store.engine.run('UPDATE private_keys SET sealed = ? WHERE id = ?', [sealed, k!.keyId]);
      }
      assert.equal((await store.findDecryptionKeys([identifierFor(bob.cert)])).length, 1);
    });

    test('a crash while key uses are in flight: every answer that went out has its record', async () => {
      const script = `
        import { writeSync } from 'node:fs';
        import { openSqliteEngine } from ${JSON.stringify(new URL('../../src/store/sqlite-engine.ts', import.meta.url).pathname)};
        import { openPostgresEngine } from ${JSON.stringify(new URL('../../src/store/postgres-engine.ts', import.meta.url).pathname)};
        import { Store } from ${JSON.stringify(new URL('../../src/store/store.ts', import.meta.url).pathname)};
        import { masterKeyFromBytes } from ${JSON.stringify(new URL('../../src/keys/master-key.ts', import.meta.url).pathname)};
        const [url, keyHex, idJson] = process.argv.slice(1);
        const engine = url.startsWith('postgres') ? openPostgresEngine(url) : openSqliteEngine(url);
        const store = await Store.open(engine, { masterKey: masterKeyFromBytes(Buffer.from(keyHex, 'hex')), actor: 'crash-child' });
        const id = JSON.parse(idJson);
        const ids = [{ kind: 'issuerAndSerialNumber', issuer: Buffer.from(id.issuer, 'hex'), serial: Buffer.from(id.serial, 'hex') }];
        const loop = async () => { for (;;) { const k = await store.findDecryptionKeys(ids); if (k.length) writeSync(1, 'answer\\n'); } };
        for (let i = 0; i < 32; i++) void loop();`;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script, f.url(), Buffer.from(master.key.export()).toString('hex'), JSON.stringify({ issuer: Buffer.from(alice.cert.issuer).toString('hex'), serial: Buffer.from(alice.cert.serial).toString('hex') })], { stdio: ['ignore', 'pipe', 'pipe'] });
      let answers = 0;
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      const exited = new Promise((resolve) => child.on('exit', resolve));
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          answers += d.toString().split('\n').length - 1;
          if (answers >= 300) resolve();
        });
        child.on('exit', () => reject(new Error(`the child ended before the crash: ${stderr}`)));
      });
      child.kill('SIGKILL');
      await exited;
      const recorded = Number((await store.engine.all("SELECT COUNT(*) AS n FROM audit_log WHERE actor = 'crash-child' AND action = 'key.use.decrypt'"))[0]!.n);
      assert.ok(recorded >= answers, `${answers} answers went out, ${recorded} uses are recorded`);
    });

    test('without the master key: certificates and trust anchors are read, private keys are refused, nothing is recorded about the key', async () => {
      const reader = await Store.open(f.make(), { actor: 'verifier' });
      try {
        assert.equal(reader.hasMasterKey, false);
        assert.deepEqual((await createStoreTrustStore(reader).anchors()).map((c) => c.fingerprint256), [pki.caCert.fingerprint256]);
        assert.equal((await reader.findCertificateByFingerprint(alice.cert.fingerprint256))?.hasPrivateKey, true);
        assert.equal((await reader.findRecipientCertificate('bob@example.com'))?.certificate.fingerprint256, bob.cert.fingerprint256);
        const carol = pki.identity('p256', 'carol');
        assert.equal((await reader.harvestCertificate(carol.cert, { address: 'carol@example.com' })).filing, 'current', 'harvesting files certificates');
        const noKey = (e: unknown) => isKakitomeError(e, 'INVALID_ARGUMENT') && /without its master key/.test((e as Error).message);
        await assert.rejects(reader.findDecryptionKeys([identifierFor(alice.cert)]), noKey);
        await assert.rejects(reader.findSigningIdentity('alice@example.com'), noKey);
        await assert.rejects(reader.exportPrivateKey((await reader.listKeys())[0]!.id, 'x'), noKey);
        await assert.rejects(reader.importPrivateKey(carol.key, { certificates: [carol.cert] }), noKey);
        await assert.rejects(reader.rotateMasterKey(masterKeyFromBytes(randomBytes(32))), noKey);
      } finally {
        await reader.close();
      }
      const known = await store.engine.all("SELECT value FROM settings WHERE name = 'master_key_id'");
      assert.deepEqual(known.map((r) => r.value), [master.id], 'the master key id is untouched');
    });

    test('a migration run by another node while statements are prepared breaks no lookup', async () => {
      assert.equal((await store.findDecryptionKeys([identifierFor(alice.cert)])).length, 1);
      assert.ok(await store.findSigningIdentity('bob@example.com'));
      assert.ok((await store.listCertificates()).length > 0);
      // Another node's newer version adds columns (what a later migration would do).
      const other = f.make();
      try {
        await other.run('ALTER TABLE private_keys ADD COLUMN later_column TEXT');
        await other.run('ALTER TABLE certificates ADD COLUMN later_column TEXT');
      } finally {
        await other.close();
      }
      assert.equal((await store.findDecryptionKeys([identifierFor(alice.cert)])).length, 1);
      assert.ok(await store.findSigningIdentity('bob@example.com'));
      assert.ok((await store.listCertificates()).length > 0);
    });
  });
}
