/**
 * The audit records of a chunk's signed messages (api.batches.sign: the certificate,
 * the sender, the size, the batch and the message's index), kept from each message's
 * signing until the transaction that completes the chunk inserts them
 * (src/store/batch-queue.ts), and made into rows only then, one group at a time.
 *
 * Why not the rows themselves: a row made as its message is signed lived through the
 * rest of the chunk's signing (500 messages) and was promoted out of the batch
 * thread's small young generation, about 0.3 KB a message (its array, id, time and
 * detail strings) for V8's full collections to mark and free: the largest part of
 * what the batch thread promoted. Kept here, a message costs four numbers in typed
 * arrays, and its strings are shared with the message before when they are the same
 * (the certificate, the sender, the DKIM selectors): made at the completion, each row
 * dies young. The row is what auditRowOf makes of the record, as before.
 */
import { auditRowOf, type AuditRow } from '../../store/record-key-use.ts';
import { keyUseDetail, type KeyUseParts } from '../api/sign.ts';

/** What a row has besides its time, size and index: mostly the same for every message of a chunk. */
interface UseKind {
  actor: string;
  action: string;
  object: string;
  sender: string;
  dkim: string;
}

export class ChunkAudit implements Iterable<AuditRow> {
  readonly #batchId: string;
  #at: Float64Array;
  #bytes: Float64Array;
  #index: Float64Array;
  #kindOf: Uint32Array;
  readonly #kinds: UseKind[] = [];
  #length = 0;

  /** `capacity`: the messages expected (a chunk's); more are taken, the arrays grown. */
  constructor(batchId: string, capacity: number) {
    this.#batchId = batchId;
    const n = Math.max(1, capacity);
    this.#at = new Float64Array(n);
    this.#bytes = new Float64Array(n);
    this.#index = new Float64Array(n);
    this.#kindOf = new Uint32Array(n);
  }

  get length(): number {
    return this.#length;
  }

  /** The use of the message at `index` (in the upload). */
  add(parts: KeyUseParts, index: number): void {
    if (this.#length === this.#at.length) this.#grow();
    const i = this.#length++;
    this.#at[i] = parts.at.getTime();
    this.#bytes[i] = parts.bytes;
    this.#index[i] = index;
    this.#kindOf[i] = this.#kindIndex(parts);
  }

  #kindIndex(p: KeyUseParts): number {
    const last = this.#kinds.length - 1;
    const k = this.#kinds[last];
    if (k && k.sender === p.sender && k.object === p.object && k.dkim === p.dkim && k.action === p.action && k.actor === p.actor) return last;
    this.#kinds.push({ actor: p.actor, action: p.action, object: p.object, sender: p.sender, dkim: p.dkim });
    return last + 1;
  }

  #grow(): void {
    const grown = (a: Float64Array) => {
      const b = new Float64Array(a.length * 2);
      b.set(a);
      return b;
    };
    this.#at = grown(this.#at);
    this.#bytes = grown(this.#bytes);
    this.#index = grown(this.#index);
    const kindOf = new Uint32Array(this.#kindOf.length * 2);
    kindOf.set(this.#kindOf);
    this.#kindOf = kindOf;
  }

  /** The rows in order, each made as it is asked for. */
  *[Symbol.iterator](): Iterator<AuditRow> {
    for (let i = 0; i < this.#length; i++) {
      const k = this.#kinds[this.#kindOf[i]!]!;
      const detail = keyUseDetail(k.sender, this.#bytes[i]!, k.dkim, `batch ${this.#batchId} message ${this.#index[i]!}`);
      yield auditRowOf({ at: new Date(this.#at[i]!), actor: k.actor, action: k.action, object: k.object, detail });
    }
  }
}
