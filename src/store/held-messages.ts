/**
 * Messages held for an administrator (issue 13, policy `missingCertificate: hold`):
 * outbound mail that policy requires encrypted for recipients with no usable
 * certificate. The gateway answers 250 for those recipients only once the message
 * is committed here, so a held message is never lost; it leaves only by
 * `kakitome gateway held release` (sent again through the mail system, where policy
 * decides anew) or `held bounce` (a DSN to its sender), each audited. Migration 6.
 *
 * The message is kept as it was received, as Postfix's queue keeps it: plaintext
 * that policy says must travel encrypted. Protect the database like the mail queue.
 *
 * The id is a digest of the envelope and the message: when the gateway holds a
 * message and its answer is lost (a retry after 4xx, a crash), holding it again
 * finds the same row and keeps one. Holding it again raises its generation
 * (migration 7): a release removes the entry only at the generation it sent, so a
 * released message that the gateway holds again (still no certificate) stays held.
 */
import { createHash } from 'node:crypto';
import { KakitomeError } from '../errors.ts';
import type { Row } from './sql-engine.ts';
import type { Store } from './store.ts';

export interface HeldMessageInput {
  sender: string;
  recipients: readonly string[];
  message: Buffer;
  /** The stable code of why (ENCRYPTION_REQUIRED). */
  reasonCode: string;
  /** One sentence for the administrator and, on bounce, the sender. */
  reason: string;
  queueId?: string;
}

export interface HeldMessage {
  id: string;
  heldAt: Date;
  sender: string;
  recipients: string[];
  reasonCode: string;
  reason: string;
  size: number;
  queueId?: string;
  /** Raised each time the same message is held again. */
  generation: number;
}

const ID = /^[0-9a-f]{32}$/;

function heldId(input: HeldMessageInput): string {
  const h = createHash('sha256');
  h.update(input.sender.toLowerCase()).update('\0');
  for (const r of [...input.recipients].map((x) => x.toLowerCase()).sort()) h.update(r).update('\0');
  return h.update(input.message).digest('hex').slice(0, 32);
}

function toHeld(r: Row): HeldMessage {
  return {
    id: String(r.id),
    heldAt: new Date(String(r.held_at)),
    sender: String(r.sender),
    recipients: JSON.parse(String(r.recipients)) as string[],
    reasonCode: String(r.reason_code),
    reason: String(r.reason),
    size: Number(r.size),
    generation: Number(r.generation),
    ...(r.queue_id !== null && r.queue_id !== undefined ? { queueId: String(r.queue_id) } : {}),
  };
}

const COLUMNS = 'id, held_at, queue_id, sender, recipients, reason_code, reason, size, generation';

export class HeldMessages {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  /** Holds a message (committed, with its audit record, before this resolves); returns its id. */
  async hold(input: HeldMessageInput): Promise<string> {
    const id = heldId(input);
    await this.#store.engine.transaction(async (tx) => {
      await tx.run(
        `INSERT INTO held_messages (${COLUMNS}, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT (id) DO UPDATE SET generation = held_messages.generation + 1, held_at = excluded.held_at, queue_id = excluded.queue_id`,
        [id, this.#store.now().toISOString(), input.queueId ?? null, input.sender, JSON.stringify(input.recipients), input.reasonCode, input.reason, input.message.length, input.message],
      );
      await this.#store.auditWithin(tx, 'message.hold', id, `${input.reasonCode}: ${input.recipients.length} recipient(s), ${input.message.length} bytes${input.queueId ? `, queue id ${input.queueId}` : ''}`);
    });
    return id;
  }

  async list(): Promise<HeldMessage[]> {
    return (await this.#store.engine.all(`SELECT ${COLUMNS} FROM held_messages ORDER BY held_at, id`)).map(toHeld);
  }

  /** The held message and its bytes; NOT_FOUND for an unknown id. */
  async find(id: string): Promise<HeldMessage & { message: Buffer }> {
    if (!ID.test(id)) throw new KakitomeError('INVALID_ARGUMENT', `"${id}" is not a held message id (32 hex digits, as \`kakitome gateway held list\` shows them).`);
    const rows = await this.#store.engine.all(`SELECT ${COLUMNS}, message FROM held_messages WHERE id = ?`, [id]);
    if (!rows[0]) throw new KakitomeError('NOT_FOUND', `No held message ${id} (released or bounced already?).`);
    const bytes = rows[0].message;
    if (!(bytes instanceof Uint8Array)) throw new KakitomeError('MALFORMED', 'The store returned a non-binary value for a held message.');
    return { ...toHeld(rows[0]), message: Buffer.from(bytes) };
  }

  /**
   * Removes a held message once it was released or bounced (`action`, audited), if it
   * is still at `generation` (the one that was sent); false if it was gone already or
   * held again since.
   */
  async remove(id: string, generation: number, action: 'release' | 'bounce', detail: string): Promise<boolean> {
    return this.#store.engine.transaction(async (tx) => {
      const n = await tx.run('DELETE FROM held_messages WHERE id = ? AND generation = ?', [id, generation]);
      if (n) await this.#store.auditWithin(tx, `message.${action}`, id, detail);
      return n > 0;
    });
  }
}
