/**
 * `kakitome gateway`: the S/MIME gateway behind Postfix (docs/gateway.md). Only
 * the options live here; the gateway is src/gateway, loaded when the command runs.
 */
import { join } from 'node:path';
import type { Command } from 'commander';
import { KakitomeError } from '../../errors.ts';
import type { GatewayCliOptions } from '../../gateway/gateway-config.ts';
import type { Store } from '../../store/store.ts';
import { collect, commandAction } from './message-options.ts';
import { addStoreLocationOptions, locateMessageStore, masterKeyPassphrase, openLocatedStore, printResult, unlockMessageStore } from './store-options.ts';

interface LocationOpts { home?: string; databaseUrl?: string; json?: boolean }

/**
 * A subcommand's options with the ones its parent `gateway` took: commander gives
 * --home, --database-url, --domain and --authserv-id to the parent, which declares them too,
 * wherever they stand on the line.
 */
function withGatewayOptions<T extends LocationOpts & { domain?: string[]; authservId?: string }>(o: T, cmd: Command): T {
  const parent = cmd.parent?.name() === 'gateway' ? cmd.parent.opts() : cmd.parent?.parent?.opts() ?? {};
  const domain = [...((parent.domain as string[] | undefined) ?? []), ...(o.domain ?? [])];
  const authservId = o.authservId ?? (parent.authservId as string | undefined);
  return { ...o, home: o.home ?? parent.home, databaseUrl: o.databaseUrl ?? parent.databaseUrl, ...(domain.length ? { domain } : {}), ...(authservId ? { authservId } : {}) };
}

/** The gateway's store, opened without the master key (explain, held list) or with it (`unlock`: held release and bounce open held messages). */
async function withGatewayStore<T>(command: string, o: LocationOpts, fn: (store: Store) => Promise<T>, unlock = false): Promise<T> {
  const location = locateMessageStore(o);
  if (location === undefined) throw new KakitomeError('INVALID_ARGUMENT', `gateway ${command} needs the gateway's key store: set KAKITOME_HOME or KAKITOME_DATABASE_URL, or give --home / --database-url.`);
  const store = await openLocatedStore(unlock ? await unlockMessageStore(location) : location);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

function registerExplain(gateway: Command): void {
  const explain = gateway.command('explain')
    .description('What the gateway does with a message from --from to each --to, and which policy level set each value: signed how, encrypted to which certificate (or why not), bounced or held when encryption is required and no valid certificate is known. It runs the gateway\'s own decision on the same store; no private key is opened.')
    .option('--from <address>', 'the envelope sender (and From address)')
    .option('--to <address>', 'a recipient (repeatable)', collect)
    .option('--subject <text>', 'the Subject (subject triggers are looked for in it)')
    .option('--header <field>', 'a further header field, "Name: value" (repeatable; header triggers)', collect)
    .option('--domain <domain>', 'a mail domain of the organisation, as given to the gateway (repeatable)', collect)
    .option('--json', 'print one JSON document on standard output');
  addStoreLocationOptions(explain);
  explain.action((opts: LocationOpts, command: Command) => commandAction('gateway explain', async (o: LocationOpts & { from?: string; to?: string[]; subject?: string; header?: string[]; domain?: string[] }) => {
    if (!o.from || !o.to?.length) throw new KakitomeError('INVALID_ARGUMENT', 'gateway explain needs --from ADDRESS and at least one --to ADDRESS.');
    if (!o.domain?.length) throw new KakitomeError('INVALID_ARGUMENT', 'gateway explain needs the gateway\'s --domain DOMAIN options (which mail is inbound and which outbound depends on them).');
    for (const h of o.header ?? []) if (!/^[!-9;-~]+:/.test(h)) throw new KakitomeError('INVALID_ARGUMENT', `--header ${JSON.stringify(h)}: give "Name: value".`);
    const [{ normalizeDomain }, { explainDecision, formatExplanation }, { createGatewayContext }, { PolicyDirectory }] = await Promise.all([
      import('../../gateway/mail-domain.ts'), import('../../gateway/explain-decision.ts'), import('../../gateway/gateway-context.ts'), import('../../store/policy-directory.ts'),
    ]);
    const domains = new Set(o.domain.map(normalizeDomain));
    return withGatewayStore('explain', o, async (store) => {
      const ctx = await createGatewayContext(store, await new PolicyDirectory(store).load(), 'explain', domains, { openKeys: false });
      const e = await explainDecision(ctx, { from: o.from!, to: o.to!, ...(o.subject !== undefined ? { subject: o.subject } : {}), ...(o.header ? { headers: o.header } : {}) });
      printResult(o, e, () => formatExplanation(e));
      return 0;
    });
  })(withGatewayOptions(opts, command)));
}

function registerHeld(gateway: Command): void {
  const held = gateway.command('held').summary('messages policy held: list, release, bounce')
    .description('Messages held because policy requires encryption and a recipient had no valid certificate (missingCertificate: hold), or because inbound content was encrypted without authentication and nobody trusted vouches for it (unauthenticatedEncryption: hold). They stay in the store until released (sent again through the mail system, where policy decides anew) or bounced (a delivery status notification to the sender).');
  const list = held.command('list').description('List held messages (id, when, sender, recipients, size, why; never the content).').option('--json', 'print one JSON document on standard output');
  addStoreLocationOptions(list).action((opts: LocationOpts, command: Command) => commandAction('gateway held list', async (o: LocationOpts) => withGatewayStore('held list', o, async (store) => {
    const { HeldMessages } = await import('../../store/held-messages.ts');
    const all = await new HeldMessages(store).list();
    printResult(o, { held: all.map((h) => ({ ...h, heldAt: h.heldAt.toISOString() })) }, () => all.map((h) => `${h.id}  ${h.heldAt.toISOString()}  ${h.sender} -> ${h.recipients.join(', ')}  ${h.size} bytes  ${h.reasonCode}: ${h.reason}`));
    return 0;
  }))(withGatewayOptions(opts, command)));
  for (const [action, text] of [['release', 'Send held messages again, with their envelope, to --via (Postfix\'s smtpd): they pass through the gateway again and policy decides anew (import the recipient\'s certificate first). A message held for unauthenticated encryption (UNAUTH_ENC) is delivered the way --as says, made here and labelled, and --via is then the gateway\'s next hop (Postfix\'s reinjection listener). Removed from the store only once --via accepted them.'], ['bounce', 'Return held messages to their senders: a delivery status notification (RFC 3464) saying why, sent to --via with the null sender, as the sender\'s DSN requests held with it ask (recipients whose NOTIFY asks for no failure notice are left out; when none is left, or the message has the null sender, none is sent and the message is removed all the same). Removed from the store only once --via accepted it.']] as const) {
    const cmd = held.command(`${action} <id...>`).description(text)
      .option('--via <host:port>', 'where to send it: Postfix\'s smtpd, e.g. 127.0.0.1:25 (a release --as: the reinjection listener, e.g. 127.0.0.1:10026)')
      .option('--name <name>', 'this host\'s name (EHLO, the DSN\'s Reporting-MTA; default: the host name)');
    if (action === 'release') {
      cmd.option('--as <form>', 'a message held for unauthenticated encryption (UNAUTH_ENC) only, and required for it: encrypted (still encrypted, attached under a notice) or decrypted (opened, every link, image and style removed, under a warning)')
        .option('--authserv-id <name>', 'with --as: the name its Authentication-Results field gives, as the gateway\'s --authserv-id (default: the host name)');
    }
    cmd.option('--json', 'print one JSON document on standard output');
    addStoreLocationOptions(cmd).action((ids: string[], opts: LocationOpts & { via?: string; name?: string; as?: string; authservId?: string }, command: Command) => commandAction(`gateway held ${action}`, async (o: typeof opts) => {
      if (!o.via) throw new KakitomeError('INVALID_ARGUMENT', `gateway held ${action} needs --via HOST:PORT: Postfix's smtpd (e.g. 127.0.0.1:25).`);
      if (o.as !== undefined && o.as !== 'decrypted' && o.as !== 'encrypted') throw new KakitomeError('INVALID_ARGUMENT', `--as ${JSON.stringify(o.as)}: give --as encrypted or --as decrypted.`);
      const [{ parseHostPort }, m] = await Promise.all([import('../../smtp/parse-host-port.ts'), import('../../gateway/release-held-message.ts')]);
      const via = parseHostPort('--via', o.via);
      return withGatewayStore(`held ${action}`, o, async (store) => {
        const done: Array<{ id: string; outcome: string }> = [];
        for (const id of ids) {
          // A large held message waits where the gateway spools (spool/ beside the store), while its delivered form is made.
          const home = locateMessageStore(o)?.home;
          const options = { via, ...(o.name ? { name: o.name } : {}), ...(o.as ? { as: o.as as 'decrypted' | 'encrypted' } : {}), ...(o.authservId ? { authservId: o.authservId } : {}), ...(home ? { spoolDir: join(home, 'spool') } : {}) };
          done.push({ id, outcome: action === 'release' ? await m.releaseHeldMessage(store, id, options) : ((await m.bounceHeldMessage(store, id, options)) === 'sent' ? 'bounced' : 'bounced-quietly') });
        }
        const words: Record<string, string> = { released: 'released', 'held-again': 'sent, and held again by the gateway: its recipient still has no valid certificate', bounced: 'bounced to its sender', 'bounced-quietly': 'bounced, with no delivery status notification: its sender asked for none (NOTIFY), or it has the null sender' };
        printResult(o, { status: 'ok', results: done }, () => done.map((d) => `${d.id}: ${words[d.outcome]}.`));
        return 0;
      }, true);
    })(withGatewayOptions(opts, command)));
  }
}

export function register(program: Command): void {
  const cmd = program
    .command('gateway')
    .summary('run the S/MIME gateway: Postfix content filter that signs, encrypts, decrypts and verifies')
    .description('Receive mail from Postfix as its content filter (after-queue, or before-queue proxy: docs/gateway.md), sign and encrypt outbound mail, decrypt, verify and label inbound mail (Authentication-Results), and relay it to the next hop. Answers 250 only after the next hop accepted; every failure is 4xx so Postfix keeps the message. Runs until SIGTERM; SIGHUP reloads the policy. Subcommands: explain (what it does with a message, and why), held (messages policy held).')
    .option('--listen <host:port>', 'where Postfix\'s content filter connects, e.g. 127.0.0.1:10025')
    .option('--next-hop <host:port>', 'Postfix\'s reinjection listener, e.g. 127.0.0.1:10026')
    .option('--domain <domain>', 'a mail domain of this organisation (repeatable): recipients there are inbound, senders there outbound', collect)
    .option('--authserv-id <name>', 'this gateway\'s name in Authentication-Results (default: the host name)')
    .option('--policy <file>', 'policy file (JSON; see docs/gateway.md) imported into the store at start and on SIGHUP')
    .option('--metrics <host:port>', 'serve /metrics (Prometheus) and /healthz over HTTP here')
    .option('--lmtp', 'speak LMTP on --listen: one reply per recipient (Postfix: lmtp:[HOST]:PORT as the content filter)')
    .option('--dns-server <ip[:port]>', 'DNS server for inbound DKIM, SPF and DMARC checks (policy senderAuthentication; repeatable; default: the system\'s resolvers)', collect)
    .option('--workers <n>', 'worker threads that sign, encrypt, decrypt and verify (0: on the main thread; default: one per CPU but one)')
    .option('--spool-dir <dir>', 'where messages over the policy\'s streamAboveBytes wait while they stream (default: spool/ in the key store home, else the temporary directory)');
  addStoreLocationOptions(cmd);
  cmd.addHelpText('after', `
Keys, certificates and trust anchors come from the key store ($KAKITOME_HOME or
$KAKITOME_DATABASE_URL). Logs: one JSON line per message on standard error.

Example (Postfix: content_filter = kakitome:[127.0.0.1]:10025, reinjection on 10026):
  kakitome gateway --listen 127.0.0.1:10025 --next-hop 127.0.0.1:10026 --domain example.com --authserv-id mail.example.com`);
  cmd.action(commandAction('gateway', async (opts: GatewayCliOptions & { home?: string; databaseUrl?: string }) => {
    const { parseGatewayConfig } = await import('../../gateway/gateway-config.ts');
    const config = parseGatewayConfig(opts);
    const location = locateMessageStore(opts);
    if (location === undefined) throw new KakitomeError('INVALID_ARGUMENT', 'gateway needs a key store: set KAKITOME_HOME (kakitome init) or KAKITOME_DATABASE_URL, or give --home / --database-url.');
    // Large messages are spooled beside the store, on storage the administrator already protects.
    if (config.spoolDir === undefined && location.home) config.spoolDir = join(location.home, 'spool');
    const { runGateway } = await import('../../gateway/run-gateway.ts');
    const { resolveMasterKey } = await import('../../store/open-store.ts');
    // Read once here: the crypto workers open the store with it (a passphrase is asked once, not per worker).
    const masterKey = await resolveMasterKey({ ...location, masterKeyPassphrase });
    return runGateway(config, { ...(location.home ? { home: location.home } : {}), ...(location.databaseUrl ? { databaseUrl: location.databaseUrl } : {}), masterKey });
  }));
  registerExplain(cmd);
  registerHeld(cmd);
}
