/**
 * The store as the PKI layer's TrustStore (src/pki/types.ts): anchors are the CA
 * certificates an administrator marked trusted (the internal root among them);
 * intermediates are every stored CA certificate with the wanted subject. Harvested
 * or imported certificates are never anchors.
 */
import type { TrustStore } from '../pki/types.ts';
import type { Certificate } from '../x509/certificate.ts';
import type { Store } from './store.ts';

export function createStoreTrustStore(store: Store): TrustStore {
  return {
    async anchors(): Promise<Certificate[]> {
      const recs = await store.listCertificates({ trust: 'trusted' });
      return recs.filter((r) => r.isCa && Buffer.compare(r.certificate.issuer, r.certificate.subject) === 0).map((r) => r.certificate);
    },
    async intermediates(subject: Uint8Array): Promise<Certificate[]> {
      return (await store.findCertificatesBySubject(subject)).filter((r) => r.isCa && !r.revokedAt).map((r) => r.certificate);
    },
  };
}
