/**
 * The SignerValidator verify and decrypt use: --ca files and directories become
 * the administrator's anchors (src/pki loadTrustAnchors). Without --ca there is no
 * anchor, so no signer can be trusted: the verdict then says the signature is
 * intact but the signer unknown (exit 1).
 */
import { KakitomeError, isKakitomeError } from '../errors.ts';
import { loadTrustAnchors } from '../pki/load-trust-anchors.ts';
import { createSignerValidator } from '../pki/create-signer-validator.ts';
import type { SignerValidator } from '../pki/types.ts';
import { describeFsError } from './io.ts';
import type { TrustOptions } from './commands/trust-options.ts';

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
