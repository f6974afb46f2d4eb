/**
 * `kakitome sign`: multipart/signed (RFC 8551 3.5.3, detached) by default, or an
 * opaque application/pkcs7-mime signed-data with --opaque.
 */
import { Option, type Command } from 'commander';
import { KakitomeError } from '../../errors.ts';
import { isStdio } from '../io.ts';
import type { SignJobOptions } from '../jobs/sign-job.ts';
import { resolvePassSpec } from '../pass-spec.ts';
import { runMessageCommand } from '../run-message-command.ts';
import { addStoreLocationOptions, locateMessageStore } from './store-options.ts';
import { addMessageIo, collect, commandAction, ioOf, type MessageIoOptions } from './message-options.ts';

interface SignCliOptions extends MessageIoOptions {
  cert?: string;
  key?: string;
  p12?: string;
  from?: string;
  home?: string;
  databaseUrl?: string;
  chain?: string[];
  opaque?: boolean;
  hash?: 'sha256' | 'sha384' | 'sha512';
  pss?: boolean;
  pass?: string;
  dkim?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command('sign')
    .summary('sign a message (multipart/signed, or opaque with --opaque)')
    .description('Sign a whole RFC 5322 message. The message headers (From, To, Subject...) stay outside; the content is put in canonical 7-bit form so relays cannot break the signature, and the protected headers go inside (RFC 9788).')
    .option('--cert <file>', 'signer certificate, PEM or DER (extra certificates in a PEM bundle are sent as the chain); with --key, takes precedence over the store')
    .option('--key <file>', "signer's private key: PEM or DER; PKCS#8, PKCS#1 or SEC1; encrypted ones need --pass")
    .option('--p12 <file>', "signer's key, certificate and chain in a PKCS#12 (.p12/.pfx) file, instead of --cert/--key (modern, 3DES or RC2 as Windows and macOS export)")
    .option('--from <address>', "sign as this address with its key, certificate and chain from the key store (default: each message's From address)")
    .option('--chain <file>', 'intermediate certificates to include (repeatable)', collect)
    .option('--opaque', 'write an opaque application/pkcs7-mime signed-data instead of multipart/signed (readable only by S/MIME clients)')
    .addOption(new Option('--hash <alg>', 'digest algorithm (default: sha256; fixed by the algorithm for Ed25519/ML-DSA)').choices(['sha256', 'sha384', 'sha512']))
    .option('--pss', 'sign with RSASSA-PSS instead of PKCS#1 v1.5 (RSA keys)')
    .option('--dkim', 'then DKIM-sign the signed message with the active DKIM keys of its From domain in the key store (kakitome dkim add)')
    .option('--pass <spec>', 'passphrase of an encrypted key or .p12: file:PATH, fd:N, env:VAR, stdin or prompt (pass:TEXT is visible in ps)');
  addStoreLocationOptions(cmd);
  addMessageIo(cmd, { in: 'message to sign', out: 'signed message' });
  cmd.addHelpText('after', `
Without --cert/--key or --p12 the signer comes from the key store ($KAKITOME_HOME, --home or
--database-url): --from ADDRESS, or else the From address of each message.

Examples:
  kakitome sign --from alice@example.com -i draft.eml -o signed.eml      # key store
  kakitome sign -i outbox/ -o signed/                                     # key store, signer = each From
  kakitome sign --cert alice.pem --key alice.key -i draft.eml -o signed.eml
  kakitome sign --p12 alice.pfx --pass prompt -i draft.eml -o signed.eml
  kakitome sign --cert alice.pem --key alice.key --chain intermediate.pem --pss --hash sha384 < draft.eml > signed.eml
  KEYPASS=secret kakitome sign --cert alice.pem --key alice-enc.key --pass env:KEYPASS --opaque -i draft.eml -o signed.eml
  kakitome sign --cert alice.pem --key alice.key -i outbox/ -o signed/        # every .eml in outbox/, on all cores
  kakitome sign --cert alice.pem --key alice.key -i outbox.mbox -o signed.mbox
  kakitome sign --dkim -i draft.eml -o signed.eml                          # key store: S/MIME, then DKIM`);
  cmd.action(commandAction('sign', async (opts: SignCliOptions) => runMessageCommand({
    command: 'sign',
    jobOptions: await signJobOptions(opts),
    ...ioOf(opts),
  })));
}

async function signJobOptions(opts: SignCliOptions): Promise<SignJobOptions> {
  if ((opts.cert === undefined) !== (opts.key === undefined)) throw new KakitomeError('INVALID_ARGUMENT', '--cert and --key go together: give both, or neither to sign with the key store.');
  if (opts.cert !== undefined && opts.p12 !== undefined) throw new KakitomeError('INVALID_ARGUMENT', 'Give either --cert and --key, or --p12, not both.');
  const o: SignJobOptions = { chain: opts.chain ?? [], opaque: opts.opaque === true, pss: opts.pss === true };
  if (opts.p12 !== undefined) {
    o.p12 = opts.p12;
  } else if (opts.cert !== undefined && opts.key !== undefined) {
    // Files take precedence: the store is not even opened.
    o.cert = opts.cert;
    o.key = opts.key;
  } else {
    const store = locateMessageStore(opts);
    if (store === undefined) {
      throw new KakitomeError('INVALID_ARGUMENT', 'sign needs a signer: --cert FILE --key FILE, --p12 FILE, or a key store (kakitome init, then kakitome ca issue or keys import) and --from ADDRESS.');
    }
    o.store = store;
    if (opts.from !== undefined) o.from = opts.from;
  }
  if (opts.hash) o.hash = opts.hash;
  if (opts.dkim) {
    if (o.store === undefined) throw new KakitomeError('INVALID_ARGUMENT', '--dkim takes the DKIM keys from the key store: sign with the store\'s identity (--from ADDRESS, or each From), not --cert/--key or --p12.');
    o.dkim = true;
  }
  if (opts.pass !== undefined) o.passphrase = await resolvePassSpec(opts.pass, { stdinInUse: isStdio(opts.in) });
  return o;
}
