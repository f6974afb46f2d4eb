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
 * output. Messages are signed one after the other, each written into the chunk's
 * output as it is signed.
 *
 * Any other error is the service's, not the message's: if the store still
 * answers it is this message's failure (INTERNAL, logged); if not, the chunk
 * stops and is handed back to the queue (ChunkInterrupted), to be signed again
 * whole later, by this node or another.
 */
import type { z } from 'zod';
import { formatEnvelopeDate, MboxEntryWriter } from '../../mime/mbox.ts';
import { isKakitomeError, remedyOf } from '../../errors.ts';
import type { BatchFailure } from '../../store/batch-directory.ts';
import type { ApiKeyRecord } from '../../store/tenant-directory.ts';
import { makeTenantSignature } from '../api/sign.ts';
import { serviceCache } from '../service-cache.ts';
import { temporaryFailureCause } from '../temporary-failure.ts';
import type { SignQuery } from '../schemas.ts';
import type { ServiceContext } from '../service-context.ts';
import { ChunkAudit } from './chunk-audit.ts';
import type { ChunkEntries } from './chunk-records.ts';

export interface SignedChunk {
  /** The signed messages as mbox entries, in order. */
  output: Buffer;
  signed: number;
  failures: BatchFailure[];
  /** One audit row per signed message, in order: to be committed with the chunk's completion (made then: chunk-audit.ts). */
  audit: ChunkAudit;
}

/** The chunk could not be finished here (stopping, the lease lost, the store gone): release it. */
export class ChunkInterrupted extends Error {
  /** The service's passing trouble that interrupted it (temporary-failure.ts's token), when it was that: no attempt of the chunk's is spent. */
  readonly serviceTrouble: string | undefined;
  constructor(reason: string, options?: { cause?: unknown; serviceTrouble?: string }) {
    super(reason, options);
    this.name = 'ChunkInterrupted';
    this.serviceTrouble = options?.serviceTrouble;
  }
}

/**
 * Messages signed between two reads of the store's cache revision (ServiceCache.refresh),
 * each read a turn of the event loop: a new, renewed or retired identity counts from
 * the next such read on, as it did when 16 messages were in flight and shared each read.
 */
export const REFRESH_EVERY = 16;

/**
 * The output buffer reserved for a chunk: more than its signed messages take (a 2 KB
 * message signs to about 6.4 KB with its separator line). Only the pages written are
 * resident, so reserving generously costs address space, not memory; a chunk that
 * outgrows it is copied once into a buffer twice as large.
 */
function expectedOutputBytes(entries: ChunkEntries): number {
  // From the stored records (9 bytes, the envelope and the message each), without making the entries twice.
  if (entries.storedBytes !== undefined) return Math.ceil(entries.storedBytes * 1.5) + entries.length * 4096;
  let bytes = 0;
  for (let i = 0; i < entries.length; i++) {
    const e = entries.at(i)!;
    bytes += (e.message ? Math.ceil(e.message.length * 1.5) + 4096 : 0) + e.envelope.length;
  }
  return bytes;
}

export interface SignChunkInput {
  /** The batch's id, named in each message's audit row. */
  batchId: string;
  /** The chunk's entries, each made when asked for (readChunk). */
  entries: ChunkEntries;
  firstIndex: number;
  /** The key that uploaded the batch, re-read now; undefined when it is revoked or lost scope sign. */
  key: ApiKeyRecord | undefined;
  keyId: string;
  options: z.infer<typeof SignQuery>;
  /** True once the chunk must stop (the node is stopping, the lease was lost). */
  interrupted: () => string | undefined;
  /** Where the output is written (reset first): a writer the worker uses again once this output is stored. */
  output?: MboxEntryWriter;
}

export async function signBatchChunk(ctx: ServiceContext, input: SignChunkInput): Promise<SignedChunk> {
  const { entries, firstIndex, key } = input;
  // The signed messages go straight into the chunk's output in order, written from their pieces
  // (no buffer of each message's own): one message at a time, so that what a message
  // allocates is garbage before the young generation is next collected (16 messages in
  // flight kept each other's parsed messages alive across collections: promoted, they
  // made most of the batch thread's full collections).
  const output = input.output ?? new MboxEntryWriter(1);
  output.reset(expectedOutputBytes(entries));
  const audit = new ChunkAudit(input.batchId, entries.length);
  const failures: BatchFailure[] = [];
  // The separator line for messages that came without one (NDJSON, multipart): as mail tools write an unknown sender.
  const envelope = `MAILER-DAEMON ${formatEnvelopeDate(ctx.store.now())}`;
  const cache = serviceCache(ctx);
  let signing = 0;

  for (let i = 0; i < entries.length; i++) {
    const why = input.interrupted();
    if (why) throw new ChunkInterrupted(why);
    const entry = entries.at(i)!;
    const index = firstIndex + i;
    if (entry.error) {
      failures.push({ index, ...entry.error });
      continue;
    }
    if (!key) {
      failures.push({ index, code: 'UNAUTHENTICATED', reason: `The API key ${input.keyId} that uploaded this batch was revoked, or no longer has scope sign: the message was not signed.` });
      continue;
    }
    try {
      // As for requests: the store's cache revision first, so a new, renewed or retired identity counts from the next read on.
      if (signing++ % REFRESH_EVERY === 0) await cache.refresh();
      const made = await makeTenantSignature(ctx, key, entry.message!, input.options, 'api.batches.sign');
      output.addChunks(entry.envelope || envelope, made.chunks);
      audit.add(made.parts, index);
      ctx.metrics.countOperation('batch-sign', 'ok');
    } catch (e) {
      if (isKakitomeError(e)) {
        ctx.metrics.countOperation('batch-sign', 'refused');
        failures.push({ index, code: e.code, reason: e.message, ...remedyOf(e) });
        continue;
      }
      // The store's passing trouble (its connection killed, the disk full) is the chunk's, not the
      // message's: given back and signed again, where a failure here would fail the message for good.
      // By the time of a probe the pool may already have a new connection, so the error itself is asked first.
      const cause = temporaryFailureCause(e);
      if (cause) throw new ChunkInterrupted(`the store failed (${cause})`, { cause: e, serviceTrouble: cause });
      try {
        await ctx.store.engine.all('SELECT 1');
      } catch {
        throw new ChunkInterrupted('the store does not answer', { cause: e, serviceTrouble: 'STORE_UNANSWERED' });
      }
      ctx.log({ time: new Date().toISOString(), level: 'error', msg: 'batch message failed', index, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
      ctx.metrics.countOperation('batch-sign', 'failed');
      failures.push({ index, code: 'INTERNAL', reason: 'The service failed on this message; it is logged with the batch and index.' });
    }
  }
  return { output: output.bytes(), signed: audit.length, failures, audit };
}
