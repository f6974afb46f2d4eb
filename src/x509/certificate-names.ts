/**
 * A certificate's subject text and e-mail addresses, computed once per Certificate
 * object. Certificate.subjectText and .emailAddresses are recomputed on every access
 * (OpenSSL's subject string, the subjectAltName decoded again), and verifying one
 * message reads them several times (the signer's report, the message verdict). A
 * Certificate is immutable, so a WeakMap memo is exact and keeps nothing alive.
 */
import type { Certificate } from './certificate.ts';
import { KakitomeError } from '../errors.ts';

export interface CertificateNames {
  subjectText: string;
  emailAddresses: readonly string[];
}

const memo = new WeakMap<Certificate, CertificateNames>();

export function certificateNames(cert: Certificate): CertificateNames {
  let n = memo.get(cert);
  if (!n) memo.set(cert, (n = Object.freeze({ subjectText: cert.subjectText, emailAddresses: Object.freeze(shownAddresses(cert)) })));
  return n;
}

/**
 * The addresses to show for a certificate in a report: a subjectAltName too damaged
 * to read shows none, rather than leaving a message without its verdict (path
 * validation refuses that certificate on its own, MALFORMED).
 */
function shownAddresses(cert: Certificate): string[] {
  try {
    return cert.emailAddresses;
  } catch (e) {
    if (e instanceof KakitomeError && e.code === 'MALFORMED') return [];
    throw e;
  }
}
