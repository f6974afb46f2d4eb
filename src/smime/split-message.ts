/**
 * Separates a message's own header fields (From, To, Subject, Received...) from
 * its content (the Content-* fields and the body) (RFC 8551 section 3.1: only the
 * MIME entity is protected; the message headers stay outside).
 */
import { canonicalizeLfOnly } from '../mime/canonicalize-line-breaks.ts';
import { buildEntity } from '../mime/build-entity.ts';
import type { HeaderField, MimeEntity } from '../mime/entity.ts';
import { parseEntity } from '../mime/parse-entity.ts';
import type { Limits } from '../limits.ts';
import { isContentField } from './header-protection.ts';
import { refuseRepeatedOriginator } from './read-displayed-sender.ts';

export interface SplitMessage {
  /** The parsed message (canonical CRLF form). */
  root: MimeEntity;
  /** Non-structural fields, in order, raw. */
  messageHeaders: HeaderField[];
  /** Content-* fields, in order, raw. */
  contentHeaders: HeaderField[];
  /** The MIME entity to protect: content fields + blank line + body. */
  content: Buffer;
  /** Notes such as "line breaks were converted". */
  warnings: string[];
}

export function splitMessage(message: Uint8Array, limits: Limits): SplitMessage {
  const input = Buffer.isBuffer(message) ? message : Buffer.from(message.buffer, message.byteOffset, message.byteLength);
  // An LF-only file (mailbox export, Unix tools) is converted whole. A message that already
  // uses CRLF keeps its bytes: a bare LF there may be binary content, and text parts are
  // canonicalised one by one when they are re-encoded (encodeSevenBit).
  const canonical = canonicalizeLfOnly(input);
  const lfOnly = canonical !== input;
  const warnings: string[] = [];
  if (lfOnly) warnings.push('The message used bare LF line breaks; it was converted to CRLF (RFC 5322 canonical form) before processing.');
  const root = parseEntity(canonical, { limits });
  warnings.push(...root.warnings);
  const messageHeaders: HeaderField[] = [];
  const contentHeaders: HeaderField[] = [];
  for (const h of root.headers) {
    if (!isContentField(h.name)) messageHeaders.push(h);
    else if (h.name.length !== 12 || h.name.toLowerCase() !== 'mime-version') contentHeaders.push(h);
  }
  refuseRepeatedOriginator(messageHeaders);
  return new ParsedSplit(root, messageHeaders, contentHeaders, warnings);
}

/**
 * The content entity is written only when asked for: verification never needs it.
 * A class getter, not a getter in an object literal: V8 gives every such literal its
 * own accessor and shape, and the shapes piled up until a full collection (each
 * scavenge promoted megabytes; splitMessage ran 2.5x slower).
 */
class ParsedSplit implements SplitMessage {
  readonly root: MimeEntity;
  readonly messageHeaders: HeaderField[];
  readonly contentHeaders: HeaderField[];
  readonly warnings: string[];
  #content: Buffer | undefined;

  constructor(root: MimeEntity, messageHeaders: HeaderField[], contentHeaders: HeaderField[], warnings: string[]) {
    this.root = root;
    this.messageHeaders = messageHeaders;
    this.contentHeaders = contentHeaders;
    this.warnings = warnings;
  }

  get content(): Buffer {
    return (this.#content ??= buildEntity(this.contentHeaders, this.root.body));
  }
}
