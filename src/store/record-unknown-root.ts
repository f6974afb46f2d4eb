/**
 * CA roots waiting for a trust decision: when a signer's signature is valid and
 * its certificate names the From address, but its path fails only because the
 * top of the chain is a CA the store does not trust, the root is recorded for an
 * administrator (the console's external certificates, `kakitome certs roots`)
 * with the signer's certificates that would be harvested once it is trusted.
 *
 * A certificate carried in a message is never trusted because the message
 * carried it: nothing recorded here is an anchor, an intermediate or a
 * certificate to encrypt to. Only decideUnknownRoot's "trust", an
 * administrator's decision, makes the root an anchor; the waiting certificates
 * are then validated again in full (decide-unknown-root.ts).
 *
 * "Only because of the root": the message carries a self-signed CA certificate
 * (basicConstraints cA, its own signature verifying) that the store does not
 * trust, the signer's certificate chains to it through carried or stored
 * intermediates (every link's signature verified), and that path validates
 * (RFC 5280 6.1: validity now, CA constraints, key usages, name constraints,
 * policies, the default algorithm policy) with the root as its anchor.
 * Revocation is not asked here (no fetch from the addresses an untrusted
 * certificate names); it is checked when the root is trusted. A chain that ends
 * at an issuer whose certificate the message does not carry is not recorded:
 * there is no certificate to decide on (docs/console.md, "Not done yet").
 *
 * Everything in these certificates is the sender's: names are kept as bounded
 * plain text, each certificate at most MAX_RECORDED_CERTIFICATE_BYTES, at most
 * MAX_UNKNOWN_ROOTS roots undecided or declined (a full list records no new one),
 * MAX_WAITING_CERTIFICATES waiting certificates per root and MAX_EXAMPLE_SENDERS
 * example senders.
 */
import { buildCertificationPaths } from '../pki/build-certification-path.ts';
import { validateCertificationPath } from '../pki/validate-certification-path.ts';
import { DEFAULT_POLICY } from '../pki/algorithm-policy.ts';
import { readBasicConstraints } from '../pki/read-certificate-extensions.ts';
import { encodeSmimeCapabilities } from '../cms/capabilities.ts';
import { oidName } from '../asn1/oids.ts';
import type { SignerVerification } from '../cms/signed-data/verify.ts';
import type { TrustReport } from '../pki/types.ts';
import type { Certificate } from '../x509/certificate.ts';
import { encryptionCandidates } from './harvest-signer.ts';
import { createStoreTrustStore } from './store-trust-store.ts';
import { normalizeAddress, type Store } from './store.ts';

/** Roots kept undecided or declined; when the list is full, a new root is not recorded. */
export const MAX_UNKNOWN_ROOTS = 200;
/** Certificates waiting for one root (a new one beyond it is not kept). */
export const MAX_WAITING_CERTIFICATES = 20;
/** Example sender addresses kept per root. */
export const MAX_EXAMPLE_SENDERS = 5;
/** A recorded certificate (root, waiting certificate, intermediate) is at most this big. */
export const MAX_RECORDED_CERTIFICATE_BYTES = 16 * 1024;
/** Intermediates between a waiting certificate and its root. */
const MAX_INTERMEDIATES = 6;
/** Characters kept of a subject or issuer name. */
const MAX_NAME_CHARS = 256;

export interface UnknownRootInput {
  signer: Pick<SignerVerification, 'status' | 'certificate' | 'capabilities' | 'encryptionKeyPreference'>;
  trust: Pick<TrustReport, 'status' | 'code' | 'anchor' | 'identity' | 'legacy'>;
  /** Certificates carried in the message: where the root and intermediates are looked for. */
  carried?: readonly Certificate[];
}

export interface RecordedUnknownRoot {
  root: Certificate;
  /** The administrator declined it earlier: counted, not listed as waiting. */
  declined: boolean;
  /** Certificates now waiting for it from this message (0 when they were waiting already or the root's list is full). */
  added: number;
}

/**
 * Records the unknown root of an untrusted signer, when the signer's trust failed
 * only because of it; undefined when it did not (nothing is written).
 */
export async function recordUnknownRoot(store: Store, input: UnknownRootInput): Promise<RecordedUnknownRoot | undefined> {
  const { signer, trust } = input;
  const leaf = signer.certificate;
  const from = trust.identity.from;
  if (signer.status !== 'valid' || !leaf || trust.status !== 'untrusted' || trust.code !== 'CERT_UNTRUSTED' || trust.anchor) return undefined;
  if (trust.legacy?.length || trust.identity.status !== 'match' || trust.identity.field !== 'From' || from === undefined) return undefined;
  const carried = (input.carried ?? []).filter((c) => c.der.length <= MAX_RECORDED_CERTIFICATE_BYTES);
  const roots = carried.filter(isSelfSignedCa);
  if (roots.length === 0 || leaf.der.length > MAX_RECORDED_CERTIFICATE_BYTES) return undefined;
  const path = await pathToUnknownRoot(store, leaf, roots, carried);
  if (!path) return undefined;
  const root = path[path.length - 1]!;
  const intermediates = path.slice(1, -1);
  if (intermediates.length > MAX_INTERMEDIATES) return undefined;
  const known = await store.findCertificateByFingerprint(root.fingerprint256);
  if (known?.trust === 'trusted') return undefined;

  const address = normalizeAddress(from);
  const capabilities = signer.capabilities ? encodeSmimeCapabilities(signer.capabilities) : undefined;
  const waiting = encryptionCandidates(leaf, signer.encryptionKeyPreference, carried).filter((c) => c.certificate.der.length <= MAX_RECORDED_CERTIFICATE_BYTES);
  const now = store.now().toISOString();
  let out: RecordedUnknownRoot | undefined;
  await store.engine.transaction(async (tx) => {
    const rows = await tx.all('SELECT decision, examples FROM unknown_roots WHERE fingerprint = ?', [root.fingerprint256]);
    const row = rows[0];
    if (row && String(row.decision) === 'trusted') return;
    if (!row) {
      const count = await tx.all("SELECT COUNT(*) AS n FROM unknown_roots WHERE decision <> 'trusted'");
      if (Number(count[0]?.n ?? 0) >= MAX_UNKNOWN_ROOTS) return;
      await tx.run(
        `INSERT INTO unknown_roots (fingerprint, der, subject, issuer, not_before, not_after, key_algorithm, first_seen, last_seen, times_seen, examples, decision)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, 'waiting')`,
        [root.fingerprint256, root.der, boundedText(root.subjectText), boundedText(root.issuerText), root.notBefore.toISOString(), root.notAfter.toISOString(), boundedText(oidName(root.publicKeyAlgorithm)), now, now, JSON.stringify([address])],
      );
      await store.auditWithin(tx, 'root.unknown', root.fingerprint256, `${boundedText(root.subjectText)} (seen from ${address})`);
    } else {
      const examples = readExamples(row.examples);
      if (!examples.includes(address) && examples.length < MAX_EXAMPLE_SENDERS) examples.push(address);
      await tx.run('UPDATE unknown_roots SET last_seen = ?, times_seen = times_seen + 1, examples = ? WHERE fingerprint = ?', [now, JSON.stringify(examples), root.fingerprint256]);
    }
    const chain = JSON.stringify(intermediates.map((c) => c.der.toString('base64')));
    let added = 0;
    for (const w of waiting) {
      const have = await tx.all('SELECT outcome FROM unknown_root_leaves WHERE root_fingerprint = ? AND fingerprint = ? AND address = ?', [root.fingerprint256, w.certificate.fingerprint256, address]);
      if (have[0]) {
        await tx.run('UPDATE unknown_root_leaves SET seen_at = ?, capabilities = COALESCE(?, capabilities) WHERE root_fingerprint = ? AND fingerprint = ? AND address = ?', [now, capabilities ?? null, root.fingerprint256, w.certificate.fingerprint256, address]);
        continue;
      }
      const n = await tx.all('SELECT COUNT(*) AS n FROM unknown_root_leaves WHERE root_fingerprint = ?', [root.fingerprint256]);
      if (Number(n[0]?.n ?? 0) >= MAX_WAITING_CERTIFICATES) break;
      await tx.run(
        'INSERT INTO unknown_root_leaves (root_fingerprint, fingerprint, address, der, chain, preferred, capabilities, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        [root.fingerprint256, w.certificate.fingerprint256, address, w.certificate.der, chain, w.preferred ? 1 : 0, capabilities ?? null, now],
      );
      added++;
    }
    out = { root, declined: row !== undefined && String(row.decision) === 'declined', added };
  });
  return out;
}

/** A CA certificate that signed itself: what may become an anchor. */
export function isSelfSignedCa(c: Certificate): boolean {
  if (Buffer.compare(c.subject, c.issuer) !== 0 || !readBasicConstraints(c)?.ca) return false;
  return signedBy(c, c);
}

function signedBy(child: Certificate, issuer: Certificate): boolean {
  try {
    return child.x509.verify(issuer.publicKey);
  } catch {
    return false; // a key that cannot verify this algorithm
  }
}

/** The first path from `leaf` to one of `roots` that would validate with that root as its anchor. */
async function pathToUnknownRoot(store: Store, leaf: Certificate, roots: Certificate[], carried: Certificate[]): Promise<Certificate[] | undefined> {
  const trustStore = createStoreTrustStore(store);
  const rootFps = new Set(roots.map((r) => r.fingerprint256));
  const built = await buildCertificationPaths({
    leaf,
    anchors: roots,
    carried: carried.filter((c) => !rootFps.has(c.fingerprint256)),
    knownIssuers: async (name) => (trustStore.intermediates ? trustStore.intermediates(name) : []),
    fetchIssuers: async () => [],
    isSignedBy: signedBy,
    maxPathLength: MAX_INTERMEDIATES + 2,
    maxCandidates: 32,
  });
  const time = store.now();
  return built.paths.find((p) => p.length > 1 && validateCertificationPath(p, { time, usage: 'signing', policy: DEFAULT_POLICY }).ok);
}

/**
 * A name from a certificate as plain text: control and bidirectional-override
 * characters replaced, at most MAX_NAME_CHARS characters.
 */
export function boundedText(s: string, max = MAX_NAME_CHARS): string {
  // eslint-disable-next-line no-control-regex
  const clean = s.replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '\ufffd');
  const chars = [...clean];
  return chars.length > max ? `${chars.slice(0, max).join('')}…` : clean;
}

export function readExamples(v: unknown): string[] {
  try {
    const a = JSON.parse(String(v)) as unknown;
    return Array.isArray(a) ? a.filter((x): x is string => typeof x === 'string').slice(0, MAX_EXAMPLE_SENDERS) : [];
  } catch {
    return [];
  }
}
