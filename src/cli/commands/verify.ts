/**
 * `kakitome verify`: checks every signature of a message and the signer's trust,
 * prints the verdict, and with -o writes the message with the signature layer
 * removed (the signed content under the outer headers). Exit 0 only when the
 * signature is valid AND the signer trusted; OUT is written only then.
 */
import type { Command } from 'commander';
import type { VerifyJobOptions } from '../jobs/verify-job.ts';
import { runMessageCommand } from '../run-message-command.ts';
import { addTrustOptions, trustOptionsOf } from './trust-options.ts';
import { addMessageIo, commandAction, ioOf, type MessageIoOptions } from './message-options.ts';

interface VerifyCliOptions extends MessageIoOptions {
  ca?: string[];
  revocation: string;
  validityClock: string;
  json?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command('verify')
    .summary('verify a signed message and its signer')
    .description('Verify every signature of a signed message (multipart/signed or opaque, x-pkcs7 types too), the signer\'s certificate path to a --ca anchor, revocation, and that the signer is the From address. Prints a short report on stderr (or the verdict as JSON on stdout with --json); -o writes the message with the signature layer removed, only when the verdict is success.')
    .option('--json', 'print the structured verdict as JSON on stdout (then the message is written only to -o FILE)');
  addTrustOptions(cmd, 'trust anchor certificates: a PEM/DER file or a directory of them (repeatable); without --ca no signer is trusted');
  addMessageIo(cmd, { in: 'signed message', out: 'the message without its signature layer' });
  cmd.addHelpText('after', `
Exit status: 0 valid and trusted; 1 invalid, untrusted or unsigned; 2 usage error or malformed input.

Examples:
  kakitome verify --ca ca.pem -i signed.eml
  kakitome verify --ca /etc/kakitome/anchors/ --json -i signed.eml | jq .signers[0].identity
  kakitome verify --ca ca.pem -i signed.eml -o content.eml
  kakitome verify --ca ca.pem -i inbox/ -o verified/ --json > report.jsonl   # JSON Lines for a batch`);
  cmd.action(commandAction('verify', async (opts: VerifyCliOptions) => runMessageCommand({
    command: 'verify',
    jobOptions: trustOptionsOf(opts) satisfies VerifyJobOptions,
    json: opts.json === true,
    ...ioOf(opts),
  })));
}
