/**
 * The batch benches' upload (bench/serve-batch.ts, bench/serve-batch-chunks.ts): an
 * mbox of `count` 2 KB messages from `from`, each with its own Message-ID, made as
 * it is read (never held whole).
 */
import { Readable } from 'node:stream';
import { formatMboxEntry } from '../../src/mime/mbox.ts';
import { twoKilobyteEmail } from '../messages.ts';

export function benchMbox(from: string, count: number): Readable {
  const template = twoKilobyteEmail(from).toString('latin1');
  let i = 0;
  return new Readable({
    read() {
      const parts: Buffer[] = [];
      for (let k = 0; k < 256 && i < count; k++, i++) {
        const m = Buffer.from(template.replace('<bench-0001@example.com>', `<bench-${i}@example.com>`), 'latin1');
        parts.push(formatMboxEntry(`${from} Mon Nov 23 12:00:00 2026`, m));
      }
      this.push(parts.length ? Buffer.concat(parts) : null);
    },
  });
}
