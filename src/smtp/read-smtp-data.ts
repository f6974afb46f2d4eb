/**
 * What the SMTP listeners (the gateway's and the signing service's submission
 * port) share around smtp-server: reading one message's DATA into memory within a
 * bound, and the error smtp-server turns into a reply.
 */
import type { SMTPServerDataStream } from 'smtp-server';

export type SmtpError = Error & { responseCode?: number };

/** An error smtp-server answers with `code`, e.g. smtpError(451, '4.3.0', 'try again later'). */
export function smtpError(code: number, enhanced: string, text: string): SmtpError {
  const e = new Error(`${enhanced} ${text}`) as SmtpError;
  e.responseCode = code;
  return e;
}

/** Keeps a late 'error' (smtp-server destroying a closed connection's stream) from being unhandled, holding nothing. */
function ignore(): void {}

/**
 * Reads the DATA stream into memory; past `limit` bytes it keeps reading (smtp-server answers 552) but stops keeping: undefined then.
 *
 * Once the stream ends or fails, its listeners are taken off again, so that the stream
 * (which smtp-server makes per message) no longer reaches this message's promise, its
 * chunks and the Buffer they were joined into. Under load V8's scavenges kept every
 * message's stream and what it reaches alive until the next full collection
 * (docs/performance.md, "Session 12: what survives a scavenge on the submission port"),
 * and a joined message is a slice of Node's 64 KiB Buffer pool, which it keeps too.
 */
export function readSmtpData(stream: SMTPServerDataStream, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    let chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else chunks.length = 0;
    };
    const detach = () => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.on('error', ignore);
    };
    const onError = (e: Error) => {
      detach();
      chunks = [];
      reject(e);
    };
    const onEnd = () => {
      detach();
      const kept = chunks;
      chunks = [];
      resolve(stream.sizeExceeded || size > limit ? undefined : Buffer.concat(kept, size));
    };
    stream.on('data', onData);
    stream.on('error', onError);
    stream.on('end', onEnd);
  });
}
