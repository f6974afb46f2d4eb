/**
 * The DKIM body hash (RFC 6376 section 3.7, bh=) over the relaxed canonical body
 * (section 3.4.4), computed as the body streams by, so a message of any size is
 * hashed without being held: whitespace runs become one space, whitespace at the end
 * of a line goes, empty lines at the end of the body go, and a non-empty body ends
 * with CRLF. Lines end at CRLF; a lone CR or LF is content, as in the in-memory form
 * (a body is put in canonical CRLF form before it is signed).
 *
 * State carried between chunks: whitespace not yet written (it becomes one space if
 * content follows on the line), line breaks not yet written (they are dropped if only
 * empty lines follow), and a CR that may start a CRLF. Runs of ordinary bytes are
 * hashed as slices of the chunk, never copied.
 */
import { createHash, type Hash } from 'node:crypto';

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HT = 0x09;
const SPACE = Buffer.from(' ');
const CRLF = Buffer.from('\r\n');
const CR_BYTE = Buffer.from([CR]);

/** The first space or tab at or after `from`, or -1. */
function nextWhitespace(chunk: Buffer, from: number): number {
  const sp = chunk.indexOf(SP, from);
  const ht = chunk.indexOf(HT, from);
  return sp < 0 ? ht : ht < 0 ? sp : Math.min(sp, ht);
}

export class DkimBodyHash {
  readonly #hash: Hash = createHash('sha256');
  /** Whitespace seen on the current line and not yet written. */
  #space = false;
  /** Line breaks (CRLF) not yet written: empty lines at the end of the body are dropped. */
  #breaks = 0;
  /** The last chunk ended in CR: a LF first in the next one completes a line break. */
  #cr = false;
  /** Content was written: the body is not empty. */
  #written = false;

  update(bytes: Uint8Array): this {
    const chunk = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const n = chunk.length;
    if (n === 0) return this;
    let i = 0;
    if (this.#cr) {
      this.#cr = false;
      if (chunk[0] === LF) {
        this.#endLine();
        i = 1;
      } else this.#content(CR_BYTE);
    }
    // Whitespace pending from the last chunk, and this one goes on with a line break: it was at the end of a line.
    if (this.#space && i + 1 < n && chunk[i] === CR && chunk[i + 1] === LF) this.#space = false;
    let run = i;
    while (i < n) {
      const ws = nextWhitespace(chunk, i);
      if (ws < 0) break;
      let j = ws;
      while (j < n && (chunk[j] === SP || chunk[j] === HT)) j++;
      if (j === n || (chunk[j] === CR && j + 1 === n)) {
        // At the end of the chunk: trailing or not is known only from the next one.
        this.#flush(chunk, run, ws);
        this.#space = true;
        run = i = j;
        break;
      }
      if (chunk[j] === CR && chunk[j + 1] === LF) {
        // At the end of a line: dropped; the line break stays in the run.
        this.#flush(chunk, run, ws);
        this.#space = false;
        run = j;
        i = j + 2;
        continue;
      }
      if (j - ws === 1 && chunk[ws] === SP && !(ws === run && this.#space)) {
        // One space inside a line: already canonical.
        i = j;
        continue;
      }
      this.#flush(chunk, run, ws);
      this.#space = true;
      run = i = j;
    }
    // A CR at the end of the chunk may start a line break: it waits for the next one.
    const cr = n > run && chunk[n - 1] === CR;
    this.#flush(chunk, run, cr ? n - 1 : n);
    this.#cr = cr;
    return this;
  }

  /** bh=: base64 of the SHA-256 of the canonical body. */
  digest(): string {
    if (this.#cr) {
      this.#cr = false;
      this.#content(CR_BYTE);
    }
    // Empty lines at the end are dropped; a non-empty body ends with one CRLF.
    if (this.#written) this.#hash.update(CRLF);
    return this.#hash.digest('base64');
  }

  /**
   * Bytes chunk[from, to) of the body: the line breaks they end with wait (they may be
   * empty lines at the end of the body); what comes before them is written.
   */
  #flush(chunk: Buffer, from: number, to: number): void {
    let end = to;
    let breaks = 0;
    while (end - from >= 2 && chunk[end - 2] === CR && chunk[end - 1] === LF) {
      breaks++;
      end -= 2;
    }
    if (end > from) this.#content(chunk.subarray(from, end));
    if (breaks > 0) {
      // The line ended: whitespace still pending was at its end.
      this.#space = false;
      this.#breaks += breaks;
    }
  }

  #content(bytes: Uint8Array): void {
    for (; this.#breaks > 0; this.#breaks--) this.#hash.update(CRLF);
    if (this.#space) {
      this.#space = false;
      this.#hash.update(SPACE);
    }
    this.#hash.update(bytes);
    this.#written = true;
  }

  #endLine(): void {
    // Whitespace at the end of a line goes.
    this.#space = false;
    this.#breaks++;
  }
}
