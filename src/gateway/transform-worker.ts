/**
 * A worker thread of the gateway's crypto pool (crypto-pool.ts): it opens the key
 * store itself (the master key comes from the main thread, which read it once, as a
 * KeyObject) and keeps a gateway context of its own, so every private key it uses
 * is opened through the store and audited (record-key-use.ts), its rows committed
 * by the gateway's audit thread (audit-thread.ts): a signing key is handed out only
 * after its use is committed; an inbound message's decryption key at once, its
 * copy leaving this thread only once the use is committed (process-inbound.ts).
 * The identity cache (a minute) is per worker. Each task carries the main thread's
 * policy revision and reload generation: a task with another revision reads the
 * store's policy first, one with another generation builds the whole context again
 * (trust anchors, after SIGHUP). Tasks run at once, each answered when done (below).
 */
import { workerData, type MessagePort, type Transferable } from 'node:worker_threads';
import { ThreadChannel } from '../server/workers/thread-channel.ts';
import type { AuditRow } from '../store/record-key-use.ts';
import { openStore, type StoreConfig } from '../store/open-store.ts';
import { PolicyDirectory } from '../store/policy-directory.ts';
import type { Store } from '../store/store.ts';
import { createGatewayContext, withPolicy, type GatewayContext } from './gateway-context.ts';
import { ownedCopy } from '../threads/owned-copy.ts';
import { overlappingPort, type OverlappingAnswer, type OverlappingTask } from '../threads/worker-pool.ts';
import { failedTransform, transformMessage, type TransformRequest, type TransformResult } from './transform-message.ts';

export interface TransformWorkerData {
  /** Where the store is, with the master key the main thread opened (never from this thread's environment). */
  store: Pick<StoreConfig, 'home' | 'databaseUrl' | 'masterKey'>;
  authservId: string;
  domains: string[];
  /** This worker's port to the gateway's audit thread (audit-thread.ts), which commits its key uses' rows. */
  audit: MessagePort;
}

export interface TransformTask {
  /** The main thread's reload count: another one means the context is built again. */
  generation: number;
  /** The policy revision the main thread works with. */
  revision: string;
  request: TransformRequest;
}

const data = workerData as TransformWorkerData;
let store: Promise<Store> | undefined;

/**
 * The audit rows of this worker's key uses go to the audit thread, which commits
 * them without stopping this thread (a node:sqlite commit blocks its thread for
 * the fsync). When that thread is gone (its port closed), every row waiting fails
 * (its message is answered 4xx) and this worker ends: the pool starts another, with
 * a port to a new audit thread (start-audit-thread.ts).
 */
const audit = new ThreadChannel(data.audit);
data.audit.on('close', () => {
  audit.close(new Error('The gateway\'s audit thread is gone; the key uses waiting for it were not recorded.'));
  setImmediate(() => process.exit(1));
});
const auditWriter = (rows: AuditRow[]) => audit.call<void>('audit', rows);
let ctx: { generation: number; revision: string; context: Promise<GatewayContext> } | undefined;

/** The context for a task: built once per generation, its policy read once per revision, shared by the tasks in flight. */
function contextFor(task: TransformTask): Promise<GatewayContext> {
  // A store that cannot be opened (PostgreSQL down at start) is tried again at the next task.
  const opened = (store ??= openStore({ ...data.store, actor: 'gateway', env: {}, auditWriter }).catch((e: unknown) => {
    store = undefined;
    throw e;
  }));
  const policy = () => opened.then((s) => new PolicyDirectory(s).load());
  if (ctx?.generation !== task.generation) {
    ctx = { generation: task.generation, revision: task.revision, context: opened.then(async (s) => createGatewayContext(s, await policy(), data.authservId, new Set(data.domains))) };
  } else if (ctx.revision !== task.revision) {
    // Read once per revision the main thread moved to (the store may already be further on).
    const base = ctx.context;
    ctx = { ...ctx, revision: task.revision, context: Promise.all([base, policy()]).then(([c, p]) => withPolicy(c, p)) };
  }
  const mine = ctx;
  // A context that could not be made (the store down) is made again for the next task.
  mine.context.catch(() => {
    if (ctx === mine) ctx = undefined;
  });
  return mine.context;
}

async function run(task: TransformTask): Promise<TransformResult> {
  const request = { ...task.request, message: Buffer.from(task.request.message.buffer, task.request.message.byteOffset, task.request.message.byteLength) };
  try {
    return await transformMessage(await contextFor(task), request);
  } catch (e) {
    return failedTransform(request.direction, request.recipients, e);
  }
}

/** The copies' buffers move to the main thread: each in memory of its own (ownedCopy: a view into a shared block would be cloned with all of it), each moved once. */
function transferable(result: TransformResult): Transferable[] {
  const seen = new Set<ArrayBufferLike>();
  for (const g of result.groups) {
    if (!Buffer.isBuffer(g.message)) continue;
    const m = seen.has(g.message.buffer) ? g.message : ownedCopy(g.message);
    g.message = m;
    seen.add(m.buffer);
  }
  return [...seen] as Transferable[];
}

/**
 * Tasks run at once (the pool sends a few: crypto-pool.ts), each answered as soon
 * as it is done, with its number (worker-pool.ts, overlapping): while one waits for
 * the store (an inbound message's key use being committed by the audit thread, a
 * certificate lookup on PostgreSQL), the others go on and leave, and key uses that
 * come together share one commit.
 */
const pool = overlappingPort(workerData);
pool.on('message', (m: OverlappingTask<TransformTask>) => {
  void run(m.input).then((output) => pool.postMessage({ task: m.task, output } satisfies OverlappingAnswer<TransformResult>, transferable(output)));
});
