/**
 * `kakitome encrypt`: one envelope for all --to recipients (RFC 8551 3.3).
 * Default content encryption AES-256-GCM (authEnveloped-data, RFC 5083/5084);
 * CBC only on request, for recipients that cannot read GCM. With --sign-cert and
 * --sign-key the message is signed first, then encrypted.
 */
import { Option, type Command } from 'commander';
import { existsSync } from 'node:fs';
import { KakitomeError } from '../../errors.ts';
import { isStdio } from '../io.ts';
import type { EncryptJobOptions } from '../jobs/encrypt-job.ts';
import { resolvePassSpec } from '../pass-spec.ts';
import { runMessageCommand } from '../run-message-command.ts';
import { addStoreLocationOptions, locateMessageStore } from './store-options.ts';
import { addTrustOptions, trustOptionsOf } from './trust-options.ts';
import { addMessageIo, collect, commandAction, ioOf, type MessageIoOptions } from './message-options.ts';

export const CIPHERS = ['aes-128-gcm', 'aes-256-gcm', 'chacha20-poly1305', 'aes-128-cbc', 'aes-256-cbc'] as const;
export type CipherChoice = (typeof CIPHERS)[number];

interface EncryptCliOptions extends MessageIoOptions {
  to?: string[];
  cipher?: CipherChoice;
  self: boolean;
  sign?: boolean;
  from?: string;
  home?: string;
  databaseUrl?: string;
  oaep?: boolean;
  signCert?: string;
  signKey?: string;
  pass?: string;
  ca?: string[];
  revocation: string;
  fetchCaIssuers?: string[];
  allowInternalFetch?: string[];
  hideSubject?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command('encrypt')
    .summary('encrypt a message to one or more recipients')
    .description('Encrypt a whole message into one application/pkcs7-mime envelope for every --to recipient. Include your own certificate as a recipient to keep your Sent copy readable. The header fields travel inside too, signed and encrypted (RFC 9788 header protection), and stay readable outside, as clients without header protection (Outlook, Apple Mail, iOS Mail, Gmail) need them; --hide-subject hides the Subject.')
    .option('--to <cert|address>', 'recipient: a certificate file, PEM or DER (a PEM bundle adds every certificate in it), or an address looked up in the key store (repeatable)', collect)
    .addOption(new Option('--cipher <name>', 'content encryption (default: AES-256-GCM; with a key store, the best cipher every recipient is known to read); GCM and ChaCha20-Poly1305 are authenticated, CBC is not (use it only for recipients that cannot read GCM, e.g. NSS/Thunderbird < 115, gpgsm 2.2)').choices(CIPHERS))
    .option('--from <address>', "the sender, for the Sent copy and --sign (default: the message's From address)")
    .option('--no-self', "key store: do not add the sender's own certificate as a recipient (the Sent copy will not be readable)")
    .option('--sign', "key store: sign first as the sender (--from, or the From address)")
    .option('--hide-subject', 'put "[...]" in the outer Subject (RFC 9788 hcp_baseline) and the real Subject at the top of the body (the legacy display element), so that clients without header protection still show it')
    .option('--oaep', 'RSA recipients: RSAES-OAEP with SHA-256 instead of PKCS#1 v1.5 (not read by NSS or gpgsm 2.2)')
    .option('--sign-cert <file>', 'sign first with this certificate (needs --sign-key)')
    .option('--sign-key <file>', 'private key for --sign-cert')
    .option('--pass <spec>', 'passphrase of an encrypted --sign-key: file:PATH, fd:N, env:VAR, stdin or prompt (pass:TEXT is visible in ps)');
  addStoreLocationOptions(cmd);
  addTrustOptions(cmd, 'key store: extra trust anchors for checking the certificates of address recipients (a PEM/DER file or a directory, repeatable)', { forEncryption: true });
  addMessageIo(cmd, { in: 'message to encrypt', out: 'encrypted message' });
  cmd.addHelpText('after', `
An --to argument that contains '@' and is not an existing file is an address: with a
key store ($KAKITOME_HOME, --home or --database-url) it is encrypted to that address's
best current certificate, and the sender's own certificate is added (unless --no-self).
That certificate is validated when it is used: a path to a trust anchor (--ca and the
store's trusted CAs), revocation (--revocation), and the address in the certificate;
one that fails is not encrypted to (CERT_REVOKED, CERT_UNTRUSTED..., exit 1).
A certificate file given to --to is your explicit choice and is not validated.

Examples:
  kakitome encrypt --to bob@example.com -i draft.eml -o sealed.eml             # key store
  kakitome encrypt --to bob@example.com --to carol@example.com --sign -i draft.eml -o sealed.eml
  kakitome encrypt --to bob.pem --to alice.pem -i draft.eml -o sealed.eml
  kakitome encrypt --to bob.pem --hide-subject -i draft.eml -o sealed.eml    # outer Subject "[...]"
  kakitome encrypt --to bob.pem --cipher aes-128-cbc --oaep < draft.eml > sealed.eml
  kakitome encrypt --to bob.pem --sign-cert alice.pem --sign-key alice.key -i draft.eml -o signed-sealed.eml`);
  cmd.action(commandAction('encrypt', async (opts: EncryptCliOptions) => {
    const all = opts.to ?? [];
    if (all.length === 0) throw new KakitomeError('INVALID_ARGUMENT', 'encrypt needs at least one recipient: --to CERT or --to ADDRESS (repeatable).');
    if ((opts.signCert === undefined) !== (opts.signKey === undefined)) {
      throw new KakitomeError('INVALID_ARGUMENT', '--sign-cert and --sign-key go together: give both to sign before encrypting, or neither.');
    }
    if (opts.sign && opts.signCert !== undefined) throw new KakitomeError('INVALID_ARGUMENT', 'Give --sign (key store) or --sign-cert/--sign-key, not both.');
    // A file wins over an address of the same spelling: "bob@example.com.pem" is a file.
    const addresses = all.filter((t) => t.includes('@') && !existsSync(t));
    const files = all.filter((t) => !addresses.includes(t));
    const store = locateMessageStore(opts);
    if (store === undefined && addresses.length > 0) {
      throw new KakitomeError('INVALID_ARGUMENT', `--to ${addresses[0]} is neither a file nor usable as an address: addresses need a key store (kakitome init; KAKITOME_HOME or --home), or give the certificate file.`);
    }
    if (store === undefined && opts.sign) throw new KakitomeError('INVALID_ARGUMENT', '--sign needs a key store (kakitome init); or give --sign-cert and --sign-key.');
    const jobOptions: EncryptJobOptions = { to: files, toAddresses: addresses, oaep: opts.oaep === true, self: opts.self };
    if (opts.cipher !== undefined) jobOptions.cipher = opts.cipher;
    if (opts.hideSubject) jobOptions.hideSubject = true;
    if (store !== undefined) {
      jobOptions.store = store;
      jobOptions.trust = trustOptionsOf(opts);
    }
    if (opts.from !== undefined) jobOptions.from = opts.from;
    if (opts.sign) jobOptions.signFromStore = true;
    if (opts.signCert !== undefined) jobOptions.signCert = opts.signCert;
    if (opts.signKey !== undefined) jobOptions.signKey = opts.signKey;
    if (opts.pass !== undefined) jobOptions.passphrase = await resolvePassSpec(opts.pass, { stdinInUse: isStdio(opts.in) });
    return runMessageCommand({ command: 'encrypt', jobOptions, ...ioOf(opts) });
  }));
}
