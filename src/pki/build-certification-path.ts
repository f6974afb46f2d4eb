/**
 * Path building (RFC 4158 in spirit, RFC 5280 6 for what a path is): from the
 * signer's certificate up to one of the administrator's trust anchors, through
 * intermediates carried in the message, known to the store or cache, or fetched
 * from the caIssuers location (RFC 5280 4.2.2.1).
 *
 * A link is followed only when the issuer's name equals the child's issuer name
 * and the child's signature verifies with the issuer's key, so the search never
 * wanders through unrelated certificates. Loops (a certificate twice in one path)
 * are cut, depth is bounded, and the total number of candidate links examined is
 * bounded, so cross-certified meshes cannot explode the search.
 */
import type { Certificate } from '../x509/certificate.ts';
import { readAuthorityKeyIdentifier } from './read-certificate-extensions.ts';
import { fingerprintOf } from './certificate-fingerprint.ts';

export interface PathBuildingInput {
  leaf: Certificate;
  anchors: Certificate[];
  /** Certificates from the message: intermediates only, never anchors. */
  carried: Certificate[];
  /** Known intermediates for an issuer name (store, cache). */
  knownIssuers: (issuerName: Uint8Array) => Promise<Certificate[]>;
  /** Issuers fetched from the certificate's caIssuers URLs (bounded and cached by the caller). */
  fetchIssuers: (cert: Certificate) => Promise<Certificate[]>;
  /** Verifies that `child` was signed by `issuer`'s key (cached by the caller). */
  isSignedBy: (child: Certificate, issuer: Certificate) => boolean;
  /** Certificates in a path, anchor included. */
  maxPathLength: number;
  /** Candidate links examined in total. */
  maxCandidates: number;
}

export interface PathBuildingResult {
  /** Candidate paths, leaf first and anchor last, in the order found (shortest first per branch). */
  paths: Certificate[][];
  /** Why building stopped short, for the report. */
  notes: string[];
}

/**
 * Finds up to `limit` candidate paths. Validation (validate-certification-path.ts)
 * then picks the first that satisfies every rule.
 */
export async function buildCertificationPaths(input: PathBuildingInput, limit = 4): Promise<PathBuildingResult> {
  const notes: string[] = [];
  const paths: Certificate[][] = [];
  let examined = 0;
  const anchorFps = new Set(input.anchors.map((a) => fingerprintOf(a)));

  // A directly trusted end entity (an administrator may pin one): path of one.
  if (anchorFps.has(fingerprintOf(input.leaf))) return { paths: [[input.leaf]], notes };

  const nameKey = (n: Uint8Array) => Buffer.from(n).toString('hex');
  const sameName = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;

  const candidatesFor = async (cert: Certificate, fetched: boolean): Promise<{ anchors: Certificate[]; intermediates: Certificate[] }> => {
    const anchors = input.anchors.filter((a) => sameName(a.subject, cert.issuer));
    const pool = new Map<string, Certificate>();
    for (const c of input.carried) if (sameName(c.subject, cert.issuer)) pool.set(fingerprintOf(c), c);
    for (const c of await input.knownIssuers(cert.issuer)) pool.set(fingerprintOf(c), c);
    if (fetched) for (const c of await input.fetchIssuers(cert)) if (sameName(c.subject, cert.issuer)) pool.set(fingerprintOf(c), c);
    // An intermediate that is also an anchor is used as the anchor.
    for (const fp of anchorFps) pool.delete(fp);
    // Prefer the issuer whose subjectKeyIdentifier matches the child's AKI (RFC 5280 4.2.1.1).
    const aki = readAuthorityKeyIdentifier(cert);
    const ordered = [...pool.values()].sort((a, b) => score(b, aki) - score(a, aki));
    return { anchors, intermediates: ordered };
  };

  const visit = async (path: Certificate[]): Promise<void> => {
    if (paths.length >= limit) return;
    const cert = path[path.length - 1]!;
    if (path.length >= input.maxPathLength) {
      notes.push(`path longer than ${input.maxPathLength} certificates abandoned`);
      return;
    }
    // Try without a network fetch first; fetch caIssuers only if nothing local chains.
    for (const fetched of [false, true]) {
      const { anchors, intermediates } = await candidatesFor(cert, fetched);
      let progressed = false;
      for (const a of anchors) {
        if (++examined > input.maxCandidates) return void notes.push(`more than ${input.maxCandidates} candidate issuers examined`);
        if (input.isSignedBy(cert, a)) {
          paths.push([...path, a]);
          progressed = true;
          if (paths.length >= limit) return;
        }
      }
      for (const c of intermediates) {
        if (path.some((p) => fingerprintOf(p) === fingerprintOf(c))) continue; // loop
        // Same subject and key as a certificate already on the path: a re-issued
        // self-loop; following it only lengthens the path.
        if (path.some((p) => nameKey(p.subject) === nameKey(c.subject) && Buffer.compare(p.spki, c.spki) === 0)) continue;
        if (++examined > input.maxCandidates) return void notes.push(`more than ${input.maxCandidates} candidate issuers examined`);
        if (!input.isSignedBy(cert, c)) continue;
        progressed = true;
        await visit([...path, c]);
        if (paths.length >= limit) return;
      }
      if (progressed) return;
    }
  };
  await visit([input.leaf]);
  return { paths, notes };
}

function score(c: Certificate, aki: Uint8Array | undefined): number {
  if (!aki) return 0;
  const ski = c.subjectKeyIdentifier;
  return ski && Buffer.compare(ski, aki) === 0 ? 1 : 0;
}
