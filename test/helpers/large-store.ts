/**
 * A large store written straight into the tables (no certificates made or parsed),
 * for looking at the query plans and timing the lookups of a store that has grown:
 * `certificates` certificates filed under few addresses (20 each: the key history
 * of a partner, mostly current filings, some superseded, a pending key change in
 * one address of five), what tripped SQLite's planner three times; a tenth with a
 * private key, a quarter issued by one internal CA, one in a hundred revoked; an
 * audit row a certificate; batches with their chunks. The DER column holds one
 * byte: plans and lookups never parse it. `sample` names rows the lookups can ask for.
 */
import type { SqlEngine, SqlExecutor, SqlValue } from '../../src/store/sql-engine.ts';

export interface LargeStoreSample {
  /** An address with 20 certificates filed under it, and one with a pending key change. */
  address: string;
  pendingAddress: string;
  fingerprint: string;
  issuerHex: string;
  serialHex: string;
  skiHex: string;
  spki: string;
  keyId: string;
  caId: string;
  tenant: string;
  /** An object of audit rows (a key id). */
  auditObject: string;
}

/** A distinct lowercase hex value of `bytes` bytes for each (kind, i): the shape of the store's hex columns, without hashing. */
const KINDS: Record<string, string> = { fp: 'f', issuer: '1', root: '2', serial: '5', ski: '6', spki: '7', subject: '8' };
const h = (kind: string, i: number, bytes = 32) => `${KINDS[kind]}${(i < 0 ? 'f' : '0')}${Math.abs(i).toString(16).padStart(bytes * 2 - 2, '0')}`;
const DAY = 86_400_000;
/** Certificates filed under each address. */
const PER_ADDRESS = 20;

export function largeStoreAddress(i: number, addresses: number): string {
  const a = i % addresses;
  return `p${a}@partner${a % 13}.example`;
}

/** Inserts `rows` in multi-row statements (one a row made seeding 200,000 certificates take minutes). */
async function insertRows(tx: SqlExecutor, table: string, columns: string[], rows: SqlValue[][]): Promise<void> {
  const per = Math.floor(30_000 / columns.length);
  for (let at = 0; at < rows.length; at += per) {
    const chunk = rows.slice(at, at + per);
    const one = `(${columns.map(() => '?').join(', ')})`;
    await tx.run(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${chunk.map(() => one).join(', ')}`, chunk.flat());
  }
}

/** Seeds `certificates` certificates (at least 100) and the rest into an empty, migrated store; one transaction. */
export async function seedLargeStore(engine: SqlEngine, certificates: number, now = Date.now()): Promise<LargeStoreSample> {
  const addresses = Math.max(5, Math.floor(certificates / PER_ADDRESS));
  const iso = (t: number) => new Date(t).toISOString();
  const der = new Uint8Array([0x30]);
  const certColumns = ['id', 'fingerprint', 'der', 'subject', 'subject_hex', 'issuer_hex', 'serial_hex', 'ski_hex', 'spki_sha256', 'key_algorithm', 'not_before', 'not_after', 'is_ca', 'trust', 'source', 'revoked_at', 'revocation_reason', 'added_at'];
  const certs: SqlValue[][] = [['cert-ca', h('fp', -1), der, 'CN=Issuing CA', h('issuer', 0, 40), h('root', 0, 40), h('serial', -1, 16), h('ski', -1, 20), h('spki', -1), 'ecPublicKey', iso(now - 400 * DAY), iso(now + 4000 * DAY), 1, 'trusted', 'ca', null, null, iso(now - 400 * DAY)]];
  const filings: SqlValue[][] = [];
  const keys: SqlValue[][] = [];
  const issued: SqlValue[][] = [];
  const audit: SqlValue[][] = [];
  const batches: SqlValue[][] = [];
  const chunks: SqlValue[][] = [];
  const people: SqlValue[][] = [];
  for (let a = 0; a < addresses; a++) people.push([`person-${a}`, largeStoreAddress(a, addresses), `Person ${a}`, '', iso(now - 400 * DAY)]);
  for (let i = 0; i < certificates; i++) {
    const id = `cert-${i}`;
    const k = Math.floor(i / addresses); // the certificate's place in its address's history
    const trust = i % 20 === 0 ? 'trusted' : i % 4 === 1 ? 'imported' : 'harvested';
    const added = now - (certificates - i) * 60_000;
    const notBefore = now - ((PER_ADDRESS - k) * 30 + 10) * DAY;
    const notAfter = notBefore + (i % 3 === 0 ? 365 : 730) * DAY + (i % 97) * DAY;
    const revoked = i % 100 === 5; // issued by the CA (imported), as a CRL lists
    certs.push([id, h('fp', i), der, `CN=${i}`, h('subject', i, 40), h('issuer', i % 10, 40), h('serial', i, 16), h('ski', i, 20), h('spki', i), i % 2 ? 'ecPublicKey' : 'rsaEncryption',
      iso(notBefore), iso(notAfter), 0, trust, trust === 'harvested' ? 'harvest' : 'import', revoked ? iso(added + DAY) : null, revoked ? 1 : null, iso(added)]);
    const filing = k === PER_ADDRESS - 1 && (i % addresses) % 5 === 0 ? 'pending' : k < 3 ? 'superseded' : 'current';
    filings.push([id, largeStoreAddress(i, addresses), filing, Number(k === PER_ADDRESS - 2), iso(added)]);
    if (i % 10 === 0) keys.push([`key-${i}`, h('spki', i), 'ec', new Uint8Array([1]), 'mk', i % 30 === 0 ? 'retired' : 'active', iso(added)]);
    if (trust === 'imported') issued.push([id, 'ca-1', 'mailbox-strict-multipurpose', iso(added)]);
    const action = i % 10 === 0 ? 'key.use.decrypt' : i % 3 === 0 ? 'key.use.sign' : i % 3 === 1 ? 'sign.message' : 'certificate.harvest';
    audit.push([`audit-${i}`, iso(now - (certificates - i) * 60_000), i % 3 ? 'tenant:acme key:k1' : 'gateway', action, i % 3 === 2 ? h('fp', i) : `key-${i - (i % 10)}`, null]);
    if (i % 10 === 0) {
      const b = i / 10;
      const state = b % 50 === 0 ? 'queued' : 'done';
      batches.push([`batch-${b}`, `tenant-${b % 5}`, 'k1', `idem-${b}`, 'application/mbox', '{}', state, 4, state === 'done' ? 4 : 0, iso(added), state === 'done' ? iso(added + 60_000) : null, state === 'done' ? iso(added + 7 * DAY) : null]);
      for (let seq = 0; seq < 4; seq++) chunks.push([`batch-${b}`, seq, seq * 100, 100, 200_000, state === 'done' ? 'done' : 'queued']);
    }
  }
  await engine.transaction(async (tx) => {
    await insertRows(tx, 'certificates', certColumns, certs);
    await tx.run("INSERT INTO certificate_authorities (id, name, role, certificate_id, next_crl_number, created_at) VALUES ('ca-1', 'Issuing CA', 'issuing', 'cert-ca', 1, ?)", [iso(now - 400 * DAY)]);
    await insertRows(tx, 'people', ['id', 'email', 'display_name', 'roles', 'created_at'], people);
    await insertRows(tx, 'certificate_emails', ['certificate_id', 'email', 'filing', 'preferred', 'filed_at'], filings);
    await insertRows(tx, 'private_keys', ['id', 'spki_sha256', 'key_algorithm', 'sealed', 'master_key_id', 'status', 'created_at'], keys);
    await insertRows(tx, 'issued_certificates', ['certificate_id', 'ca_id', 'profile', 'issued_at'], issued);
    await insertRows(tx, 'audit_log', ['id', 'at', 'actor', 'action', 'object', 'detail'], audit);
    await insertRows(tx, 'batches', ['id', 'tenant', 'key_id', 'idempotency_key', 'media_type', 'options', 'state', 'chunks', 'chunks_done', 'created_at', 'finished_at', 'expires_at'], batches);
    await insertRows(tx, 'batch_chunks', ['batch_id', 'seq', 'first_index', 'messages', 'input_bytes', 'state'], chunks);
  });
  const i = addresses * 5 + 10; // a certificate with a private key, filed current
  return {
    address: largeStoreAddress(3, addresses), pendingAddress: largeStoreAddress(5, addresses), fingerprint: h('fp', i), issuerHex: h('issuer', i % 10, 40), serialHex: h('serial', i, 16),
    skiHex: h('ski', i, 20), spki: h('spki', i), keyId: `key-${i}`, caId: 'ca-1', tenant: 'tenant-3', auditObject: `key-${i}`,
  };
}
