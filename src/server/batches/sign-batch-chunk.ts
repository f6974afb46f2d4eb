/**
 * Signs the messages of one batch chunk, each by POST /api/v1/sign's own function
 * (makeTenantSignature: the From address chooses the tenant's current identity; a
 * message a careful verifier would refuse is refused), and writes each signed
 * message as an mbox entry, in upload order, with its audit row (api.batches.sign:
 * the certificate, the sender, the batch and the message's index). The rows are
 * not recorded here: the worker writes them in the transaction that completes the
 * chunk (src/store/batch-queue.ts), which is what makes the chunk's output readable,
 * so no signed message can be read whose row is not committed, and a chunk that is
 * not completed (its node died, the lease was lost) leaves neither. A message refused for what it is
 * (any KakitomeError: two From fields, a From outside the tenant's domains, no
 * current identity, too large) is a failure at its index and is not in the
 * output. A few messages are signed at once so the store's lookups for them
 * share round trips (src/store/coalesce-key-lookups.ts).
 *
 * Any other error is the service's, not the message's: if the store still
 * answers it is this message's failure (INTERNAL, logged); if not, the chunk
 * stops and is handed back to the queue (ChunkInterrupted), to be signed again
 * whole later, by this node or another.
 */
import type { z } from 'zod';
import { formatEnvelopeDate, formatMboxEntry } from '../../mime/mbox.ts';
import { isKakitomeError } from '../../errors.ts';
import type { BatchFailure } from '../../store/batch-directory.ts';
import { auditRowOf, type AuditRow } from '../../store/record-key-use.ts';
import type { ApiKeyRecord } from '../../store/tenant-directory.ts';
import { makeTenantSignature } from '../api/sign.ts';
import { serviceCache } from '../service-cache.ts';
import type { SignQuery } from '../schemas.ts';
import type { ServiceContext } from '../service-context.ts';
import type { ChunkEntry } from './chunk-records.ts';

export interface SignedChunk {
  /** The signed messages as mbox entries, in order. */
  output: Buffer;
  signed: number;
  failures: BatchFailure[];
  /** One audit row per signed message, in order: to be committed with the chunk's completion. */
  audit: AuditRow[];
}

/** The chunk could not be finished here (stopping, the lease lost, the store gone): release it. */
export class ChunkInterrupted extends Error {
  constructor(reason: string, options?: { cause?: unknown }) {
    super(reason, options);
    this.name = 'ChunkInterrupted';
  }
}

/**
 * Messages in flight at once: the requests of one turn of the event loop share one
 * read of the store's cache revision (ServiceCache.refresh); few, because each
 * holds its message and signature and all of them make the garbage V8 collects (16
 * kept a node's peak RSS lower than 32 with the same rate; a chunk's bytes bound
 * the total anyway).
 */
const LANES = 16;

export interface SignChunkInput {
  /** The batch's id, named in each message's audit row. */
  batchId: string;
  entries: readonly ChunkEntry[];
  firstIndex: number;
  /** The key that uploaded the batch, re-read now; undefined when it is revoked or lost scope sign. */
  key: ApiKeyRecord | undefined;
  keyId: string;
  options: z.infer<typeof SignQuery>;
  /** True once the chunk must stop (the node is stopping, the lease was lost). */
  interrupted: () => string | undefined;
}

export async function signBatchChunk(ctx: ServiceContext, input: SignChunkInput): Promise<SignedChunk> {
  const { entries, firstIndex, key } = input;
  const signed: Array<Buffer | undefined> = new Array(entries.length);
  const audit: Array<AuditRow | undefined> = new Array(entries.length);
  const failures: BatchFailure[] = [];
  // The separator line for messages that came without one (NDJSON, multipart): as mail tools write an unknown sender.
  const envelope = `MAILER-DAEMON ${formatEnvelopeDate(ctx.store.now())}`;
  let next = 0;
  let stop: ChunkInterrupted | undefined;

  const one = async (i: number): Promise<void> => {
    const entry = entries[i]!;
    const index = firstIndex + i;
    if (entry.error) return void failures.push({ index, ...entry.error });
    if (!key) {
      return void failures.push({ index, code: 'UNAUTHENTICATED', reason: `The API key ${input.keyId} that uploaded this batch was revoked, or no longer has scope sign: the message was not signed.` });
    }
    try {
      // As for each request: the store's cache revision first, so a new, renewed or retired identity counts from the next message on.
      await serviceCache(ctx).refresh();
      const made = await makeTenantSignature(ctx, key, entry.message!, input.options, 'api.batches.sign', `batch ${input.batchId} message ${index}`);
      signed[i] = formatMboxEntry(entry.envelope || envelope, made.signed);
      audit[i] = auditRowOf(made.use);
      ctx.metrics.countOperation('batch-sign', 'ok');
    } catch (e) {
      if (isKakitomeError(e)) {
        ctx.metrics.countOperation('batch-sign', 'refused');
        return void failures.push({ index, code: e.code, reason: e.message });
      }
      try {
        await ctx.store.engine.all('SELECT 1');
      } catch {
        throw new ChunkInterrupted('the store does not answer', { cause: e });
      }
      ctx.log({ time: new Date().toISOString(), level: 'error', msg: 'batch message failed', index, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
      ctx.metrics.countOperation('batch-sign', 'failed');
      failures.push({ index, code: 'INTERNAL', reason: 'The service failed on this message; it is logged with the batch and index.' });
    }
  };

  const lane = async (): Promise<void> => {
    while (!stop && next < entries.length) {
      const why = input.interrupted();
      if (why) {
        stop = new ChunkInterrupted(why);
        return;
      }
      try {
        await one(next++);
      } catch (e) {
        stop = e instanceof ChunkInterrupted ? e : new ChunkInterrupted('signing failed', { cause: e });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(LANES, entries.length) }, lane));
  if (stop) throw stop;
  failures.sort((a, b) => a.index - b.index);
  const parts = signed.filter((b): b is Buffer => b !== undefined);
  return { output: Buffer.concat(parts), signed: parts.length, failures, audit: audit.filter((r): r is AuditRow => r !== undefined) };
}
