/**
 * `kakitome sign`: multipart/signed (RFC 8551 3.5.3, detached) by default, or an
 * opaque application/pkcs7-mime signed-data with --opaque.
 */
import { Option, type Command } from 'commander';
import { isStdio } from '../io.ts';
import type { SignJobOptions } from '../jobs/sign-job.ts';
import { resolvePassSpec } from '../pass-spec.ts';
import { runMessageCommand } from '../run-message-command.ts';
import { addMessageIo, collect, commandAction, ioOf, type MessageIoOptions } from './message-options.ts';

interface SignCliOptions extends MessageIoOptions {
  cert: string;
  key: string;
  chain?: string[];
  opaque?: boolean;
  hash?: 'sha256' | 'sha384' | 'sha512';
  pss?: boolean;
  pass?: string;
}

export function register(program: Command): void {
  const cmd = program
    .command('sign')
    .summary('sign a message (multipart/signed, or opaque with --opaque)')
    .description('Sign a whole RFC 5322 message. The message headers (From, To, Subject...) stay outside; the content is put in canonical 7-bit form so relays cannot break the signature, and the protected headers go inside (RFC 9788).')
    .requiredOption('--cert <file>', 'signer certificate, PEM or DER (extra certificates in a PEM bundle are sent as the chain)')
    .requiredOption('--key <file>', "signer's private key: PEM or DER; PKCS#8, PKCS#1 or SEC1; encrypted ones need --pass")
    .option('--chain <file>', 'intermediate certificates to include (repeatable)', collect)
    .option('--opaque', 'write an opaque application/pkcs7-mime signed-data instead of multipart/signed (readable only by S/MIME clients)')
    .addOption(new Option('--hash <alg>', 'digest algorithm (default: sha256; fixed by the algorithm for Ed25519/ML-DSA)').choices(['sha256', 'sha384', 'sha512']))
    .option('--pss', 'sign with RSASSA-PSS instead of PKCS#1 v1.5 (RSA keys)')
    .option('--pass <spec>', 'passphrase of an encrypted key: pass:TEXT, env:VAR, file:PATH, fd:N or stdin');
  addMessageIo(cmd, { in: 'message to sign', out: 'signed message' });
  cmd.addHelpText('after', `
Examples:
  kakitome sign --cert alice.pem --key alice.key -i draft.eml -o signed.eml
  kakitome sign --cert alice.pem --key alice.key --chain intermediate.pem --pss --hash sha384 < draft.eml > signed.eml
  KEYPASS=secret kakitome sign --cert alice.pem --key alice-enc.key --pass env:KEYPASS --opaque -i draft.eml -o signed.eml
  kakitome sign --cert alice.pem --key alice.key -i outbox/ -o signed/        # every .eml in outbox/, on all cores
  kakitome sign --cert alice.pem --key alice.key -i outbox.mbox -o signed.mbox`);
  cmd.action(commandAction('sign', async (opts: SignCliOptions) => runMessageCommand({
    command: 'sign',
    jobOptions: await signJobOptions(opts),
    ...ioOf(opts),
  })));
}

async function signJobOptions(opts: SignCliOptions): Promise<SignJobOptions> {
  const o: SignJobOptions = { cert: opts.cert, key: opts.key, chain: opts.chain ?? [], opaque: opts.opaque === true, pss: opts.pss === true };
  if (opts.hash) o.hash = opts.hash;
  if (opts.pass !== undefined) o.passphrase = await resolvePassSpec(opts.pass, { stdinInUse: isStdio(opts.in) });
  return o;
}
