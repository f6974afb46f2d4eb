/**
 * A batch upload's body cut into messages (split-batch-upload.ts) and the
 * messages into chunks, each chunk stored (src/store/batch-directory.ts addChunk)
 * before more of the body is read: the awaited write is the upload's
 * back-pressure, and memory holds one chunk whatever the batch's size. 413 past
 * the batch's message count.
 *
 * It runs where the messages are cut: in the server's batch thread
 * (batch-thread.ts), whose young generation is small, with the body's bytes
 * handed over a piece at a time (start-batch-thread.ts); on the serving thread
 * itself only where there is no batch thread (tests, app.request()).
 */
import type { BatchDirectory } from '../../store/batch-directory.ts';
import type { BatchConfig } from '../config.ts';
import { ProblemError } from '../problem.ts';
import { chunkEntryBytes, encodeChunk, type ChunkEntry } from './chunk-records.ts';
import { batchUploadReader } from './split-batch-upload.ts';

/** What the batch thread needs to cut an upload: the batch, and the request's media type (with its multipart boundary). */
export interface UploadJob {
  batchId: string;
  contentType: string | null;
  maxMessageBytes: number;
}

export interface StoredUpload {
  total: number;
  chunks: number;
}

export async function storeUploadChunks(directory: BatchDirectory, job: UploadJob, body: AsyncIterable<Buffer>, cfg: BatchConfig): Promise<StoredUpload> {
  const entries = batchUploadReader(job.contentType, job.maxMessageBytes).split(body);
  let chunk: ChunkEntry[] = [];
  let bytes = 0;
  let total = 0;
  let seq = 0;
  const flush = async () => {
    await directory.addChunk(job.batchId, { seq, firstIndex: total - chunk.length, messages: chunk.length, bytes: encodeChunk(chunk) });
    seq++;
    chunk = [];
    bytes = 0;
  };
  for await (const entry of entries) {
    if (total >= cfg.maxBatchMessages) {
      throw new ProblemError(413, 'LIMIT', `The batch holds more than ${cfg.maxBatchMessages} messages, the most this service takes in one (--max-batch-messages): nothing of it was kept. Send it as several batches.`);
    }
    const size = chunkEntryBytes(entry);
    if (chunk.length && bytes + size > cfg.chunkBytes) await flush();
    chunk.push(entry);
    bytes += size;
    total++;
    if (chunk.length >= cfg.chunkMessages) await flush();
  }
  if (chunk.length) await flush();
  return { total, chunks: seq };
}
