/**
 * Messages held for an administrator (issue 13, policy `missingCertificate: hold`):
 * outbound mail that policy requires encrypted for recipients with no usable
 * certificate. The gateway answers 250 for those recipients only once the message
 * is committed here, so a held message is never lost; it leaves only by
 * `kakitome gateway held release` (sent again through the mail system, where policy
 * decides anew) or `held bounce` (a DSN to its sender), each audited. Migration 6.
 *
 * The message is kept as it was received, sealed under the store's master key
 * (migration 12): in segments of SEGMENT_BYTES, each AES-256-GCM under a data key of
 * its own message, wrapped under the master key, the held id and the segment's
 * position in the additional data (seal-private-key.ts, the sealing of private
 * keys): a database dump or backup shows envelopes and sizes, never mail, and a
 * row moved to another id, a segment moved or dropped, does not open. Listing
 * needs no master key; holding, releasing and bouncing do.
 *
 * The id is a digest of the envelope and the message: when the gateway holds a
 * message and its answer is lost (a retry after 4xx, a crash), holding it again
 * finds the same row and keeps one. Holding it again raises its generation
 * (migration 7): a release removes the entry only at the generation it sent, so a
 * released message that the gateway holds again (still no certificate) stays held.
 *
 * The sender's DSN requests (RFC 3461: RET, ENVID, each recipient's NOTIFY and ORCPT)
 * are kept with the envelope (migration 21) and go with the message when it is
 * released, as they would have had it not been held. A message held before has none.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { KakitomeError } from '../errors.ts';
import type { SegmentSealer } from '../keys/seal-private-key.ts';
import { mailDsnProblem, rcptDsnProblem, type MailDsn, type NotifyValue, type RcptDsn } from '../smtp/dsn-parameters.ts';
import type { Row, SqlExecutor } from './sql-engine.ts';
import type { Store } from './store.ts';

/** The purpose in the sealing's additional data: a held message's header never opens as a key. */
export const HELD_MESSAGE_PURPOSE = 'held message';

/** The plaintext bytes per sealed segment: what holding or releasing keeps in memory at once. */
export const SEGMENT_BYTES = 1024 * 1024;

/** A message too large for memory (a spooled one): its size, and its bytes read afresh each time. */
export interface HeldBody {
  size: number;
  read(): AsyncIterable<Uint8Array>;
}

export interface HeldMessageInput {
  sender: string;
  recipients: readonly string[];
  message: Buffer | HeldBody;
  /** The stable code of why (ENCRYPTION_REQUIRED, UNAUTH_ENC). */
  reasonCode: string;
  /** One sentence for the administrator and, on bounce, the sender. */
  reason: string;
  queueId?: string;
  /** RET and ENVID as received. */
  dsn?: MailDsn;
  /** Each recipient's NOTIFY and ORCPT, in the order of `recipients` (undefined: none given). */
  recipientDsn?: ReadonlyArray<RcptDsn | undefined>;
}

/** A held message's DSN requests, as hold() took them and release relays them. */
export interface HeldDsn {
  dsn?: MailDsn;
  /** In the order of the recipients. */
  recipientDsn?: Array<RcptDsn | undefined>;
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

function bodyOf(message: Buffer | HeldBody): HeldBody {
  if (!Buffer.isBuffer(message)) return message;
  return { size: message.length, async *read() { yield message; } };
}

/** `body`'s bytes cut into segments of SEGMENT_BYTES (the last one shorter, or empty for an empty message), each with whether it is the last. */
async function* segmentsOf(body: HeldBody): AsyncGenerator<{ seq: number; last: boolean; bytes: Buffer }> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let seq = 0;
  let seen = 0;
  for await (const chunk of body.read()) {
    let c = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    seen += c.length;
    while (pendingBytes + c.length >= SEGMENT_BYTES) {
      const take = SEGMENT_BYTES - pendingBytes;
      const bytes = Buffer.concat([...pending, c.subarray(0, take)]);
      c = c.subarray(take);
      pending = [];
      pendingBytes = 0;
      // A full segment is the last only when nothing follows: known from the size.
      yield { seq: seq++, last: seen - c.length === body.size && c.length === 0, bytes };
    }
    if (c.length) {
      pending.push(c);
      pendingBytes += c.length;
    }
  }
  if (seen !== body.size) throw new KakitomeError('INVALID_ARGUMENT', `A message to hold changed while it was read (${seen} bytes, ${body.size} expected).`);
  if (pendingBytes || seq === 0) yield { seq, last: true, bytes: Buffer.concat(pending) };
}

async function heldId(input: HeldMessageInput, body: HeldBody): Promise<string> {
  const h = createHash('sha256');
  h.update(input.sender.toLowerCase()).update('\0');
  for (const r of [...input.recipients].map((x) => x.toLowerCase()).sort()) h.update(r).update('\0');
  for await (const c of body.read()) h.update(c);
  return h.digest('hex').slice(0, 32);
}

/** The dsn column: NULL when nothing was asked; JSON of RET, ENVID and one entry per recipient (null: none given). */
function dsnColumn(input: HeldMessageInput): string | null {
  const rcpt = input.recipientDsn;
  if (rcpt && rcpt.length !== input.recipients.length) throw new KakitomeError('INVALID_ARGUMENT', `A message to hold has ${input.recipients.length} recipient(s) and ${rcpt.length} sets of DSN parameters.`);
  const mail = input.dsn && (input.dsn.ret !== undefined || input.dsn.envid !== undefined) ? input.dsn : undefined;
  const some = rcpt?.some((d) => d !== undefined);
  if (!mail && !some) return null;
  return JSON.stringify({ ...(mail?.ret !== undefined ? { ret: mail.ret } : {}), ...(mail?.envid !== undefined ? { envid: mail.envid } : {}), ...(some ? { recipients: rcpt!.map((d) => d ?? null) } : {}) });
}

/** The dsn column read back, checked as the listeners check what they receive (dsn-parameters.ts): a row that fails is refused, never relayed. */
function heldDsnOf(id: string, value: unknown, recipients: number): HeldDsn {
  if (value === null || value === undefined) return {};
  const bad = (why: string) => new KakitomeError('MALFORMED', `Held message ${id} has DSN parameters that cannot be relayed (${why}).`);
  let v: unknown;
  try {
    v = JSON.parse(String(value));
  } catch {
    throw bad('not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('not an object');
  const o = v as Record<string, unknown>;
  const out: HeldDsn = {};
  if (o.ret !== undefined || o.envid !== undefined) {
    if ((o.ret !== undefined && o.ret !== 'FULL' && o.ret !== 'HDRS') || (o.envid !== undefined && typeof o.envid !== 'string')) throw bad('RET or ENVID');
    out.dsn = { ...(o.ret !== undefined ? { ret: o.ret } : {}), ...(o.envid !== undefined ? { envid: o.envid as string } : {}) };
    const problem = mailDsnProblem(out.dsn);
    if (problem) throw bad(problem);
  }
  if (o.recipients !== undefined) {
    if (!Array.isArray(o.recipients) || o.recipients.length !== recipients) throw bad('not one entry per recipient');
    out.recipientDsn = o.recipients.map((r: unknown) => {
      if (r === null) return undefined;
      const e = r as Record<string, unknown>;
      if (typeof r !== 'object' || (e.notify !== undefined && !(Array.isArray(e.notify) && e.notify.every((n) => typeof n === 'string'))) || (e.orcpt !== undefined && typeof e.orcpt !== 'string')) throw bad('NOTIFY or ORCPT');
      const d: RcptDsn = { ...(e.notify !== undefined ? { notify: e.notify as NotifyValue[] } : {}), ...(e.orcpt !== undefined ? { orcpt: e.orcpt as string } : {}) };
      const problem = rcptDsnProblem(d);
      if (problem) throw bad(problem);
      return d;
    });
  }
  return out;
}

const bytesOf = (v: unknown): Uint8Array => {
  if (!(v instanceof Uint8Array)) throw new KakitomeError('MALFORMED', 'The store returned a non-binary value for a held message.');
  return v;
};

/** Seals `body` under `sealer` into the segments of `id` (nothing is kept in memory but one segment). */
async function writeSegments(tx: SqlExecutor, id: string, body: HeldBody, sealer: SegmentSealer): Promise<void> {
  for await (const s of segmentsOf(body)) {
    await tx.run('INSERT INTO held_message_segments (id, seq, sealed) VALUES (?, ?, ?) ON CONFLICT (id, seq) DO NOTHING', [id, s.seq, sealer.seal(s.seq, s.last, s.bytes)]);
  }
}

/**
 * Rows an older version kept in clear (migration 12 has no key to seal them with):
 * sealed into segments, their plaintext column emptied, one transaction each. Runs
 * when the store is opened with its master key; a row another node sealed
 * meanwhile is left to it.
 */
export async function sealUnsealedHeldMessages(store: Store): Promise<number> {
  let sealed = 0;
  for (const r of await store.engine.all('SELECT id FROM held_messages WHERE sealed_key IS NULL')) {
    const id = String(r.id);
    sealed += await store.engine.transaction(async (tx) => {
      const rows = await tx.all('SELECT message FROM held_messages WHERE id = ? AND sealed_key IS NULL', [id]);
      if (!rows[0]) return 0;
      const { sealer, masterKeyId } = store.segmentSealer(HELD_MESSAGE_PURPOSE, id);
      try {
        const n = await tx.run("UPDATE held_messages SET sealed_key = ?, master_key_id = ?, message = ? WHERE id = ? AND sealed_key IS NULL", [sealer.header, masterKeyId, Buffer.alloc(0), id]);
        if (!n) return 0;
        await tx.run('DELETE FROM held_message_segments WHERE id = ?', [id]);
        await writeSegments(tx, id, bodyOf(Buffer.from(bytesOf(rows[0].message))), sealer);
        await store.auditWithin(tx, 'message.seal', id, 'held message sealed at rest (kept in clear by an older version)');
        return 1;
      } finally {
        sealer.dispose();
      }
    });
  }
  return sealed;
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

  /** Holds a message, sealed (committed, with its audit record, before this resolves); returns its id. A large one is read twice (its id, then its segments), one segment in memory at a time. */
  async hold(input: HeldMessageInput): Promise<string> {
    const body = bodyOf(input.message);
    const id = await heldId(input, body);
    await this.#store.engine.transaction(async (tx) => {
      const known = (await tx.all('SELECT id FROM held_messages WHERE id = ? AND sealed_key IS NOT NULL', [id])).length > 0;
      const fresh = known ? undefined : this.#store.segmentSealer(HELD_MESSAGE_PURPOSE, id);
      try {
        await tx.run(
          // Held again (a retry): the requests of the latest transaction stand.
          `INSERT INTO held_messages (${COLUMNS}, message, sealed_key, master_key_id, dsn) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET generation = held_messages.generation + 1, held_at = excluded.held_at, queue_id = excluded.queue_id, dsn = excluded.dsn`,
          [id, this.#store.now().toISOString(), input.queueId ?? null, input.sender, JSON.stringify(input.recipients), input.reasonCode, input.reason, body.size, Buffer.alloc(0), fresh?.sealer.header ?? null, fresh?.masterKeyId ?? null, dsnColumn(input)],
        );
        // Held again: the segments stored under the row's own data key stay.
        if (fresh) await writeSegments(tx, id, body, fresh.sealer);
      } finally {
        fresh?.sealer.dispose();
      }
      await this.#store.auditWithin(tx, 'message.hold', id, `${input.reasonCode}: ${input.recipients.length} recipient(s), ${body.size} bytes${input.queueId ? `, queue id ${input.queueId}` : ''}`);
    });
    return id;
  }

  /** Envelope, reason and size of every held message: needs no master key. */
  async list(): Promise<HeldMessage[]> {
    return (await this.#store.engine.all(`SELECT ${COLUMNS} FROM held_messages ORDER BY held_at, id`)).map(toHeld);
  }

  /**
   * The held message with its DSN requests, and its bytes opened with the master
   * key: `message()` in memory, `body()` as a stream that opens one segment at a
   * time (for the relay). NOT_FOUND for an unknown id; KEY_INVALID when a segment or
   * the row was altered, moved or truncated, or the store has another master key.
   */
  async find(id: string): Promise<HeldMessage & HeldDsn & { message(): Promise<Buffer>; head(): Promise<Buffer>; body(): { size: number; stream(): Readable } }> {
    if (!ID.test(id)) throw new KakitomeError('INVALID_ARGUMENT', `"${id}" is not a held message id (32 hex digits, as the list of held messages shows them).`, { remedy: 'heldMessageId' });
    const rows = await this.#store.engine.all(`SELECT ${COLUMNS}, sealed_key, master_key_id, dsn FROM held_messages WHERE id = ?`, [id]);
    if (!rows[0]) throw new KakitomeError('NOT_FOUND', `No held message ${id} (released or bounced already?).`, { remedy: 'heldMessageId' });
    const row = rows[0];
    if (row.sealed_key === null || row.sealed_key === undefined) throw new KakitomeError('KEY_INVALID', `Held message ${id} is not sealed yet: open the store with its master key once (any command or service given the key does it).`, { remedy: 'masterKey' });
    const held = toHeld(row);
    const dsn = heldDsnOf(id, row.dsn, held.recipients.length);
    const stored = { header: bytesOf(row.sealed_key), masterKeyId: String(row.master_key_id) };
    // Checked now: a wrong master key or a row moved to another id fails here, before anything is sent.
    this.#store.segmentSealer(HELD_MESSAGE_PURPOSE, id, stored).sealer.dispose();
    const segments = () => this.#segments(id, stored, held.size);
    return {
      ...held,
      ...dsn,
      message: async () => {
        const parts: Buffer[] = [];
        for await (const p of segments()) parts.push(p);
        return Buffer.concat(parts);
      },
      // The first segment: the header section of any message the gateway accepts (its limits bound it far below).
      head: async () => {
        for await (const p of segments()) return p;
        return Buffer.alloc(0);
      },
      body: () => ({ size: held.size, stream: () => Readable.from(segments()) }),
    };
  }

  /** The opened segments of `id`, one query and one segment in memory at a time; the last must say it is, and the sizes add up. */
  async *#segments(id: string, stored: { header: Uint8Array; masterKeyId: string }, size: number): AsyncGenerator<Buffer> {
    const { sealer } = this.#store.segmentSealer(HELD_MESSAGE_PURPOSE, id, stored);
    try {
      const count = Number((await this.#store.engine.all('SELECT COUNT(*) AS n FROM held_message_segments WHERE id = ?', [id]))[0]?.n ?? 0);
      let total = 0;
      for (let seq = 0; seq < count; seq++) {
        const r = (await this.#store.engine.all('SELECT sealed FROM held_message_segments WHERE id = ? AND seq = ?', [id, seq]))[0];
        if (!r) throw new KakitomeError('KEY_INVALID', `Held message ${id} is missing a segment.`);
        const plain = sealer.open(seq, seq === count - 1, bytesOf(r.sealed));
        total += plain.length;
        yield plain;
      }
      if (count === 0 || total !== size) throw new KakitomeError('KEY_INVALID', `Held message ${id} does not add up to its size: it was altered.`);
    } finally {
      sealer.dispose();
    }
  }

  /**
   * Removes a held message once it was released or bounced (`action`, audited), if it
   * is still at `generation` (the one that was sent); false if it was gone already or
   * held again since.
   */
  async remove(id: string, generation: number, action: 'release' | 'bounce', detail: string): Promise<boolean> {
    return this.#store.engine.transaction(async (tx) => {
      const n = await tx.run('DELETE FROM held_messages WHERE id = ? AND generation = ?', [id, generation]);
      if (n) {
        await tx.run('DELETE FROM held_message_segments WHERE id = ?', [id]);
        await this.#store.auditWithin(tx, `message.${action}`, id, detail);
      }
      return n > 0;
    });
  }
}
