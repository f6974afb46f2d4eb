/**
 * The bytes of one entry being read from a stream (a line, a part), kept as the
 * slices they arrived in, up to a limit: past it they are dropped and the entry
 * is only marked oversized, so a hostile entry costs no more memory than the limit.
 */
export class BoundedPieces {
  readonly #limit: number;
  #pieces: Buffer[] = [];
  #size = 0;
  #oversized = false;

  constructor(limit: number) {
    this.#limit = limit;
  }

  get size(): number {
    return this.#size;
  }

  get oversized(): boolean {
    return this.#oversized;
  }

  add(piece: Buffer): void {
    if (this.#oversized || piece.length === 0) return;
    this.#size += piece.length;
    if (this.#size > this.#limit) {
      this.#oversized = true;
      this.#pieces = [];
    } else {
      this.#pieces.push(piece);
    }
  }

  /** The pieces so far, and a fresh start for the next entry. */
  take(): { bytes: Buffer; oversized: boolean; pieces: readonly Buffer[] } {
    const pieces = this.#pieces;
    const out = { bytes: pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, this.#oversized ? 0 : this.#size), oversized: this.#oversized, pieces };
    this.#pieces = [];
    this.#size = 0;
    this.#oversized = false;
    return out;
  }
}
