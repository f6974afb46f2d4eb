/**
 * The gateway's audit thread (started by start-audit-thread.ts): the one store
 * connection that commits the audit rows of every crypto worker's key uses
 * (transform-worker.ts hands them over a port of its own, as `recordAuditRows`
 * batches). node:sqlite commits synchronously: in a crypto worker the fsync of each
 * commit stopped the thread and every message on it; here it stops only this
 * thread, which does nothing else, while the workers decrypt (an inbound message
 * decrypts while its key use commits, and waits for the commit only before its
 * copy leaves: process-inbound.ts). One writer for all the workers also means one
 * commit for the key uses that arrive together from any of them, and no two
 * workers' connections waiting on SQLite's write lock (its busy handler sleeps
 * 1, 2, 5, 10 ms...). It opens the store without the master key: it writes rows,
 * never a key. A store it cannot open (PostgreSQL down) fails that batch (its
 * messages are answered 4xx) and is opened again for the next.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { openStore, type StoreConfig } from '../store/open-store.ts';
import type { AuditRow } from '../store/record-key-use.ts';
import type { Store } from '../store/store.ts';
import { ThreadChannel } from '../server/workers/thread-channel.ts';

export interface AuditThreadData {
  store: Pick<StoreConfig, 'home' | 'databaseUrl'>;
}

const data = workerData as AuditThreadData;
let store: Promise<Store> | undefined;

function opened(): Promise<Store> {
  return (store ??= openStore({ ...data.store, withoutMasterKey: true, actor: 'gateway', env: {} }).catch((e: unknown) => {
    store = undefined;
    throw e;
  }));
}

/** Each client (a crypto worker) sends a port; its batches are committed in this store's shared commits. */
parentPort!.on('message', (m: { connect: MessagePort }) => {
  new ThreadChannel(m.connect).handle('audit', async (rows: AuditRow[]) => (await opened()).recordAuditRows(rows));
});
