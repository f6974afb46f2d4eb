/**
 * The batch progress bar on stderr. Drawn only on a terminal and at most ten times
 * a second (redrawing per message would cost more than signing one); notes about
 * failed messages are printed above it, and always printed when there is no bar.
 */
const WIDTH = 28;

export class Progress {
  readonly #label: string;
  readonly #enabled: boolean;
  #total: number | undefined;
  #totalBytes: number | undefined;
  #bytes = 0;
  #done = 0;
  #failed = 0;
  #started = 0;
  #lastDraw = 0;
  #drawn = false;

  constructor(label: string, enabled: boolean) {
    this.#label = label;
    this.#enabled = enabled;
  }

  start(total: number | undefined, totalBytes?: number): void {
    this.#total = total;
    this.#totalBytes = totalBytes;
    this.#started = Date.now();
    this.#draw(true);
  }

  tick(ok: boolean): void {
    this.#done++;
    if (!ok) this.#failed++;
    this.#draw(false);
  }

  bytes(n: number): void {
    this.#bytes += n;
  }

  /** A line above the bar (a failed message). */
  note(line: string): void {
    if (this.#drawn) process.stderr.write('\r\x1b[K');
    process.stderr.write(`kakitome ${this.#label}: ${line}\n`);
    this.#drawn = false;
    this.#draw(true);
  }

  stop(): void {
    if (!this.#enabled) return;
    this.#draw(true);
    if (this.#drawn) process.stderr.write('\n');
    this.#drawn = false;
  }

  #draw(force: boolean): void {
    if (!this.#enabled) return;
    const now = Date.now();
    if (!force && now - this.#lastDraw < 100) return;
    this.#lastDraw = now;
    const fraction = this.#total !== undefined
      ? (this.#total === 0 ? 1 : this.#done / this.#total)
      : (this.#totalBytes ? Math.min(1, this.#bytes / this.#totalBytes) : 0);
    const filled = Math.round(fraction * WIDTH);
    const rate = this.#done / Math.max(0.001, (now - this.#started) / 1000);
    const count = this.#total !== undefined ? `${this.#done}/${this.#total}` : `${this.#done}`;
    const failed = this.#failed ? `  ${this.#failed} failed` : '';
    process.stderr.write(`\r\x1b[K${this.#label} [${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}] ${count}${failed}  ${rate.toFixed(0)} msg/s`);
    this.#drawn = true;
  }
}
