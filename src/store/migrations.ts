/**
 * Schema migrations, identical on both engines (but for migration 9's triggers,
 * written in each engine's syntax). Each migration runs once, in a
 * transaction with its schema_migrations row, so a crash mid-migration leaves the
 * previous schema intact. On PostgreSQL an advisory lock serialises gateway nodes
 * that start at the same moment; on SQLite BEGIN IMMEDIATE does the same.
 *
 * Portable SQL: times are ISO-8601 UTC text (sorts as it compares), identifiers are
 * random UUID text, binary columns are BLOB (BYTEA on PostgreSQL), key lookups use
 * lowercase hex so both engines index them the same way.
 */
import type { Dialect, SqlEngine, SqlExecutor } from './sql-engine.ts';
import { optimizeSqlite } from './sqlite-engine.ts';
import { normalizeAddress } from '../x509/mailbox-address.ts';
import { Certificate } from '../x509/certificate.ts';
import { certificateMailboxes } from '../x509/certificate-mailboxes.ts';

/**
 * The tables whose changes raise cache_revision (migration 9), with the columns
 * whose update counts (all when absent): what the signing service caches between
 * requests (src/server/service-cache.ts). A certificate's harvested capabilities
 * and an address's filing or preference do not count: signing reads neither.
 */
const CACHED_TABLES: ReadonlyArray<{ table: string; columns?: string }> = [
  { table: 'tenants' },
  { table: 'tenant_domains' },
  { table: 'tenant_identities' },
  { table: 'api_keys' },
  { table: 'certificates', columns: 'der, spki_sha256, not_before, not_after, is_ca, trust, revoked_at' },
  { table: 'certificate_emails', columns: 'certificate_id, email' },
  { table: 'private_keys' },
  { table: 'dkim_keys' },
];

/** Migration 9 on each engine: the counter, and triggers that raise it in the transaction of every change. */
function cacheRevisionMigration(): { sqlite: string; postgres: string } {
  const table = 'CREATE TABLE cache_revision (id INTEGER PRIMARY KEY, revision BIGINT NOT NULL);\n INSERT INTO cache_revision (id, revision) VALUES (1, 0)';
  const raise = 'UPDATE cache_revision SET revision = revision + 1';
  // SQLite triggers are per row; each body stays on one line (statements split at ";" + newline).
  const sqlite = CACHED_TABLES.flatMap(({ table: t, columns }) => [
    `CREATE TRIGGER ${t}_cache_insert AFTER INSERT ON ${t} BEGIN ${raise}; END`,
    `CREATE TRIGGER ${t}_cache_update AFTER UPDATE${columns ? ` OF ${columns}` : ''} ON ${t} BEGIN ${raise}; END`,
    `CREATE TRIGGER ${t}_cache_delete AFTER DELETE ON ${t} BEGIN ${raise}; END`,
  ]);
  const postgres = [
    `CREATE FUNCTION kakitome_raise_cache_revision() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN ${raise}; RETURN NULL; END $$`,
    ...CACHED_TABLES.map(({ table: t, columns }) => `CREATE TRIGGER ${t}_cache AFTER INSERT OR UPDATE${columns ? ` OF ${columns}` : ''} OR DELETE ON ${t} FOR EACH STATEMENT EXECUTE FUNCTION kakitome_raise_cache_revision()`),
  ];
  return { sqlite: [table, ...sqlite].join(';\n'), postgres: [table, ...postgres].join(';\n') };
}

/**
 * A migration: SQL for both engines (or one text for both), and for the few that
 * rewrite values SQL cannot compute (an IDN domain's ASCII form), a step in
 * TypeScript run in the same transaction after the SQL.
 */
type Migration = string | { sqlite: string; postgres: string; data?: (tx: SqlExecutor) => Promise<void> };

const MIGRATIONS: ReadonlyArray<Migration> = [
  // 1: certificates, their addresses, private keys (sealed), audit log, settings.
  `CREATE TABLE certificates (
     id TEXT PRIMARY KEY,
     fingerprint TEXT NOT NULL UNIQUE,
     der BLOB NOT NULL,
     subject TEXT NOT NULL,
     subject_hex TEXT NOT NULL,
     issuer_hex TEXT NOT NULL,
     serial_hex TEXT NOT NULL,
     ski_hex TEXT,
     spki_sha256 TEXT NOT NULL,
     key_algorithm TEXT NOT NULL,
     not_before TEXT NOT NULL,
     not_after TEXT NOT NULL,
     is_ca INTEGER NOT NULL,
     trust TEXT NOT NULL,
     source TEXT NOT NULL,
     capabilities BLOB,
     capabilities_at TEXT,
     preferred INTEGER NOT NULL DEFAULT 0,
     revoked_at TEXT,
     revocation_reason INTEGER,
     added_at TEXT NOT NULL
   );
   CREATE INDEX certificates_issuer_serial ON certificates (issuer_hex, serial_hex);
   CREATE INDEX certificates_ski ON certificates (ski_hex);
   CREATE INDEX certificates_subject ON certificates (subject_hex);
   CREATE INDEX certificates_spki ON certificates (spki_sha256);
   CREATE INDEX certificates_not_after ON certificates (not_after);
   CREATE TABLE certificate_emails (
     certificate_id TEXT NOT NULL REFERENCES certificates (id) ON DELETE CASCADE,
     email TEXT NOT NULL,
     PRIMARY KEY (certificate_id, email)
   );
   CREATE INDEX certificate_emails_email ON certificate_emails (email);
   CREATE TABLE private_keys (
     id TEXT PRIMARY KEY,
     spki_sha256 TEXT NOT NULL UNIQUE,
     key_algorithm TEXT NOT NULL,
     sealed BLOB NOT NULL,
     master_key_id TEXT NOT NULL,
     status TEXT NOT NULL,
     label TEXT,
     created_at TEXT NOT NULL,
     retired_at TEXT
   );
   CREATE TABLE audit_log (
     id TEXT PRIMARY KEY,
     at TEXT NOT NULL,
     actor TEXT NOT NULL,
     action TEXT NOT NULL,
     object TEXT,
     detail TEXT
   );
   CREATE INDEX audit_log_at ON audit_log (at);
   CREATE TABLE settings (
     name TEXT PRIMARY KEY,
     value TEXT NOT NULL
   )`,
  // 2: the internal CA.
  `CREATE TABLE certificate_authorities (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL UNIQUE,
     role TEXT NOT NULL,
     certificate_id TEXT NOT NULL REFERENCES certificates (id),
     parent_id TEXT REFERENCES certificate_authorities (id),
     next_crl_number INTEGER NOT NULL,
     crl_url TEXT,
     ocsp_url TEXT,
     created_at TEXT NOT NULL
   );
   CREATE TABLE issued_certificates (
     certificate_id TEXT PRIMARY KEY REFERENCES certificates (id),
     ca_id TEXT NOT NULL REFERENCES certificate_authorities (id),
     profile TEXT NOT NULL,
     renewed_from TEXT,
     issued_at TEXT NOT NULL
   )`,
  // 3: the certificate directory files certificates per address (issue 9, item 1).
  // filing: 'current' (may be used to encrypt to the address), 'pending' (a new key
  // for an address already known, harvested and shown but not used until an
  // administrator accepts it), 'superseded' (replaced by an accepted key; history).
  // The sender's encryption key preference (RFC 8551 2.5.3) belongs to one address,
  // so it moves from the certificate to its filing.
  `ALTER TABLE certificate_emails ADD COLUMN filing TEXT NOT NULL DEFAULT 'current';
   ALTER TABLE certificate_emails ADD COLUMN preferred INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE certificate_emails ADD COLUMN filed_at TEXT;
   UPDATE certificate_emails SET
     preferred = (SELECT c.preferred FROM certificates c WHERE c.id = certificate_emails.certificate_id),
     filed_at = (SELECT c.added_at FROM certificates c WHERE c.id = certificate_emails.certificate_id);
   ALTER TABLE certificates DROP COLUMN preferred`,
  // 4: the signing service's tenants (issue 10). A domain and an identity address
  // belong to one tenant at most (primary keys); an API key is found by its public
  // id and checked against secret_hash (salt and HMAC-SHA-256, see
  // src/store/tenant-directory.ts); scopes are a comma-separated list;
  // rate_per_minute NULL means no limit (the default).
  `CREATE TABLE tenants (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL UNIQUE,
     created_at TEXT NOT NULL
   );
   CREATE TABLE tenant_domains (
     domain TEXT PRIMARY KEY,
     tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     added_at TEXT NOT NULL
   );
   CREATE INDEX tenant_domains_tenant ON tenant_domains (tenant_id);
   CREATE TABLE tenant_identities (
     email TEXT PRIMARY KEY,
     tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     added_at TEXT NOT NULL
   );
   CREATE INDEX tenant_identities_tenant ON tenant_identities (tenant_id);
   CREATE TABLE api_keys (
     id TEXT PRIMARY KEY,
     tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     secret_hash BLOB NOT NULL,
     scopes TEXT NOT NULL,
     rate_per_minute INTEGER,
     label TEXT,
     created_at TEXT NOT NULL,
     revoked_at TEXT
   );
   CREATE INDEX api_keys_tenant ON api_keys (tenant_id)`,
  // 5: DKIM signing keys per domain (src/store/dkim-key-directory.ts). The private
  // key is sealed under the master key like private_keys (record id "dkim:<id>" in
  // the sealing's additional data, so a blob never opens as an S/MIME key); a
  // selector is used once per domain, ever (a reused selector would make old
  // signatures verify against a new key); status pending (published, not signing
  // yet), active (signs: one per domain and key type), retired (never signs again).
  `CREATE TABLE dkim_keys (
     id TEXT PRIMARY KEY,
     domain TEXT NOT NULL,
     selector TEXT NOT NULL,
     key_type TEXT NOT NULL,
     key_bits INTEGER NOT NULL,
     public_key BLOB NOT NULL,
     sealed BLOB NOT NULL,
     master_key_id TEXT NOT NULL,
     status TEXT NOT NULL,
     source TEXT NOT NULL,
     created_at TEXT NOT NULL,
     activated_at TEXT,
     retired_at TEXT,
     UNIQUE (domain, selector)
   );
   CREATE INDEX dkim_keys_domain ON dkim_keys (domain, status)`,
  // 6: the gateway's policy levels (issue 13): one row per setting set at a level
  // (level 'global' with name '', 'domain' with the domain, 'address' with the
  // address), the value as JSON, so a new setting needs no migration
  // (src/store/policy-directory.ts; the settings themselves: src/policy). Every edit
  // also writes settings.policy_revision in its transaction: gateway nodes poll that
  // one row to see a change. held_messages: outbound mail that policy requires
  // encrypted and that had no usable certificate, held for an administrator
  // (missingCertificate: hold); id is a digest of envelope and message, so a message
  // held again on a retry is one row.
  `CREATE TABLE policy_settings (
     level TEXT NOT NULL,
     name TEXT NOT NULL,
     setting TEXT NOT NULL,
     value TEXT NOT NULL,
     updated_at TEXT NOT NULL,
     PRIMARY KEY (level, name, setting)
   );
   CREATE TABLE held_messages (
     id TEXT PRIMARY KEY,
     held_at TEXT NOT NULL,
     queue_id TEXT,
     sender TEXT NOT NULL,
     recipients TEXT NOT NULL,
     reason_code TEXT NOT NULL,
     reason TEXT NOT NULL,
     size INTEGER NOT NULL,
     message BLOB NOT NULL
   );
   CREATE INDEX held_messages_held_at ON held_messages (held_at)`,
  // 7: a held message's generation, raised each time it is held again (a release
  // that comes back through the gateway, still without a certificate, is held anew
  // under the same id): a release removes the entry only if it is the generation it
  // sent, so a message held again is never removed by the release that sent it.
  `ALTER TABLE held_messages ADD COLUMN generation INTEGER NOT NULL DEFAULT 0`,
  // 8: the web console (issue 11): people who sign in (email is the normalised
  // mailbox; roles a comma-separated list, empty for a plain user; password_hash a
  // PHC Argon2id string, NULL until the person sets one), their sessions and
  // single-use links (setup, invitation), stored by the SHA-256 of the secret so a
  // copy of the database opens no session; and the organisation's mail domains
  // (whose mailboxes may get a certificate from the console).
  `CREATE TABLE people (
     id TEXT PRIMARY KEY,
     email TEXT NOT NULL UNIQUE,
     display_name TEXT NOT NULL,
     roles TEXT NOT NULL,
     password_hash TEXT,
     language TEXT,
     created_at TEXT NOT NULL,
     disabled_at TEXT
   );
   CREATE TABLE console_sessions (
     id TEXT PRIMARY KEY,
     person_id TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
     created_at TEXT NOT NULL,
     last_seen_at TEXT NOT NULL,
     expires_at TEXT NOT NULL
   );
   CREATE INDEX console_sessions_person ON console_sessions (person_id);
   CREATE TABLE console_tokens (
     id TEXT PRIMARY KEY,
     purpose TEXT NOT NULL,
     person_id TEXT REFERENCES people (id) ON DELETE CASCADE,
     created_at TEXT NOT NULL,
     expires_at TEXT NOT NULL
   );
   CREATE TABLE organisation_domains (
     domain TEXT PRIMARY KEY,
     added_at TEXT NOT NULL
   )`,
  // 9: cache_revision, one row raised by triggers in the transaction of every
  // change to what the signing service keeps between requests (CACHED_TABLES): a
  // node reads that row at each request and drops what it kept when it moved, so a
  // change through any node, the CLI or SQL counts from the next request on.
  cacheRevisionMigration(),
  // 10: the signing service's batches and their job queue (issue 10,
  // src/store/batch-directory.ts, src/store/batch-queue.ts). A batch belongs to one
  // tenant (by name) and was uploaded with one API key; (tenant, idempotency_key)
  // is unique so a retried upload finds its batch. Its messages are cut into
  // chunks, the queue's jobs: a node claims a chunk (state running, a lease token
  // and lease_until, renewed while it works), and completes it only while it still
  // holds the lease, in one transaction with its counts, its failures and the name
  // of its output; a chunk whose lease ran out (a node died) is claimed again.
  // lease_until on a queued chunk is the time before which it is not retried.
  // batch_failures: one row per message reported and skipped. batch_blobs: chunk
  // input and output on PostgreSQL (every node reads them); on SQLite they are
  // files under <home>/batches instead (src/store/batch-blobs.ts).
  `CREATE TABLE batches (
     id TEXT PRIMARY KEY,
     tenant TEXT NOT NULL,
     key_id TEXT NOT NULL,
     idempotency_key TEXT,
     fingerprint TEXT,
     media_type TEXT NOT NULL,
     options TEXT NOT NULL,
     state TEXT NOT NULL,
     total INTEGER NOT NULL DEFAULT 0,
     chunks INTEGER NOT NULL DEFAULT 0,
     chunks_done INTEGER NOT NULL DEFAULT 0,
     signed INTEGER NOT NULL DEFAULT 0,
     failed INTEGER NOT NULL DEFAULT 0,
     received_bytes INTEGER NOT NULL DEFAULT 0,
     result_bytes INTEGER NOT NULL DEFAULT 0,
     created_at TEXT NOT NULL,
     lease_until TEXT,
     queued_at TEXT,
     finished_at TEXT,
     expires_at TEXT,
     UNIQUE (tenant, idempotency_key)
   );
   CREATE INDEX batches_state ON batches (state, expires_at);
   CREATE TABLE batch_chunks (
     batch_id TEXT NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
     seq INTEGER NOT NULL,
     first_index INTEGER NOT NULL,
     messages INTEGER NOT NULL,
     input_bytes INTEGER NOT NULL,
     state TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     lease_token TEXT,
     lease_until TEXT,
     node TEXT,
     signed INTEGER NOT NULL DEFAULT 0,
     failed INTEGER NOT NULL DEFAULT 0,
     output TEXT,
     output_bytes INTEGER NOT NULL DEFAULT 0,
     PRIMARY KEY (batch_id, seq)
   );
   CREATE INDEX batch_chunks_claim ON batch_chunks (state, seq);
   CREATE TABLE batch_failures (
     batch_id TEXT NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
     idx INTEGER NOT NULL,
     code TEXT NOT NULL,
     reason TEXT NOT NULL,
     PRIMARY KEY (batch_id, idx)
   );
   CREATE TABLE batch_blobs (
     batch_id TEXT NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
     name TEXT NOT NULL,
     bytes BLOB NOT NULL,
     PRIMARY KEY (batch_id, name)
   )`,
  // 11: byte counts as 64-bit integers on PostgreSQL, whose INTEGER is 32-bit (SQLite's
  // INTEGER already holds 64 bits). A batch of a million 2 KB messages signs into
  // about 6.4 GB: its result_bytes passed 2^31 at the 335,501st message, every later
  // chunk's completion failed with "integer out of range", and each chunk was
  // retried until it was given up. Uploads, chunk blobs and held messages over
  // 2 GiB hit the same limit.
  // And batch blobs stored uncompressed (STORAGE EXTERNAL): they are read in 48 KiB
  // pieces (substr), and PostgreSQL decompresses a compressed value from its start
  // up to the piece, so reading a 2.9 MB chunk output cost about 30 times its size
  // (150 ms for a late piece against 5 ms for the first, under load): a million-
  // message result would have taken hours to stream. Uncompressed, substr fetches
  // only the TOAST chunks of the piece. Signed output compresses to about half;
  // blobs live until the batch expires.
  {
    sqlite: '',
    postgres: `ALTER TABLE batches ALTER COLUMN received_bytes TYPE BIGINT, ALTER COLUMN result_bytes TYPE BIGINT;
   ALTER TABLE batch_chunks ALTER COLUMN input_bytes TYPE BIGINT, ALTER COLUMN output_bytes TYPE BIGINT;
   ALTER TABLE held_messages ALTER COLUMN size TYPE BIGINT;
   ALTER TABLE batch_blobs ALTER COLUMN bytes SET STORAGE EXTERNAL`,
  },
  // 12: held messages sealed at rest (src/store/held-messages.ts): the message is
  // kept in held_message_segments, each segment sealed under a data key of its own
  // message, whose wrapped form (under the master key, the held id in the additional
  // data) is sealed_key; message keeps an empty value. Rows an older version kept in
  // clear are sealed the first time the store is opened with its master key
  // (sealUnsealedHeldMessages), which a migration cannot do: it has no key.
  `ALTER TABLE held_messages ADD COLUMN sealed_key BLOB;
   ALTER TABLE held_messages ADD COLUMN master_key_id TEXT;
   CREATE TABLE held_message_segments (
     id TEXT NOT NULL,
     seq INTEGER NOT NULL,
     sealed BLOB NOT NULL,
     PRIMARY KEY (id, seq)
   )`,
  // 13: the console's passkeys (issue 11, src/store/console-passkeys.ts): a
  // person's WebAuthn credentials, the second factor after the password. id is
  // the credential id (base64url, unique across people); public_key the COSE key
  // the authenticator gave at registration; sign_count its signature counter
  // (a counter that goes backwards betrays a cloned authenticator).
  `CREATE TABLE console_passkeys (
     id TEXT PRIMARY KEY,
     person_id TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
     public_key BLOB NOT NULL,
     sign_count INTEGER NOT NULL,
     transports TEXT NOT NULL,
     name TEXT NOT NULL,
     created_at TEXT NOT NULL,
     last_used_at TEXT
   );
   CREATE INDEX console_passkeys_person ON console_passkeys (person_id)`,
  // 14: expiry notices sent by mail (src/store/expiry-notices.ts): one row per
  // certificate and threshold (30, 14, 7 days), inserted by the node that claims it
  // (the primary key: two nodes never both send), sent_at once the relay took it; a
  // claim left unsent (a node died) is taken again after a while.
  `CREATE TABLE expiry_notices (
     certificate_id TEXT NOT NULL,
     threshold INTEGER NOT NULL,
     claimed_at TEXT NOT NULL,
     sent_at TEXT,
     PRIMARY KEY (certificate_id, threshold)
   )`,
  // 15: the console's lists on a large store (issue 11): the inventory searched by
  // serial number (list-certificate-page.ts; certificates_issuer_serial leads with
  // the issuer) and by a person's name (the start of people.display_name, lower-cased
  // by the database as the query lower-cases it), the harvested certificates paged
  // newest first (list-harvested-certificates.ts), and the key changes waiting for a
  // decision counted and listed without reading every address row.
  `CREATE INDEX certificates_serial ON certificates (serial_hex);
   CREATE INDEX certificates_trust_added ON certificates (trust, added_at, id);
   CREATE INDEX certificate_emails_filing ON certificate_emails (filing, filed_at);
   CREATE INDEX people_name ON people (lower(display_name))`,
  // 16: key recovery with two-person approval (src/store/key-recoveries.ts): who
  // asked for whose keys, why, for whom, who approved, and when they were handed
  // over (once). No key material: the keys stay sealed in keys.
  `CREATE TABLE key_recoveries (
     id TEXT PRIMARY KEY,
     person_id TEXT NOT NULL,
     email TEXT NOT NULL,
     requested_by TEXT NOT NULL,
     requested_by_email TEXT NOT NULL,
     recipient TEXT NOT NULL,
     reason TEXT NOT NULL,
     requested_at TEXT NOT NULL,
     expires_at TEXT NOT NULL,
     approved_by TEXT,
     approved_by_email TEXT,
     approved_at TEXT,
     refused_at TEXT,
     handed_at TEXT
   );
   CREATE INDEX key_recoveries_requested ON key_recoveries (requested_at)`,
  // 17: a tenant's signing settings (src/store/tenant-directory.ts, TenantSignSettings:
  // opaque, hash, pss, dkim as JSON; NULL: every default), which POST /api/v1/sign
  // and batches use when the request does not say and the SMTP submission port
  // always. The tenants table raises cache_revision on any change (migration 9).
  `ALTER TABLE tenants ADD COLUMN sign_settings TEXT`,
  // 18: the certificates the CA issued to itself (the OCSP responder's delegate,
  // the console's profile signer: findDelegateCertificate) found by CA and profile,
  // not by reading every current certificate (the dashboard's CA health on a store
  // of 20,000 certificates, bench/console.ts).
  `CREATE INDEX issued_certificates_profile ON issued_certificates (ca_id, profile)`,
  // 19: CA roots waiting for a trust decision (src/store/record-unknown-root.ts): a
  // self-signed CA certificate that signed mail carried and the store did not trust,
  // with what an administrator needs to decide (names as text, bounded), and the
  // certificates waiting for it (unknown_root_leaves: the signer's certificates to
  // harvest once the root is trusted, with the intermediates that link them, as
  // base64 DER in a JSON array). Never anchors, never used to encrypt: only
  // decideUnknownRoot's "trust" makes the root an anchor.
  `CREATE TABLE unknown_roots (
     fingerprint TEXT PRIMARY KEY,
     der BLOB NOT NULL,
     subject TEXT NOT NULL,
     issuer TEXT NOT NULL,
     not_before TEXT NOT NULL,
     not_after TEXT NOT NULL,
     key_algorithm TEXT NOT NULL,
     first_seen TEXT NOT NULL,
     last_seen TEXT NOT NULL,
     times_seen INTEGER NOT NULL,
     examples TEXT NOT NULL,
     decision TEXT NOT NULL,
     decided_at TEXT,
     decided_by TEXT
   );
   CREATE INDEX unknown_roots_decision ON unknown_roots (decision, last_seen);
   CREATE TABLE unknown_root_leaves (
     root_fingerprint TEXT NOT NULL,
     fingerprint TEXT NOT NULL,
     address TEXT NOT NULL,
     der BLOB NOT NULL,
     chain TEXT NOT NULL,
     preferred INTEGER NOT NULL,
     capabilities BLOB,
     seen_at TEXT NOT NULL,
     outcome TEXT,
     reason TEXT,
     PRIMARY KEY (root_fingerprint, fingerprint, address)
   )`,
  // 20: single sign-on pinned to the provider's account (src/store/oidc-subjects.ts):
  // the OpenID provider's `sub` a person first signed in with, per issuer. A later
  // sign-in with the same verified address and another `sub` is refused, and one
  // `sub` signs in one person only. A session (and the passkey step before it)
  // made by single sign-on names its issuer, so signing out also signs out at
  // that provider (RP-initiated logout).
  `CREATE TABLE console_oidc_subjects (
     issuer TEXT NOT NULL,
     person_id TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
     subject TEXT NOT NULL,
     linked_at TEXT NOT NULL,
     PRIMARY KEY (issuer, person_id),
     UNIQUE (issuer, subject)
   );
   ALTER TABLE console_sessions ADD COLUMN oidc_issuer TEXT;
   ALTER TABLE console_tokens ADD COLUMN oidc_issuer TEXT`,
  // 21: a held message's DSN requests (RFC 3461, src/store/held-messages.ts): RET and
  // ENVID, and each recipient's NOTIFY and ORCPT in the order of recipients, as JSON
  // (NULL: none were given), relayed with the message when it is released. Rows held
  // before have NULL and are released without them, as they were.
  `ALTER TABLE held_messages ADD COLUMN dsn TEXT`,
  // 22: indexes shaped like the hot queries' WHERE and ORDER BY, so a plan cannot
  // go wrong as tables grow (test/store/query-plans.test.ts checks each on a store
  // of 20,000 certificates, with statistics and without). Three times SQLite took
  // certificate_emails_filing for a lookup by address (WHERE email = ? AND filing =
  // ...) and read every current filing in the store: 14 µs became 2.8 ms at 20,000
  // certificates (a31107f, a7c00f0). An address's filings are now one index, address
  // then filing then certificate (covering the id the lookups join on): with the
  // filing in the WHERE clause or not, no single-column index is a better match.
  // The filing index (the key changes waiting, by filing date) gains the address and
  // certificate, so its page needs no sort and no table rows. certificates_serial
  // gains the issuer and replaces certificates_issuer_serial (the CMS identifier,
  // the OCSP and CRL lookups give both; the serial alone is near unique). A CRL
  // reads the revoked certificates from a partial index holding all it needs (a
  // few rows, not every certificate the CA issued: 11-16 ms at 5,000 issued,
  // 0.2-0.4 ms now). The audit log by object (`audit --object`) read the whole log
  // newest first (5-8 ms at 20,000 rows): now an index; audit_log_at carries the
  // action, so the dashboard's counts read no table rows.
  // A tenant's batches page without sorting them all. The job queue's poll (each
  // idle node's, every second by default) starts from the live batches (queued, running)
  // in a partial index: statistics on `state` average a handful of live batches
  // with thousands done and say half, so SQLite with stale statistics read every
  // batch. Their chunks not yet done come from batch_chunks_claim, now a partial
  // index of exactly those (PostgreSQL read every chunk of every batch); it was
  // (state, seq), which no claim used and SQLite took, without statistics, for a
  // batch's done chunks (every done chunk of every batch: 2 ms at 8,000 chunks).
  // Plain CREATE INDEX, in the migration's transaction: writes to a table wait for
  // its indexes' build (on SQLite the migration and its statistics took 1-2 s at
  // 20,000 certificates and 5-13 s at 200,000, on a loaded 2-core machine).
  `DROP INDEX certificate_emails_email;
   CREATE INDEX certificate_emails_email ON certificate_emails (email, filing, certificate_id);
   DROP INDEX certificate_emails_filing;
   CREATE INDEX certificate_emails_filing ON certificate_emails (filing, filed_at, email, certificate_id);
   DROP INDEX certificates_issuer_serial;
   DROP INDEX certificates_serial;
   CREATE INDEX certificates_serial ON certificates (serial_hex, issuer_hex);
   CREATE INDEX certificates_revoked ON certificates (revoked_at, serial_hex, revocation_reason, id) WHERE revoked_at IS NOT NULL;
   CREATE INDEX audit_log_object ON audit_log (object, at);
   DROP INDEX audit_log_at;
   CREATE INDEX audit_log_at ON audit_log (at, action);
   CREATE INDEX batches_tenant_created ON batches (tenant, created_at, id);
   CREATE INDEX batches_live ON batches (state, created_at) WHERE state IN ('queued', 'running');
   DROP INDEX batch_chunks_claim;
   CREATE INDEX batch_chunks_claim ON batch_chunks (batch_id, seq) WHERE state <> 'done'`,
  // 23: a batch message's remedy (KakitomeError.remedy: what would let it be signed,
  // e.g. tenantIdentity), shown with its code and reason (GET /api/v1/batches/{id});
  // NULL: the error names none. Rows of earlier batches have NULL.
  `ALTER TABLE batch_failures ADD COLUMN remedy TEXT`,
  // 24: a tenant's batches not done, counted on every upload against its limit
  // (BatchDirectory.countUnfinished, receive-batch.ts): a partial index of exactly
  // those, as batches_live, not every batch the tenant keeps (batches_tenant_created
  // and then each row's state: the tenant's done batches, kept a week, can outnumber
  // its live ones a thousandfold). It carries the state, so SQLite counts from the
  // index alone (without it, SQLite reads each row to test state <> 'done').
  `CREATE INDEX batches_unfinished ON batches (tenant, state) WHERE state <> 'done'`,
  // 25: the audit log with one index, on its time. Every message the signing
  // service signs commits a row before its answer (record-key-use.ts), and a
  // commit's cost is the pages it writes (SQLite: a WAL frame and its checksum
  // each, 4 KiB written twice over with the checkpoint): with four rows a commit
  // (serve under load) the table and its three B-trees wrote 8.7 pages, the id's
  // index 2.8 of them and the object's 2.5, and a leaf more for every other
  // certificate among the rows (13.9 pages at 100). Now 3.2, whatever the
  // certificates. No query reads a row by its id (the pages order by time, then
  // id, on audit_log_at), and ids are time-ordered UUIDs with 74 random bits,
  // made here, never taken from a request: the uniqueness the index enforced
  // guarded against nothing. The object's index served only Store.auditLog's
  // object filter, which no front end calls (tests do; migration 22 named an
  // `audit --object` command that does not exist): it now reads the log newest
  // first until it has its rows. Measured and set aside
  // (docs/performance.md, session 14): a WITHOUT ROWID table keyed by the id or by
  // (at, id), whose appends split pages as an index does (11-16 pages a commit:
  // only a rowid table appends on a page of its own), and a key (at, id, action)
  // in place of audit_log_at (8.1 pages). SQLite cannot drop a primary key, so the
  // table is copied (in time order, so its rows lie in the order the pages read
  // them: 7 s for 500,000 rows on a loaded 2-core machine, docs/store.md);
  // PostgreSQL drops the two indexes, the heap keeping its rows.
  {
    sqlite: `DROP INDEX audit_log_object;
     DROP INDEX audit_log_at;
     ALTER TABLE audit_log RENAME TO audit_log_before_25;
     CREATE TABLE audit_log (
       id TEXT NOT NULL,
       at TEXT NOT NULL,
       actor TEXT NOT NULL,
       action TEXT NOT NULL,
       object TEXT,
       detail TEXT
     );
     INSERT INTO audit_log (id, at, actor, action, object, detail) SELECT id, at, actor, action, object, detail FROM audit_log_before_25 ORDER BY at, id;
     DROP TABLE audit_log_before_25;
     CREATE INDEX audit_log_at ON audit_log (at, action)`,
    postgres: `DROP INDEX audit_log_object;
     ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey;
     ALTER TABLE audit_log ALTER COLUMN id SET NOT NULL`,
  },
  // 26: an address has one form in the store (store.ts normalizeAddress): its domain
  // in ASCII (xn--), without a final dot. Before, only case was folded, so a
  // certificate harvested from `From: bob@例え.jp` was filed under the Unicode
  // spelling, where lookups (now in the ASCII form) would no longer find it: the
  // gateway would send that recipient a copy in clear. Re-filed here; no schema change.
  { sqlite: '', postgres: '', data: refileAddressesByAsciiDomain },
  // 27: a certificate names the mailboxes x509/certificate-mailboxes.ts reads (RFC
  // 8550 3), the list identity matching accepts. Before, an imported certificate was
  // filed by OpenSSL's subject text (the first emailAddress only) and no
  // SmtpUTF8Mailbox: one whose address is an SmtpUTF8Mailbox, or a second subject
  // emailAddress, was never filed there, and mail to it found no certificate. Filed
  // now, as importing files; no schema change, no filing removed.
  { sqlite: '', postgres: '', data: fileUnderCertificateMailboxes },
];

/**
 * Migration 27's step: every certificate added on purpose (not harvested: a harvested
 * one is filed under its verified From address only) is filed as current under each
 * address certificateMailboxes finds and it is not yet filed under in any filing.
 * Read 500 certificates at a time; one that no longer parses is left as it is.
 */
async function fileUnderCertificateMailboxes(tx: SqlExecutor): Promise<void> {
  const at = new Date().toISOString();
  for (let after = ''; ;) {
    const rows = await tx.all("SELECT id, der FROM certificates WHERE trust <> 'harvested' AND id > ? ORDER BY id LIMIT 500", [after]);
    if (rows.length === 0) return;
    after = String(rows[rows.length - 1]!.id);
    for (const row of rows) {
      const id = String(row.id);
      let addresses: string[];
      try {
        addresses = [...new Set(certificateMailboxes(Certificate.fromDer(row.der as Uint8Array)).map(normalizeAddress))];
      } catch {
        continue;
      }
      const filed = new Set((await tx.all('SELECT email FROM certificate_emails WHERE certificate_id = ?', [id])).map((r) => String(r.email)));
      for (const email of addresses) {
        if (!filed.has(email)) await tx.run("INSERT INTO certificate_emails (certificate_id, email, filing, preferred, filed_at) VALUES (?, ?, 'current', 0, ?)", [id, email, at]);
      }
    }
  }
}

/**
 * Migration 26's step: every address column a lookup matches by normalizeAddress,
 * rewritten in that form. A row whose new form another row of the same key already
 * has is the same filing twice: the existing one stays and the old spelling goes.
 * Only rows that change are touched (a non-ASCII character or a final dot in the
 * domain), so a store of ASCII addresses reads each row once and writes nothing.
 */
async function refileAddressesByAsciiDomain(tx: SqlExecutor): Promise<void> {
  const tables = [
    { table: 'certificate_emails', column: 'email', key: ['certificate_id'] },
    { table: 'unknown_root_leaves', column: 'address', key: ['root_fingerprint', 'fingerprint'] },
  ];
  for (const { table, column, key } of tables) {
    const rows = await tx.all(`SELECT ${[...key, column].join(', ')} FROM ${table}`);
    for (const row of rows) {
      const was = String(row[column]);
      const now = normalizeAddress(was);
      if (now === was) continue;
      const where = [...key, column].map((c) => `${c} = ?`).join(' AND ');
      const keyValues = key.map((c) => row[c]!);
      const taken = await tx.all(`SELECT 1 AS x FROM ${table} WHERE ${where}`, [...keyValues, now]);
      if (taken.length) await tx.run(`DELETE FROM ${table} WHERE ${where}`, [...keyValues, was]);
      else await tx.run(`UPDATE ${table} SET ${column} = ? WHERE ${where}`, [now, ...keyValues, was]);
    }
  }
}

function forDialect(migration: Migration, dialect: Dialect): string[] {
  const sql = typeof migration === 'string' ? migration : migration[dialect];
  const s = dialect === 'postgres' ? sql.replace(/\bBLOB\b/g, 'BYTEA') : sql;
  return s.split(/;\s*\n/).map((x) => x.trim()).filter(Boolean);
}

/** The schema version this code brings a store to. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Every table the migrations create, in the order they create them (a table
 * referenced by another comes first): what a backup dumps and restores
 * (store/encrypted-backup.ts).
 */
export function tablesInCreationOrder(): string[] {
  const names: string[] = [];
  for (const m of MIGRATIONS) {
    for (const [, name] of (typeof m === 'string' ? m : m.sqlite).matchAll(/CREATE TABLE (?:IF NOT EXISTS )?([a-z_][a-z0-9_]*)/g)) if (!names.includes(name!)) names.push(name!);
  }
  return names;
}

/**
 * Brings the schema up to date (or only up to `upTo`, for a restore that loads
 * an older backup before the later migrations run); returns the schema version.
 * Safe to run concurrently.
 */
export async function migrateStore(engine: SqlEngine, upTo = MIGRATIONS.length): Promise<number> {
  await engine.transaction(async (tx) => {
    // Two PostgreSQL sessions racing on CREATE TABLE IF NOT EXISTS can both try to
    // create it; the advisory lock makes the second wait and then see the table.
    if (engine.dialect === 'postgres') await tx.all('SELECT pg_advisory_xact_lock(7251907)');
    await tx.run('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
  });
  for (let v = 1; v <= Math.min(upTo, MIGRATIONS.length); v++) {
    await engine.transaction(async (tx) => {
      if (engine.dialect === 'postgres') await tx.all('SELECT pg_advisory_xact_lock(7251907)');
      const done = await tx.all('SELECT version FROM schema_migrations WHERE version = ?', [v]);
      if (done.length) return;
      const migration = MIGRATIONS[v - 1]!;
      for (const stmt of forDialect(migration, engine.dialect)) await tx.run(stmt);
      if (typeof migration !== 'string' && migration.data) await migration.data(tx);
      await tx.run('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)', [v, new Date().toISOString()]);
    });
  }
  // SQLite's planner statistics for new indexes and tables that grew since the last
  // refresh (sqlite-engine.ts); PostgreSQL's autovacuum keeps its own.
  if (engine.dialect === 'sqlite') await optimizeSqlite(engine, { allTables: true });
  return Math.min(upTo, MIGRATIONS.length);
}
