/**
 * A streaming MIME structure walker (RFC 2045, RFC 2046 section 5.1): fed a message
 * in chunks of any size, it reports each entity's header section when it is
 * complete, and passes the bytes in between through as slices of the input chunks:
 * leaf bodies (`body`), and preamble, delimiter lines and epilogue (`structure`).
 * Nothing is done per line in bodies: Buffer.indexOf looks for "\n--" and only
 * those hits are compared with the open boundaries. Header sections are collected
 * (bounded by limits.maxHeaderBytes) and parsed by parseHeaderSection.
 *
 * Why not mailsplit (the nodemailer family's splitter, used here before): it walks
 * every body line in JavaScript and re-serialises the message through its Joiner.
 * Measured on the same 64 MiB message (a 1 GiB-style base64 attachment, 1 MiB
 * chunks, one process, alternating rounds, load average 4.8, 2026-11-23): mailsplit
 * Splitter + Joiner 70-74 MB/s, this walker 3,500-4,800 MB/s. With mailsplit,
 * signMessageStream took 19.2 s and 130 MiB for 1 GiB (docs/performance.md).
 *
 * It reads the structure as parse-entity.ts does in memory, so that the streamed and
 * in-memory signers agree on every input: a delimiter is "--boundary" at the start of
 * a line, optionally "--" (close), transport padding, then CRLF, LF or the end of the
 * input; the line break before it belongs to it; a delimiter of an enclosing
 * multipart ends every part inside it (the in-memory parser splits the outer body
 * first); two Content-Type or Content-Transfer-Encoding fields, a multipart without
 * boundary or without any delimiter are MALFORMED; a missing close delimiter is
 * MALFORMED for multipart/signed and accepted with a warning otherwise (QUIRK, as
 * there: note-unclosed-multipart.ts). Parts, depth, header sections and held
 * delimiter lines are bounded by src/limits.ts (LIMIT).
 *
 * message/* bodies are not parsed (they are leaves, as in parse-entity.ts).
 */
import { KakitomeError, malformed } from '../errors.ts';
import type { Limits } from '../limits.ts';
import type { ContentType, HeaderField } from './entity.ts';
import { parseContentType } from './parse-content-type.ts';
import { parseHeaderSection } from './parse-header-section.ts';
import { noteUnclosedMultipart } from './note-unclosed-multipart.ts';
import { readTypingFields } from './check-multipart-encoding.ts';

const LF = 0x0a;
const CR = 0x0d;
const DASH = 0x2d;
const SP = 0x20;
const HT = 0x09;
const NL_DASH_DASH = Buffer.from('\n--');
/** Bytes appended to a header section held across chunks at a time. */
const HEAD_STEP = 16 * 1024;

/** One entity's header section, reported when complete. */
export interface StreamEntityHeader {
  /** 0 for the message itself. */
  depth: number;
  /** The exact header bytes, with the blank separator line when there was one. */
  raw: Buffer;
  /** False when the header section ran to the end of the entity (no blank line, empty body). */
  hasSeparator: boolean;
  fields: HeaderField[];
  contentType: ContentType;
  /** Lower-case Content-Transfer-Encoding without comments, '7bit' when absent (RFC 2045 section 6.1). */
  transferEncoding: string;
}

export interface MimeStreamHandler {
  /** An entity's header section; for a multipart, its body follows as structure and child entities. */
  header(entity: StreamEntityHeader): void;
  /** Bytes of a leaf entity's body, in order (still transfer-encoded). */
  body(bytes: Buffer): void;
  /** The current leaf body is complete (the line break before the next delimiter is not part of it). */
  bodyEnd(): void;
  /** Preamble, delimiter lines (with the line break before them) and epilogue bytes. */
  structure(bytes: Buffer): void;
}

interface Frame {
  /** "--" + boundary. */
  marker: Buffer;
  mediaType: string;
  digest: boolean;
  depth: number;
  /** A delimiter of this multipart has been seen. */
  seen: boolean;
}

type Match = { kind: 'no' } | { kind: 'need' } | { kind: 'yes'; frame: number; close: boolean; lineEnd: number };

const NO: Match = { kind: 'no' };
const NEED: Match = { kind: 'need' };

/**
 * Push-driven walker: call push() for every chunk in order, then end(). Handler
 * callbacks run synchronously inside push()/end(). Slices handed to the handler are
 * views on the pushed chunks (or on a small internal copy): a handler that keeps
 * one past the next push() must copy it if the producer reuses its buffers.
 */
export class MimeStreamWalker {
  readonly warnings: string[] = [];
  readonly #handler: MimeStreamHandler;
  readonly #limits: Limits;
  #frames: Frame[] = [];
  #mode: 'header' | 'content' = 'header';
  /** In content mode: the bytes belong to a leaf body (else to multipart structure). */
  #inBody = false;
  /** In content mode: position 0 of the next data is at the start of a line (right after a header section or delimiter line). */
  #freshLine = false;
  /** Content bytes held back because they may start a delimiter (copied). */
  #carry: Buffer | undefined;
  /** Header section being collected (grown by doubling; bounded by the header limit). */
  #head = Buffer.alloc(0);
  #headLength = 0;
  /** Where the next header line starts in #head. */
  #headLine = 0;
  /** Bytes of #head already searched for a line break (so a long line arriving in small chunks is not rescanned). */
  #headScanned = 0;
  #depth = 0;
  #digestParent = false;
  #parts = 0;
  #started = false;
  #ended = false;

  constructor(handler: MimeStreamHandler, limits: Limits) {
    this.#handler = handler;
    this.#limits = limits;
  }

  push(chunk: Buffer): void {
    if (this.#ended) throw new Error('MimeStreamWalker: push() after end()');
    if (chunk.length === 0) return;
    this.#started = true;
    this.#feed(chunk, false);
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (!this.#started) malformed('the message is empty');
    this.#feed(Buffer.alloc(0), true);
    if (this.#inBody) this.#handler.bodyEnd();
    this.#inBody = false;
    this.#closeFramesFrom(0);
  }

  #feed(chunk: Buffer, eof: boolean): void {
    let data = chunk;
    for (;;) {
      if (this.#mode === 'header') {
        const rest = this.#collectHeader(data, eof);
        if (rest === undefined) return;
        data = rest;
      } else {
        const rest = this.#scanContent(data, eof);
        if (rest === undefined) return;
        data = rest;
      }
    }
  }

  // ---- header sections ----

  /**
   * Collects a header section; returns the bytes after it once it is complete. A
   * section that starts and ends inside one chunk (the usual case) is found in
   * place; one that spans chunks is gathered in #head, HEAD_STEP bytes at a time, so
   * that a short header at the start of a large chunk never copies the chunk.
   */
  #collectHeader(data: Buffer, eof: boolean): Buffer | undefined {
    if (this.#headLength === 0) {
      const found = this.#scanHeader(data, eof);
      if (found) {
        this.#finishHeader(Buffer.from(data.subarray(0, found.rawEnd)), found.headerEnd, found.hasSeparator);
        return data.subarray(found.restFrom);
      }
      this.#append(data);
      this.#checkHeadLimit();
      return undefined;
    }
    let at = 0;
    do {
      const step = data.subarray(at, at + HEAD_STEP);
      const prev = this.#headLength;
      this.#append(step);
      at += step.length;
      const head = this.#head.subarray(0, this.#headLength);
      const found = this.#scanHeader(head, eof && at >= data.length);
      if (found) {
        // #head is replaced, never reused: views on it stay valid.
        const rest = found.restFrom >= prev ? data.subarray(at - step.length + (found.restFrom - prev)) : Buffer.concat([head.subarray(found.restFrom), data.subarray(at)]);
        this.#finishHeader(Buffer.from(head.subarray(0, found.rawEnd)), found.headerEnd, found.hasSeparator);
        return rest;
      }
      this.#checkHeadLimit();
    } while (at < data.length);
    return undefined;
  }

  #append(bytes: Buffer): void {
    if (bytes.length === 0) return;
    if (this.#headLength + bytes.length > this.#head.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.#headLength + bytes.length, this.#head.length * 2, 4096));
      this.#head.copy(grown, 0, 0, this.#headLength);
      this.#head = grown;
    }
    bytes.copy(this.#head, this.#headLength);
    this.#headLength += bytes.length;
  }

  /** parseHeaderSection applies the exact limits once the section is complete; this bounds what is held until then. */
  #checkHeadLimit(): void {
    if (this.#headLength > this.#limits.maxHeaderBytes + this.#limits.maxLineLength) {
      throw new KakitomeError('LIMIT', `A header section of more than ${this.#limits.maxHeaderBytes} bytes exceeds the header limit.`);
    }
  }

  /**
   * Looks for the end of the header section in `buf` (which starts with it), line by
   * line from where the last call stopped: the blank line, a delimiter of an
   * enclosing multipart (which ends the entity even inside its header section), or,
   * at the end of the input, the end.
   */
  #scanHeader(buf: Buffer, eof: boolean): { headerEnd: number; rawEnd: number; restFrom: number; hasSeparator: boolean } | undefined {
    const end = buf.length;
    for (;;) {
      const lineStart = this.#headLine;
      const nl = buf.indexOf(LF, Math.max(lineStart, this.#headScanned));
      const complete = nl >= 0 && nl < end;
      if (!complete && (!eof || lineStart === end)) break;
      const lineEnd = complete ? nl + 1 : end;
      if (this.#frames.length > 0 && buf[lineStart] === DASH && buf[lineStart + 1] === DASH) {
        const m = this.#matchDelimiter(buf, lineStart, eof);
        if (m.kind === 'yes') {
          // The line break before the delimiter belongs to it: the entity is header-only and
          // scanning goes on in content mode from that line break.
          const headerEnd = lineStart === 0 ? 0 : lineStart - 1 - (lineStart >= 2 && buf[lineStart - 2] === CR ? 1 : 0);
          return { headerEnd, rawEnd: headerEnd, restFrom: headerEnd, hasSeparator: false };
        }
      }
      const contentEnd = complete && nl > lineStart && buf[nl - 1] === CR ? nl - 1 : complete ? nl : end;
      if (complete && contentEnd === lineStart) return { headerEnd: lineStart, rawEnd: lineEnd, restFrom: lineEnd, hasSeparator: true };
      this.#headLine = lineEnd;
      if (!complete) break;
    }
    this.#headScanned = end;
    // No blank line before the end of the input: all header section, empty body (RFC 5322 section 3.5).
    if (eof) return { headerEnd: end, rawEnd: end, restFrom: end, hasSeparator: false };
    return undefined;
  }

  /** `raw` is the header section (a copy) with its separator line when there is one; the fields end at headerEnd. */
  #finishHeader(raw: Buffer, headerEnd: number, hasSeparator: boolean): void {
    const rawEnd = raw.length;
    this.#head = Buffer.alloc(0);
    this.#headLength = 0;
    this.#headLine = 0;
    this.#headScanned = 0;
    this.#mode = 'content';
    this.#freshLine = true;
    if (++this.#parts > this.#limits.maxMimeParts) throw new KakitomeError('LIMIT', `More than ${this.#limits.maxMimeParts} MIME parts.`);
    if (this.#depth > this.#limits.maxMimeDepth) throw new KakitomeError('LIMIT', `MIME nesting deeper than ${this.#limits.maxMimeDepth} levels.`);
    // The separator line is passed too: parseHeaderSection counts it against the header limit, as parse-entity.ts does.
    const section = parseHeaderSection(raw, 0, hasSeparator ? rawEnd : headerEnd, this.#limits, this.#depth === 0);
    this.warnings.push(...section.warnings);
    // The same rules and normalisation as parse-entity.ts: one of each field, the encoding in lower case without a trailing comment.
    const { contentTypeField, transferEncoding } = readTypingFields(section.fields);
    const contentType = parseContentType(contentTypeField?.value, this.#digestParent);
    // QUIRK: RFC 2045 section 5.2 says an unparsable Content-Type means text/plain (as parse-entity.ts).
    if (contentTypeField && contentType.defaulted) this.warnings.push(`Unparsable Content-Type "${contentTypeField.value.slice(0, 80)}" read as text/plain.`);
    const depth = this.#depth;
    this.#handler.header({ depth, raw, hasSeparator, fields: section.fields, contentType, transferEncoding });
    if (contentType.type === 'multipart') {
      const boundary = contentType.params.boundary;
      // RFC 2046 section 5.1.1: 1 to 70 characters.
      if (boundary === undefined || boundary.length === 0) malformed(`${contentType.mediaType} without a boundary parameter`);
      if (boundary.length > this.#limits.maxLineLength) throw new KakitomeError('LIMIT', 'Multipart boundary exceeds the line limit.');
      // A boundary with a line break could never start a delimiter line; refuse it rather than guess.
      if (/[\r\n]/.test(boundary)) malformed(`${contentType.mediaType} boundary contains a line break`);
      if (boundary.length > 70) this.warnings.push('QUIRK: multipart boundary longer than the 70 characters RFC 2046 allows.');
      this.#frames.push({ marker: Buffer.from(`--${boundary}`, 'latin1'), mediaType: contentType.mediaType, digest: contentType.subtype === 'digest', depth, seen: false });
      this.#inBody = false;
    } else {
      this.#inBody = true;
    }
  }

  // ---- bodies and multipart structure ----

  /**
   * Decides whether the line starting at `at` ("--...") is a delimiter of an open
   * multipart, outermost first (an enclosing multipart's delimiter ends the inner
   * ones, as when parse-entity.ts splits the outer body first).
   */
  #matchDelimiter(d: Buffer, at: number, eof: boolean): Match {
    let need = false;
    for (let f = 0; f < this.#frames.length; f++) {
      const marker = this.#frames[f]!.marker;
      const avail = d.length - at;
      if (avail < marker.length) {
        if (!eof && d.compare(marker, 0, avail, at, d.length) === 0) need = true;
        continue;
      }
      if (d.compare(marker, 0, marker.length, at, at + marker.length) !== 0) continue;
      let p = at + marker.length;
      let close = false;
      if (p < d.length && d[p] === DASH) {
        if (p + 1 >= d.length) {
          if (!eof) need = true;
          continue;
        }
        if (d[p + 1] !== DASH) continue;
        close = true;
        p += 2;
      }
      while (p < d.length && (d[p] === SP || d[p] === HT)) p++;
      if (p - at > this.#limits.maxLineLength) throw new KakitomeError('LIMIT', 'A boundary line exceeds the line limit.');
      if (p === d.length) {
        if (eof) return { kind: 'yes', frame: f, close, lineEnd: p };
        need = true;
        continue;
      }
      if (d[p] === LF) return { kind: 'yes', frame: f, close, lineEnd: p + 1 };
      if (d[p] === CR) {
        if (p + 1 === d.length) {
          if (!eof) need = true;
          continue;
        }
        if (d[p + 1] === LF) return { kind: 'yes', frame: f, close, lineEnd: p + 2 };
      }
    }
    return need ? NEED : NO;
  }

  #emit(d: Buffer, from: number, to: number): void {
    if (to <= from) return;
    const bytes = from === 0 && to === d.length ? d : d.subarray(from, to);
    if (this.#inBody) this.#handler.body(bytes);
    else this.#handler.structure(bytes);
  }

  /** Scans content bytes for delimiters; returns the bytes after a delimiter that switched to a header section. */
  #scanContent(chunk: Buffer, eof: boolean): Buffer | undefined {
    let d = chunk;
    if (this.#carry) {
      d = chunk.length ? Buffer.concat([this.#carry, chunk]) : this.#carry;
      this.#carry = undefined;
    }
    if (this.#frames.length === 0) {
      // Outside any multipart (a single-part message, or the epilogue of the outermost): nothing to find.
      this.#freshLine = false;
      this.#emit(d, 0, d.length);
      return undefined;
    }
    let pos = 0;
    if (this.#freshLine) {
      if (d.length === 0) return undefined;
      if (d[0] === DASH) {
        if (d.length < 2 && !eof) return this.#hold(d, 0, 0);
        if (d[1] === DASH) {
          const m = this.#matchDelimiter(d, 0, eof);
          if (m.kind === 'need') return this.#hold(d, 0, 0);
          this.#freshLine = false;
          if (m.kind === 'yes') return this.#delimiter(d, 0, 0, m);
        }
      }
      this.#freshLine = false;
    }
    let search = 0;
    for (;;) {
      const i = d.indexOf(NL_DASH_DASH, search);
      if (i < 0) break;
      const m = this.#matchDelimiter(d, i + 1, eof);
      if (m.kind === 'no') {
        search = i + 1;
        continue;
      }
      const lineBreak = i > pos && d[i - 1] === CR ? i - 1 : i;
      if (m.kind === 'need') return this.#hold(d, pos, lineBreak);
      return this.#delimiter(d, pos, lineBreak, m);
    }
    if (eof) {
      this.#emit(d, pos, d.length);
      return undefined;
    }
    // Hold a tail that may begin a delimiter: "\r", "\n", "\r\n", "\n-", "\r\n-".
    let keep = d.length;
    const last = d.length - 1;
    if (last >= pos && (d[last] === CR || d[last] === LF)) keep = last;
    else if (last - 1 >= pos && d[last] === DASH && d[last - 1] === LF) keep = last - 1;
    if (keep < d.length && keep - 1 >= pos && d[keep] === LF && d[keep - 1] === CR) keep--;
    return this.#hold(d, pos, keep);
  }

  /** Emits d[pos, keep) and keeps d[keep, end) (copied) for the next chunk. */
  #hold(d: Buffer, pos: number, keep: number): undefined {
    this.#emit(d, pos, keep);
    if (keep < d.length) {
      if (d.length - keep > this.#limits.maxLineLength + 4) throw new KakitomeError('LIMIT', 'A boundary line exceeds the line limit.');
      this.#carry = Buffer.from(d.subarray(keep));
    }
    return undefined;
  }

  /** A delimiter line: content ends at `contentEnd`, the delimiter runs from there to m.lineEnd. */
  #delimiter(d: Buffer, pos: number, contentEnd: number, m: Match & { kind: 'yes' }): Buffer {
    this.#emit(d, pos, contentEnd);
    if (this.#inBody) this.#handler.bodyEnd();
    this.#inBody = false;
    // An enclosing multipart's delimiter ends every multipart inside it.
    this.#closeFramesFrom(m.frame + 1);
    const frame = this.#frames[m.frame]!;
    // A close delimiter before any other leaves the multipart without a part: MALFORMED, as parse-entity.ts says.
    if (m.close && !frame.seen) malformed(`${frame.mediaType} body has no boundary delimiter`);
    frame.seen = true;
    this.#handler.structure(d.subarray(contentEnd, m.lineEnd));
    const rest = d.subarray(m.lineEnd);
    if (m.close) {
      // The epilogue belongs to the multipart and is scanned only for the enclosing ones' delimiters.
      this.#frames.pop();
      this.#freshLine = true;
      return rest;
    }
    this.#mode = 'header';
    this.#depth = frame.depth + 1;
    this.#digestParent = frame.digest;
    return rest;
  }

  /** Ends the multiparts from index `from` inward, which saw no close delimiter. */
  #closeFramesFrom(from: number): void {
    while (this.#frames.length > from) {
      const f = this.#frames.pop()!;
      if (!f.seen) malformed(`${f.mediaType} body has no boundary delimiter`);
      // MALFORMED for multipart/signed; else the last part ends at the end of its parent (as parse-entity.ts).
      noteUnclosedMultipart(f.mediaType, this.warnings);
    }
  }
}
