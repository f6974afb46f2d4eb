/**
 * A PKCS#12 becomes a tenant's signing identity (issue 10): the one rule for
 * `kakitome tenant identity NAME --p12`, POST /api/v1/identities and the console.
 * The file was read and checked already (importPkcs12, with its size, bag, nesting
 * and key-derivation bounds; legacy RC2/RC4 files included), so the caller decides
 * where that work runs (the CLI on its thread, the service in a worker).
 *
 * Refused before anything is stored, so a refused identity leaves nothing behind:
 * no key with its certificate; a CA certificate (a PKCS#12 handed to a tenant names
 * a mailbox, never an authority); an address outside the tenant's domains or
 * another tenant's (TenantDirectory.checkIdentities).
 */
import { KakitomeError } from '../errors.ts';
import type { Pkcs12Contents } from '../keys/import-pkcs12.ts';
import { readBasicConstraints } from '../pki/read-certificate-extensions.ts';
import { importPkcs12Contents } from './import-certificate-file.ts';
import type { Store } from './store.ts';
import type { Tenant, TenantDirectory } from './tenant-directory.ts';

export interface AddedTenantIdentity {
  tenant: Tenant;
  /** The addresses the certificate names, now the tenant's identities. */
  addresses: string[];
  /** SHA-256 fingerprint of the identity's certificate. */
  fingerprint: string;
}

export async function addTenantIdentityFromPkcs12(store: Store, tenants: TenantDirectory, tenant: string, p12: Pkcs12Contents, source: string): Promise<AddedTenantIdentity> {
  if (!p12.key || !p12.certificate) throw new KakitomeError('KEY_INVALID', `${source} holds no private key with its certificate: export the key together with its certificate.`);
  if (readBasicConstraints(p12.certificate)?.ca) {
    throw new KakitomeError('KEY_INVALID', `The certificate in ${source} is a CA certificate ("${p12.certificate.subjectText}"): a signing identity is a mailbox certificate.`);
  }
  const addresses = p12.certificate.emailAddresses;
  await tenants.checkIdentities(tenant, addresses);
  await importPkcs12Contents(store, p12, source);
  const updated = await tenants.registerIdentities(tenant, addresses);
  return { tenant: updated, addresses, fingerprint: p12.certificate.fingerprint256 };
}
