/**
 * The messages of a batch upload, by its Content-Type, one entry at a time:
 *
 * - application/mbox (RFC 4155, the mboxrd reading of `kakitome sign -i FILE.mbox`,
 *   src/mime/mbox.ts, stricter on separators: a From_ line after an empty line, with
 *   a sender and a date): each message after its "From " line, which the result keeps;
 * - application/x-ndjson (or application/ndjson): one JSON object a line
 *   (split-ndjson-messages.ts);
 * - multipart/mixed or multipart/form-data: one message a part
 *   (split-multipart-messages.ts).
 *
 * Any other type is 415 before a byte is read.
 */
import { splitMbox } from '../../mime/mbox.ts';
import { ProblemError, shown } from '../problem.ts';
import type { ChunkEntry } from './chunk-records.ts';
import { splitMultipartMessages, multipartBoundary } from './split-multipart-messages.ts';
import { splitNdjsonMessages } from './split-ndjson-messages.ts';

export const BATCH_MEDIA_TYPES = ['application/mbox', 'application/x-ndjson', 'application/ndjson', 'multipart/mixed', 'multipart/form-data'] as const;
export type BatchMediaType = (typeof BATCH_MEDIA_TYPES)[number];

export interface BatchUploadReader {
  mediaType: BatchMediaType;
  split(source: AsyncIterable<Buffer>): AsyncGenerator<ChunkEntry>;
}

async function* mboxEntries(source: AsyncIterable<Buffer>, maxMessageBytes: number): AsyncGenerator<ChunkEntry> {
  // Only a From_ line after an empty line, with a sender and a date, starts a message: a bare
  // "From " line in a body fails its message instead of cutting it in two (MboxSeparators).
  for await (const e of splitMbox(source, maxMessageBytes, 'separated')) {
    yield e.message ? { envelope: e.envelope, message: e.message } : { envelope: e.envelope, error: { code: e.error?.code ?? 'MALFORMED', reason: e.error?.message ?? 'The message could not be read.' } };
  }
}

export function batchUploadReader(contentType: string | null, maxMessageBytes: number): BatchUploadReader {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase() as BatchMediaType;
  switch (type) {
    case 'application/mbox':
      return { mediaType: type, split: (s) => mboxEntries(s, maxMessageBytes) };
    case 'application/x-ndjson':
    case 'application/ndjson':
      return { mediaType: type, split: (s) => splitNdjsonMessages(s, maxMessageBytes) };
    case 'multipart/mixed':
    case 'multipart/form-data': {
      let boundary: string;
      try {
        boundary = multipartBoundary(contentType!);
      } catch (e) {
        throw new ProblemError(400, 'MALFORMED', (e as Error).message);
      }
      return { mediaType: type, split: (s) => splitMultipartMessages(s, boundary, maxMessageBytes) };
    }
    default:
      throw new ProblemError(415, 'INVALID_ARGUMENT', `A batch is sent as application/mbox, application/x-ndjson or multipart/mixed (one message a part)${type ? `, not ${shown(type)}` : ''} (curl: -H 'Content-Type: application/mbox' --data-binary @mail.mbox).`);
  }
}
