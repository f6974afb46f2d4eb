/**
 * POST /api/v1/batches: a tenant's upload of many messages, streamed to the store
 * as it arrives, never held whole: entries are cut into chunks (so many messages
 * or so many bytes) and each chunk is stored before more of the body is read, so
 * memory holds one chunk whatever the batch's size. Only when the whole upload is
 * stored is the batch queued: a broken upload (too large, malformed framing, the
 * client gone) leaves nothing behind and nothing of it is ever signed.
 *
 * Idempotency-Key (draft-ietf-httpapi-idempotency-key-header): the batch is
 * remembered under the key with the fingerprint of the request (media type, sign
 * options, body). The same request again gets the same batch (202, Location, the
 * batch as it is now); another request under the key is 422 CONFLICT; a key whose
 * first upload is still arriving is 409 CONFLICT. A retry reads the body through
 * to compare it and keeps none of it.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { KakitomeError, isKakitomeError } from '../../errors.ts';
import { BatchDirectory, type BatchRecord } from '../../store/batch-directory.ts';
import type { ApiKeyRecord } from '../../store/tenant-directory.ts';
import { batchConfigOf } from '../config.ts';
import { ProblemError } from '../problem.ts';
import { actorOf, type ServiceContext } from '../service-context.ts';
import { refuseEncodedBody } from '../read-limited-body.ts';
import { batchUploadReader } from './split-batch-upload.ts';
import { storeUploadChunks, type UploadJob } from './store-upload-chunks.ts';

export interface BatchUpload {
  request: Request;
  /** The node:http request under Hono (absent under app.request() in tests). */
  incoming?: Readable;
  /** The sign options, already checked against SignQuery. */
  options: Record<string, string>;
  idempotencyKey?: string;
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

function tooLarge(limit: number): ProblemError {
  return new ProblemError(413, 'LIMIT', `The batch is larger than this service accepts (${limit} bytes; --max-batch-size): nothing of it was kept. Send it as several batches.`);
}

/** The body as Buffers. From node:http directly, with an iterator that leaves the socket open when reading stops early (a 413 must still reach the client). */
async function* bodyOf(upload: BatchUpload): AsyncGenerator<Buffer> {
  try {
    if (upload.incoming) {
      for await (const chunk of upload.incoming.iterator({ destroyOnReturn: false })) yield chunk as Buffer;
      return;
    }
    if (!upload.request.body) return;
    for await (const chunk of upload.request.body) yield Buffer.from(chunk);
  } catch (e) {
    throw new ProblemError(400, 'MALFORMED', `The request body could not be read: ${(e as Error).message}.`);
  }
}

/** Counts and hashes the body as it passes; 413 past the limit. */
async function* metered(source: AsyncIterable<Buffer>, limit: number, hash: Hash, count: { bytes: number }): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    count.bytes += chunk.length;
    if (count.bytes > limit) throw tooLarge(limit);
    hash.update(chunk);
    yield chunk;
  }
}

/** 409 once the upload's lease was lost (the batch deleted, or taken over by a retry): nothing more is read or stored. */
async function* leased(source: AsyncIterable<Buffer>, lost: () => boolean): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    if (lost()) throw new ProblemError(409, 'CONFLICT', 'The batch was removed while it was being received: send it again.');
    yield chunk;
  }
}

/** The request's fingerprint starts with what is not the body: media type and options. */
function fingerprintHash(mediaType: string, options: Record<string, string>): Hash {
  const sorted = Object.fromEntries(Object.entries(options).sort(([a], [b]) => a.localeCompare(b)));
  return createHash('sha256').update(`${mediaType}\n${JSON.stringify(sorted)}\n`);
}

/** Reads the body through for its fingerprint, keeping nothing. */
async function fingerprintOnly(upload: BatchUpload, hash: Hash, limit: number): Promise<string> {
  const count = { bytes: 0 };
  for await (const _ of metered(bodyOf(upload), limit, hash, count)) { /* hashed as it passes */ }
  return hash.digest('hex');
}

export async function receiveBatch(ctx: ServiceContext, key: ApiKeyRecord, upload: BatchUpload): Promise<{ batch: BatchRecord; replayed: boolean }> {
  const cfg = batchConfigOf(ctx.config);
  const batches = ctx.batches;
  if (!batches) throw new KakitomeError('INVALID_ARGUMENT', 'Batches are not available on this server.');
  const reader = batchUploadReader(upload.request.headers.get('content-type'), ctx.config.maxMessageBytes);
  refuseEncodedBody(upload.request.headers);
  const declared = upload.request.headers.get('content-length');
  if (declared !== null && (!/^\d{1,15}$/.test(declared) || Number(declared) > cfg.maxBatchBytes)) {
    if (!/^\d{1,15}$/.test(declared)) throw new ProblemError(400, 'MALFORMED', 'The Content-Length header is not a number.');
    throw tooLarge(cfg.maxBatchBytes);
  }
  if (upload.idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(upload.idempotencyKey)) {
    throw new ProblemError(400, 'INVALID_ARGUMENT', 'The Idempotency-Key header is 1 to 255 printable ASCII characters (a UUID is a good key).');
  }
  const directory = new BatchDirectory(ctx.store.actingAs(actorOf(key)), batches.blobs);
  const hash = fingerprintHash(reader.mediaType, upload.options);

  if (upload.idempotencyKey !== undefined) {
    const earlier = await directory.findByIdempotencyKey(key.tenant, upload.idempotencyKey);
    if (earlier && earlier.state !== 'receiving') {
      const fingerprint = await fingerprintOnly(upload, hash, cfg.maxBatchBytes);
      if (fingerprint !== earlier.fingerprint) {
        throw new ProblemError(422, 'CONFLICT', `This Idempotency-Key was used for another upload (batch ${earlier.id}, a different body, media type or sign options): use a new key for a new batch.`);
      }
      return { batch: (await directory.find(key.tenant, earlier.id)) ?? earlier, replayed: true };
    }
    if (earlier && earlier.leaseUntil && earlier.leaseUntil > ctx.store.now()) {
      throw new ProblemError(409, 'CONFLICT', 'The first upload with this Idempotency-Key is still being received: wait for its answer, or retry in a few seconds.', { 'retry-after': '5' });
    }
  }
  if ((await directory.countUnfinished(key.tenant)) >= cfg.maxUnfinishedBatches) {
    throw new ProblemError(429, 'RATE_LIMITED', `Tenant "${key.tenant}" has ${cfg.maxUnfinishedBatches} batches being received or signed, the most it may have at once: wait for one to finish.`, { 'retry-after': '30' });
  }
  let id: string;
  try {
    id = await directory.begin({ tenant: key.tenant, keyId: key.id, ...(upload.idempotencyKey !== undefined ? { idempotencyKey: upload.idempotencyKey } : {}), mediaType: reader.mediaType, options: upload.options, leaseMs: cfg.leaseMs });
  } catch (e) {
    if (isKakitomeError(e, 'CONFLICT')) throw new ProblemError(409, 'CONFLICT', e.message, { 'retry-after': '5' });
    throw e;
  }
  let lost = false;
  const lease = setInterval(() => {
    directory.renewUpload(id, cfg.leaseMs).then((held) => { if (!held) lost = true; }, () => undefined);
  }, Math.max(500, cfg.leaseMs / 3));
  try {
    const count = { bytes: 0 };
    const body = leased(metered(bodyOf(upload), cfg.maxBatchBytes, hash, count), () => lost);
    const job: UploadJob = { batchId: id, contentType: upload.request.headers.get('content-type'), maxMessageBytes: ctx.config.maxMessageBytes };
    // Cut into messages and chunks in the batch thread when there is one: this thread only passes the bytes on.
    const stored = await (batches.storeUpload?.(job, body) ?? storeUploadChunks(directory, job, body, cfg));
    if (stored.total === 0) throw new ProblemError(400, 'INVALID_ARGUMENT', `The upload holds no message (${reader.mediaType}).`);
    const fingerprint = hash.digest('hex');
    if (!(await directory.finishUpload(id, { ...stored, receivedBytes: count.bytes, fingerprint }))) {
      throw new ProblemError(409, 'CONFLICT', 'The batch was removed while it was being received (deleted, or its upload lease lapsed): send it again.');
    }
  } catch (e) {
    await directory.abandonUpload(id).catch(() => undefined);
    throw e;
  } finally {
    clearInterval(lease);
  }
  batches.wake();
  return { batch: (await directory.find(key.tenant, id))!, replayed: false };
}
