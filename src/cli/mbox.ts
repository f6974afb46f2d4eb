/**
 * mbox files in the "mboxrd" flavour (the one qmail, mutt and Thunderbird's
 * import read without loss): each message starts with a "From " separator line;
 * any body line matching /^>*From / is stored with one more ">" and read back with
 * one less, so quoting always round-trips. Messages are separated by one empty
 * line. Line endings inside messages are kept as they are.
 *
 * Hand-written rather than a dependency: it is a few dozen lines of byte scanning,
 * and the npm mbox readers either buffer the whole file or use the lossy "mboxo"
 * rules (which cannot tell a quoted ">From " from an original one).
 */
import { KakitomeError } from '../errors.ts';

const FROM_ = Buffer.from('From ');

export interface MboxEntry {
  /** 0-based position in the file. */
  index: number;
  /** The separator line without "From " and without its line ending. */
  envelope: string;
  /** The message, unquoted; absent when `error` is set. */
  message?: Buffer;
  /** Why this entry cannot be processed (too large); the batch reports and skips it. */
  error?: KakitomeError;
}

/** True when `head` begins like an mbox rather than like an RFC 5322 message. */
export function looksLikeMbox(head: Uint8Array): boolean {
  // RFC 5322's obsolete syntax allows "From :" (WSP before the colon), so a bare
  // "From " prefix is not enough: the From_ line has a non-space, non-colon token next.
  return /^From [^\s:]+/.test(Buffer.from(head.subarray(0, 200)).toString('latin1'));
}

function isFromLine(line: Buffer): boolean {
  return line.length >= 5 && line.subarray(0, 5).equals(FROM_);
}

/** ">From ", ">>From ": one ">" is removed on reading, added on writing (mboxrd). */
function isQuotedFrom(line: Buffer): boolean {
  let i = 0;
  while (i < line.length && line[i] === 0x3e) i++;
  return line.length - i >= 5 && line.subarray(i, i + 5).equals(FROM_);
}

function stripEol(line: Buffer): Buffer {
  let end = line.length;
  if (end > 0 && line[end - 1] === 0x0a) end--;
  if (end > 0 && line[end - 1] === 0x0d) end--;
  return line.subarray(0, end);
}

/**
 * Splits an mbox stream into messages, one at a time (the file is never held in
 * memory whole). A message larger than `maxMessageBytes` is yielded with an error
 * instead of its bytes, and reading resumes at the next separator.
 */
export async function* splitMbox(source: AsyncIterable<Buffer | string>, maxMessageBytes: number): AsyncGenerator<MboxEntry> {
  let pending: Buffer = Buffer.alloc(0);
  let lines: Buffer[] = [];
  let size = 0;
  let envelope: string | undefined;
  let oversized = false;
  let index = 0;

  const finish = (): MboxEntry => {
    // The empty line before the next separator belongs to the file, not the message.
    const last = lines[lines.length - 1];
    if (last !== undefined && stripEol(last).length === 0) lines.pop();
    const entry: MboxEntry = oversized
      ? { index, envelope: envelope!, error: new KakitomeError('LIMIT', `Message ${index + 1} of the mbox is larger than ${Math.floor(maxMessageBytes / (1024 * 1024))} MiB.`) }
      : { index, envelope: envelope!, message: Buffer.concat(lines) };
    index++;
    lines = [];
    size = 0;
    oversized = false;
    return entry;
  };

  const takeLine = function* (line: Buffer): Generator<MboxEntry> {
    if (isFromLine(line)) {
      if (envelope !== undefined) yield finish();
      envelope = stripEol(line).subarray(5).toString('latin1');
      return;
    }
    if (envelope === undefined) {
      // QUIRK: blank lines before the first separator are tolerated; anything else means this is no mbox.
      if (stripEol(line).length === 0) return;
      throw new KakitomeError('MALFORMED', 'Malformed input: not an mbox file (it does not start with a "From " line).');
    }
    if (oversized) return;
    const unquoted = isQuotedFrom(line) ? line.subarray(1) : line;
    size += unquoted.length;
    if (size > maxMessageBytes) {
      oversized = true;
      lines = [];
      return;
    }
    lines.push(unquoted);
  };

  for await (const chunk of source) {
    const data: Buffer = pending.length === 0 ? Buffer.from(chunk) : Buffer.concat([pending, Buffer.from(chunk)]);
    let start = 0;
    for (let nl = data.indexOf(0x0a, start); nl >= 0; nl = data.indexOf(0x0a, start)) {
      // No copy: stream chunks are never reused, and a line only lives until its message is handed on.
      yield* takeLine(data.subarray(start, nl + 1));
      start = nl + 1;
    }
    pending = Buffer.from(data.subarray(start));
    if (pending.length > maxMessageBytes + 1024) {
      // One line longer than a whole message: stop buffering it.
      if (envelope === undefined) throw new KakitomeError('MALFORMED', 'Malformed input: not an mbox file (it does not start with a "From " line).');
      oversized = true;
      lines = [];
      pending = Buffer.alloc(0);
    }
  }
  if (pending.length > 0) yield* takeLine(pending);
  if (envelope !== undefined) yield finish();
}

/** asctime(3) form used on From_ lines: "Mon Nov 23 13:00:09 2026". */
export function formatEnvelopeDate(d: Date): string {
  const s = d.toUTCString(); // "Mon, 23 Nov 2026 13:00:09 GMT"
  const m = /^(\w{3}), (\d{2}) (\w{3}) (\d{4}) (\d{2}:\d{2}:\d{2})/.exec(s);
  if (!m) return s;
  return `${m[1]} ${m[3]} ${m[2]!.replace(/^0/, ' ')} ${m[5]} ${m[4]}`;
}

/** One mbox entry: separator line, the message with From-quoting, one empty line. */
export function formatMboxEntry(envelope: string, message: Uint8Array): Buffer {
  const out: Buffer[] = [Buffer.from(`From ${envelope}\n`, 'latin1')];
  const msg = Buffer.from(message.buffer, message.byteOffset, message.byteLength);
  let start = 0;
  while (start < msg.length) {
    const nl = msg.indexOf(0x0a, start);
    const end = nl < 0 ? msg.length : nl + 1;
    const line = msg.subarray(start, end);
    if (isQuotedFrom(line)) out.push(Buffer.from('>'));
    out.push(line);
    start = end;
  }
  if (msg.length === 0 || msg[msg.length - 1] !== 0x0a) out.push(Buffer.from('\n'));
  out.push(Buffer.from('\n'));
  return Buffer.concat(out);
}

/**
 * A single message saved with an mbox separator line in front (Thunderbird's and
 * mutt's "save message" do this): the message without that line. When the input
 * holds a second unquoted separator it is a real mbox, not one message, and is
 * refused so that nothing after the first message is silently ignored.
 */
export function stripEnvelopeLine(data: Buffer): Buffer {
  if (!looksLikeMbox(data)) return data;
  const nl = data.indexOf(0x0a);
  if (nl < 0) return Buffer.alloc(0);
  const rest = data.subarray(nl + 1);
  if (rest.subarray(0, 5).equals(FROM_) || rest.includes('\nFrom ')) {
    throw new KakitomeError('INVALID_ARGUMENT', 'The input is an mbox with several messages: give it as -i FILE -o FILE to process every message in it.');
  }
  // QUIRK: one leading From_ line is dropped, as mail clients write it on saved .eml files.
  return rest;
}
