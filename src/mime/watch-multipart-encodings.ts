/**
 * checkMultipartEncoding (check-multipart-encoding.ts) for content read as a stream:
 * every entity's header section, at any depth, as the bytes pass, by a
 * MimeStreamWalker that keeps nothing but the structure. The streaming verifiers
 * hash the signed content without parsing it; this reads it as verifyMessage's
 * parseEntity does (the walker's rules and limits are the same), so a multipart in a
 * transfer encoding deep inside signed content is MALFORMED on the streaming paths
 * too, and so is a structure the in-memory reader refuses.
 */
import type { Limits } from '../limits.ts';
import { checkMultipartEncoding } from './check-multipart-encoding.ts';
import { MimeStreamWalker } from './walk-mime-stream.ts';

export class MultipartEncodingWatch {
  readonly #walker: MimeStreamWalker;
  #started = false;

  constructor(limits: Limits) {
    this.#walker = new MimeStreamWalker({ header: (h) => checkMultipartEncoding(h), body() {}, bodyEnd() {}, structure() {} }, limits);
  }

  /** The next bytes of the content (the walker copies what it keeps: `bytes` may be reused). */
  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#started = true;
    this.#walker.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }

  /** The content is complete (empty content has no entity to check). */
  end(): void {
    if (this.#started) this.#walker.end();
  }
}
