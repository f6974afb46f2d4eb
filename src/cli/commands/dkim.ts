/**
 * `kakitome dkim add|import|list|record|rotate|retire`: DKIM signing keys per
 * domain (issues 10 and 13). The rules live in src/store/dkim-key-directory.ts;
 * these commands map options to it and print the DNS record to publish. Adding or
 * importing a key seals it under the master key; listing, rotating and retiring
 * open no key and ask for no master key.
 */
import { Option, type Command } from 'commander';
import { KakitomeError } from '../../errors.ts';
import type { DkimKeyDirectory, DkimKeyRecord } from '../../store/dkim-key-directory.ts';
import type { Store } from '../../store/store.ts';
import { readFileBounded } from '../io.ts';
import { resolvePassSpec } from '../pass-spec.ts';
import { commandAction } from './message-options.ts';
import { addStoreOptions, printResult, withCertificateStore, withStore, type StoreCliOptions } from './store-options.ts';

interface SelectorOpts extends StoreCliOptions { selector: string }
interface AddOpts extends SelectorOpts { algorithm: 'rsa-2048' | 'ed25519' }
interface ImportOpts extends SelectorOpts { key: string; pass?: string }

async function directory(store: Store): Promise<DkimKeyDirectory> {
  const { DkimKeyDirectory } = await import('../../store/dkim-key-directory.ts');
  return new DkimKeyDirectory(store);
}

function keyJson(k: DkimKeyRecord) {
  return {
    domain: k.domain, selector: k.selector, type: k.type, bits: k.bits, status: k.status, source: k.source,
    createdAt: k.createdAt.toISOString(), activatedAt: k.activatedAt?.toISOString() ?? null, retiredAt: k.retiredAt?.toISOString() ?? null,
    dns: k.dns,
  };
}

function recordLines(k: DkimKeyRecord): string[] {
  return [`Publish this TXT record in the DNS zone of ${k.domain}:`, '', k.dns.zoneLine, '', `(name ${k.dns.name}, text: ${k.dns.value})`];
}

function statusLine(k: DkimKeyRecord): string {
  if (k.status === 'active') return `DKIM key ${k.selector} for ${k.domain} (${k.type} ${k.bits}) is active: publish its record first; it signs where DKIM is asked for (gateway policy "dkim", dkim=true on POST /api/v1/sign).`;
  return `DKIM key ${k.selector} for ${k.domain} (${k.type} ${k.bits}) is pending: publish its record, wait for the old record's TTL, then make it sign with kakitome dkim rotate ${k.domain} --selector ${k.selector}.`;
}

function addSelector(cmd: Command): Command {
  return cmd.requiredOption('--selector <name>', 'the selector (s=): the key is published at SELECTOR._domainkey.DOMAIN; use a new one for every key, e.g. 2026a');
}

export function register(program: Command): void {
  const dkim = program.command('dkim').summary('DKIM signing keys per domain: add, import, list, record, rotate, retire')
    .description('DKIM keys for the domains whose mail Kakitome signs (the gateway\'s outbound mail after S/MIME, the signing service with dkim=true). Keys are sealed under the master key like every private key. A domain has at most one active key per type (RSA, Ed25519); both sign when both are active.');

  const add = addSelector(dkim.command('add <domain>').description('Make a new DKIM key for the domain and print the DNS TXT record to publish. The domain\'s first key of a type is active; a later one is pending until `dkim rotate`.'))
    .addOption(new Option('--algorithm <alg>', 'key type: rsa-2048 (read by every verifier) or ed25519 (RFC 8463; add it beside an RSA key, many receivers ignore it alone)').choices(['rsa-2048', 'ed25519']).default('rsa-2048'));
  addStoreOptions(add).action((domain: string, o: AddOpts) => commandAction('dkim add', async () => withStore(o, async (store) => {
    const k = await (await directory(store)).addKey(domain, o.selector, { algorithm: o.algorithm });
    printResult(o, { status: 'ok', key: keyJson(k) }, () => [...recordLines(k), '', statusLine(k)]);
    return 0;
  }))(o));

  const imp = addSelector(dkim.command('import <domain>').description('Import an existing DKIM private key (PEM or DER: PKCS#8, PKCS#1; RSA 2048 to 4096 bits or Ed25519), e.g. from OpenDKIM, under the selector it is published at.'))
    .requiredOption('--key <file>', 'the private key file')
    .option('--pass <spec>', 'its passphrase, if encrypted: file:PATH, fd:N, env:VAR, stdin or prompt');
  addStoreOptions(imp).action((domain: string, o: ImportOpts) => commandAction('dkim import', async () => {
    const pass = o.pass === undefined ? undefined : await resolvePassSpec(o.pass);
    const { loadPrivateKey } = await import('../../keys/private-key.ts');
    const key = loadPrivateKey(await readFileBounded(o.key, `--key ${o.key}`), pass);
    return withStore(o, async (store) => {
      const k = await (await directory(store)).addKey(domain, o.selector, { key, source: o.key });
      printResult(o, { status: 'ok', key: keyJson(k) }, () => [...recordLines(k), '', statusLine(k)]);
      return 0;
    });
  })(o));

  const list = dkim.command('list [domain]').description('List DKIM keys (all domains, or one) with their status; the private keys stay sealed.');
  addStoreOptions(list).action((domain: string | undefined, o: StoreCliOptions) => commandAction('dkim list', async () => withCertificateStore(o, async (store) => {
    const all = await (await directory(store)).listKeys(domain);
    printResult(o, { keys: all.map(keyJson) }, () => all.map((k) => `${k.domain}  ${k.selector}  ${k.type} ${k.bits}  ${k.status}  ${k.createdAt.toISOString().slice(0, 10)}  ${k.dns.name}`));
    return 0;
  }))(o));

  const record = addSelector(dkim.command('record <domain>').description('Print the DNS TXT record of a DKIM key again.'));
  addStoreOptions(record).action((domain: string, o: SelectorOpts) => commandAction('dkim record', async () => withCertificateStore(o, async (store) => {
    const k = await (await directory(store)).findKey(domain, o.selector);
    if (!k) throw new KakitomeError('NOT_FOUND', `No DKIM key ${o.selector} for ${domain} (kakitome dkim list shows the keys).`);
    printResult(o, { key: keyJson(k) }, () => recordLines(k));
    return 0;
  }))(o));

  const rotate = addSelector(dkim.command('rotate <domain>').description('Make a pending key sign for its domain, retiring the active key of the same type. Publish the new record before, and keep the old one published a few days for mail in transit.'));
  addStoreOptions(rotate).action((domain: string, o: SelectorOpts) => commandAction('dkim rotate', async () => withCertificateStore(o, async (store) => {
    const { activated, retired } = await (await directory(store)).activateKey(domain, o.selector);
    printResult(o, { status: 'ok', key: keyJson(activated), retired: retired.map(keyJson) }, () => [
      `DKIM key ${activated.selector} for ${activated.domain} now signs.`,
      ...retired.map((r) => `Retired ${r.selector}: keep ${r.dns.name} published a few days, then remove it.`),
    ]);
    return 0;
  }))(o));

  const retire = addSelector(dkim.command('retire <domain>').description('Stop a DKIM key from ever signing again. Without another active key of its type the domain\'s mail is not DKIM-signed with that type.'));
  addStoreOptions(retire).action((domain: string, o: SelectorOpts) => commandAction('dkim retire', async () => withCertificateStore(o, async (store) => {
    const k = await (await directory(store)).retireKey(domain, o.selector);
    printResult(o, { status: 'ok', key: keyJson(k) }, () => [`DKIM key ${k.selector} for ${k.domain} is retired: keep ${k.dns.name} published a few days, then remove it.`]);
    return 0;
  }))(o));
}
