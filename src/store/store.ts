/**
 * The key and certificate store: one class over either engine (style guide,
 * "Store"; MimeKit's SqlCertificateDatabase shape). It holds
 *
 * - certificates with their addresses, trust level, harvested SMIMECapabilities
 *   and revocation state (the certificate directory);
 * - private keys sealed under the master key (src/keys/seal-private-key.ts), linked
 *   to certificates by the SHA-256 of their SubjectPublicKeyInfo, so one key can
 *   serve several certificates (a renewal that keeps the key) and every old key
 *   stays findable after renewal (key history);
 * - an audit log written in the same transaction as the change it records; a key
 *   use is recorded before the key is handed out, in commits shared by the key uses
 *   that arrive together (record-key-use.ts).
 *
 * Certificates and trust anchors are read without the master key: a store opened
 * without one (StoreOptions.masterKey omitted) verifies, validates, harvests and
 * lists, and refuses only what opens or seals a private key.
 *
 * Lookups take `now` (style guide: no hidden clock). Nothing here deletes a key
 * except purgePrivateKey, which is explicit and audited.
 */
import { createHash, createPublicKey, randomUUID, type KeyObject } from 'node:crypto';
import { userInfo } from 'node:os';
import { Certificate } from '../x509/certificate.ts';
import { normalizeAddress } from '../x509/mailbox-address.ts';
import { allowsKeyManagement } from '../x509/key-management-usage.ts';
import { decode, Tag, readBoolean } from '../asn1/ber.ts';
import { OID, oidName } from '../asn1/oids.ts';
import { KakitomeError } from '../errors.ts';
import type { CmsIdentifier } from '../cms/identifier.ts';
import type { MasterKey } from '../keys/master-key.ts';
import { sealPrivateKey, openSealedPrivateKey, rewrapSealedPrivateKey, createSegmentSealer, openSegmentSealer, type SegmentSealer } from '../keys/seal-private-key.ts';
import { HELD_MESSAGE_PURPOSE, sealUnsealedHeldMessages } from './held-messages.ts';
import { lendEngine, type Row, type SqlEngine, type SqlExecutor, type SqlValue } from './sql-engine.ts';
import { migrateStore } from './migrations.ts';
import { KeyUseRecorder, type AuditRow, type AuditWriter } from './record-key-use.ts';
import { formatAuditTime } from './format-audit-time.ts';
import { timeOrderedId } from './time-ordered-id.ts';
import { KeyLookupCoalescer, type KeyCandidates } from './coalesce-key-lookups.ts';
import { ReuseCache } from './reuse-cache.ts';
import type { KeyDirectory, SigningIdentity } from './key-directory.ts';

/**
 * The tables that hold sealed private keys, and the record id each row's sealing
 * authenticates: a master-key rotation re-wraps them all in one transaction.
 */
const SEALED_TABLES: ReadonlyArray<{ table: string; column: string; recordId: (id: string) => string; purpose?: string }> = [
  { table: 'private_keys', column: 'sealed', recordId: (id) => id },
  { table: 'dkim_keys', column: 'sealed', recordId: (id) => dkimRecordId(id) },
  // Held messages (held-messages.ts): the header of their segments; NULL until sealed.
  { table: 'held_messages', column: 'sealed_key', recordId: (id) => id, purpose: HELD_MESSAGE_PURPOSE },
];

/** The sealing record id of a DKIM key row (SEALED_TABLES). */
export function dkimRecordId(id: string): string {
  return `dkim:${id}`;
}

/** trusted: an administrator vouched for it; imported: added on purpose; harvested: taken from verified mail. */
export type TrustLevel = 'trusted' | 'imported' | 'harvested';
const TRUST_RANK: Record<TrustLevel, number> = { trusted: 0, imported: 1, harvested: 2 };

/**
 * How a certificate is filed under one address. current: may be used to encrypt to
 * it; pending: a new key for an address already known, recorded and shown but not
 * used until an administrator accepts it (acceptCertificate); superseded: replaced
 * by an accepted key, kept as history.
 */
export type Filing = 'current' | 'pending' | 'superseded';

export interface AddressFiling {
  email: string;
  filing: Filing;
  /** The sender named this certificate in an encryption key preference attribute (RFC 8551 2.5.3) for this address. */
  preferred: boolean;
  filedAt: Date;
}

export interface CertificateRecord {
  id: string;
  certificate: Certificate;
  /** The addresses it is filed under (any filing); see `filings`. */
  emails: string[];
  filings: AddressFiling[];
  trust: TrustLevel;
  source: string;
  isCa: boolean;
  /** SMIMECapabilities DER as last harvested. */
  capabilities?: Uint8Array;
  capabilitiesAt?: Date;
  /** Preferred under one of its addresses (see `filings`). */
  preferred: boolean;
  revokedAt?: Date;
  /** CRLReason (RFC 5280 5.3.1). */
  revocationReason?: number;
  addedAt: Date;
  hasPrivateKey: boolean;
}

export type KeyStatus = 'active' | 'retired';

export interface KeyRecord {
  id: string;
  algorithm: string;
  status: KeyStatus;
  label?: string;
  createdAt: Date;
  retiredAt?: Date;
  /** SHA-256 fingerprints of the certificates for this key. */
  certificates: string[];
}

export interface AuditEntry {
  id: string;
  at: Date;
  actor: string;
  action: string;
  object?: string;
  detail?: string;
}

export interface StoreOptions {
  /**
   * The master key that seals the private keys. Without it the store reads and
   * writes certificates (verify, validate, harvest, list) and refuses every
   * operation that opens or seals a private key (INVALID_ARGUMENT).
   */
  masterKey?: MasterKey;
  /**
   * Opened private keys (and parsed certificates of key lookups) kept for reuse,
   * reuse-cache.ts; default 256, 0 opens and parses every time. The process that
   * holds the master key can open every key at any moment, so keeping opened keys
   * (KeyObjects, in OpenSSL's memory) hands a reader of this process's memory
   * nothing the master key would not; they are dropped on close().
   */
  reuseCache?: number;
  /**
   * Where the rows of key uses and Store.audit go instead of this store's engine
   * (record-key-use.ts): a serving thread's store hands them to the one that
   * writes. Rows written inside a transaction (auditWithin) stay in it.
   */
  auditWriter?: AuditWriter;
  /**
   * The least time between two commits of audit rows, ms (default 0: at once),
   * after a commit that several rows shared: the store that commits every serving
   * thread's rows (server/workers) groups them (record-key-use.ts); each row is
   * still committed before its caller goes on.
   */
  auditGroupMs?: number;
  /** Who acts, for the audit log (default: the OS user). */
  actor?: string;
  clock?: () => Date;
}

export interface HarvestResult {
  record: CertificateRecord;
  /** The (verified From) address it is filed under. */
  address: string;
  /** True when the certificate was new to the store. */
  created: boolean;
  /** 'pending' when it brings a new key for an address already known: recorded, not used. */
  filing: Filing;
  /** For a pending filing: the current certificates (other keys) that stay in use for the address. */
  knownCertificates: string[];
}

const hex = (b: Uint8Array | undefined): string | null => (b ? Buffer.from(b).toString('hex') : null);

/** SHA-256 of the DER SubjectPublicKeyInfo, the link between keys and certificates. */
export function spkiDigest(key: KeyObject | Uint8Array): string {
  const der = key instanceof Uint8Array ? key : createPublicKey(key).export({ format: 'der', type: 'spki' });
  return createHash('sha256').update(der).digest('hex');
}

/** How the store files and looks up an address (x509/mailbox-address.ts; migration 26 re-filed older rows in this form). */
export { normalizeAddress };

function isCaCertificate(cert: Certificate): boolean {
  const bc = cert.extensions.get(OID.basicConstraints);
  if (!bc) return false;
  const first = decode(bc.value, { der: true }).children()[0];
  return first?.tag === Tag.BOOLEAN ? readBoolean(first) : false;
}

function bytesOf(v: SqlValue | undefined): Uint8Array {
  if (v instanceof Uint8Array) return v;
  throw new KakitomeError('MALFORMED', 'The store returned a non-binary value for a binary column.');
}

const str = (v: SqlValue | undefined): string | undefined => (v === null || v === undefined ? undefined : String(v));
const date = (v: SqlValue | undefined): Date | undefined => (v === null || v === undefined ? undefined : new Date(String(v)));

/** What a store and its actingAs views share: key uses recorded in shared commits, shared lookups, reused keys and certificates. */
interface SharedKeyUse {
  keyUses: KeyUseRecorder;
  keyLookups: KeyLookupCoalescer;
  openedKeys: ReuseCache<KeyObject>;
  lookupCertificates: ReuseCache<{ certificate: Certificate; keyManagement: boolean }>;
  /** findIssuerChain's signature checks, by "child/issuer" fingerprints (a certificate's bytes are its fingerprint's). */
  issuerLinks: Map<string, boolean>;
}

export class Store implements KeyDirectory {
  readonly engine: SqlEngine;
  readonly #masterKey: MasterKey | undefined;
  readonly #actor: string;
  readonly #clock: () => Date;
  readonly #shared: SharedKeyUse;
  /** An actingAs view: it shares the owner's engine and key-use machinery and closes neither. */
  readonly #lent: boolean;
  #closing: Promise<void> | undefined;

  private constructor(engine: SqlEngine, options: StoreOptions, lentFrom?: SharedKeyUse) {
    this.engine = engine;
    this.#masterKey = options.masterKey;
    this.#actor = options.actor ?? safeUserName();
    this.#clock = options.clock ?? (() => new Date());
    this.#lent = lentFrom !== undefined;
    this.#shared = lentFrom ?? {
      keyUses: new KeyUseRecorder(engine, options.auditWriter, options.auditGroupMs),
      keyLookups: new KeyLookupCoalescer(engine),
      openedKeys: new ReuseCache(options.reuseCache ?? 256),
      lookupCertificates: new ReuseCache(options.reuseCache ?? 256),
      issuerLinks: new Map(),
    };
  }

  get #keyUses(): KeyUseRecorder {
    return this.#shared.keyUses;
  }

  get #keyLookups(): KeyLookupCoalescer {
    return this.#shared.keyLookups;
  }

  get #openedKeys(): ReuseCache<KeyObject> {
    return this.#shared.openedKeys;
  }

  get #lookupCertificates(): ReuseCache<{ certificate: Certificate; keyManagement: boolean }> {
    return this.#shared.lookupCertificates;
  }

  get #issuerLinks(): Map<string, boolean> {
    return this.#shared.issuerLinks;
  }

  /** True when the store was opened with its master key (private keys can be used and added). */
  get hasMasterKey(): boolean {
    return this.#masterKey !== undefined;
  }

  /** The master key, for what opens or seals a private key; a store opened without it refuses. */
  get #master(): MasterKey {
    if (this.#masterKey) return this.#masterKey;
    throw new KakitomeError('INVALID_ARGUMENT', 'This key store was opened without its master key (enough to read certificates and trust anchors); using, adding or exporting a private key needs it: configure the master key (KAKITOME_MASTER_KEY_FILE, the home\'s master.key) and its passphrase.');
  }

  /**
   * Migrates the schema and checks the master key. A master key that is not the
   * one the store was created with fails with KEY_INVALID before anything is
   * written: a wrong key must never seal new keys beside old ones. The store owns
   * `engine` from here on (closed by close(), or at once if opening fails).
   */
  static async open(engine: SqlEngine, options: StoreOptions): Promise<Store> {
    try {
      return await Store.#open(engine, options);
    } catch (e) {
      // The store owns the engine: a failed open releases it (connections, file lock).
      await engine.close().catch(() => undefined);
      throw e;
    }
  }

  static async #open(engine: SqlEngine, options: StoreOptions): Promise<Store> {
    await migrateStore(engine);
    const store = new Store(engine, options);
    // Without a master key nothing is sealed or opened, so there is nothing to check (or to record).
    if (!options.masterKey) return store;
    const masterKey = options.masterKey;
    await engine.transaction(async (tx) => {
      const rows = await tx.all("SELECT value FROM settings WHERE name = 'master_key_id'");
      const known = str(rows[0]?.value);
      if (known === undefined) {
        await tx.run("INSERT INTO settings (name, value) VALUES ('master_key_id', ?)", [masterKey.id]);
      } else if (known !== masterKey.id) {
        throw new KakitomeError('KEY_INVALID', `Wrong master key: this store was sealed with master key ${known}, the key given is ${masterKey.id}. Nothing was changed.`);
      }
    });
    // Held messages kept in clear by an older version are sealed the first time the store is opened with its key.
    await sealUnsealedHeldMessages(store);
    return store;
  }

  /** Waits for the key-use records in flight, then closes the engine. A second call waits for the first. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#keyUses.settle();
      if (this.#lent) return;
      this.#openedKeys.clear();
      this.#lookupCertificates.clear();
      await this.engine.close();
    })();
    return this.#closing;
  }

  now(): Date {
    return this.#clock();
  }

  /** Who this store's audit rows name (the console's `console:ADDRESS`, the CLI's user). */
  get actor(): string {
    return this.#actor;
  }

  async #audit(tx: SqlExecutor, action: string, object?: string, detail?: string): Promise<void> {
    await tx.run('INSERT INTO audit_log (id, at, actor, action, object, detail) VALUES (?, ?, ?, ?, ?, ?)', [
      timeOrderedId(), formatAuditTime(this.#clock()), this.#actor, action, object ?? null, detail ?? null,
    ]);
  }

  /** Records a change another concept of the store makes, in the transaction that makes it. */
  async auditWithin(tx: SqlExecutor, action: string, object?: string, detail?: string): Promise<void> {
    await this.#audit(tx, action, object, detail);
  }

  /**
   * Records an operation done elsewhere (CA, CLI, the signing service) in the audit
   * log; resolves once the row is committed. Rows that arrive together share a
   * commit with each other and with key uses (record-key-use.ts).
   */
  async audit(action: string, object?: string, detail?: string): Promise<void> {
    await this.#keyUses.record({ at: this.#clock(), actor: this.#actor, action, ...(object === undefined ? {} : { object }), ...(detail === undefined ? {} : { detail }) });
  }

  /**
   * Commits audit rows made elsewhere (another thread's store, record-key-use.ts's
   * AuditWriter) in this store's shared commits; resolves once they are committed.
   */
  recordAuditRows(rows: readonly AuditRow[]): Promise<void> {
    return this.#keyUses.recordRows(rows);
  }

  /**
   * The same store acting for `actor` in the audit log (a service's caller: the
   * tenant and API key). It shares this store's connection; closing it leaves this
   * store open, so a job given it may close it as it closes its own.
   */
  actingAs(actor: string): Store {
    // The view shares the key-use machinery, so its callers' key uses share commits,
    // lookups and opened keys with every other caller of this store.
    return new Store(lendEngine(this.engine), { ...(this.#masterKey ? { masterKey: this.#masterKey } : {}), actor, clock: this.#clock }, this.#shared);
  }

  /**
   * Re-wraps every key's data key under `next` in one transaction (key material is
   * not touched) and records the new master key id. Returns a Store using `next`;
   * this instance must not be used afterwards. A crash midway leaves the old key valid.
   */
  async rotateMasterKey(next: MasterKey): Promise<Store> {
    if (next.id === this.#master.id) throw new KakitomeError('INVALID_ARGUMENT', 'The new master key is the current one.');
    await this.engine.transaction(async (tx) => {
      let count = 0;
      for (const { table, column, recordId, purpose } of SEALED_TABLES) {
        const rows = await tx.all(`SELECT id, ${column} AS sealed, master_key_id FROM ${table} WHERE ${column} IS NOT NULL`);
        for (const r of rows) {
          if (String(r.master_key_id) !== this.#master.id) throw new KakitomeError('KEY_INVALID', `${table === 'held_messages' ? 'Held message' : 'Private key'} ${String(r.id)} is not sealed with the current master key.`);
          await tx.run(`UPDATE ${table} SET ${column} = ?, master_key_id = ? WHERE id = ?`, [rewrapSealedPrivateKey(this.#master, next, recordId(String(r.id)), bytesOf(r.sealed), purpose), next.id, r.id!]);
        }
        count += rows.length;
      }
      await tx.run("UPDATE settings SET value = ? WHERE name = 'master_key_id'", [next.id]);
      await this.#audit(tx, 'store.rotate-master-key', next.id, `${count} keys re-wrapped from ${this.#master.id}`);
    });
    await this.#keyUses.settle();
    this.#openedKeys.clear();
    return new Store(this.engine, { masterKey: next, actor: this.#actor, clock: this.#clock });
  }

  // ------------------------------------------------------------- certificates

  /** Inserts a certificate; imported ones are filed (current) under every address they name, harvested ones by the caller. */
  async #insertCertificate(tx: SqlExecutor, cert: Certificate, trust: TrustLevel, source: string, capabilities?: Uint8Array): Promise<string> {
    const id = randomUUID();
    await tx.run(
      `INSERT INTO certificates (id, fingerprint, der, subject, subject_hex, issuer_hex, serial_hex, ski_hex, spki_sha256, key_algorithm,
         not_before, not_after, is_ca, trust, source, capabilities, capabilities_at, added_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        id, cert.fingerprint256, cert.der, cert.subjectText, hex(cert.subject), hex(cert.issuer), hex(cert.serial), hex(cert.subjectKeyIdentifier),
        spkiDigest(cert.spki), oidName(cert.publicKeyAlgorithm), cert.notBefore.toISOString(), cert.notAfter.toISOString(),
        isCaCertificate(cert) ? 1 : 0, trust, source, capabilities ?? null, capabilities ? this.#clock().toISOString() : null,
        this.#clock().toISOString(),
      ],
    );
    if (trust !== 'harvested') await this.#fileUnderEveryAddress(tx, id, cert);
    return id;
  }

  /** Files a certificate added on purpose as current under every address it names (one it was pending or superseded under included). */
  async #fileUnderEveryAddress(tx: SqlExecutor, id: string, cert: Certificate): Promise<void> {
    for (const e of new Set(cert.emailAddresses.map(normalizeAddress))) {
      const n = await tx.run("UPDATE certificate_emails SET filing = 'current' WHERE certificate_id = ? AND email = ?", [id, e]);
      if (!n) await tx.run("INSERT INTO certificate_emails (certificate_id, email, filing, preferred, filed_at) VALUES (?, ?, 'current', 0, ?)", [id, e, this.#clock().toISOString()]);
    }
  }

  /**
   * Adds a certificate. `trust` is the level the caller sets on purpose: a new
   * certificate gets it (default "imported"), and one already stored is raised to
   * it, audited (certificate.trust), never lowered. Without `trust` a stored
   * certificate keeps its level: no operation raises trust implicitly (importing a
   * key or a PKCS#12 chain certificate never does).
   *
   * A certificate whose public key cannot be read (an EC point off its curve, a
   * damaged RSA key) is refused, KEY_INVALID: filed under its addresses it would be
   * chosen to encrypt to and fail every time (as harvesting refuses weak keys).
   */
  async importCertificate(cert: Certificate, options: { trust?: TrustLevel; source?: string } = {}): Promise<CertificateRecord> {
    try {
      void cert.publicKey;
    } catch (e) {
      throw new KakitomeError('KEY_INVALID', `The certificate "${cert.subjectText}" has a public key (${oidName(cert.publicKeyAlgorithm)}) that cannot be read; it is not imported. Ask its holder for a certificate with a sound key.`, { cause: e, remedy: 'recipientCertificate' });
    }
    await this.engine.transaction(async (tx) => {
      const rows = await tx.all('SELECT id, trust FROM certificates WHERE fingerprint = ?', [cert.fingerprint256]);
      const row = rows[0];
      if (!row) {
        const trust = options.trust ?? 'imported';
        await this.#insertCertificate(tx, cert, trust, options.source ?? 'import');
        await this.#audit(tx, 'certificate.import', cert.fingerprint256, `${trust} ${cert.subjectText}`);
      } else if (options.trust !== undefined) {
        await this.#raiseTrust(tx, String(row.id), cert, String(row.trust) as TrustLevel, options.trust);
      }
    });
    return (await this.findCertificateByFingerprint(cert.fingerprint256))!;
  }

  /**
   * An explicit import of a stored certificate: raised to `trust` when that is
   * higher (audited), never lowered, and filed as current under every address it names.
   */
  async #raiseTrust(tx: SqlExecutor, id: string, cert: Certificate, from: TrustLevel, to: TrustLevel): Promise<void> {
    await this.#fileUnderEveryAddress(tx, id, cert);
    if (TRUST_RANK[to] >= TRUST_RANK[from]) return;
    await tx.run('UPDATE certificates SET trust = ? WHERE id = ?', [to, id]);
    await this.#audit(tx, 'certificate.trust', cert.fingerprint256, `${from} -> ${to}`);
  }

  /**
   * Keeps a certificate for encrypting to `address`, seen in a verified signed
   * message from it (RFC 8551 2.5.2, 2.5.3) or found in a directory. The caller
   * vouches that the certificate was validated for encryption (harvestSigner, the
   * LDAP lookup); the store enforces the rest:
   *
   * - it is filed under `address` only, and only if the certificate names it
   *   (IDENTITY_MISMATCH otherwise): a certificate that also names someone else is
   *   never filed under them;
   * - it is stored at trust "harvested", and lookups rank it below every imported
   *   or trusted certificate for the address;
   * - a new key for an address that already has a current certificate for key
   *   management (expired or revoked ones too) is filed as "pending": recorded, audited
   *   (certificate.key-change) and reported in `knownCertificates`, never used
   *   until an administrator accepts it (acceptCertificate);
   * - the capabilities are refreshed (the most recent list wins) and `preferred`
   *   marks it as the address's preferred encryption certificate, only while current.
   *
   * A stored certificate keeps its trust level: harvesting never raises or lowers it.
   */
  async harvestCertificate(cert: Certificate, options: { address: string; capabilities?: Uint8Array; preferred?: boolean; source?: string }): Promise<HarvestResult> {
    const address = normalizeAddress(options.address);
    if (!cert.emailAddresses.some((e) => normalizeAddress(e) === address)) {
      throw new KakitomeError('IDENTITY_MISMATCH', `The certificate "${cert.subjectText}" does not name ${address}; it is not filed under that address.`);
    }
    const now = this.#clock();
    let created = false;
    let filing: Filing = 'current';
    let known: string[] = [];
    await this.engine.transaction(async (tx) => {
      const rows = await tx.all('SELECT id FROM certificates WHERE fingerprint = ?', [cert.fingerprint256]);
      let id = str(rows[0]?.id);
      if (id === undefined) {
        id = await this.#insertCertificate(tx, cert, 'harvested', options.source ?? 'harvest', options.capabilities);
        created = true;
        await this.#audit(tx, 'certificate.harvest', cert.fingerprint256, `${address}: ${cert.subjectText}`);
      } else if (options.capabilities) {
        // RFC 8551 2.5.2: keep the most recent capabilities list seen for this certificate.
        await tx.run('UPDATE certificates SET capabilities = ?, capabilities_at = ? WHERE id = ?', [options.capabilities, now.toISOString(), id]);
      }
      known = await this.#currentOtherKeys(tx, address, spkiDigest(cert.spki));
      const filed = await tx.all('SELECT filing FROM certificate_emails WHERE certificate_id = ? AND email = ?', [id, address]);
      if (filed[0]) {
        filing = String(filed[0].filing) as Filing;
      } else {
        filing = known.length ? 'pending' : 'current';
        await tx.run('INSERT INTO certificate_emails (certificate_id, email, filing, preferred, filed_at) VALUES (?, ?, ?, 0, ?)', [id, address, filing, now.toISOString()]);
        if (filing === 'pending') await this.#audit(tx, 'certificate.key-change', cert.fingerprint256, `new key for ${address} pending; in use: ${known.join(', ')}`);
      }
      if (filing !== 'pending') known = [];
      if (options.preferred && filing === 'current') await this.#markPreferred(tx, id, address);
    });
    return { record: (await this.findCertificateByFingerprint(cert.fingerprint256))!, address, created, filing, knownCertificates: known };
  }

  /**
   * Fingerprints of the certificates filed as current for `address` that could
   * receive mail with a key other than `spki`: the keys a new one would replace.
   * Expired and revoked ones count too: a new key after an expiry is still a new
   * key, and only an administrator swaps it in.
   */
  async #currentOtherKeys(tx: SqlExecutor, address: string, spki: string): Promise<string[]> {
    // On certificate_emails_email (address, filing): migration 22; the filing index alone would read every current filing in the store.
    const rows = await tx.all(
      `SELECT c.fingerprint, c.der FROM certificates c JOIN certificate_emails m ON m.certificate_id = c.id
       WHERE m.email = ? AND m.filing = 'current' AND c.spki_sha256 <> ? AND c.is_ca = 0
       ORDER BY c.not_before, c.fingerprint`,
      [address, spki],
    );
    return rows.filter((r) => allowsKeyManagement(Certificate.fromDer(bytesOf(r.der)))).map((r) => String(r.fingerprint));
  }

  /**
   * An administrator's decision on a new key (`kakitome certs accept`): the
   * certificate becomes the current, preferred one for `address`, and every other
   * current certificate for the address with another key that could receive mail is
   * superseded (kept as history, no longer used to encrypt). Audited.
   * `address` may be omitted when the certificate is filed under one address only.
   */
  async acceptCertificate(fingerprint: string, address?: string): Promise<CertificateRecord> {
    const rec = await this.findCertificateByFingerprint(fingerprint);
    if (!rec) throw new KakitomeError('INVALID_ARGUMENT', `No certificate ${fingerprint} in the store.`);
    const email = address === undefined ? soleAddress(rec) : normalizeAddress(address);
    if (!rec.filings.some((f) => f.email === email)) {
      throw new KakitomeError('INVALID_ARGUMENT', `Certificate ${rec.certificate.fingerprint256} is not filed under ${email} (it is under: ${rec.emails.join(', ') || 'no address'}).`);
    }
    if (!allowsKeyManagement(rec.certificate) || rec.isCa) {
      throw new KakitomeError('CERT_USAGE', `Certificate ${rec.certificate.fingerprint256} cannot receive mail (its key usage does not allow key management); nothing was changed.`);
    }
    await this.engine.transaction(async (tx) => {
      // Every other key that could receive mail for the address, expired or not: none of them is used any more.
      const rows = await tx.all(
        `SELECT c.id, c.fingerprint, c.der FROM certificates c JOIN certificate_emails m ON m.certificate_id = c.id
         WHERE m.email = ? AND m.filing = 'current' AND c.spki_sha256 <> ?`,
        [email, spkiDigest(rec.certificate.spki)],
      );
      const superseded = rows.filter((r) => allowsKeyManagement(Certificate.fromDer(bytesOf(r.der))));
      for (const r of superseded) await tx.run("UPDATE certificate_emails SET filing = 'superseded', preferred = 0 WHERE certificate_id = ? AND email = ?", [r.id!, email]);
      await tx.run("UPDATE certificate_emails SET filing = 'current' WHERE certificate_id = ? AND email = ?", [rec.id, email]);
      await this.#markPreferred(tx, rec.id, email);
      await this.#audit(tx, 'certificate.accept', rec.certificate.fingerprint256, `${email}; superseded: ${superseded.map((r) => String(r.fingerprint)).join(', ') || 'none'}`);
    });
    return (await this.findCertificateById(rec.id))!;
  }

  /**
   * Every certificate ever filed under `address`, oldest filing first, whatever its
   * filing, validity or revocation: the address's key history (`kakitome certs history`).
   */
  async certificateHistory(address: string): Promise<Array<{ record: CertificateRecord; filing: AddressFiling }>> {
    const email = normalizeAddress(address);
    const recs = await this.listCertificates({ email });
    return recs
      .map((record) => ({ record, filing: record.filings.find((f) => f.email === email)! }))
      .sort((a, b) => a.filing.filedAt.getTime() - b.filing.filedAt.getTime() || a.record.certificate.notBefore.getTime() - b.record.certificate.notBefore.getTime());
  }

  /** One preferred encryption certificate per address (RFC 8551 2.5.3). */
  async #markPreferred(tx: SqlExecutor, id: string, address: string): Promise<void> {
    await tx.run('UPDATE certificate_emails SET preferred = CASE WHEN certificate_id = ? THEN 1 ELSE 0 END WHERE email = ?', [id, address]);
  }

  async #records(where: string, params: SqlValue[], tx: SqlExecutor = this.engine): Promise<CertificateRecord[]> {
    const rows = await tx.all(
      `SELECT c.*, (SELECT COUNT(*) FROM private_keys k WHERE k.spki_sha256 = c.spki_sha256) AS key_count
       FROM certificates c WHERE ${where} ORDER BY c.not_before DESC, c.not_after DESC, c.added_at DESC, c.fingerprint`,
      params,
    );
    // The addresses of every row in one query a chunk (not one a row: a page of 50 certificates was 51 queries).
    const filed = new Map<string, Row[]>();
    for (let i = 0; i < rows.length; i += FILINGS_CHUNK) {
      const ids = rows.slice(i, i + FILINGS_CHUNK).map((r) => r.id!);
      const found = await tx.all(`SELECT certificate_id, email, filing, preferred, filed_at FROM certificate_emails WHERE certificate_id IN (${ids.map(() => '?').join(', ')}) ORDER BY certificate_id, email`, ids);
      for (const f of found) {
        const id = String(f.certificate_id);
        const list = filed.get(id);
        if (list) list.push(f);
        else filed.set(id, [f]);
      }
    }
    return rows.map((r) => toCertificateRecord(r, (filed.get(String(r.id)) ?? []).map((f) => ({ email: String(f.email), filing: String(f.filing) as Filing, preferred: Number(f.preferred) === 1, filedAt: date(f.filed_at) ?? date(r.added_at)! }))));
  }

  /** The certificates with these ids, in the order of `ids` (one that is not there is left out): a page's rows read together. */
  async findCertificatesByIds(ids: readonly string[]): Promise<CertificateRecord[]> {
    if (ids.length === 0) return [];
    const byId = new Map<string, CertificateRecord>();
    for (let i = 0; i < ids.length; i += FILINGS_CHUNK) {
      const chunk = ids.slice(i, i + FILINGS_CHUNK);
      for (const r of await this.#records(`c.id IN (${chunk.map(() => '?').join(', ')})`, [...chunk])) byId.set(r.id, r);
    }
    return ids.flatMap((id) => byId.get(id) ?? []);
  }

  async findCertificateByFingerprint(fingerprint: string): Promise<CertificateRecord | undefined> {
    return (await this.#records('c.fingerprint = ?', [fingerprint.toLowerCase().replaceAll(':', '')]))[0];
  }

  async findCertificateById(id: string): Promise<CertificateRecord | undefined> {
    return (await this.#records('c.id = ?', [id]))[0];
  }

  /** Certificates named by a CMS identifier (issuerAndSerialNumber or subjectKeyIdentifier). */
  async findCertificatesByIdentifier(id: CmsIdentifier): Promise<CertificateRecord[]> {
    return id.kind === 'issuerAndSerialNumber'
      ? this.#records('c.issuer_hex = ? AND c.serial_hex = ?', [hex(id.issuer), hex(id.serial)])
      : this.#records('c.ski_hex = ?', [hex(id.keyId)]);
  }

  /** Certificates whose subject is `name` (DER): candidate issuers when building a chain. */
  async findCertificatesBySubject(name: Uint8Array): Promise<CertificateRecord[]> {
    return this.#records('c.subject_hex = ?', [hex(name)]);
  }

  async listCertificates(filter: { email?: string; trust?: TrustLevel } = {}): Promise<CertificateRecord[]> {
    const where: string[] = ['1 = 1'];
    const params: SqlValue[] = [];
    if (filter.email) {
      where.push('c.id IN (SELECT certificate_id FROM certificate_emails WHERE email = ?)');
      params.push(normalizeAddress(filter.email));
    }
    if (filter.trust) {
      where.push('c.trust = ?');
      params.push(filter.trust);
    }
    return this.#records(where.join(' AND '), params);
  }

  /** Certificates (with a private key, or CA certificates) whose notAfter falls within `days` of `now`. */
  async findExpiring(days: number, now: Date = this.#clock()): Promise<CertificateRecord[]> {
    if (!Number.isFinite(days) || days < 0) throw new KakitomeError('INVALID_ARGUMENT', 'The expiry window is a non-negative number of days.');
    const until = new Date(now.getTime() + days * 86_400_000).toISOString();
    const all = await this.#records('c.not_after > ? AND c.not_after <= ? AND c.revoked_at IS NULL', [now.toISOString(), until]);
    return all.filter((r) => r.hasPrivateKey || r.isCa);
  }

  /** Marks a certificate revoked (reason: RFC 5280 5.3.1 CRLReason). Never deletes it. */
  async revokeCertificate(fingerprint: string, reason: number, at: Date = this.#clock()): Promise<CertificateRecord> {
    if (!Number.isInteger(reason) || reason < 0 || reason > 10 || reason === 7) {
      throw new KakitomeError('INVALID_ARGUMENT', `CRLReason ${reason} is not one of RFC 5280 5.3.1.`);
    }
    const rec = await this.findCertificateByFingerprint(fingerprint);
    if (!rec) throw new KakitomeError('INVALID_ARGUMENT', `No certificate ${fingerprint} in the store.`);
    if (rec.revokedAt) return rec;
    await this.engine.transaction(async (tx) => {
      await tx.run('UPDATE certificates SET revoked_at = ?, revocation_reason = ? WHERE id = ? AND revoked_at IS NULL', [at.toISOString(), reason, rec.id]);
      await this.#audit(tx, 'certificate.revoke', rec.certificate.fingerprint256, `reason ${reason}`);
    });
    return (await this.findCertificateById(rec.id))!;
  }

  // ------------------------------------------------------------- private keys

  /**
   * Seals and stores a private key, optionally with its certificates. A key is
   * stored once (by its public key); importing it again only adds certificates.
   * Holding a key vouches for nothing: its certificates are stored as "imported"
   * unless `trust` is given (the internal CA gives "trusted" for what it creates),
   * and one already stored keeps its level unless `trust` raises it, as in
   * importCertificate. A .p12 whose key is a CA's thus plants no trust anchor.
   */
  async importPrivateKey(key: KeyObject, options: { certificates?: Certificate[]; label?: string; trust?: TrustLevel; source?: string } = {}): Promise<KeyRecord> {
    if (key.type !== 'private') throw new KakitomeError('KEY_INVALID', 'Not a private key.');
    const spki = spkiDigest(key);
    for (const c of options.certificates ?? []) {
      if (spkiDigest(c.spki) !== spki) throw new KakitomeError('KEY_INVALID', `The private key does not belong to certificate "${c.subjectText}".`);
    }
    const id = await this.engine.transaction(async (tx) => {
      const rows = await tx.all('SELECT id FROM private_keys WHERE spki_sha256 = ?', [spki]);
      let keyId = str(rows[0]?.id);
      if (!keyId) {
        keyId = randomUUID();
        await tx.run(
          'INSERT INTO private_keys (id, spki_sha256, key_algorithm, sealed, master_key_id, status, label, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
          [keyId, spki, key.asymmetricKeyType ?? 'unknown', sealPrivateKey(this.#master, keyId, key), this.#master.id, 'active', options.label ?? null, this.#clock().toISOString()],
        );
        await this.#audit(tx, 'key.import', keyId, options.source ?? 'import');
      }
      for (const c of options.certificates ?? []) {
        const have = await tx.all('SELECT id, trust FROM certificates WHERE fingerprint = ?', [c.fingerprint256]);
        if (!have.length) {
          await this.#insertCertificate(tx, c, options.trust ?? 'imported', options.source ?? 'import');
          await this.#audit(tx, 'certificate.import', c.fingerprint256, `with key ${keyId}`);
        } else if (options.trust !== undefined) {
          await this.#raiseTrust(tx, String(have[0]!.id), c, String(have[0]!.trust) as TrustLevel, options.trust);
        }
      }
      return keyId;
    });
    return (await this.findKey(id))!;
  }

  async findKey(id: string): Promise<KeyRecord | undefined> {
    return (await this.listKeys({ id }))[0];
  }

  /** The private key held for a certificate (its public key's), active or retired; undefined when the store holds none. */
  async findKeyForCertificate(cert: Certificate): Promise<KeyRecord | undefined> {
    const rows = await this.engine.all('SELECT id FROM private_keys WHERE spki_sha256 = ?', [spkiDigest(cert.spki)]);
    return rows[0] ? this.findKey(String(rows[0].id)) : undefined;
  }

  async listKeys(filter: { id?: string; status?: KeyStatus } = {}): Promise<KeyRecord[]> {
    const where: string[] = ['1 = 1'];
    const params: SqlValue[] = [];
    if (filter.id) {
      where.push('k.id = ?');
      params.push(filter.id);
    }
    if (filter.status) {
      where.push('k.status = ?');
      params.push(filter.status);
    }
    const rows = await this.engine.all(
      `SELECT k.id, k.key_algorithm, k.status, k.label, k.created_at, k.retired_at, k.spki_sha256 FROM private_keys k WHERE ${where.join(' AND ')} ORDER BY k.created_at, k.id`,
      params,
    );
    const out: KeyRecord[] = [];
    for (const r of rows) {
      const certs = await this.engine.all('SELECT fingerprint FROM certificates WHERE spki_sha256 = ? ORDER BY not_before', [r.spki_sha256!]);
      out.push({
        id: String(r.id), algorithm: String(r.key_algorithm), status: String(r.status) as KeyStatus, label: str(r.label),
        createdAt: date(r.created_at)!, retiredAt: date(r.retired_at), certificates: certs.map((c) => String(c.fingerprint)),
      });
    }
    return out;
  }

  /** Opens one sealed key (or reuses it, reuse-cache.ts). Internal: callers go through the typed finders or exportPrivateKey. */
  #unseal(row: Row, recordId: string = String(row.id)): KeyObject {
    const master = this.#master;
    if (str(row.master_key_id) !== master.id) {
      throw new KakitomeError('KEY_INVALID', `Private key ${String(row.id)} is sealed with master key ${String(row.master_key_id)}, not ${master.id}.`);
    }
    const sealed = bytesOf(row.sealed);
    return this.#openedKeys.get(recordId, sealed, master.id, () => openSealedPrivateKey(master, recordId, sealed));
  }

  /**
   * Seals a key for a concept that keeps its keys in a table of its own (DKIM keys,
   * dkim-key-directory.ts), under the master key as the store's own keys are. The
   * record id goes into the sealing's additional data: give the one
   * SEALED_TABLES names for that table, so a blob copied between tables never opens.
   */
  sealKey(recordId: string, key: KeyObject): { sealed: Buffer; masterKeyId: string } {
    return { sealed: sealPrivateKey(this.#master, recordId, key), masterKeyId: this.#master.id };
  }

  /**
   * Seals a record of `purpose` in segments under the master key (held messages:
   * held-messages.ts): a new data key, or (`stored`) the one of a stored header,
   * KEY_INVALID when it was sealed under another master key or for another record.
   */
  segmentSealer(purpose: string, recordId: string, stored?: { header: Uint8Array; masterKeyId: string }): { sealer: SegmentSealer; masterKeyId: string } {
    const master = this.#master;
    if (!stored) return { sealer: createSegmentSealer(master, purpose, recordId), masterKeyId: master.id };
    if (stored.masterKeyId !== master.id) throw new KakitomeError('KEY_INVALID', `Record ${recordId} is sealed with master key ${stored.masterKeyId}, not ${master.id}.`);
    return { sealer: openSegmentSealer(master, purpose, recordId, stored.header), masterKeyId: master.id };
  }

  /**
   * Opens a key sealed with sealKey (a row with id, sealed and master_key_id) for one
   * use, recorded as `action` before the key is returned, exactly as the store's own
   * keys are (record-key-use.ts).
   */
  async useSealedKey(row: Row, recordId: string, action: string, detail?: string): Promise<KeyObject> {
    const key = this.#unseal(row, recordId);
    await this.#keyUses.record({ at: this.#clock(), actor: this.#actor, action, object: String(row.id), ...(detail === undefined ? {} : { detail }) });
    return key;
  }

  /**
   * Opens one key for a use and records why (key.use.<purpose>): the key is
   * returned only once the record is committed (record-key-use.ts: the durability
   * point of a key use comes before the caller has the key).
   */
  async #useKey(row: Row, action: string, detail?: string): Promise<KeyObject> {
    const key = this.#unseal(row);
    await this.#recordUse(row, action, detail);
    return key;
  }

  #recordUse(row: Row, action: string, detail?: string): Promise<void> {
    return this.#keyUses.record({ at: this.#clock(), actor: this.#actor, action, object: String(row.id), ...(detail === undefined ? {} : { detail }) });
  }

  /** The private key itself, for export (PKCS#12, PEM). Only on explicit request; audited with the reason. */
  async exportPrivateKey(id: string, reason: string): Promise<KeyObject> {
    return this.engine.transaction(async (tx) => {
      const rows = await tx.all('SELECT * FROM private_keys WHERE id = ?', [id]);
      if (!rows[0]) throw new KakitomeError('INVALID_ARGUMENT', `No private key ${id} in the store.`);
      const key = this.#unseal(rows[0]);
      await this.#audit(tx, 'key.export', id, reason);
      return key;
    });
  }

  /**
   * The active private key for `cert`, opened for one named use (the CA signing a
   * certificate, a CRL or an OCSP response) and audited as key.use.<purpose>.
   */
  async usePrivateKeyFor(cert: Certificate, purpose: string): Promise<KeyObject | undefined> {
    const rows = await this.engine.all("SELECT * FROM private_keys WHERE spki_sha256 = ? AND status = 'active'", [spkiDigest(cert.spki)]);
    const row = rows[0];
    if (!row) return undefined;
    return this.#useKey(row, `key.use.${purpose}`, cert.fingerprint256);
  }

  /** Retiring stops a key from signing and being offered for new mail; it still decrypts old mail. */
  async retirePrivateKey(id: string, reason = 'retired'): Promise<KeyRecord> {
    await this.engine.transaction(async (tx) => {
      const n = await tx.run("UPDATE private_keys SET status = 'retired', retired_at = ? WHERE id = ? AND status = 'active'", [this.#clock().toISOString(), id]);
      if (n === 0 && !(await tx.all('SELECT id FROM private_keys WHERE id = ?', [id])).length) {
        throw new KakitomeError('INVALID_ARGUMENT', `No private key ${id} in the store.`);
      }
      if (n) await this.#audit(tx, 'key.retire', id, reason);
    });
    return (await this.findKey(id))!;
  }

  /**
   * Destroys a private key for good: mail encrypted to it becomes unreadable. The
   * caller must repeat the key id as confirmation; the purge is audited.
   */
  async purgePrivateKey(id: string, confirm: { confirmId: string; reason: string }): Promise<void> {
    if (confirm.confirmId !== id) throw new KakitomeError('INVALID_ARGUMENT', 'Purging a key needs its id repeated as confirmation.');
    await this.engine.transaction(async (tx) => {
      const n = await tx.run('DELETE FROM private_keys WHERE id = ?', [id]);
      if (!n) throw new KakitomeError('INVALID_ARGUMENT', `No private key ${id} in the store.`);
      await this.#audit(tx, 'key.purge', id, confirm.reason);
    });
    this.#openedKeys.delete(id);
  }

  // ---------------------------------------------------------------- lookups

  /**
   * Private keys for a message's recipient identifiers (RFC 5652 6.2), whatever
   * their certificates' validity or the key's status: mail from ten years ago must
   * still open. Order follows `ids`; each use is audited.
   *
   * The identifiers are the sender's choice, so a key is offered only when the
   * certificate they name allows key management (allowsKeyManagement: keyUsage and
   * extKeyUsage) and no certificate for the key is a CA's: a CA key (or a
   * signing-only key) never runs ECDH or RSA decryption on attacker-chosen input.
   */
  async findDecryptionKeys(ids: readonly CmsIdentifier[], accept?: (certificate: Certificate) => boolean): Promise<{ key: KeyObject; certificate: Certificate; keyId: string }[]> {
    const found = (await this.#decryptionCandidates(ids)).filter(({ certificate }) => !accept || accept(certificate));
    // Every use is recorded before any key is returned; the uses of one envelope share a commit.
    const keys = await Promise.all(found.map(({ row, certificate }) => this.#useKey(row, 'key.use.decrypt', certificate.fingerprint256)));
    return found.map(({ row, certificate }, i) => ({ key: keys[i]!, certificate, keyId: String(row.id) }));
  }

  /**
   * findDecryptionKeys for a caller that holds back everything it makes with the
   * keys until `recorded` resolves: the keys at once, their uses' records being
   * committed meanwhile (in the same shared commits), so the commit's fsync runs
   * while the caller decrypts instead of before. The durability point moves from
   * "before the key is handed out" to "before anything made with it leaves the
   * caller": nothing decrypted, no verdict, no answer may leave before `recorded`
   * resolves, and when it rejects (the commit failed) nothing may leave at all: the
   * caller answers as for a store failure (the gateway: 4xx, Postfix retries,
   * process-inbound.ts). A crash before the commit loses the record and, with it,
   * everything the key was used for, which never left the process.
   */
  async findDecryptionKeysRecording(ids: readonly CmsIdentifier[], accept?: (certificate: Certificate) => boolean): Promise<{ keys: { key: KeyObject; certificate: Certificate; keyId: string }[]; recorded: Promise<void> }> {
    const found = (await this.#decryptionCandidates(ids)).filter(({ certificate }) => !accept || accept(certificate));
    const keys = found.map(({ row, certificate }) => ({ key: this.#unseal(row), certificate, keyId: String(row.id) }));
    // Handed to the commit at once (recordAtOnce): the caller decrypts meanwhile, synchronously.
    const recorded = this.#keyUses.recordAtOnce(found.map(({ row, certificate }) => ({ at: this.#clock(), actor: this.#actor, action: 'key.use.decrypt', object: String(row.id), detail: certificate.fingerprint256 })));
    // Marked handled here so that a caller that fails before it waits is no unhandled rejection; awaiting it still throws.
    recorded.catch(() => {});
    return { keys, recorded };
  }

  /** The rows and certificates findDecryptionKeys opens, by the rules above. */
  async #decryptionCandidates(ids: readonly CmsIdentifier[]): Promise<{ row: Row; certificate: Certificate }[]> {
    // Indexed queries by chunks of identifiers, only for certificates we hold a key
    // for, shared with the lookups that arrive together (coalesce-key-lookups.ts): an
    // envelope with 10,000 recipients (a newsletter, or a hostile one) costs a few
    // queries, not 10,000, and a hundred envelopes at once cost one.
    const serials = [...new Set(ids.flatMap((i) => (i.kind === 'issuerAndSerialNumber' ? [hex(i.serial)!] : [])))];
    const skis = [...new Set(ids.flatMap((i) => (i.kind === 'subjectKeyIdentifier' ? [hex(i.keyId)!] : [])))];
    const candidates: KeyCandidates = serials.length || skis.length ? await this.#keyLookups.find(serials, skis) : { bySerial: new Map(), bySki: new Map() };
    const found: { row: Row; certificate: Certificate }[] = [];
    const seen = new Set<string>();
    for (const id of ids) {
      const rows = id.kind === 'issuerAndSerialNumber'
        ? (candidates.bySerial.get(hex(id.serial)!) ?? []).filter((r) => r.issuer_hex === hex(id.issuer))
        : (candidates.bySki.get(hex(id.keyId)!) ?? []);
      for (const row of rows) {
        const tag = String(row.certificate_id);
        if (seen.has(tag)) continue;
        seen.add(tag);
        const der = bytesOf(row.der);
        const { certificate, keyManagement } = this.#lookupCertificates.get(tag, der, '', () => {
          const c = Certificate.fromDer(der);
          return { certificate: c, keyManagement: allowsKeyManagement(c) };
        });
        if (keyManagement) found.push({ row, certificate });
      }
    }
    return found;
  }

  /**
   * The identity that signs for `email` at `now`: a valid, unrevoked certificate
   * for the address with an active private key, allowed to sign (keyUsage
   * digitalSignature, extKeyUsage emailProtection when present). The newest wins.
   */
  async findSigningIdentity(email: string, now: Date = this.#clock()): Promise<SigningIdentity | undefined> {
    const found = await this.#signingCandidate(email, now);
    if (!found) return undefined;
    const key = await this.#useKey(found.row, 'key.use.sign', found.certificate.fingerprint256);
    return { key, certificate: found.certificate, chain: await this.findIssuerChain(found.certificate), keyId: String(found.row.id) };
  }

  /**
   * The certificate findSigningIdentity would sign with, found by the same query
   * without opening (or auditing) the key: for explaining a decision (`gateway
   * explain`), not for signing.
   */
  async findSigningCertificate(email: string, now: Date = this.#clock()): Promise<Certificate | undefined> {
    return (await this.#signingCandidate(email, now))?.certificate;
  }

  /**
   * The next moment findSigningIdentity(email) may answer differently by the clock
   * alone, with nothing changed in the store: the earliest notBefore still to come
   * among the address's unrevoked end-entity certificates (a renewal dated ahead).
   * Past the certificate it chose, its notAfter is the other such moment.
   */
  async nextSigningCertificateAt(email: string, now: Date = this.#clock()): Promise<Date | undefined> {
    const rows = await this.engine.all(
      'SELECT MIN(c.not_before) AS t FROM certificates c WHERE c.id IN (SELECT certificate_id FROM certificate_emails WHERE email = ?) AND c.is_ca = 0 AND c.revoked_at IS NULL AND c.not_before > ?',
      [normalizeAddress(email), now.toISOString()],
    );
    return date(rows[0]?.t);
  }

  async #signingCandidate(email: string, now: Date): Promise<{ certificate: Certificate; row: Row } | undefined> {
    const candidates = (await this.#currentForAddress(email, now)).filter((r) => r.hasPrivateKey && allowsUsage(r.certificate, 'sign'));
    for (const rec of candidates) {
      const rows = await this.engine.all("SELECT * FROM private_keys WHERE spki_sha256 = ? AND status = 'active'", [spkiDigest(rec.certificate.spki)]);
      if (rows[0]) return { certificate: rec.certificate, row: rows[0] };
    }
    return undefined;
  }

  /**
   * The best certificate to encrypt to `email` at `now`: filed as current under the
   * address (never a pending new key), valid, not revoked, usable for key
   * management; ranked by trust (a harvested certificate never outranks an imported
   * or trusted one), then the sender's stated preference for this address, then
   * preferred algorithms, then the newest. The store's word only: encrypting should
   * validate it again at use time (findTrustedRecipientCertificate).
   */
  async findRecipientCertificate(email: string, now: Date = this.#clock()): Promise<CertificateRecord | undefined> {
    return (await this.findRecipientCertificates(email, now))[0];
  }

  /** Every candidate of findRecipientCertificate, best first. */
  async findRecipientCertificates(email: string, now: Date = this.#clock()): Promise<CertificateRecord[]> {
    const address = normalizeAddress(email);
    const preferred = (r: CertificateRecord) => Number(r.filings.some((f) => f.email === address && f.preferred));
    const filedCurrent = (r: CertificateRecord) => r.filings.some((f) => f.email === address && f.filing === 'current');
    const usable = (await this.#currentForAddress(address, now)).filter((r) => filedCurrent(r) && allowsUsage(r.certificate, 'encrypt'));
    return usable.sort(
      (a, b) =>
        TRUST_RANK[a.trust] - TRUST_RANK[b.trust] ||
        preferred(b) - preferred(a) ||
        algorithmRank(a.certificate) - algorithmRank(b.certificate) ||
        b.certificate.notBefore.getTime() - a.certificate.notBefore.getTime() ||
        b.addedAt.getTime() - a.addedAt.getTime(),
    );
  }

  /**
   * Valid, unrevoked end-entity certificates filed under `email`, whatever the filing
   * (each record carries its filings: a caller wanting `current` ones checks them;
   * signing takes any). Read on certificate_emails_email (address, filing,
   * certificate: migration 22), once per recipient of every outbound message the
   * gateway plans (plan-outbound.ts); test/store/query-plans.test.ts keeps it there.
   */
  async #currentForAddress(email: string, now: Date): Promise<CertificateRecord[]> {
    const t = now.toISOString();
    return this.#records(
      `c.id IN (SELECT certificate_id FROM certificate_emails WHERE email = ?) AND c.is_ca = 0 AND c.not_before <= ? AND c.not_after > ? AND c.revoked_at IS NULL`,
      [normalizeAddress(email), t, t],
    );
  }

  /**
   * Issuer certificates from the store, nearest first, stopping at a self-issued
   * one. An issuer is one whose key verifies the certificate's signature, trusted
   * ones first: names and key identifiers are the certificate holder's to choose,
   * and a look-alike CA certificate someone imported (a tenant's PKCS#12 upload)
   * must not take the place of the real one in everyone's signed mail.
   */
  async findIssuerChain(cert: Certificate, maxDepth = 8): Promise<Certificate[]> {
    const chain: Certificate[] = [];
    let cur = cert;
    for (let i = 0; i < maxDepth; i++) {
      if (Buffer.compare(cur.issuer, cur.subject) === 0) break;
      const issuers = (await this.findCertificatesBySubject(cur.issuer)).filter((r) => r.isCa).sort((a, b) => TRUST_RANK[a.trust] - TRUST_RANK[b.trust]);
      const aki = authorityKeyId(cur);
      const child = cur;
      const next = issuers.find((r) => (!aki || (r.certificate.subjectKeyIdentifier && Buffer.compare(r.certificate.subjectKeyIdentifier, aki) === 0)) && this.#issued(r.certificate, child));
      if (!next || chain.some((c) => c.fingerprint256 === next.certificate.fingerprint256)) break;
      chain.push(next.certificate);
      cur = next.certificate;
    }
    return chain;
  }

  /** Whether `issuer`'s key verifies `child`'s signature; remembered per pair (bounded). */
  #issued(issuer: Certificate, child: Certificate): boolean {
    const pair = `${child.fingerprint256}/${issuer.fingerprint256}`;
    let ok = this.#issuerLinks.get(pair);
    if (ok === undefined) {
      try {
        ok = child.x509.verify(issuer.publicKey);
      } catch {
        ok = false;
      }
      if (this.#issuerLinks.size >= 4096) this.#issuerLinks.clear();
      this.#issuerLinks.set(pair, ok);
    }
    return ok;
  }

  /**
   * The newest audit rows, of one object (a key id, a certificate's fingerprint) when
   * asked. The object has no index of its own (migration 25: every row would write it,
   * on the signing service's path): its rows are found reading the log newest first.
   * Pages with filters: list-audit-page.ts.
   */
  async auditLog(filter: { limit?: number; object?: string } = {}): Promise<AuditEntry[]> {
    const limit = Math.min(Math.max(filter.limit ?? 100, 1), 10_000);
    const rows = filter.object
      ? await this.engine.all('SELECT * FROM audit_log WHERE object = ? ORDER BY at DESC, id LIMIT ?', [filter.object, limit])
      : await this.engine.all('SELECT * FROM audit_log ORDER BY at DESC, id LIMIT ?', [limit]);
    return rows.map((r) => ({ id: String(r.id), at: date(r.at)!, actor: String(r.actor), action: String(r.action), object: str(r.object), detail: str(r.detail) }));
  }
}

/** Ids a query names at once (well under every engine's limit on parameters). */
const FILINGS_CHUNK = 500;

function toCertificateRecord(r: Row, filings: AddressFiling[]): CertificateRecord {
  const rec: CertificateRecord = {
    id: String(r.id),
    certificate: Certificate.fromDer(bytesOf(r.der)),
    emails: filings.map((f) => f.email),
    filings,
    trust: String(r.trust) as TrustLevel,
    source: String(r.source),
    isCa: Number(r.is_ca) === 1,
    preferred: filings.some((f) => f.preferred),
    addedAt: date(r.added_at)!,
    hasPrivateKey: Number(r.key_count) > 0,
  };
  if (r.capabilities !== null && r.capabilities !== undefined) rec.capabilities = bytesOf(r.capabilities);
  const ca = date(r.capabilities_at);
  if (ca) rec.capabilitiesAt = ca;
  const ra = date(r.revoked_at);
  if (ra) rec.revokedAt = ra;
  if (r.revocation_reason !== null && r.revocation_reason !== undefined) rec.revocationReason = Number(r.revocation_reason);
  return rec;
}

/** The one address a certificate is filed under; INVALID_ARGUMENT when it is under none or several. */
function soleAddress(rec: CertificateRecord): string {
  if (rec.emails.length === 1) return rec.emails[0]!;
  throw new KakitomeError('INVALID_ARGUMENT', `Certificate ${rec.certificate.fingerprint256} is filed under ${rec.emails.length ? rec.emails.join(', ') : 'no address'}: name the address it is for.`, { remedy: 'email' });
}

function authorityKeyId(cert: Certificate): Uint8Array | undefined {
  const e = cert.extensions.get(OID.authorityKeyIdentifier);
  if (!e) return undefined;
  const first = decode(e.value, { der: true }).children()[0];
  return first?.tag === 0x80 ? first.value : undefined;
}

/** RFC 8550 4.4.2 / 4.4.4: keyUsage and extKeyUsage, when present, must allow the use. */
function allowsUsage(cert: Certificate, use: 'sign' | 'encrypt'): boolean {
  if (use === 'encrypt') return allowsKeyManagement(cert);
  const ku = cert.keyUsage;
  if (ku && !ku.has('digitalSignature') && !ku.has('nonRepudiation')) return false;
  const eku = cert.extendedKeyUsage;
  return !eku || eku.includes(OID.emailProtection) || eku.includes(OID.anyExtendedKeyUsage);
}

/**
 * Lower is preferred, following RFC 8551 2.7 key management (MUST ECDH P-256 and
 * X25519, SHOULD+ RSA-OAEP) while keeping RSA usable.
 */
function algorithmRank(cert: Certificate): number {
  switch (cert.publicKey.asymmetricKeyType) {
    case 'x25519': return 0;
    case 'ec': return 1;
    case 'x448': return 2;
    case 'rsa': return (cert.publicKey.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048 ? 3 : 9;
    default: return 5;
  }
}

function safeUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
