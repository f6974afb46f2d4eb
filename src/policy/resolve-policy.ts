/**
 * The policy in force for one party, and which level set each value (issue 13:
 * "which level set each value", the fix for the inheritance surprises of other
 * gateways). Pure: levels in, settings and their sources out.
 *
 * The party whose levels apply is the one in the organisation: for outbound mail
 * the sender, for inbound mail the recipient (src/gateway/plan-outbound.ts,
 * plan-inbound.ts). Each setting is taken from the most specific level that sets
 * it: the party's address, else its domain, else global, else the default. Unset a
 * value at a level and the next level up shows through. Process-wide settings
 * (maxMessageBytes, maxConnections, relayTimeoutMs, maxQueuedMessages, queueWaitMs,
 * commandTimeoutMs, minDataRate, sessionTimeoutMs) exist only at the global level.
 */
import { describeLevel, GLOBAL_LEVEL, settingsAt, type LevelKind, type LevelRef, type PolicyLevels } from './policy-levels.ts';
import { mailDomainOf } from '../x509/mailbox-address.ts';
import { DEFAULT_SETTINGS, SETTING_NAMES, type PolicySettings, type SettingName } from './policy-settings.ts';

export interface SettingSource {
  level: LevelKind | 'default';
  /** The domain or address of a domain or address level. */
  name?: string;
}

export interface ResolvedPolicy {
  /** The address whose levels were read ('' for the global level alone). */
  owner: string;
  settings: PolicySettings;
  sources: Record<SettingName, SettingSource>;
}

/** "default", "global", "domain example.com", "address alice@example.com". */
export function describeSource(source: SettingSource): string {
  return source.level === 'default' ? 'default' : describeLevel({ kind: source.level, name: source.name ?? '' });
}

/** The levels that apply to `owner`, most specific first. */
function chain(owner: string): LevelRef[] {
  const address = owner.trim().toLowerCase();
  const at = address.lastIndexOf('@');
  if (at < 0) return [GLOBAL_LEVEL];
  // The domain as levels are named (ASCII): bob@例え.jp is under xn--r8jz45g.jp's level.
  const domain = mailDomainOf(address);
  return [{ kind: 'address', name: `${address.slice(0, at)}@${domain}` }, { kind: 'domain', name: domain }, GLOBAL_LEVEL];
}

export function resolvePolicy(levels: PolicyLevels, owner: string): ResolvedPolicy {
  return resolveChain(levels, owner.trim().toLowerCase(), chain(owner));
}

/**
 * The policy in force at a domain itself (its level over global), for showing a
 * domain's policy (the console's "Policy in force for example.co.jp"): the mail
 * path always resolves an address, whose chain (resolvePolicy) holds its domain.
 */
export function resolveDomainPolicy(levels: PolicyLevels, domain: string): ResolvedPolicy {
  const name = domain.trim().toLowerCase().replace(/\.$/, '');
  return resolveChain(levels, name, [{ kind: 'domain', name }, GLOBAL_LEVEL]);
}

function resolveChain(levels: PolicyLevels, owner: string, refs: readonly LevelRef[]): ResolvedPolicy {
  const settings: Record<string, unknown> = {};
  const sources = {} as Record<SettingName, SettingSource>;
  for (const name of SETTING_NAMES) {
    settings[name] = DEFAULT_SETTINGS[name];
    sources[name] = { level: 'default' };
    for (const ref of refs) {
      const value = settingsAt(levels, ref)[name];
      if (value === undefined) continue;
      settings[name] = value;
      sources[name] = ref.kind === 'global' ? { level: 'global' } : { level: ref.kind, name: ref.name };
      break;
    }
  }
  return { owner, settings: settings as unknown as PolicySettings, sources };
}

/** The global level over the defaults: the process-wide settings, and the policy of mail no party owns. */
export function resolveGlobalPolicy(levels: PolicyLevels): ResolvedPolicy {
  return resolvePolicy(levels, '');
}
