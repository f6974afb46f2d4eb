/**
 * A PostgreSQL connection lost in the middle of a transaction (the server
 * restarted, pg_terminate_backend, a failover) fails that transaction and nothing
 * else: its next statement rejects, the process lives on, and the pool's next
 * transaction runs on a new connection. pg-pool takes its 'error' listener off a
 * client it hands out, so before postgres-engine.ts listened itself, a connection
 * that died between two statements was an 'error' event nobody heard: the thread
 * ended (the serve batch thread, the gateway's audit thread).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgres, type PostgresServer } from './postgres-server.ts';
import { openPostgresEngine } from '../../src/store/postgres-engine.ts';

let pg: PostgresServer | undefined;
after(() => pg?.stop());

test('a transaction whose connection is killed between two statements fails; the process lives and the next transaction runs', async () => {
  pg = await startPostgres();
  const engine = openPostgresEngine(pg.url, { max: 2 });
  const admin = openPostgresEngine(pg.url, { max: 1 });
  const uncaught: unknown[] = [];
  const onUncaught = (e: unknown) => uncaught.push(e);
  // node:test reports an uncaught exception as the test's failure too; counted here to say which.
  process.on('uncaughtException', onUncaught);
  try {
    await engine.run('CREATE TABLE t (n INTEGER)');
    const failed = engine.transaction(async (tx) => {
      await tx.run('INSERT INTO t (n) VALUES (?)', [1]);
      const pid = Number((await tx.all('SELECT pg_backend_pid() AS pid'))[0]!.pid);
      await admin.all('SELECT pg_terminate_backend(?)', [pid]);
      // The server's goodbye reaches the client while no statement is running.
      await new Promise((resolve) => setTimeout(resolve, 300));
      await tx.run('INSERT INTO t (n) VALUES (?)', [2]);
    });
    await assert.rejects(failed);
    assert.deepEqual(uncaught, []);
    await engine.transaction(async (tx) => tx.run('INSERT INTO t (n) VALUES (?)', [3]));
    assert.deepEqual((await engine.all('SELECT n FROM t ORDER BY n')).map((r) => Number(r.n)), [3]);
  } finally {
    process.off('uncaughtException', onUncaught);
    await engine.close();
    await admin.close();
  }
});
