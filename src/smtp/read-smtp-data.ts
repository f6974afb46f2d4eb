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

/** Reads the DATA stream into memory; past `limit` bytes it keeps reading (smtp-server answers 552) but stops keeping: undefined then. */
export function readSmtpData(stream: SMTPServerDataStream, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else chunks.length = 0;
    });
    stream.on('error', reject);
    stream.on('end', () => resolve(stream.sizeExceeded || size > limit ? undefined : Buffer.concat(chunks, size)));
  });
}
