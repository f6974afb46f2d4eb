/**
 * `kakitome decrypt`: opens an enveloped or authEnveloped message with the
 * recipient's key (--cert/--key, --p12, or the key store) and, when the content was signed inside,
 * verifies that signature too and reports it. Exit 0 when decrypted and (if signed)
 * valid and trusted; 1 when it cannot be decrypted or the inner signature fails.
 * The decrypted message is written when decryption succeeded and no signature
 * over it fails; a valid signature whose certificate is not trusted (e.g. expired)
 * still lets it be written (exit 1): an archive must stay readable. CBC content
 * (enveloped-data) is opened only under a trusted signature of the sender made
 * inside the encryption, or with --allow-unauthenticated (EFAIL).
 */
import type { Command } from 'commander';
import { KakitomeError } from '../../errors.ts';
import { isStdio } from '../io.ts';
import type { DecryptJobOptions } from '../jobs/decrypt-job.ts';
import { resolvePassSpec } from '../pass-spec.ts';
import { runMessageCommand } from '../run-message-command.ts';
import { addTrustOptions, trustOptionsOf, type VerifyingCliOptions } from './trust-options.ts';
import { addStoreLocationOptions, locateMessageStore } from './store-options.ts';
import { addMessageIo, commandAction, ioOf, type MessageIoOptions } from './message-options.ts';

interface DecryptCliOptions extends MessageIoOptions, VerifyingCliOptions {
  cert?: string;
  key?: string;
  p12?: string;
  pass?: string;
  allowUnauthenticated?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command('decrypt')
    .summary('decrypt a message (and verify it when signed inside)')
    .description('Decrypt an application/pkcs7-mime enveloped-data or authEnveloped-data message with your key: --cert and --key, --p12, or the key store (found by the envelope\'s recipient identifiers). When the decrypted content is signed, the signature and signer are verified too (trust anchors from --ca and the key store) and reported. Every decryption failure gives the same DECRYPT_FAILED report, deliberately.')
    .option('--cert <file>', 'your certificate (the recipient), PEM or DER')
    .option('--key <file>', 'your private key: PEM or DER; PKCS#8, PKCS#1 or SEC1')
    .option('--p12 <file>', 'your key and certificate in a PKCS#12 (.p12/.pfx) file, instead of --cert/--key')
    .option('--pass <spec>', 'passphrase of the key or .p12: file:PATH, fd:N, env:VAR, stdin or prompt (pass:TEXT is visible in ps)')
    .option('--json', 'print the structured verdict as JSON on stdout (then the message is written only to -o FILE)')
    .option('--allow-unauthenticated', 'open CBC-encrypted (enveloped-data) content that no trusted signature of the sender covers; it may have been altered on the way (EFAIL), and the report says so');
  addTrustOptions(cmd, 'trust anchors for a signature inside (repeatable; file or directory), in addition to the key store\'s trusted CAs');
  cmd.option('--no-harvest', "key store: do not keep a trusted inner signer's certificate and capabilities");
  addStoreLocationOptions(cmd);
  addMessageIo(cmd, { in: 'encrypted message', out: 'decrypted message' });
  cmd.addHelpText('after', `
Exit status: 0 decrypted (and, when signed inside, valid and trusted); 1 cannot be decrypted or the inner signature fails; 2 usage error or malformed input, or the message body is not encrypted (encrypted parts inside other parts are never opened: EFAIL).

CBC-encrypted mail (enveloped-data) has no integrity check: anyone on its way can
change what it decrypts to (EFAIL). It is opened only when a trusted signature of
the From address, made inside the encryption, covers it; otherwise, and whenever
it cannot be decrypted, decrypt fails with UNAUTH_ENC and writes nothing. Ask the
sender to use AES-GCM or to sign, or open it with --allow-unauthenticated,
knowing that what it shows may have been altered.

Without --cert/--key/--p12, the key store ($KAKITOME_HOME, --home or --database-url)
finds the key by the envelope's recipient identifiers, whatever the certificate's
expiry: mail encrypted before a renewal still opens.

Examples:
  kakitome decrypt -i sealed.eml -o plain.eml                     # key store
  kakitome decrypt --cert bob.pem --key bob.key -i sealed.eml -o plain.eml
  kakitome decrypt --p12 bob.p12 --pass env:P12PASS --ca ca.pem --json -i sealed.eml -o plain.eml
  kakitome decrypt --cert bob.pem --key bob.key -i archive.mbox -o readable.mbox`);
  cmd.action(commandAction('decrypt', async (opts: DecryptCliOptions) => {
    const pair = opts.cert !== undefined || opts.key !== undefined;
    if (pair && opts.p12 !== undefined) throw new KakitomeError('INVALID_ARGUMENT', 'Give either --cert and --key, or --p12, not both.');
    if (pair && (opts.cert === undefined || opts.key === undefined)) throw new KakitomeError('INVALID_ARGUMENT', '--cert and --key go together: give both.');
    const store = locateMessageStore(opts);
    if (!pair && opts.p12 === undefined && store === undefined) {
      throw new KakitomeError('INVALID_ARGUMENT', 'decrypt needs your key: --cert FILE --key FILE, --p12 FILE, or a key store that holds it (kakitome init; KAKITOME_HOME or --home).');
    }
    const jobOptions: DecryptJobOptions = { trust: trustOptionsOf(opts), ...(store ? { store, harvest: opts.harvest } : {}) };
    if (opts.cert !== undefined) jobOptions.cert = opts.cert;
    if (opts.key !== undefined) jobOptions.key = opts.key;
    if (opts.p12 !== undefined) jobOptions.p12 = opts.p12;
    if (opts.allowUnauthenticated) jobOptions.allowUnauthenticated = true;
    if (opts.pass !== undefined) jobOptions.passphrase = await resolvePassSpec(opts.pass, { stdinInUse: isStdio(opts.in) });
    return runMessageCommand({ command: 'decrypt', jobOptions, json: opts.json === true, ...ioOf(opts) });
  }));
}
