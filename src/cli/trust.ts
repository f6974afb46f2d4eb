/**
 * The trust side of verify and decrypt: --ca files and directories become the
 * administrator's anchors (src/pki loadTrustAnchors), and a SignerValidator is
 * built over them. Without --ca there is no anchor, so no signer can be trusted:
 * the verdict then says the signature is intact but the signer unknown (exit 1).
 */
import { Option, type Command } from 'commander';
import { KakitomeError, isKakitomeError } from '../errors.ts';
import { loadTrustAnchors } from '../pki/load-trust-anchors.ts';
import { createSignerValidator } from '../pki/create-signer-validator.ts';
import type { SignerValidator } from '../pki/types.ts';
import { describeFsError } from './io.ts';
import { collect } from './commands/message-options.ts';

export interface TrustOptions {
  ca: string[];
  /** Default soft-fail: an unreachable CRL/OCSP server is reported as "unknown", not fatal. */
  revocation: 'hard-fail' | 'soft-fail' | 'off';
  /** Default 'now'; 'signingTime' accepts a signature made while the certificate was valid. */
  validityClock: 'now' | 'signingTime';
}

/** --ca, --revocation and --validity-clock, shared by verify and decrypt. */
export function addTrustOptions(cmd: Command, caHelp: string): Command {
  return cmd
    .option('--ca <file>', caHelp, collect, [])
    .addOption(new Option('--revocation <mode>', 'revocation checking (CRL/OCSP over http): hard-fail refuses when no answer, soft-fail reports "unknown"').choices(['hard-fail', 'soft-fail', 'off']).default('soft-fail'))
    .addOption(new Option('--validity-clock <clock>', 'check certificate validity now, or at the signingTime the signer stated (for old mail)').choices(['now', 'signing-time']).default('now'));
}

/** The plain-data trust options from parsed CLI options. */
export function trustOptionsOf(opts: { ca: string[]; revocation: string; validityClock: string }): TrustOptions {
  return {
    ca: opts.ca,
    revocation: opts.revocation as TrustOptions['revocation'],
    validityClock: opts.validityClock === 'signing-time' ? 'signingTime' : 'now',
  };
}

export async function createCliValidator(o: TrustOptions): Promise<SignerValidator> {
  let anchors;
  try {
    anchors = await loadTrustAnchors(o.ca);
  } catch (e) {
    if (isKakitomeError(e)) throw new KakitomeError(e.code, `--ca: ${e.message}`, { cause: e });
    const err = e as NodeJS.ErrnoException;
    throw new KakitomeError('INVALID_ARGUMENT', `--ca ${err.path ?? ''}: ${describeFsError(err)}.`, { cause: e });
  }
  return createSignerValidator({ anchors, revocation: { mode: o.revocation }, validityClock: o.validityClock });
}
