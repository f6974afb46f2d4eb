/**
 * The gateway policy kept in the store (issue 13, "Policy"): its own concept over
 * the store's SQL engine (style guide, "the store grows by concept"), migration 6.
 * One row per setting set at a level; values are JSON, checked by the settings
 * table (src/policy/policy-settings.ts) when written and again when read, so a row
 * written by hand or by a newer version with a setting this one does not know is
 * refused with its level and name rather than silently ignored.
 *
 * Every change writes a new random settings.policy_revision in the same
 * transaction, with its audit record: gateway nodes read that one row every few
 * seconds (src/gateway/policy-refresh.ts) and load the levels again when it moved.
 */
import { randomUUID } from 'node:crypto';
import { KakitomeError } from '../errors.ts';
import { describeLevel, type LevelKind, type LevelRef, type PolicyDocument, type PolicyLevels } from '../policy/policy-levels.ts';
import { checkSetting, type PartialSettings, type SettingName } from '../policy/policy-settings.ts';
import type { SqlExecutor } from './sql-engine.ts';
import type { Store } from './store.ts';

export interface PolicySnapshot {
  levels: PolicyLevels;
  /** settings.policy_revision when the levels were read ('' before the first edit). */
  revision: string;
}

const KINDS: readonly LevelKind[] = ['global', 'domain', 'address'];

function emptyLevels(): { global: PartialSettings; domains: Map<string, PartialSettings>; addresses: Map<string, PartialSettings> } {
  return { global: {}, domains: new Map(), addresses: new Map() };
}

/** The rows of one part of a document, as (level, name, setting, JSON value). */
function rowsOf(kind: LevelKind, part: PartialSettings | ReadonlyMap<string, PartialSettings>): Array<[LevelKind, string, string, string]> {
  const levels: Array<[string, PartialSettings]> = kind === 'global' ? [['', part as PartialSettings]] : [...(part as ReadonlyMap<string, PartialSettings>)];
  return levels.flatMap(([name, settings]) => Object.entries(settings).map(([setting, value]) => [kind, name, setting, JSON.stringify(value)] as [LevelKind, string, string, string]));
}

const key = (r: readonly [string, string, string, string]) => JSON.stringify(r);

export class PolicyDirectory {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  get #engine() {
    return this.#store.engine;
  }

  async revision(): Promise<string> {
    const rows = await this.#engine.all("SELECT value FROM settings WHERE name = 'policy_revision'");
    return rows[0] ? String(rows[0].value) : '';
  }

  /** Every level, each row checked (INVALID_ARGUMENT naming the level and setting of a bad row). */
  async load(): Promise<PolicySnapshot> {
    const revision = await this.revision();
    const levels = emptyLevels();
    for (const row of await this.#engine.all('SELECT level, name, setting, value FROM policy_settings ORDER BY level, name, setting')) {
      const kind = String(row.level) as LevelKind;
      if (!KINDS.includes(kind)) throw new KakitomeError('INVALID_ARGUMENT', `The store's policy has a level of unknown kind "${String(row.level)}".`);
      const ref = { kind, name: String(row.name) };
      const where = `the store's policy, ${describeLevel(ref)}`;
      let value: unknown;
      try {
        value = JSON.parse(String(row.value));
      } catch {
        throw new KakitomeError('INVALID_ARGUMENT', `${where}: "${String(row.setting)}" holds no JSON value.`);
      }
      const checked = checkSetting(String(row.setting), value, where, kind === 'global');
      const target = kind === 'global' ? levels.global : getOrAdd(kind === 'domain' ? levels.domains : levels.addresses, ref.name);
      (target as Record<string, unknown>)[String(row.setting)] = checked;
    }
    return { levels, revision };
  }

  /** Sets settings at one level (each already checked: checkSetting / settingFromWords). */
  async set(ref: LevelRef, settings: PartialSettings): Promise<void> {
    const rows = rowsOf(ref.kind, ref.kind === 'global' ? settings : new Map([[ref.name, settings]]));
    if (!rows.length) return;
    await this.#engine.transaction(async (tx) => {
      for (const r of rows) await this.#upsert(tx, r);
      await this.#changed(tx, 'policy.set', describeLevel(ref), rows.map((r) => `${r[2]}=${r[3]}`).join(' '));
    });
  }

  /** Removes settings from one level (the level above shows through); returns how many were set there. */
  async unset(ref: LevelRef, names: readonly SettingName[]): Promise<number> {
    return this.#engine.transaction(async (tx) => {
      let removed = 0;
      for (const n of names) removed += await tx.run('DELETE FROM policy_settings WHERE level = ? AND name = ? AND setting = ?', [ref.kind, ref.name, n]);
      if (removed) await this.#changed(tx, 'policy.unset', describeLevel(ref), names.join(' '));
      return removed;
    });
  }

  /**
   * Imports a policy document in one transaction. Without `merge`, each part the
   * document carries replaces that part (global, every domain level, every address
   * level); with `merge`, its settings are set over what is there. Returns whether
   * anything changed (an import of what is already stored writes nothing, so
   * gateway nodes that import the same file at start do not make each other reload).
   */
  async import(doc: PolicyDocument, options: { merge?: boolean; source?: string } = {}): Promise<boolean> {
    const parts: Array<[LevelKind, PartialSettings | ReadonlyMap<string, PartialSettings>]> = [];
    if (doc.global) parts.push(['global', doc.global]);
    if (doc.domains) parts.push(['domain', doc.domains]);
    if (doc.addresses) parts.push(['address', doc.addresses]);
    return this.#engine.transaction(async (tx) => {
      let changed = false;
      for (const [kind, part] of parts) {
        const wanted = rowsOf(kind, part);
        const stored = (await tx.all('SELECT level, name, setting, value FROM policy_settings WHERE level = ?', [kind])).map((r) => [String(r.level), String(r.name), String(r.setting), String(r.value)] as [LevelKind, string, string, string]);
        const have = new Set(stored.map(key));
        const want = new Set(wanted.map(key));
        const missing = wanted.filter((r) => !have.has(key(r)));
        const extra = options.merge ? [] : stored.filter((r) => !want.has(key(r)));
        if (!missing.length && !extra.length) continue;
        changed = true;
        for (const r of extra) await tx.run('DELETE FROM policy_settings WHERE level = ? AND name = ? AND setting = ?', [r[0], r[1], r[2]]);
        for (const r of missing) await this.#upsert(tx, r);
      }
      if (changed) await this.#changed(tx, 'policy.import', options.source ?? 'policy', `${options.merge ? 'merged' : 'replaced'} ${parts.map(([k]) => k).join(', ')}`);
      return changed;
    });
  }

  async #upsert(tx: SqlExecutor, r: readonly [LevelKind, string, string, string]): Promise<void> {
    await tx.run(
      'INSERT INTO policy_settings (level, name, setting, value, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (level, name, setting) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
      [...r, this.#store.now().toISOString()],
    );
  }

  /** A new revision and the audit record, in the change's transaction. */
  async #changed(tx: SqlExecutor, action: string, object: string, detail: string): Promise<void> {
    await tx.run("INSERT INTO settings (name, value) VALUES ('policy_revision', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value", [randomUUID()]);
    await this.#store.auditWithin(tx, action, object, detail.slice(0, 2000));
  }
}

function getOrAdd(map: Map<string, PartialSettings>, name: string): PartialSettings {
  let s = map.get(name);
  if (!s) map.set(name, (s = {}));
  return s;
}
