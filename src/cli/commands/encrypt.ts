/**
 * `kakitome encrypt`: one envelope for all --to recipients (RFC 8551 3.3).
 * Default content encryption AES-256-GCM (authEnveloped-data, RFC 5083/5084);
 * CBC only on request, for recipients that cannot read GCM. With --sign-cert and
 * --sign-key the message is signed first, then encrypted.
 */
import { Option, type Command } from 'commander';
import { KakitomeError } from '../../errors.ts';
import { isStdio } from '../io.ts';
import type { EncryptJobOptions } from '../jobs/encrypt-job.ts';
import { resolvePassSpec } from '../pass-spec.ts';
import { runMessageCommand } from '../run-message-command.ts';
import { addMessageIo, collect, commandAction, ioOf, type MessageIoOptions } from './message-options.ts';

export const CIPHERS = ['aes-128-gcm', 'aes-256-gcm', 'chacha20-poly1305', 'aes-128-cbc', 'aes-256-cbc'] as const;
export type CipherChoice = (typeof CIPHERS)[number];

interface EncryptCliOptions extends MessageIoOptions {
  to?: string[];
  cipher: CipherChoice;
  oaep?: boolean;
  signCert?: string;
  signKey?: string;
  pass?: string;
}

export function register(program: Command): void {
  const cmd = program
    .command('encrypt')
    .summary('encrypt a message to one or more recipients')
    .description('Encrypt a whole message into one application/pkcs7-mime envelope for every --to recipient. Include your own certificate as a recipient to keep your Sent copy readable. The outer Subject is replaced and the real headers travel inside (RFC 9788).')
    .option('--to <cert>', 'recipient certificate, PEM or DER (repeatable; a PEM bundle adds every certificate in it)', collect)
    .addOption(new Option('--cipher <name>', 'content encryption; GCM and ChaCha20-Poly1305 are authenticated, CBC is not (use it only for recipients that cannot read GCM, e.g. NSS/Thunderbird < 115, gpgsm 2.2)').choices(CIPHERS).default('aes-256-gcm'))
    .option('--oaep', 'RSA recipients: RSAES-OAEP with SHA-256 instead of PKCS#1 v1.5 (not read by NSS or gpgsm 2.2)')
    .option('--sign-cert <file>', 'sign first with this certificate (needs --sign-key)')
    .option('--sign-key <file>', 'private key for --sign-cert')
    .option('--pass <spec>', 'passphrase of an encrypted --sign-key: pass:TEXT, env:VAR, file:PATH, fd:N or stdin');
  addMessageIo(cmd, { in: 'message to encrypt', out: 'encrypted message' });
  cmd.addHelpText('after', `
Examples:
  kakitome encrypt --to bob.pem --to alice.pem -i draft.eml -o sealed.eml
  kakitome encrypt --to bob.pem --cipher aes-128-cbc --oaep < draft.eml > sealed.eml
  kakitome encrypt --to bob.pem --sign-cert alice.pem --sign-key alice.key -i draft.eml -o signed-sealed.eml`);
  cmd.action(commandAction('encrypt', async (opts: EncryptCliOptions) => {
    const to = opts.to ?? [];
    if (to.length === 0) throw new KakitomeError('INVALID_ARGUMENT', 'encrypt needs at least one recipient: --to CERT (repeatable).');
    if ((opts.signCert === undefined) !== (opts.signKey === undefined)) {
      throw new KakitomeError('INVALID_ARGUMENT', '--sign-cert and --sign-key go together: give both to sign before encrypting, or neither.');
    }
    const jobOptions: EncryptJobOptions = { to, cipher: opts.cipher, oaep: opts.oaep === true };
    if (opts.signCert !== undefined) jobOptions.signCert = opts.signCert;
    if (opts.signKey !== undefined) jobOptions.signKey = opts.signKey;
    if (opts.pass !== undefined) jobOptions.passphrase = await resolvePassSpec(opts.pass, { stdinInUse: isStdio(opts.in) });
    return runMessageCommand({ command: 'encrypt', jobOptions, ...ioOf(opts) });
  }));
}
