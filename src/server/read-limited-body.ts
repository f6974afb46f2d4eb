/**
 * Reads a request body up to `limit` bytes. Above it the answer is 413 before the
 * rest is read: at once from Content-Length, or as soon as a chunked body passes
 * the limit. Memory stays within the limit plus one chunk: what was read is dropped.
 *
 * Under node:http the body is read from the IncomingMessage itself (no web stream
 * that could keep buffering), and the rest of an oversized upload is left to
 * @hono/node-server's lingering close: it discards at most 64 MiB or 500 ms more,
 * counting and keeping nothing, then closes the connection. Closing
 * at once would be worse for the client: a TCP reset while it is still sending
 * destroys the 413 it has not read yet (EPIPE/ECONNRESET instead of the answer).
 */
import type { Readable } from 'node:stream';
import { ProblemError, shown } from './problem.ts';

function tooLarge(limit: number): ProblemError {
  return new ProblemError(413, 'LIMIT', `The message is larger than this service accepts (${limit} bytes; --max-message-size): it was not read.`);
}

/** The node:http request under a Hono request (@hono/node-server's bindings), when there is one. */
export type IncomingBody = Pick<Readable, 'on' | 'off' | 'pause' | 'readableEnded'>;

/** What is read of a request here: its header fields and (without `incoming`) its body stream; a fetch Request is one. */
export interface RequestBody {
  headers: Pick<Headers, 'get'>;
  body: ReadableStream<Uint8Array> | null;
}

/**
 * 415 for a body in a content coding (Content-Encoding: gzip, br...): the service
 * reads bodies as they are, so compressed bytes would be signed, verified or stored
 * as if they were the message. RFC 9110 15.5.16: Accept-Encoding names what is taken.
 */
export function refuseEncodedBody(headers: Pick<Headers, 'get'>): void {
  // node:http decodes chunked only: under "Transfer-Encoding: gzip, chunked" the body read is
  // still gzip. RFC 9112 6.1: a transfer coding the server does not understand is 501.
  const transfer = headers.get('transfer-encoding');
  if (transfer !== null && !/^\s*chunked\s*$/i.test(transfer)) {
    throw new ProblemError(501, 'INVALID_ARGUMENT', `The body is sent in a transfer coding this service does not decode (Transfer-Encoding: ${shown(transfer, 40)}): send it with Content-Length, or with Transfer-Encoding: chunked alone.`, { connection: 'close' });
  }
  const coding = headers.get('content-encoding');
  if (coding === null || /^[\s,]*(?:identity[\s,]*)*$/i.test(coding)) return;
  throw new ProblemError(415, 'INVALID_ARGUMENT', `The body is sent in a content coding (Content-Encoding: ${shown(coding, 40)}): this service takes bodies as they are. Send it uncompressed, without Content-Encoding (curl: --data-binary without --compressed).`, { 'accept-encoding': 'identity' });
}

export async function readLimitedBody(request: RequestBody, limit: number, incoming?: IncomingBody): Promise<Buffer> {
  refuseEncodedBody(request.headers);
  const declared = request.headers.get('content-length');
  if (declared !== null) {
    if (!/^\d{1,15}$/.test(declared)) throw new ProblemError(400, 'MALFORMED', 'The Content-Length header is not a number.');
    if (Number(declared) > limit) throw tooLarge(limit);
  }
  if (incoming) return readIncoming(incoming, limit);
  if (!request.body) return Buffer.alloc(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total);
}

/** From node:http directly: on overflow the listeners go and the stream pauses, so nothing more is kept. */
function readIncoming(incoming: IncomingBody, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const stop = () => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
    };
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total <= limit) return void chunks.push(chunk);
      stop();
      chunks.length = 0;
      incoming.pause();
      reject(tooLarge(limit));
    };
    const onEnd = () => {
      stop();
      // A small message arrives in one chunk (node:http gives each its own bytes): kept as it is, not copied.
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total));
    };
    const onError = (e: Error) => {
      stop();
      reject(new ProblemError(400, 'MALFORMED', `The request body could not be read: ${e.message}.`));
    };
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
  });
}

/** A message/rfc822 body within the limit; 415 for any other media type (checked before reading). */
export function readMessageBody(request: RequestBody, limit: number, incoming?: IncomingBody): Promise<Buffer> {
  const type = (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'message/rfc822') {
    return Promise.reject(new ProblemError(415, 'INVALID_ARGUMENT', `The body must be a whole message sent as Content-Type: message/rfc822${type ? `, not ${shown(type)}` : ''} (curl: -H 'Content-Type: message/rfc822' --data-binary @message.eml).`));
  }
  return readLimitedBody(request, limit, incoming);
}
