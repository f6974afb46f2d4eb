/**
 * A node's batch workers: each claims a chunk from the queue (src/store/batch-queue.ts),
 * signs it (sign-batch-chunk.ts), stores its output whole under the lease's name
 * and completes it while it still holds the lease, renewing the lease as it
 * works; a worker stores and completes one chunk while it claims and signs the
 * next. An idle worker looks again every poll interval (jittered), or at once
 * when an upload on this node is queued. One sweeper per node removes expired
 * batches (every minute at most).
 *
 * Failures: a chunk interrupted by the service's passing trouble (the store out of
 * reach, the disk full: temporary-failure.ts) is released with its attempt given
 * back, and claimed again after the node's back-off (1 s, doubling, at most 1
 * minute, while the trouble lasts) or the chunk's own (0.25 s, doubling with each of
 * its interruptions, at most 1 minute), whichever is longer. A chunk interrupted so
 * MAX_INTERRUPTIONS times on this node, every time claimed again in between (so the
 * store answered), is the trouble's own (its input on a bad sector: EIO every time),
 * not a passing one: it is completed with every message failed, NO_SPACE for a full
 * disk, else INTERNAL, the reason naming the system's code, instead of being
 * retried for ever. Any other failure releases it to be claimed again after the
 * chunk's back-off (5 s, doubling, at most 5 minutes). A chunk claimed MAX_ATTEMPTS
 * times without completing (each claimer died or failed on it) is completed with
 * every message failed (INTERNAL), so one poisonous chunk cannot hold a batch, or
 * the nodes, for ever.
 *
 * Stopping: no more claims; the chunk in hand stops at its next message and is
 * released at once with its attempt given back (a clean stop is not the chunk's
 * failure), so another node takes it without waiting for the lease; the chunk
 * already signed is stored and completed first.
 */
import { hostname } from 'node:os';
import { threadId } from 'node:worker_threads';
import { BatchDirectory } from '../../store/batch-directory.ts';
import { BatchQueue, type ClaimedChunk } from '../../store/batch-queue.ts';
import type { BatchBlobs } from '../../store/batch-blobs.ts';
import { batchConfigOf } from '../config.ts';
import type { ServiceContext } from '../service-context.ts';
import { serviceCache } from '../service-cache.ts';
import { SignQuery } from '../schemas.ts';
import { MboxEntryWriter } from '../../mime/mbox.ts';
import { ChunkAudit } from './chunk-audit.ts';
import { readChunk } from './chunk-records.ts';
import { collectGarbageAbove } from './collect-garbage.ts';
import { ChunkInterrupted, signBatchChunk, type SignedChunk } from './sign-batch-chunk.ts';
import { temporaryFailureCause } from '../temporary-failure.ts';

export const MAX_ATTEMPTS = 5;
/**
 * Times a chunk may be given back for the service's passing trouble on one node
 * before its messages are failed (BatchConfig.maxInterruptions overrides it): with
 * the back-offs (at least 1 s, the chunk's doubling to at most 1 minute) some 13
 * minutes of trouble that lets the store answer claims but never lets this chunk through.
 */
export const MAX_INTERRUPTIONS = 20;
/** Chunks whose interruptions a node remembers (the oldest forgotten first: a chunk another node completed). */
const REMEMBERED_INTERRUPTIONS = 4096;
/** External memory (Buffers) a worker's isolate may keep after a chunk before a full collection (collect-garbage.ts). */
export const CHUNK_GARBAGE_BYTES = 16 * 1024 * 1024;

/** A claimed chunk while this node works on it. */
interface HeldChunk {
  chunk: ClaimedChunk;
  where: { batch: string; chunk: number; attempt: number };
  started: number;
  /** Set when a renewal found the lease taken: the chunk is another node's now. */
  lost: boolean;
  lease: NodeJS.Timeout | undefined;
}

/** A batch worker's name, for logs and the chunk's row: the host, the process and, unless it is the main thread, the thread. */
export function batchNodeName(thread: number): string {
  return `${hostname()}/${process.pid}${thread ? `/${thread}` : ''}`;
}

export class BatchWorker {
  readonly #ctx: ServiceContext;
  readonly #blobs: BatchBlobs;
  readonly #queue: BatchQueue;
  /** For logs and the chunk's row: the host, the process and, in a serving thread (server/workers), the thread. */
  readonly #node = batchNodeName(threadId);
  #stopping = false;
  #loops: Array<Promise<void>> = [];
  #wakers = new Set<() => void>();
  #sweeper: NodeJS.Timeout | undefined;
  /** The service's passing trouble this node's workers meet now (the store out of reach, the disk full), and how often in a row. */
  #trouble: { cause: string; times: number } | undefined;
  readonly #watch: ((trouble: string | undefined) => void) | undefined;
  /** Each chunk's interruptions by the service's passing trouble on this node (batch/seq → times). */
  readonly #interruptions = new Map<string, number>();

  /** `watch`: told when the store becomes unavailable to the workers (its cause) and available again (undefined). */
  constructor(ctx: ServiceContext, blobs: BatchBlobs, watch?: (trouble: string | undefined) => void) {
    this.#ctx = ctx;
    this.#blobs = blobs;
    this.#watch = watch;
    this.#queue = new BatchQueue(ctx.store.engine, () => ctx.store.now());
  }

  get node(): string {
    return this.#node;
  }

  start(): void {
    const cfg = batchConfigOf(this.#ctx.config);
    for (let i = 0; i < cfg.workers; i++) this.#loops.push(this.#loop());
    const directory = new BatchDirectory(this.#ctx.store, this.#blobs);
    const sweep = () => directory.expire().then(
      (n) => { if (n) this.#log({ msg: 'batches expired', count: n }); },
      (e) => this.#log({ level: 'error', msg: 'batch expiry failed', error: String(e) }),
    );
    this.#sweeper = setInterval(sweep, Math.min(60_000, Math.max(1000, cfg.retentionMs / 2)));
    this.#sweeper.unref();
    void sweep();
  }

  /** An upload was queued on this node: idle workers look now. */
  wake(): void {
    for (const w of this.#wakers) w();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#sweeper);
    this.wake();
    await Promise.all(this.#loops);
  }

  #log(entry: Record<string, string | number | boolean | undefined>): void {
    this.#ctx.log({ time: new Date().toISOString(), level: 'info', node: this.#node, ...entry });
  }

  async #idle(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms * (0.5 + Math.random()));
      this.#wakers.add(done);
    });
  }

  async #loop(): Promise<void> {
    const cfg = batchConfigOf(this.#ctx.config);
    // The chunk signed before, stored and completed while the next one is claimed and signed:
    // writing and syncing its output (3-30 ms for 500 messages on the bench VM) and its
    // completing transaction no longer leave the thread idle between two chunks.
    let storing: Promise<void> = Promise.resolve();
    // The two chunks' outputs, written into again and again: the one being stored and the one
    // being signed. A chunk's 3.2 MB output in new memory every time was page faults to fill it
    // and external memory that only a full collection gave back (one every three or four chunks).
    const outputs = [new MboxEntryWriter(1), new MboxEntryWriter(1)];
    let turn = 0;
    while (!this.#stopping) {
      let chunk: ClaimedChunk | undefined;
      try {
        chunk = await this.#queue.claim(this.#node, cfg.leaseMs);
        this.#recovered();
      } catch (e) {
        if (!this.#stopping) this.#log({ level: 'error', msg: 'batch claim failed', error: e instanceof Error ? e.message : String(e) });
        const trouble = this.#stopping ? undefined : temporaryFailureCause(e);
        if (trouble) {
          this.#troubled(trouble);
          await storing;
          await this.#idle(this.#troubleDelay());
          continue;
        }
      }
      if (this.#stopping) {
        // Claimed as the node stopped: given back untouched, its attempt refunded.
        if (chunk) await this.#queue.release(chunk, 0, true).catch(() => undefined);
        break;
      }
      if (!chunk) {
        await storing;
        await this.#idle(cfg.pollMs);
        continue;
      }
      const signed = await this.#signHeld(this.#hold(chunk), outputs[turn++ % 2]!);
      await storing;
      // The chunk stored before is garbage now (its input, messages and output), freed before it piles up.
      collectGarbageAbove(CHUNK_GARBAGE_BYTES);
      storing = signed ? this.#store(signed.held, signed.result) : Promise.resolve();
    }
    await storing;
  }

  /** A claimed chunk held: its lease renewed until it is stored or given back. */
  #hold(chunk: ClaimedChunk): HeldChunk {
    const cfg = batchConfigOf(this.#ctx.config);
    const where = { batch: chunk.batchId, chunk: chunk.seq, attempt: chunk.attempts };
    this.#log({ msg: 'batch chunk', event: 'claimed', ...where, messages: chunk.messages });
    const held: HeldChunk = { chunk, where, started: performance.now(), lost: false, lease: undefined };
    held.lease = setInterval(() => {
      this.#queue.renew(chunk, cfg.leaseMs).then((ok) => { if (!ok) held.lost = true; }, () => undefined);
    }, Math.max(250, cfg.leaseMs / 3));
    return held;
  }

  /** The chunk's messages signed, or undefined when it was given back (stopping, the lease lost, a failure). */
  async #signHeld(held: HeldChunk, output: MboxEntryWriter): Promise<{ held: HeldChunk; result: SignedChunk } | undefined> {
    const { chunk } = held;
    try {
      const result = chunk.attempts > MAX_ATTEMPTS ? this.#givenUp(chunk) : await this.#sign(chunk, output, () => (this.#stopping ? 'the node is stopping' : held.lost ? 'the lease was lost' : undefined));
      return { held, result };
    } catch (e) {
      await this.#giveBack(held, e);
      return undefined;
    }
  }

  /** The signed chunk's output stored whole under the lease's name, then the chunk completed with its audit rows, if the lease is still held. */
  async #store(held: HeldChunk, result: SignedChunk): Promise<void> {
    const cfg = batchConfigOf(this.#ctx.config);
    const { chunk, where } = held;
    try {
      const output = `out-${chunk.seq}-${chunk.token}`;
      await this.#blobs.put(chunk.batchId, output, result.output);
      // The messages' audit rows are committed with the completion, which makes the output readable (sign-batch-chunk.ts).
      const completed = await this.#queue.complete(chunk, { signed: result.signed, failed: result.failures.length, failures: result.failures, output, outputBytes: result.output.length, audit: result.audit }, cfg.retentionMs);
      clearInterval(held.lease);
      this.#interruptions.delete(chunkKey(chunk));
      if (!completed) await this.#blobs.remove(chunk.batchId, output).catch(() => undefined);
      this.#log({ msg: 'batch chunk', event: completed ? 'done' : 'lost', ...where, signed: result.signed, failed: result.failures.length, ms: Math.round(performance.now() - held.started) });
    } catch (e) {
      await this.#giveBack(held, e);
    }
  }

  /**
   * A chunk that could not be finished here, released to be claimed again after a
   * back-off (at once, its attempt given back, when stopping). Interrupted by the
   * service's passing trouble (the store out of reach, the disk full:
   * temporary-failure.ts), the claim's attempt is given back with it and the
   * back-off is the node's or the chunk's own, the longer: an outage in which the
   * store cannot be reached fails no message (the chunk is not claimed again until it
   * answers); the MAX_INTERRUPTIONS-th interruption of one chunk fails its messages
   * (#failInterrupted). The release itself is tried again while that trouble lasts
   * (it is a store write too).
   */
  async #giveBack(held: HeldChunk, e: unknown): Promise<void> {
    const { chunk, where } = held;
    clearInterval(held.lease);
    const interrupted = e instanceof ChunkInterrupted;
    const cause = interrupted ? (e.cause ?? e) : e;
    const trouble = this.#stopping ? undefined : (interrupted ? e.serviceTrouble : undefined) ?? temporaryFailureCause(cause);
    let times = 0;
    if (trouble) {
      this.#troubled(trouble);
      times = this.#interrupted(chunk);
      if (times >= (batchConfigOf(this.#ctx.config).maxInterruptions ?? MAX_INTERRUPTIONS) && await this.#failInterrupted(held, trouble, times)) return;
    }
    const delay = this.#stopping ? 0 : trouble ? Math.max(this.#troubleDelay(), Math.min(60_000, 250 * 2 ** (times - 1))) : Math.min(300_000, 5000 * 2 ** (chunk.attempts - 1));
    const refund = trouble !== undefined || this.#stopping;
    this.#log({ level: this.#stopping ? 'info' : 'error', msg: 'batch chunk', event: 'released', ...where, reason: interrupted ? e.message : 'error', error: cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause), retryMs: delay, attemptSpent: !refund, ...(trouble ? { serviceTrouble: trouble, interruptions: times } : {}) });
    while (!held.lost) {
      try {
        await this.#queue.release(chunk, delay, refund);
        return;
      } catch (again) {
        // Released by nobody: its lease runs out and it is claimed again, this attempt counted.
        const still = temporaryFailureCause(again);
        if (!trouble || !still || this.#stopping) return;
        this.#troubled(still);
        await this.#idle(this.#troubleDelay());
      }
    }
  }

  /** One more interruption of `chunk` by the service's passing trouble on this node: how many now. */
  #interrupted(chunk: ClaimedChunk): number {
    const key = chunkKey(chunk);
    const times = (this.#interruptions.get(key) ?? 0) + 1;
    this.#interruptions.delete(key);
    this.#interruptions.set(key, times);
    if (this.#interruptions.size > REMEMBERED_INTERRUPTIONS) this.#interruptions.delete(this.#interruptions.keys().next().value!);
    return times;
  }

  /**
   * The chunk completed with every message failed: the same "passing" trouble met it
   * `times` times, each time after the store answered its claim, so it is the chunk's
   * (its file unreadable, no room for its output) and retrying it for ever would sign
   * nothing and hide the fault. True when done (or the lease was lost meanwhile);
   * false when that failed too (then it is released as before, and failed at a later claim).
   */
  async #failInterrupted(held: HeldChunk, trouble: string, times: number): Promise<boolean> {
    const { chunk, where } = held;
    const full = trouble === 'ENOSPC' || trouble === 'EDQUOT' || trouble === 'SQLITE_FULL';
    const reason = `The service met ${trouble} ${times} times in a row on the part of the batch holding this message, each time with its store answering (${full ? 'no room for its output' : 'its stored part cannot be read or written'}); it was not signed.`;
    const failures = Array.from({ length: chunk.messages }, (_, i) => ({ index: chunk.firstIndex + i, code: full ? 'NO_SPACE' as const : 'INTERNAL' as const, reason, ...(full ? { remedy: 'diskSpace' as const } : {}) }));
    try {
      const output = `out-${chunk.seq}-${chunk.token}`;
      await this.#blobs.put(chunk.batchId, output, Buffer.alloc(0));
      const completed = await this.#queue.complete(chunk, { signed: 0, failed: chunk.messages, failures, output, outputBytes: 0, audit: [] }, batchConfigOf(this.#ctx.config).retentionMs);
      this.#interruptions.delete(chunkKey(chunk));
      if (!completed) await this.#blobs.remove(chunk.batchId, output).catch(() => undefined);
      this.#log({ level: 'error', msg: 'batch chunk', event: completed ? 'failed' : 'lost', ...where, serviceTrouble: trouble, interruptions: times, failed: chunk.messages });
      return true;
    } catch {
      return false;
    }
  }

  /** The service's passing trouble met (a chunk given back, a claim refused): counted, and the node's back-off grows. */
  #troubled(cause: string): void {
    if (!this.#trouble) this.#log({ level: 'error', msg: 'batch store unavailable', cause });
    this.#trouble = { cause, times: (this.#trouble?.times ?? 0) + 1 };
    this.#ctx.metrics.batch.storeTrouble++;
    this.#ctx.metrics.batch.waitingForStore = 1;
    this.#watch?.(cause);
  }

  /** The store answered a claim again: the trouble is over. */
  #recovered(): void {
    if (!this.#trouble) return;
    this.#log({ msg: 'batch store available', after: this.#trouble.times });
    this.#trouble = undefined;
    this.#ctx.metrics.batch.waitingForStore = 0;
    this.#watch?.(undefined);
  }

  /** 1 s after the first failure, doubling, at most 1 minute: the store is asked again that often while it is away. */
  #troubleDelay(): number {
    return Math.min(60_000, 1000 * 2 ** Math.min(6, (this.#trouble?.times ?? 1) - 1));
  }

  async #sign(chunk: ClaimedChunk, output: MboxEntryWriter, interrupted: () => string | undefined): Promise<SignedChunk> {
    const entries = readChunk(await this.#blobs.get(chunk.batchId, `in-${chunk.seq}`));
    // The key is read again now: a key revoked since the upload signs nothing more.
    const cache = serviceCache(this.#ctx);
    await cache.refresh();
    const key = await cache.findApiKey(chunk.keyId);
    const usable = key && !key.revokedAt && key.scopes.includes('sign') && key.tenant === chunk.tenant ? key : undefined;
    return signBatchChunk(this.#ctx, { batchId: chunk.batchId, entries, firstIndex: chunk.firstIndex, key: usable, keyId: chunk.keyId, options: SignQuery.parse(chunk.options), interrupted, output });
  }

  #givenUp(chunk: ClaimedChunk): SignedChunk {
    const reason = `The service failed ${MAX_ATTEMPTS} times on the part of the batch holding this message (a node stopped or failed while signing it); it was not signed.`;
    return {
      output: Buffer.alloc(0), signed: 0, audit: new ChunkAudit(chunk.batchId, 0),
      failures: Array.from({ length: chunk.messages }, (_, i) => ({ index: chunk.firstIndex + i, code: 'INTERNAL' as const, reason })),
    };
  }
}

/** A chunk's name in a node's memory. */
function chunkKey(chunk: ClaimedChunk): string {
  return `${chunk.batchId}/${chunk.seq}`;
}
