/**
 * DKIM signing keys per domain (issues 10 and 13): its own concept over the store's
 * SQL engine (style guide, "the store grows by concept"), migration 5.
 *
 * A key's life, decided here once for the CLI, the gateway and the signing service:
 * - `addKey` (made here, or an existing key imported) stores it sealed under the
 *   master key (the store's sealKey: AES-256-GCM with a data key, record id
 *   "dkim:<id>") and returns the TXT record to publish. The domain's first key of a
 *   type (RSA, Ed25519) is active at once (nothing signs with it until the gateway
 *   policy or the caller asks for DKIM); a later one is pending: publish its record
 *   first, then `activateKey` (the CLI's `dkim rotate`) makes it sign and retires
 *   the one it replaces.
 * - A selector is used once per domain, ever: a verifier holding a message signed
 *   under the old key would otherwise fetch the new one and fail it.
 * - Retired keys never sign again; they stay (the DNS record should stay published a
 *   few days for mail still in transit, then be removed).
 * - `signingKeys` opens the domain's active keys (one per type) for one use each,
 *   recorded before the key is handed out (key.use.dkim), like every key use.
 */
import { createPublicKey, randomUUID, type KeyObject } from 'node:crypto';
import { KakitomeError } from '../errors.ts';
import { checkDkimDomain, checkSelector, dkimKeyType, formatDkimDnsRecord, generateDkimKey, type DkimDnsRecord, type DkimKeyAlgorithm, type DkimKeyType } from '../dkim/dkim-key.ts';
import type { Row, SqlValue } from './sql-engine.ts';
import { dkimRecordId, type Store } from './store.ts';

export type DkimKeyStatus = 'pending' | 'active' | 'retired';

export interface DkimKeyRecord {
  id: string;
  domain: string;
  selector: string;
  type: DkimKeyType;
  bits: number;
  status: DkimKeyStatus;
  /** 'generated' or where an imported key came from. */
  source: string;
  createdAt: Date;
  activatedAt?: Date;
  retiredAt?: Date;
  /** The TXT record that publishes the public key. */
  dns: DkimDnsRecord;
}

export interface DkimSigningKey {
  domain: string;
  selector: string;
  key: KeyObject;
}

const date = (v: SqlValue | undefined): Date | undefined => (v === null || v === undefined ? undefined : new Date(String(v)));

function toRecord(r: Row): DkimKeyRecord {
  const domain = String(r.domain);
  const selector = String(r.selector);
  const publicKey = createPublicKey({ key: Buffer.from(r.public_key as Uint8Array), format: 'der', type: 'spki' });
  const activatedAt = date(r.activated_at);
  const retiredAt = date(r.retired_at);
  return {
    id: String(r.id), domain, selector, type: String(r.key_type) as DkimKeyType, bits: Number(r.key_bits), status: String(r.status) as DkimKeyStatus,
    source: String(r.source), createdAt: date(r.created_at)!, ...(activatedAt ? { activatedAt } : {}), ...(retiredAt ? { retiredAt } : {}),
    dns: formatDkimDnsRecord(domain, selector, publicKey),
  };
}

export class DkimKeyDirectory {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  get #engine() {
    return this.#store.engine;
  }

  /**
   * A new key for `domain` under `selector`: made now (`algorithm`), or `key` (an
   * existing private key, e.g. moved from OpenDKIM). Active when the domain has no
   * active key of its type, pending otherwise.
   */
  async addKey(domain: string, selector: string, from: { algorithm: DkimKeyAlgorithm } | { key: KeyObject; source: string }): Promise<DkimKeyRecord> {
    const d = checkDkimDomain(domain);
    const s = checkSelector(selector);
    const key = 'key' in from ? from.key : await generateDkimKey(from.algorithm);
    if (key.type !== 'private') throw new KakitomeError('KEY_INVALID', 'A DKIM key to import must be a private key.');
    const type = dkimKeyType(key);
    const publicKey = createPublicKey(key);
    const bits = type === 'rsa' ? publicKey.asymmetricKeyDetails!.modulusLength! : 256;
    const id = randomUUID();
    const now = this.#store.now().toISOString();
    const { sealed, masterKeyId } = this.#store.sealKey(dkimRecordId(id), key);
    const source = 'key' in from ? from.source : 'generated';
    await this.#engine.transaction(async (tx) => {
      const used = await tx.all('SELECT status FROM dkim_keys WHERE domain = ? AND selector = ?', [d, s]);
      if (used.length) throw new KakitomeError('INVALID_ARGUMENT', `The selector ${s} was already used for ${d} (${String(used[0]!.status)}): a selector serves one key, ever. Choose a new one, e.g. one naming the month (${now.slice(0, 7).replace('-', '')}).`);
      const active = await tx.all("SELECT id FROM dkim_keys WHERE domain = ? AND key_type = ? AND status = 'active'", [d, type]);
      const status: DkimKeyStatus = active.length ? 'pending' : 'active';
      await tx.run(
        'INSERT INTO dkim_keys (id, domain, selector, key_type, key_bits, public_key, sealed, master_key_id, status, source, created_at, activated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
        [id, d, s, type, bits, publicKey.export({ format: 'der', type: 'spki' }), sealed, masterKeyId, status, source, now, status === 'active' ? now : null],
      );
      await this.#store.auditWithin(tx, 'dkim.add', `${s}._domainkey.${d}`, `${type} ${bits}, ${source}, ${status}`);
    });
    return (await this.findKey(d, s))!;
  }

  async findKey(domain: string, selector: string): Promise<DkimKeyRecord | undefined> {
    const rows = await this.#engine.all('SELECT * FROM dkim_keys WHERE domain = ? AND selector = ?', [checkDkimDomain(domain), checkSelector(selector)]);
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  /** Every key, or a domain's, by domain, then newest first. */
  async listKeys(domain?: string): Promise<DkimKeyRecord[]> {
    const rows = domain === undefined
      ? await this.#engine.all('SELECT * FROM dkim_keys ORDER BY domain, created_at DESC, selector')
      : await this.#engine.all('SELECT * FROM dkim_keys WHERE domain = ? ORDER BY created_at DESC, selector', [checkDkimDomain(domain)]);
    return rows.map(toRecord);
  }

  async #require(domain: string, selector: string): Promise<DkimKeyRecord> {
    const rec = await this.findKey(domain, selector);
    if (!rec) throw new KakitomeError('NOT_FOUND', `No DKIM key ${checkSelector(selector)} for ${checkDkimDomain(domain)} (the domain's list of DKIM keys shows them).`, { remedy: 'dkimSelector' });
    return rec;
  }

  /**
   * Makes a pending key the one that signs for its domain and type, retiring the
   * active one it replaces: publish its DNS record before (DNS caches keep the old
   * answer for the record's TTL).
   */
  async activateKey(domain: string, selector: string): Promise<{ activated: DkimKeyRecord; retired: DkimKeyRecord[] }> {
    const rec = await this.#require(domain, selector);
    if (rec.status === 'active') return { activated: rec, retired: [] };
    if (rec.status === 'retired') throw new KakitomeError('INVALID_ARGUMENT', `The DKIM key ${rec.selector} for ${rec.domain} is retired: a retired key never signs again. Add a new DKIM key for ${rec.domain} (with a new selector).`, { remedy: 'dkimKey' });
    const now = this.#store.now().toISOString();
    const retired = await this.#engine.transaction(async (tx) => {
      const old = await tx.all("SELECT selector FROM dkim_keys WHERE domain = ? AND key_type = ? AND status = 'active'", [rec.domain, rec.type]);
      await tx.run("UPDATE dkim_keys SET status = 'retired', retired_at = ? WHERE domain = ? AND key_type = ? AND status = 'active'", [now, rec.domain, rec.type]);
      const n = await tx.run("UPDATE dkim_keys SET status = 'active', activated_at = ? WHERE id = ? AND status = 'pending'", [now, rec.id]);
      if (!n) throw new KakitomeError('INVALID_ARGUMENT', `The DKIM key ${rec.selector} for ${rec.domain} changed meanwhile; look at the domain's DKIM keys again.`, { remedy: 'dkimSelector' });
      await this.#store.auditWithin(tx, 'dkim.activate', `${rec.selector}._domainkey.${rec.domain}`, `retired: ${old.map((r) => String(r.selector)).join(', ') || 'none'}`);
      return old.map((r) => String(r.selector));
    });
    const out: DkimKeyRecord[] = [];
    for (const s of retired) out.push((await this.findKey(rec.domain, s))!);
    return { activated: (await this.findKey(rec.domain, rec.selector))!, retired: out };
  }

  /** Stops a key from ever signing again (pending or active). The domain signs with no key of that type until another is activated. */
  async retireKey(domain: string, selector: string): Promise<DkimKeyRecord> {
    const rec = await this.#require(domain, selector);
    if (rec.status === 'retired') return rec;
    const now = this.#store.now().toISOString();
    await this.#engine.transaction(async (tx) => {
      await tx.run("UPDATE dkim_keys SET status = 'retired', retired_at = ? WHERE id = ? AND status <> 'retired'", [now, rec.id]);
      await this.#store.auditWithin(tx, 'dkim.retire', `${rec.selector}._domainkey.${rec.domain}`, `was ${rec.status}`);
    });
    return (await this.findKey(rec.domain, rec.selector))!;
  }

  /**
   * The domain's active keys, opened for one use each (audited as key.use.dkim
   * before they are returned): RSA first, then Ed25519. Empty when it has none.
   */
  async signingKeys(domain: string): Promise<DkimSigningKey[]> {
    const d = checkDkimDomain(domain);
    const rows = await this.#engine.all("SELECT * FROM dkim_keys WHERE domain = ? AND status = 'active' ORDER BY key_type DESC, activated_at DESC", [d]);
    const seen = new Set<string>();
    const out: DkimSigningKey[] = [];
    for (const row of rows) {
      // One per type: should two nodes have activated two at once, the newest signs.
      if (seen.has(String(row.key_type))) continue;
      seen.add(String(row.key_type));
      const selector = String(row.selector);
      out.push({ domain: d, selector, key: await this.#store.useSealedKey(row, dkimRecordId(String(row.id)), 'key.use.dkim', `${selector}._domainkey.${d}`) });
    }
    return out;
  }
}
