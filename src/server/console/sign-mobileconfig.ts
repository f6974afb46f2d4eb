/**
 * Signs a configuration profile as iOS expects (CMS signed-data, RFC 5652, the
 * plist encapsulated, DER), with the console's profile-signing certificate
 * (ca/profile-signing-certificate.ts, issued by the organisation's CA on first
 * use) and its chain, by the library's signData. iOS then shows the profile as
 * "Verified" once the organisation's root is trusted on the device (the profile's
 * own root payload, once installed, or an MDM). The key is opened for each
 * signature and audited as key.use.profile-signing. Without an issuing CA the
 * profile stays unsigned (nothing to sign with).
 */
import { ensureProfileSigningCertificate } from '../../ca/profile-signing-certificate.ts';
import { signData } from '../../cms/signed-data/sign.ts';
import type { Store } from '../../store/store.ts';

export async function signMobileconfig(store: Store, plist: Buffer): Promise<Buffer> {
  const certificate = await ensureProfileSigningCertificate(store);
  if (!certificate) return plist;
  const key = await store.usePrivateKeyFor(certificate, 'profile-signing');
  if (!key) return plist;
  const chain = await store.findIssuerChain(certificate);
  return signData(plist, { signers: [{ certificate, key, capabilities: false }], certificates: chain, now: store.now() });
}
