/**
 * `kakitome gateway`: the S/MIME gateway behind Postfix (docs/gateway.md). Only
 * the options live here; the gateway is src/gateway, loaded when the command runs.
 */
import type { Command } from 'commander';
import { KakitomeError } from '../../errors.ts';
import type { GatewayCliOptions } from '../../gateway/gateway-config.ts';
import { collect, commandAction } from './message-options.ts';
import { addStoreLocationOptions, locateMessageStore, masterKeyPassphrase } from './store-options.ts';

export function register(program: Command): void {
  const cmd = program
    .command('gateway')
    .summary('run the S/MIME gateway: Postfix content filter that signs, encrypts, decrypts and verifies')
    .description('Receive mail from Postfix\'s after-queue content filter, sign and encrypt outbound mail, decrypt, verify and label inbound mail (Authentication-Results), and relay it to the next hop. Answers 250 only after the next hop accepted; every failure is 4xx so Postfix keeps the message. Runs until SIGTERM; SIGHUP reloads the policy.')
    .option('--listen <host:port>', 'where Postfix\'s content filter connects, e.g. 127.0.0.1:10025')
    .option('--next-hop <host:port>', 'Postfix\'s reinjection listener, e.g. 127.0.0.1:10026')
    .option('--domain <domain>', 'a mail domain of this organisation (repeatable): recipients there are inbound, senders there outbound', collect)
    .option('--authserv-id <name>', 'this gateway\'s name in Authentication-Results (default: the host name)')
    .option('--policy <file>', 'policy file (JSON; see docs/gateway.md), reloaded on SIGHUP')
    .option('--metrics <host:port>', 'serve /metrics (Prometheus) and /healthz over HTTP here')
    .option('--lmtp', 'speak LMTP on --listen: one reply per recipient (Postfix: lmtp:[HOST]:PORT as the content filter)');
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
    const { runGateway } = await import('../../gateway/run-gateway.ts');
    const { openStore } = await import('../../store/open-store.ts');
    return runGateway(config, () => openStore({ ...location, actor: 'gateway', masterKeyPassphrase }));
  }));
}
