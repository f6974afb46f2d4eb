/**
 * An encrypted backup of a whole store, SQLite or PostgreSQL, and its restore
 * into an empty one (issue 11: the console's backup, `kakitome backup
 * --passphrase`, `kakitome restore`).
 *
 * What is in it: every row of every table the migrations create (a logical dump,
 * so a SQLite store restores into PostgreSQL and back), read in one transaction
 * (on PostgreSQL REPEATABLE READ: one snapshot), except what must not outlive the
 * running store: console sessions and one-time links, the signing service's
 * transient batches, and the cache counter. Private keys and held messages stay
 * sealed under the master key, which is NOT in the backup: a restored store opens
 * only with the master key it was sealed with (its id is in the backup's
 * settings; Store.open refuses another).
 *
 * The archive: a first line `KAKITOME-BACKUP 1`, a second line of JSON naming the
 * key derivation (Argon2id, its parameters and a 16-byte salt) and the 12-byte
 * AES-256-GCM nonce, then the GCM ciphertext of the gzipped JSON dump and its
 * 16-byte tag. Both lines are the GCM additional data: changing a parameter, or
 * a byte anywhere, fails the tag. A wrong passphrase and a damaged file give the
 * same error. Reading is bounded: the file's size, the Argon2 parameters, the
 * decompressed size, the tables and columns (only the known tables, names checked
 * as identifiers).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { KakitomeError } from '../errors.ts';
import { deriveArgon2id, type Argon2Parameters } from '../keys/password-hash.ts';
import { migrateStore, SCHEMA_VERSION, tablesInCreationOrder } from './migrations.ts';
import type { SqlEngine, SqlExecutor, SqlValue } from './sql-engine.ts';

const MAGIC = 'KAKITOME-BACKUP 1\n';
/** The archive's key derivation: RFC 9106's second recommended setting, as the console's passwords. */
export const BACKUP_KDF: Argon2Parameters = { memoryKiB: 65536, passes: 3, parallelism: 4 };
export const MIN_BACKUP_PASSPHRASE = 12;
/** Largest archive read, and largest dump it may expand to. */
export const MAX_BACKUP_BYTES = 512 * 1024 * 1024;
const MAX_DUMP_BYTES = 512 * 1024 * 1024;
const MAX_HEADER = 1024;
/** Rows that must not outlive the running store, and the cache counter the migrations seed. */
const NOT_BACKED_UP = new Set(['console_sessions', 'console_tokens', 'batches', 'batch_chunks', 'batch_failures', 'batch_blobs', 'cache_revision', 'schema_migrations']);
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

type Cell = SqlValue | { b: string } | { n: string };
interface DumpTable { name: string; columns: string[]; rows: Cell[][] }
interface Dump { format: 1; schemaVersion: number; createdAt: string; tables: DumpTable[] }

export interface BackupSummary { schemaVersion: number; tables: number; rows: number; bytes: number }

function encodeCell(v: SqlValue): Cell {
  if (v instanceof Uint8Array) return { b: Buffer.from(v).toString('base64') };
  if (typeof v === 'bigint') return { n: v.toString() };
  return v;
}

function decodeCell(c: unknown): SqlValue {
  if (c === null || typeof c === 'string' || typeof c === 'number') return c;
  if (typeof c === 'object' && c && 'b' in c && typeof c.b === 'string') return Buffer.from(c.b, 'base64');
  if (typeof c === 'object' && c && 'n' in c && typeof c.n === 'string' && /^-?\d{1,20}$/.test(c.n)) return BigInt(c.n);
  throw new KakitomeError('MALFORMED', 'Malformed input: a backup cell is neither text, a number, bytes nor null.');
}

/** The tables this store has, of those the migrations create, in creation order. */
async function existingTables(tx: SqlExecutor, engine: SqlEngine): Promise<Set<string>> {
  const rows = engine.dialect === 'sqlite'
    ? await tx.all("SELECT name FROM sqlite_master WHERE type = 'table'")
    : await tx.all("SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'");
  return new Set(rows.map((r) => String(r.name)));
}

/** The whole store as rows, in one snapshot. */
async function dumpStore(engine: SqlEngine): Promise<Dump> {
  return engine.transaction(async (tx) => {
    if (engine.dialect === 'postgres') await tx.run('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    const present = await existingTables(tx, engine);
    const version = Number((await tx.all('SELECT MAX(version) AS v FROM schema_migrations'))[0]?.v ?? 0);
    const tables: DumpTable[] = [];
    for (const name of tablesInCreationOrder()) {
      if (NOT_BACKED_UP.has(name) || !present.has(name)) continue;
      const rows = await tx.all(`SELECT * FROM ${name}`);
      const columns = rows[0] ? Object.keys(rows[0]) : [];
      tables.push({ name, columns, rows: rows.map((r) => columns.map((c) => encodeCell(r[c] ?? null))) });
    }
    return { format: 1, schemaVersion: version, createdAt: new Date().toISOString(), tables };
  });
}

/** Encrypts the store's dump under `passphrase`: the archive's bytes. */
export async function createEncryptedBackup(engine: SqlEngine, passphrase: string, kdf: Argon2Parameters = BACKUP_KDF): Promise<{ archive: Buffer; summary: BackupSummary }> {
  if ([...passphrase.normalize('NFC')].length < MIN_BACKUP_PASSPHRASE) throw new KakitomeError('INVALID_ARGUMENT', `A backup's passphrase has at least ${MIN_BACKUP_PASSPHRASE} characters.`);
  const dump = await dumpStore(engine);
  const plain = gzipSync(Buffer.from(JSON.stringify(dump), 'utf8'));
  if (plain.length > MAX_BACKUP_BYTES) throw new KakitomeError('LIMIT', 'The store is too large for a backup archive: back it up with the database\'s own tools (docs/store.md).');
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const head = Buffer.from(`${MAGIC}${JSON.stringify({ kdf: 'argon2id', m: kdf.memoryKiB, t: kdf.passes, p: kdf.parallelism, salt: salt.toString('base64'), iv: iv.toString('base64') })}\n`, 'utf8');
  const key = await deriveArgon2id(passphrase, salt, kdf);
  try {
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(head);
    const archive = Buffer.concat([head, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    return { archive, summary: { schemaVersion: dump.schemaVersion, tables: dump.tables.length, rows: dump.tables.reduce((n, t) => n + t.rows.length, 0), bytes: archive.length } };
  } finally {
    key.fill(0);
    plain.fill(0);
  }
}

const unreadable = () => new KakitomeError('DECRYPT_FAILED', 'The backup could not be opened: the passphrase is wrong, or the file is damaged or was altered.');

function parseHeader(archive: Buffer): { head: Buffer; kdf: Argon2Parameters; salt: Buffer; iv: Buffer } {
  if (archive.length > MAX_BACKUP_BYTES) throw new KakitomeError('LIMIT', `A backup archive is at most ${MAX_BACKUP_BYTES} bytes.`);
  if (!archive.subarray(0, MAGIC.length).equals(Buffer.from(MAGIC))) throw new KakitomeError('MALFORMED', 'Malformed input: this is not a Kakitome backup archive (one made by Kakitome\'s encrypted backup, from the command line or the console).');
  const end = archive.indexOf(0x0a, MAGIC.length);
  if (end < 0 || end - MAGIC.length > MAX_HEADER) throw new KakitomeError('MALFORMED', 'Malformed input: the backup archive\'s header is damaged.');
  let h: Record<string, unknown>;
  try {
    h = JSON.parse(archive.subarray(MAGIC.length, end).toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new KakitomeError('MALFORMED', 'Malformed input: the backup archive\'s header is damaged.');
  }
  const int = (v: unknown, lo: number, hi: number) => typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
  const salt = typeof h.salt === 'string' ? Buffer.from(h.salt, 'base64') : Buffer.alloc(0);
  const iv = typeof h.iv === 'string' ? Buffer.from(h.iv, 'base64') : Buffer.alloc(0);
  // Bounded: a crafted header must not make us spend gigabytes or minutes before the tag is checked.
  if (h.kdf !== 'argon2id' || !int(h.m, 8192, 262144) || !int(h.t, 1, 10) || !int(h.p, 1, 16) || salt.length !== 16 || iv.length !== 12 || archive.length - end - 1 < 16) {
    throw new KakitomeError('MALFORMED', 'Malformed input: the backup archive\'s header is damaged or asks for more work than allowed.');
  }
  return { head: archive.subarray(0, end + 1), kdf: { memoryKiB: h.m as number, passes: h.t as number, parallelism: h.p as number }, salt, iv };
}

async function openArchive(archive: Buffer, passphrase: string): Promise<Dump> {
  const { head, kdf, salt, iv } = parseHeader(archive);
  const key = await deriveArgon2id(passphrase, salt, kdf);
  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAAD(head);
    decipher.setAuthTag(archive.subarray(archive.length - 16));
    plain = Buffer.concat([decipher.update(archive.subarray(head.length, archive.length - 16)), decipher.final()]);
  } catch {
    throw unreadable();
  } finally {
    key.fill(0);
  }
  let dump: Dump;
  try {
    dump = JSON.parse(gunzipSync(plain, { maxOutputLength: MAX_DUMP_BYTES }).toString('utf8')) as Dump;
  } catch {
    throw new KakitomeError('MALFORMED', 'Malformed input: the backup opened but its contents are damaged.');
  } finally {
    plain.fill(0);
  }
  if (dump?.format !== 1 || !Number.isInteger(dump.schemaVersion) || !Array.isArray(dump.tables)) throw new KakitomeError('MALFORMED', 'Malformed input: the backup opened but its contents are not a Kakitome store.');
  return dump;
}

/**
 * Rows at most of a table whose rows name a parent row (certificate_authorities): an
 * internal CA has a root, its issuing CAs and their renewals, a few dozen in a long
 * life. Restore's work on them is linear (parentsFirst), this bounds it all the same.
 */
export const MAX_LINKED_ROWS = 100_000;

/**
 * Rows of a table that refers to itself (a CA's parent_id): parents first, so that
 * each row's foreign key finds its parent already written. Linear: the rows by id,
 * each parent's children, then breadth first from the rows without a parent. It was
 * rounds that each scanned what was left with Array.includes, cubic in a chain's
 * length: an archive of 20,000 CAs in one chain, children first, held a restore for
 * some 13 minutes of CPU (4,000 took 6 s; an archive may come from elsewhere). A row given twice, a parent that is not
 * in the backup and rows that refer to each other in a circle are MALFORMED.
 */
function parentsFirst(t: DumpTable): Cell[][] {
  const id = t.columns.indexOf('id');
  const parent = t.columns.indexOf('parent_id');
  if (id < 0 || parent < 0) return t.rows;
  if (t.rows.length > MAX_LINKED_ROWS) throw new KakitomeError('LIMIT', `The backup has ${t.rows.length} rows of ${t.name}; a restore takes at most ${MAX_LINKED_ROWS}.`);
  // Ids are text; a cell of another shape compares by its JSON.
  const key = (c: Cell | undefined) => (typeof c === 'string' ? c : JSON.stringify(c ?? null));
  const ids = new Set<string>();
  for (const r of t.rows) {
    const k = key(r[id]);
    if (ids.has(k)) throw new KakitomeError('MALFORMED', `Malformed input: the backup's ${t.name} has the row ${JSON.stringify(k).slice(0, 80)} twice.`);
    ids.add(k);
  }
  const out: Cell[][] = [];
  const children = new Map<string, Cell[][]>();
  for (const r of t.rows) {
    if (r[parent] === null) {
      out.push(r);
      continue;
    }
    const p = key(r[parent]);
    if (!ids.has(p)) throw new KakitomeError('MALFORMED', `Malformed input: a row of the backup's ${t.name} names a parent that is not in the backup.`);
    const siblings = children.get(p);
    if (siblings) siblings.push(r);
    else children.set(p, [r]);
  }
  for (let i = 0; i < out.length; i++) for (const child of children.get(key(out[i]![id])) ?? []) out.push(child);
  // What no row without a parent leads to: rows whose parents form a circle.
  if (out.length < t.rows.length) throw new KakitomeError('MALFORMED', `Malformed input: ${t.rows.length - out.length} of the backup's ${t.name} refer to each other in a circle.`);
  return out;
}

/**
 * Restores an archive into an empty store (no table at all): the schema up to the
 * backup's version, every row in one transaction, then the later migrations. A
 * restore that fails leaves the store empty again (its schema dropped).
 */
export async function restoreEncryptedBackup(engine: SqlEngine, archive: Buffer, passphrase: string): Promise<BackupSummary & { masterKeyId?: string }> {
  const dump = await openArchive(archive, passphrase);
  if (dump.schemaVersion < 1 || dump.schemaVersion > SCHEMA_VERSION) throw new KakitomeError('INVALID_ARGUMENT', `This backup has schema version ${dump.schemaVersion}; this Kakitome knows up to ${SCHEMA_VERSION}: restore it with the version that made it or a newer one.`);
  const known = new Set(tablesInCreationOrder().filter((n) => !NOT_BACKED_UP.has(n)));
  const byName = new Map<string, DumpTable>();
  for (const t of dump.tables) {
    if (!t || typeof t.name !== 'string' || !known.has(t.name) || byName.has(t.name) || !Array.isArray(t.columns) || !Array.isArray(t.rows) || !t.columns.every((c) => typeof c === 'string' && IDENTIFIER.test(c)) || new Set(t.columns).size !== t.columns.length) {
      throw new KakitomeError('MALFORMED', 'Malformed input: the backup names a table or column this store does not have.');
    }
    byName.set(t.name, t);
  }
  if ((await existingTables(engine, engine)).size > 0) throw new KakitomeError('INVALID_ARGUMENT', 'A backup is restored only into an empty store: give a new KAKITOME_HOME (or an empty PostgreSQL database).');
  let rows = 0;
  try {
    rows = await restoreRows(engine, dump.schemaVersion, byName);
  } catch (e) {
    // The store was empty: what the restore made (its schema) goes, so that it is
    // empty again and the retry with another archive is not refused as "has data".
    await dropTables(engine).catch(() => undefined);
    throw e;
  }
  const master = byName.get('settings');
  const at = master ? master.columns.indexOf('name') : -1;
  const masterRow = master?.rows.find((r) => r[at] === 'master_key_id');
  const masterKeyId = masterRow ? String(masterRow[master!.columns.indexOf('value')]) : undefined;
  return { schemaVersion: dump.schemaVersion, tables: byName.size, rows, bytes: archive.length, ...(masterKeyId ? { masterKeyId } : {}) };
}

/** The schema up to the backup's version, every row in one transaction, then the later migrations; the rows written. */
async function restoreRows(engine: SqlEngine, schemaVersion: number, byName: Map<string, DumpTable>): Promise<number> {
  await migrateStore(engine, schemaVersion);
  let rows = 0;
  await engine.transaction(async (tx) => {
    for (const name of tablesInCreationOrder()) {
      const t = byName.get(name);
      if (!t || !t.rows.length) continue;
      const sql = `INSERT INTO ${name} (${t.columns.join(', ')}) VALUES (${t.columns.map(() => '?').join(', ')})`;
      if (!t.rows.every((r) => Array.isArray(r) && r.length === t.columns.length)) throw new KakitomeError('MALFORMED', `Malformed input: a row of ${name} in the backup has the wrong number of cells.`);
      for (const r of parentsFirst(t)) {
        await tx.run(sql, r.map(decodeCell));
        rows++;
      }
    }
  });
  await migrateStore(engine);
  return rows;
}

/** Every table (and, on PostgreSQL, trigger function) of a store that was empty before a failed restore, children first. */
async function dropTables(engine: SqlEngine): Promise<void> {
  const present = await existingTables(engine, engine);
  const order = [...tablesInCreationOrder().reverse().filter((n) => present.has(n)), ...[...present].filter((n) => !tablesInCreationOrder().includes(n))];
  await engine.transaction(async (tx) => {
    for (const name of order) await tx.run(`DROP TABLE IF EXISTS ${name}${engine.dialect === 'postgres' ? ' CASCADE' : ''}`);
    if (engine.dialect !== 'postgres') return;
    // The migrations' trigger functions (kakitome_raise_cache_revision...): a retry creates them again.
    const made = await tx.all("SELECT p.oid::regprocedure::text AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = current_schema() AND p.proname LIKE 'kakitome\\_%'");
    for (const r of made) await tx.run(`DROP FUNCTION IF EXISTS ${String(r.f)} CASCADE`);
  });
}

