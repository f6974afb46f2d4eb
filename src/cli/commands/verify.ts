/**
 * `kakitome verify`: checks every signature of a message and the signer's trust,
 * prints the verdict, and with -o writes the message with the signature layer
 * removed (the signed content under the outer headers). Exit 0 only when the
 * signature is valid AND the signer trusted; OUT is written only then.
 */
import type { Command } from 'commander';
import type { VerifyJobOptions } from '../jobs/verify-job.ts';
import { runMessageCommand } from '../run-message-command.ts';
import { addTrustOptions, trustOptionsOf, type VerifyingCliOptions } from './trust-options.ts';
import { addStoreLocationOptions, locateMessageStore } from './store-options.ts';
import { addMessageIo, commandAction, ioOf, type MessageIoOptions } from './message-options.ts';

type VerifyCliOptions = MessageIoOptions & VerifyingCliOptions;

export function register(program: Command): void {
  const cmd = program
    .command('verify')
    .summary('verify a signed message and its signer')
    .description('Verify every signature of a signed message (multipart/signed or opaque, x-pkcs7 types too), the signer\'s certificate path to a --ca anchor, revocation, and that the signer is the From address. Prints a short report on stderr (or the verdict as JSON on stdout with --json); -o writes the message with the signature layer removed, only when the verdict is success.')
    .option('--json', 'print the structured verdict as JSON on stdout (then the message is written only to -o FILE)');
  addTrustOptions(cmd, 'trust anchor certificates: a PEM/DER file or a directory of them (repeatable), in addition to the key store\'s trusted CAs; with neither, no signer is trusted');
  cmd.option('--no-harvest', "key store: do not keep a trusted signer's certificate and capabilities");
  addStoreLocationOptions(cmd);
  addMessageIo(cmd, { in: 'signed message', out: 'the message without its signature layer' });
  cmd.addHelpText('after', `
Exit status: 0 valid and trusted; 1 invalid, untrusted or unsigned; 2 usage error or malformed input.

With a key store ($KAKITOME_HOME, --home or --database-url), its trusted CA
certificates are anchors too, and after a trusted verdict the sender's encryption
certificate (the one their encryption key preference names, else the signer's) and
SMIMECapabilities are kept in the store, so that \`kakitome encrypt --to ADDRESS\` can
encrypt to them (--no-harvest to skip). It is kept only if it validates for
encryption on its own, and only for the From address. It never outranks an imported
or trusted certificate, and a new key for an address already known is recorded and
shown as a warning, not used until \`kakitome certs accept\`.

Examples:
  kakitome verify -i signed.eml                        # key store anchors
  kakitome verify --ca ca.pem -i signed.eml
  kakitome verify --ca /etc/kakitome/anchors/ --json -i signed.eml | jq .signers[0].identity
  kakitome verify --ca ca.pem -i signed.eml -o content.eml
  kakitome verify --ca ca.pem -i inbox/ -o verified/ --json > report.jsonl   # JSON Lines for a batch`);
  cmd.action(commandAction('verify', async (opts: VerifyCliOptions) => runMessageCommand({
    command: 'verify',
    jobOptions: verifyJobOptions(opts),
    json: opts.json === true,
    ...ioOf(opts),
  })));
}

function verifyJobOptions(opts: VerifyCliOptions): VerifyJobOptions {
  const store = locateMessageStore(opts);
  return { ...trustOptionsOf(opts), ...(store ? { store, harvest: opts.harvest } : {}) };
}
