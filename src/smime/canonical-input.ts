/**
 * Canonical line breaks for streamed input (RFC 5322 section 2.1): the first line
 * break decides. An LF-only input (mailbox exports, Unix tools) is converted to
 * CRLF as a whole, like splitMessage does in memory; an input that starts with CRLF
 * is passed through unchanged, since a bare LF there may be binary content.
 * Shared by signMessageStream, encryptMessageStream (through stream-payload.ts) and
 * verifyMessageStream.
 */
const CRLF = Buffer.from('\r\n');

/** Converts bare LF to CRLF across chunk boundaries (used for LF-only inputs). */
async function* crlfLines(input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let lastWasCr = false;
  for await (const chunk of input) {
    const parts: Buffer[] = [];
    let start = 0;
    for (let i = chunk.indexOf(0x0a); i >= 0; i = chunk.indexOf(0x0a, i + 1)) {
      const prevCr = i === 0 ? lastWasCr : chunk[i - 1] === 0x0d;
      if (prevCr) continue;
      parts.push(chunk.subarray(start, i), CRLF);
      start = i + 1;
    }
    parts.push(chunk.subarray(start));
    if (chunk.length) lastWasCr = chunk[chunk.length - 1] === 0x0d;
    yield parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }
}

/**
 * No message has a first line this long (the header line limit is 1 MiB by default):
 * past it the input is passed on unconverted and the parser's limits refuse it,
 * instead of holding an unbounded first line in memory.
 */
const MAX_FIRST_LINE = 1024 * 1024 + 1;

/** Looks at the first line break: LF-only input is converted as a whole, like splitMessage does. */
export async function* canonicalInput(input: AsyncIterable<Uint8Array>, warnings: string[]): AsyncGenerator<Buffer> {
  const it = input[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let held = 0;
  let decided: 'crlf' | 'lf' | undefined;
  let r = await it.next();
  while (!r.done && !decided) {
    const c = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    const nl = c.indexOf(0x0a);
    if (nl > 0) decided = c[nl - 1] === 0x0d ? 'crlf' : 'lf';
    else if (nl === 0) decided = head.length > 0 && head[head.length - 1]![head[head.length - 1]!.length - 1] === 0x0d ? 'crlf' : 'lf';
    if (c.length) head.push(c);
    held += c.length;
    if (!decided && held > MAX_FIRST_LINE) decided = 'crlf';
    if (!decided) r = await it.next();
  }
  const rest = (async function* () {
    yield* head;
    if (!r.done) {
      for (r = await it.next(); !r.done; r = await it.next()) yield Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    }
  })();
  if (decided === 'lf') {
    warnings.push('The message used bare LF line breaks; it was converted to CRLF (RFC 5322 canonical form) before processing.');
    yield* crlfLines(rest);
  } else yield* rest;
}
