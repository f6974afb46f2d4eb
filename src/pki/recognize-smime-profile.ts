/**
 * CA/Browser Forum S/MIME Baseline Requirements (7.1.6.1) certificate profiles,
 * recognised from the reserved certificatePolicies OIDs
 * 2.23.140.1.5.{type}.{generation}: type 1 mailbox-, 2 organization-, 3 sponsor-,
 * 4 individual-validated; generation 1 legacy, 2 multipurpose, 3 strict.
 * Recognition is informational: it says what kind of certificate signed, it does
 * not add or remove trust.
 */
import type { Certificate } from '../x509/certificate.ts';
import { readCertificatePolicies } from './read-certificate-extensions.ts';

const TYPES = ['mailbox-validated', 'organization-validated', 'sponsor-validated', 'individual-validated'];
const GENERATIONS = ['legacy', 'multipurpose', 'strict'];

export interface SmimeProfile {
  validation: 'mailbox-validated' | 'organization-validated' | 'sponsor-validated' | 'individual-validated';
  generation: 'legacy' | 'multipurpose' | 'strict';
  oid: string;
  /** e.g. "mailbox-validated strict". */
  name: string;
}

export function recognizeSmimeProfile(cert: Certificate): SmimeProfile | undefined {
  for (const p of readCertificatePolicies(cert)) {
    const m = /^2\.23\.140\.1\.5\.([1-4])\.([1-3])$/.exec(p);
    if (!m) continue;
    const validation = TYPES[Number(m[1]) - 1] as SmimeProfile['validation'];
    const generation = GENERATIONS[Number(m[2]) - 1] as SmimeProfile['generation'];
    return { validation, generation, oid: p, name: `${validation} ${generation}` };
  }
  return undefined;
}
