/**
 * `kakitome policy show|set|unset|import|export`: the gateway policy in the store,
 * at the global level or at a domain's (--domain) or an address's (--address)
 * (issue 13, "Policy"). The settings, their checks and the levels live in
 * src/policy and src/store/policy-directory.ts; these commands map options to them.
 * Every change is audited and reaches running gateways within 10 seconds. The
 * master key is not needed (no key is opened).
 */
import type { Command } from 'commander';
import { KakitomeError } from '../../errors.ts';
import type { LevelRef } from '../../policy/policy-levels.ts';
import type { Store } from '../../store/store.ts';
import { writeOutput } from '../io.ts';
import { commandAction } from './message-options.ts';
import { addStoreOptions, printResult, withCertificateStore, type StoreCliOptions } from './store-options.ts';

interface LevelOpts extends StoreCliOptions { domain?: string; address?: string }

async function levelOf(o: LevelOpts): Promise<LevelRef> {
  if (o.domain !== undefined && o.address !== undefined) throw new KakitomeError('INVALID_ARGUMENT', 'Give --domain or --address, not both: a setting is set at one level.');
  const { GLOBAL_LEVEL, levelRef } = await import('../../policy/policy-levels.ts');
  if (o.domain !== undefined) return levelRef('domain', o.domain);
  if (o.address !== undefined) return levelRef('address', o.address);
  return GLOBAL_LEVEL;
}

function addLevelOptions(cmd: Command): Command {
  return addStoreOptions(cmd
    .option('--domain <domain>', 'the level of a mail domain (default: the global level)')
    .option('--address <address>', 'the level of one address'));
}

async function directory(store: Store) {
  const { PolicyDirectory } = await import('../../store/policy-directory.ts');
  return new PolicyDirectory(store);
}

export function register(program: Command): void {
  const policy = program.command('policy').summary('the gateway policy: show, set, unset, import, export (global, --domain, --address)')
    .description('The gateway policy kept in the store, in three levels: global <- domain <- address. For outbound mail the sender\'s levels apply, for inbound mail each recipient\'s; a setting not set at a level is inherited from the level above. Changes reach running gateways within 10 seconds. Settings and their values: docs/gateway.md, "Policy". What the gateway would do for a message: kakitome gateway explain.');

  const show = policy.command('show').description('Show the settings set at every level, or at one (--domain, --address); with --for ADDRESS, the policy in force for that address with the level that set each value.')
    .option('--for <address>', 'the resolved policy of this address (every setting, and where its value comes from)');
  addLevelOptions(show).action(commandAction('policy show', async (o: LevelOpts & { for?: string }) => {
    const ref = await levelOf(o);
    return withCertificateStore(o, async (store) => {
      const snap = await (await directory(store)).load();
      const [{ describeLevel, formatPolicyDocument, settingsAt }, { describeSource, resolvePolicy }, { SETTING_NAMES }] = await Promise.all([import('../../policy/policy-levels.ts'), import('../../policy/resolve-policy.ts'), import('../../policy/policy-settings.ts')]);
      if (o.for !== undefined) {
        const r = resolvePolicy(snap.levels, o.for);
        const settings = Object.fromEntries(SETTING_NAMES.map((n) => [n, { value: r.settings[n], source: describeSource(r.sources[n]) }]));
        printResult(o, { for: r.owner, settings }, () => SETTING_NAMES.map((n) => `${n.padEnd(26)} ${JSON.stringify(r.settings[n])}  (${describeSource(r.sources[n])})`));
        return 0;
      }
      if (o.domain !== undefined || o.address !== undefined) {
        const s = settingsAt(snap.levels, ref);
        printResult(o, { level: ref.kind, name: ref.name, settings: s }, () => [`${describeLevel(ref)}:`, ...Object.entries(s).map(([k, v]) => `  ${k} ${JSON.stringify(v)}`)]);
        return 0;
      }
      const text = formatPolicyDocument(snap.levels);
      printResult(o, JSON.parse(text), () => [text.trimEnd()]);
      return 0;
    });
  }));

  const set = policy.command('set <setting> <value...>').description('Set a setting at the global level, or at a domain\'s or an address\'s. true/false (or on/off) for switches; one word for a choice or a number; for a list, each element as a word (policy set subjectTriggers "[secure]" "[暗号化]"). A wrong value is refused, naming the setting and what it must be.');
  addLevelOptions(set).action((setting: string, words: string[], o: LevelOpts) => commandAction('policy set', async () => {
    const ref = await levelOf(o);
    const [{ describeLevel }, { settingFromWords }] = await Promise.all([import('../../policy/policy-levels.ts'), import('../../policy/policy-settings.ts')]);
    const value = settingFromWords(setting, words, `policy set ${setting}${ref.kind === 'global' ? '' : ` (${describeLevel(ref)})`}`, ref.kind === 'global');
    return withCertificateStore(o, async (store) => {
      await (await directory(store)).set(ref, { [setting]: value });
      printResult(o, { status: 'ok', level: ref.kind, name: ref.name, setting, value }, () => [`${describeLevel(ref)}: ${setting} = ${JSON.stringify(value)}`]);
      return 0;
    });
  })(o));

  const unset = policy.command('unset <setting...>').description('Remove settings from a level: the value of the level above applies again.');
  addLevelOptions(unset).action((settings: string[], o: LevelOpts) => commandAction('policy unset', async () => {
    const ref = await levelOf(o);
    const [{ describeLevel }, { requireSettingName }] = await Promise.all([import('../../policy/policy-levels.ts'), import('../../policy/policy-settings.ts')]);
    const names = settings.map((n) => requireSettingName(n, 'policy unset'));
    return withCertificateStore(o, async (store) => {
      const removed = await (await directory(store)).unset(ref, names);
      printResult(o, { status: 'ok', level: ref.kind, name: ref.name, removed }, () => [`${describeLevel(ref)}: ${removed} of ${names.length} setting(s) were set there and are removed.`]);
      return 0;
    });
  })(o));

  const imp = policy.command('import <file>').description('Import a policy file ({"global": {...}, "domains": {...}, "addresses": {...}}, or the global settings alone): each part the file carries replaces that part of the store\'s policy (or, with --merge, is set over it). A file with an error imports nothing.')
    .option('--merge', 'set the file\'s settings over the stored ones instead of replacing the parts it carries');
  addStoreOptions(imp).action((file: string, o: StoreCliOptions & { merge?: boolean }) => commandAction('policy import', async () => {
    const { readPolicyFile } = await import('../../gateway/gateway-policy.ts');
    const doc = await readPolicyFile(file, 'policy import');
    return withCertificateStore(o, async (store) => {
      const changed = await (await directory(store)).import(doc, { merge: o.merge === true, source: file });
      printResult(o, { status: 'ok', changed }, () => [changed ? `Imported ${file}.` : `${file}: the store already holds this policy; nothing changed.`]);
      return 0;
    });
  })(o));

  const exp = policy.command('export').description('Print every level as a policy file (what import reads).')
    .option('-o, --out <file>', 'write it to FILE instead of standard output');
  exp.option('--home <dir>', 'Kakitome home (default: $KAKITOME_HOME or ~/.kakitome)').option('--database-url <url>', 'postgres://... to use PostgreSQL (default: $KAKITOME_DATABASE_URL, else SQLite in the home)');
  exp.action(commandAction('policy export', async (o: StoreCliOptions & { out?: string }) => withCertificateStore(o, async (store) => {
    const { formatPolicyDocument } = await import('../../policy/policy-levels.ts');
    const text = formatPolicyDocument((await (await directory(store)).load()).levels);
    await writeOutput(o.out, Buffer.from(text, 'utf8'));
    return 0;
  })));
}
