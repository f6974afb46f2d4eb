/**
 * Parses a message or body part into the MimeEntity tree (RFC 2045, RFC 2046
 * section 5.1), keeping exact byte ranges. Multipart bodies are split on their
 * boundary delimiters; the line break before a delimiter belongs to the delimiter
 * (RFC 2046 section 5.1.1), so a child's `raw` is exactly what a multipart/signed
 * signer hashed (RFC 1847 section 2.1).
 *
 * Strictness: an entity with two Content-Type or Content-Transfer-Encoding fields
 * is MALFORMED (two readings of one input), a multipart without a boundary or
 * without any delimiter is MALFORMED, and so is a multipart/signed without its
 * close delimiter (note-unclosed-multipart.ts); sizes, line lengths, part counts and depth
 * are bounded by src/limits.ts (LIMIT). Lenient readings are marked QUIRK and
 * recorded in `warnings`.
 */
import { KakitomeError, malformed } from '../errors.ts';
import { DEFAULT_LIMITS, resolveLimits, type Limits } from '../limits.ts';
import type { HeaderField, MimeEntity } from './entity.ts';
import { parseHeaderSection } from './parse-header-section.ts';
import { parseContentType } from './parse-content-type.ts';
import { noteUnclosedMultipart } from './note-unclosed-multipart.ts';
import { readTransferEncoding } from './check-multipart-encoding.ts';

const LF = 0x0a;
const CR = 0x0d;

export interface ParseEntityOptions {
  limits?: Partial<Limits>;
}

interface State {
  limits: Limits;
  parts: number;
}

/** Parses a whole message (or a body part given on its own). The input is not copied: the entity's buffers are views on it. */
export function parseEntity(input: Uint8Array, options: ParseEntityOptions = {}): MimeEntity {
  // Callers pass the resolved defaults on every message; resolving them again would copy them.
  const limits = options.limits === DEFAULT_LIMITS ? DEFAULT_LIMITS : resolveLimits(options.limits);
  if (input.length > limits.maxMessageBytes) throw new KakitomeError('LIMIT', `A message of ${input.length} bytes exceeds the ${limits.maxMessageBytes}-byte limit.`);
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  return parseRange(buf, 0, buf.length, 0, false, { limits, parts: 0 });
}

/** A placeholder of the entity's shape until its Content-Type is read (never returned). */
const DEFAULT_PENDING = parseContentType(undefined);

function parseRange(buf: Buffer, start: number, end: number, depth: number, digestParent: boolean, state: State): MimeEntity {
  if (++state.parts > state.limits.maxMimeParts) throw new KakitomeError('LIMIT', `More than ${state.limits.maxMimeParts} MIME parts.`);
  if (depth > state.limits.maxMimeDepth) throw new KakitomeError('LIMIT', `MIME nesting deeper than ${state.limits.maxMimeDepth} levels.`);
  const section = parseHeaderSection(buf, start, end, state.limits, depth === 0);
  const entity: MimeEntity = {
    raw: buf.subarray(start, end),
    offset: start,
    headers: section.fields,
    headerBytes: buf.subarray(start, section.headerEnd),
    body: buf.subarray(section.bodyStart, end),
    // Read below, once the fields are known (the default only when there is no Content-Type).
    contentType: DEFAULT_PENDING,
    transferEncoding: '7bit',
    children: [],
    depth,
    warnings: section.warnings,
  };
  // One pass over the fields for the two that shape the entity (lengths first: most names are neither).
  let ct: HeaderField | undefined;
  let cte: HeaderField | undefined;
  for (const f of section.fields) {
    const len = f.name.length;
    if (len === 12 && f.name.toLowerCase() === 'content-type') {
      if (ct) malformed('an entity has more than one Content-Type field');
      ct = f;
    } else if (len === 25 && f.name.toLowerCase() === 'content-transfer-encoding') {
      if (cte) malformed('an entity has more than one Content-Transfer-Encoding field');
      cte = f;
    }
  }
  if (!ct) entity.contentType = parseContentType(undefined, digestParent);
  else {
    entity.contentType = parseContentType(ct.value, digestParent);
    // QUIRK: RFC 2045 section 5.2 says an unparsable Content-Type means text/plain; we follow it but say so.
    if (entity.contentType.defaulted) entity.warnings.push(`Unparsable Content-Type "${ct.value.slice(0, 80)}" read as text/plain.`);
  }
  // A trailing RFC 822 comment ("7bit (plain text)") is dropped.
  if (cte) entity.transferEncoding = readTransferEncoding(cte.value);
  // A multipart in a transfer encoding is read as its parts, as Python's email package does; the S/MIME readers refuse it (check-multipart-encoding.ts).
  if (entity.contentType.type === 'multipart') splitMultipart(buf, section.bodyStart, end, entity, state);
  return entity;
}

/** Position just past the line break ending the line that starts at `pos` (or `end`). */
function nextLine(buf: Buffer, pos: number, end: number): number {
  const nl = buf.indexOf(LF, pos);
  return nl < 0 || nl >= end ? end : nl + 1;
}

function splitMultipart(buf: Buffer, start: number, end: number, entity: MimeEntity, state: State): void {
  const boundary = entity.contentType.params.boundary;
  // RFC 2046 section 5.1.1: 1 to 70 characters.
  if (boundary === undefined || boundary.length === 0) malformed(`${entity.contentType.mediaType} without a boundary parameter`);
  if (boundary.length > 70) entity.warnings.push('QUIRK: multipart boundary longer than the 70 characters RFC 2046 allows.');
  if (boundary.length > state.limits.maxLineLength) throw new KakitomeError('LIMIT', 'Multipart boundary exceeds the line limit.');
  const marker = Buffer.from(`--${boundary}`, 'latin1');
  const digest = entity.contentType.subtype === 'digest';
  let search = start;
  let partStart = -1;
  let closed = false;
  while (search < end) {
    const at = buf.indexOf(marker, search);
    if (at < 0 || at + marker.length > end) break;
    search = at + marker.length;
    // A delimiter starts a line...
    if (at !== start && buf[at - 1] !== LF) continue;
    // ...and is followed by "--" (close) or nothing, then only transport padding (LWSP) up to the line break.
    let p = at + marker.length;
    let isClose = false;
    if (buf[p] === 0x2d && buf[p + 1] === 0x2d) {
      isClose = true;
      p += 2;
    }
    let q = p;
    while (q < end && (buf[q] === 0x20 || buf[q] === 0x09)) q++;
    if (q < end && buf[q] !== CR && buf[q] !== LF) continue; // "--boundaryX": a longer string, not our delimiter
    if (q < end && buf[q] === CR && buf[q + 1] !== LF) continue;
    // The line break before the delimiter is part of the delimiter.
    let contentEnd = at;
    if (at > start) {
      contentEnd = at - 1;
      if (contentEnd > start && buf[contentEnd - 1] === CR) contentEnd--;
    }
    if (partStart < 0) {
      entity.preamble = buf.subarray(start, Math.max(start, contentEnd));
    } else {
      entity.children.push(parseRange(buf, partStart, Math.max(partStart, contentEnd), entity.depth + 1, digest, state));
    }
    const after = nextLine(buf, at, end);
    if (after - at > state.limits.maxLineLength) throw new KakitomeError('LIMIT', 'A boundary line exceeds the line limit.');
    if (isClose) {
      entity.epilogue = buf.subarray(after, end);
      closed = true;
      break;
    }
    partStart = after;
    search = after;
  }
  if (partStart < 0) malformed(`${entity.contentType.mediaType} body has no boundary delimiter`);
  if (!closed) {
    // A missing close delimiter: MALFORMED for multipart/signed, else the last part runs to the end of the body.
    noteUnclosedMultipart(entity.contentType.mediaType, entity.warnings);
    entity.children.push(parseRange(buf, partStart, end, entity.depth + 1, digest, state));
  }
}
