/**
 * Signs the messages of one batch chunk, each by POST /api/v1/sign's own function
 * (signForTenant: the From address chooses the tenant's current identity; a
 * message a careful verifier would refuse is refused), and writes each signed
 * message as an mbox entry, in upload order. A message refused for what it is
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
import { formatEnvelopeDate, formatMboxEntry } from '../../cli/mbox.ts';
import { isKakitomeError } from '../../errors.ts';
import type { BatchFailure } from '../../store/batch-directory.ts';
import type { ApiKeyRecord } from '../../store/tenant-directory.ts';
import { signForTenant } from '../api/sign.ts';
import { serviceCache } from '../service-cache.ts';
import type { SignQuery } from '../schemas.ts';
import type { ServiceContext } from '../service-context.ts';
import type { ChunkEntry } from './chunk-records.ts';

export interface SignedChunk {
  /** The signed messages as mbox entries, in order. */
  output: Buffer;
  signed: number;
  failures: BatchFailure[];
}

/** The chunk could not be finished here (stopping, the lease lost, the store gone): release it. */
export class ChunkInterrupted extends Error {
  constructor(reason: string, options?: { cause?: unknown }) {
    super(reason, options);
    this.name = 'ChunkInterrupted';
  }
}

/**
 * Messages signed at once: enough that their audit rows share commits (an fsync
 * each) while one signs; few, because each holds its message and signature and
 * all of them make the garbage V8 collects (16 kept a node's peak RSS lower than
 * 32 with the same rate; a chunk's bytes bound the total anyway).
 */
const LANES = 16;

export interface SignChunkInput {
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
      const out = await signForTenant(ctx, key, entry.message!, input.options, 'api.batches.sign');
      signed[i] = formatMboxEntry(entry.envelope || envelope, out);
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
  return { output: Buffer.concat(parts), signed: parts.length, failures };
}
