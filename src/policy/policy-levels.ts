/**
 * The policy's levels (issue 13, "Policy"): global ← domain ← address. Each level
 * holds only the settings set there; a setting not set at a level is inherited
 * from the level above, and the global level from the defaults
 * (policy-settings.ts). A level is named by a mail domain or an address,
 * lower-cased; the domain level of an address is its exact domain (after the last
 * "@"; subdomains are levels of their own, as --domain is).
 *
 * The file form (`--policy FILE`, `kakitome policy import|export`):
 *
 *   {"global": {...}, "domains": {"example.com": {...}}, "addresses": {"ceo@example.com": {...}}}
 *
 * or, as before levels existed, the global settings alone ({"sign": true, ...}).
 * Importing replaces each part the file carries (see PolicyDocument).
 */
import { KakitomeError } from '../errors.ts';
import { checkSettings, normalizePolicyDomain, type PartialSettings } from './policy-settings.ts';

export type LevelKind = 'global' | 'domain' | 'address';

export interface LevelRef {
  kind: LevelKind;
  /** The domain or address, normalised; '' for the global level. */
  name: string;
}

export const GLOBAL_LEVEL: LevelRef = Object.freeze({ kind: 'global', name: '' });

export interface PolicyLevels {
  global: PartialSettings;
  domains: ReadonlyMap<string, PartialSettings>;
  addresses: ReadonlyMap<string, PartialSettings>;
}

/**
 * A policy file's content. Each part present replaces that part of the stored
 * policy on import: `global` the global level, `domains` every domain level,
 * `addresses` every address level; a part absent leaves it as it is (so the flat
 * form, which is the global level alone, never erases domain or address levels).
 */
export interface PolicyDocument {
  global?: PartialSettings;
  domains?: Map<string, PartialSettings>;
  addresses?: Map<string, PartialSettings>;
}

const LOCAL_PART = /^[^\s@"(),:;<>[\]\\]{1,64}$/;

/** A level's name for `ref.kind`, normalised, or INVALID_ARGUMENT saying what to give. */
export function normalizeLevelName(kind: LevelKind, name: string): string {
  if (kind === 'global') return '';
  if (kind === 'domain') {
    const d = normalizePolicyDomain(name);
    if (d === undefined) throw new KakitomeError('INVALID_ARGUMENT', `"${name}" is not a mail domain for a policy level (e.g. example.com; no "@", no wildcard).`);
    return d;
  }
  const a = name.trim().toLowerCase();
  const at = a.lastIndexOf('@');
  if (at < 1 || !LOCAL_PART.test(a.slice(0, at)) || normalizePolicyDomain(a.slice(at + 1)) !== a.slice(at + 1)) {
    throw new KakitomeError('INVALID_ARGUMENT', `"${name}" is not a mail address for a policy level (e.g. alice@example.com).`);
  }
  return a;
}

export function levelRef(kind: LevelKind, name = ''): LevelRef {
  return { kind, name: normalizeLevelName(kind, name) };
}

/** "global", "domain example.com", "address alice@example.com": for messages, the log and the audit trail. */
export function describeLevel(ref: LevelRef): string {
  return ref.kind === 'global' ? 'global' : `${ref.kind} ${ref.name}`;
}

/** The settings of `ref` in `levels` (empty when nothing is set there). */
export function settingsAt(levels: PolicyLevels, ref: LevelRef): PartialSettings {
  if (ref.kind === 'global') return levels.global;
  return (ref.kind === 'domain' ? levels.domains : levels.addresses).get(ref.name) ?? {};
}

function levelMap(doc: unknown, kind: 'domain' | 'address', where: string): Map<string, PartialSettings> {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new KakitomeError('INVALID_ARGUMENT', `${where}: "${kind === 'domain' ? 'domains' : 'addresses'}" must be an object of ${kind}s to settings.`);
  const out = new Map<string, PartialSettings>();
  for (const [name, settings] of Object.entries(doc)) {
    const n = normalizeLevelName(kind, name);
    if (out.has(n)) throw new KakitomeError('INVALID_ARGUMENT', `${where}: the ${kind} ${n} is given twice.`);
    out.set(n, checkSettings(settings, `${where}, ${kind} ${n}`, false));
  }
  return out;
}

const PARTS = new Set(['global', 'domains', 'addresses']);

/** A policy file's text, checked setting by setting; every error names the file, the level and the setting. */
export function parsePolicyDocument(text: string, source: string): PolicyDocument {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new KakitomeError('INVALID_ARGUMENT', `${source}: not valid JSON (${(e as Error).message}).`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new KakitomeError('INVALID_ARGUMENT', `${source}: the policy must be a JSON object: {"global": {...}, "domains": {...}, "addresses": {...}}, or the global settings alone, e.g. {"sign": true, "encrypt": "if-possible"}.`);
  }
  const keys = Object.keys(doc);
  const levelled = keys.filter((k) => PARTS.has(k));
  // The flat form is the global level alone; mixing the two forms is ambiguous and refused.
  if (levelled.length === 0) return { global: checkSettings(doc, `${source}, global`, true) };
  const other = keys.filter((k) => !PARTS.has(k));
  if (other.length) throw new KakitomeError('INVALID_ARGUMENT', `${source}: "${other[0]}" beside ${levelled.map((k) => `"${k}"`).join(', ')}: put settings under "global", "domains" or "addresses".`);
  const o = doc as Record<string, unknown>;
  return {
    ...(o.global !== undefined ? { global: checkSettings(o.global, `${source}, global`, true) } : {}),
    ...(o.domains !== undefined ? { domains: levelMap(o.domains, 'domain', source) } : {}),
    ...(o.addresses !== undefined ? { addresses: levelMap(o.addresses, 'address', source) } : {}),
  };
}

/** The file form of every level (sorted, so an export diffs cleanly). */
export function formatPolicyDocument(levels: PolicyLevels): string {
  const sorted = (m: ReadonlyMap<string, PartialSettings>) => Object.fromEntries([...m].filter(([, s]) => Object.keys(s).length).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return `${JSON.stringify({ global: levels.global, domains: sorted(levels.domains), addresses: sorted(levels.addresses) }, null, 2)}\n`;
}
