/**
 * Harvesting from verified signed mail (RFC 8551 2.5.2, 2.5.3; RFC 8550 4.1): the
 * signer's certificate (or the one its SMIMEEncryptionKeyPreference names among
 * the carried certificates) is kept with the announced SMIMECapabilities, so the
 * next message to that correspondent can be encrypted with what they can read.
 *
 * Only a signer whose signature is valid, whose chain is trusted and whose
 * certificate matches the From address is harvested: anything else would let a
 * forged message plant a certificate. Even then the harvested certificate never
 * replaces a trusted one (Store.harvestCertificate).
 */
import { KakitomeError } from '../errors.ts';
import { encodeSmimeCapabilities } from '../cms/capabilities.ts';
import { identifierMatches } from '../cms/identifier.ts';
import type { SignerVerification } from '../cms/signed-data/verify.ts';
import type { TrustReport } from '../pki/types.ts';
import type { Certificate } from '../x509/certificate.ts';
import type { HarvestResult, Store } from './store.ts';

export interface HarvestInput {
  signer: Pick<SignerVerification, 'status' | 'certificate' | 'capabilities' | 'encryptionKeyPreference'>;
  trust: Pick<TrustReport, 'status' | 'identity'>;
  /** Certificates carried in the message (where a preferred encryption certificate is found). */
  carried?: readonly Certificate[];
}

export async function harvestSigner(store: Store, input: HarvestInput): Promise<HarvestResult[]> {
  const { signer, trust } = input;
  if (signer.status !== 'valid' || !signer.certificate) throw new KakitomeError('BAD_SIG', 'Only a valid signature can be harvested.');
  if (trust.status !== 'trusted') throw new KakitomeError('CERT_UNTRUSTED', 'Only a signer with a trusted chain is harvested.');
  if (trust.identity.status !== 'match') throw new KakitomeError('IDENTITY_MISMATCH', 'The signer does not match the From address; nothing harvested.');
  const capabilities = signer.capabilities ? encodeSmimeCapabilities(signer.capabilities) : undefined;
  const opts = capabilities ? { capabilities } : {};
  const out = [await store.harvestCertificate(signer.certificate, { ...opts, preferred: !signer.encryptionKeyPreference })];
  const pref = signer.encryptionKeyPreference;
  if (pref) {
    const named = [signer.certificate, ...(input.carried ?? [])].find((c) => identifierMatches(pref, c));
    // RFC 8551 2.5.3: the preferred certificate must belong to the same mailbox.
    if (named && named.emailAddresses.some((e) => signer.certificate!.emailAddresses.map((x) => x.toLowerCase()).includes(e.toLowerCase()))) {
      out.push(await store.harvestCertificate(named, { ...opts, preferred: true }));
    }
  }
  return out;
}
