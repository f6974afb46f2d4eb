/**
 * Producing SignedData (RFC 5652 5; RFC 8551 2.5 attributes).
 *
 * Every SignerInfo carries signed attributes (RFC 8551 2.5 requires them): contentType,
 * messageDigest, signingTime, SMIMECapabilities, SMIMEEncryptionKeyPreference (when
 * given), ESS signingCertificateV2 (RFC 5035) and CMSAlgorithmProtection (RFC 6211).
 *
 * Speed: everything that depends only on the signer (identifiers, the constant
 * attributes, the certificate hash, the key/certificate match check) is computed once
 * and cached per (key, certificate, choices); a message then costs one content
 * digest, a handful of small encodings and the private-key operation.
 */
import { hash, KeyObject } from 'node:crypto';
import { sequence, integer, octetString } from '../../asn1/der.ts';
import { OID } from '../../asn1/oids.ts';
import { KakitomeError } from '../../errors.ts';
import { encodeAttribute } from '../attributes.ts';
import { encodeIdentifier, identifierFor } from '../identifier.ts';
import { DEFAULT_CAPABILITIES, encodeSmimeCapabilities, encodeEncryptionKeyPreference, type SmimeCapability } from '../capabilities.ts';
import { keyMatchesCertificate } from '../../keys/private-key.ts';
import type { Certificate } from '../../x509/certificate.ts';
import { selectSigningScheme, type SigningScheme } from '../algorithms/signature.ts';
import { computeDigest, type DigestName } from '../algorithms/digest.ts';
import {
  encodeContentTypeAttribute,
  encodeMessageDigestAttribute,
  encodeSigningTimeAttribute,
  encodeSigningCertificateV2Attribute,
  encodeAlgorithmProtectionAttribute,
  encodeSignedAttributes,
} from './signed-attributes.ts';
import { encodeSignedData, type SignedDataLayout } from './encode.ts';

export interface SignerOptions {
  certificate: Certificate;
  key: KeyObject;
  /** Default sha256 (sha384/sha512 for P-384/P-521); fixed by the algorithm for EdDSA and ML-DSA. */
  hash?: 'sha256' | 'sha384' | 'sha512';
  /** Default 'pkcs1'. PSS uses MGF1 with the same hash and a salt of the hash length (RFC 4055). */
  rsaPadding?: 'pkcs1' | 'pss';
  /** Default issuerAndSerialNumber (SignerInfo version 1); subjectKeyIdentifier gives version 3. */
  identifier?: 'issuerAndSerialNumber' | 'subjectKeyIdentifier';
  /** Default: SignOptions.now ?? the current time; false omits the attribute. */
  signingTime?: Date | false;
  /**
   * Default: DEFAULT_CAPABILITIES; false omits the attribute. The encoding is cached
   * by array identity: pass the same (unmodified) array for every message.
   */
  capabilities?: SmimeCapability[] | false;
  /** Announces the certificate to encrypt to (SMIMEEncryptionKeyPreference, issuerAndSerialNumber). */
  encryptionKeyPreference?: Certificate;
}

export interface SignOptions {
  /** One or more signers. */
  signers: SignerOptions[];
  /** Default false (content encapsulated). */
  detached?: boolean;
  /** eContentType OID, default id-data. */
  contentType?: string;
  /** Extra certificates (the chain). Signer certificates are added unless includeSignerCertificates is false. */
  certificates?: Certificate[];
  includeSignerCertificates?: boolean;
  /** DER CRLs for RevocationInfoChoices. */
  crls?: Uint8Array[];
  now?: Date;
}

/** The per-signer constants, computed once (and shared between messages: never changed by a caller). */
export interface PreparedSigner {
  scheme: SigningScheme;
  version: 1 | 3;
  /** DER of version, sid, digestAlgorithm: the SignerInfo prefix before signedAttrs. */
  prefix: Buffer;
  /** Attributes that never change for this signer. */
  constantAttributes: Buffer[];
  includeSigningTime: Date | false | undefined;
  certificate: Certificate;
}

const objectIds = new WeakMap<object, number>();
let nextObjectId = 1;

/** A small number per object, for cache keys (hashing the object would cost more than the lookup saves). */
function objectId(o: object): number {
  let id = objectIds.get(o);
  if (id === undefined) objectIds.set(o, (id = nextObjectId++));
  return id;
}
const prepared = new WeakMap<KeyObject, WeakMap<Certificate, Map<string, PreparedSigner>>>();
const MAX_CHOICES_PER_SIGNER = 16;

/** choiceKey of a signer that leaves every choice to the defaults (the signing service's): kept, not built per message. */
const DEFAULT_CHOICES = '|||default|';

function choiceKey(s: SignerOptions): string {
  if (s.hash === undefined && s.rsaPadding === undefined && s.identifier === undefined && s.capabilities === undefined && s.encryptionKeyPreference === undefined) return DEFAULT_CHOICES;
  let caps: string;
  if (s.capabilities === false) caps = 'none';
  else if (s.capabilities === undefined) caps = 'default';
  else {
    // Keyed by array identity: callers pass the same list for every message.
    caps = `c${objectId(s.capabilities)}`;
  }
  const ekp = s.encryptionKeyPreference ? `e${objectId(s.encryptionKeyPreference)}` : '';
  return `${s.hash ?? ''}|${s.rsaPadding ?? ''}|${s.identifier ?? ''}|${caps}|${ekp}`;
}

/**
 * Resolves and caches everything about a signer that does not depend on the message.
 * Throws KEY_INVALID when the key does not belong to the certificate or cannot sign,
 * INVALID_ARGUMENT for option combinations that cannot work.
 */
export function prepareSigner(signer: SignerOptions): PreparedSigner {
  // JavaScript callers can pass anything: the caches below are keyed by these objects.
  if (!(signer?.key instanceof KeyObject) || signer.key.type !== 'private') throw new KakitomeError('INVALID_ARGUMENT', 'A signer needs key: a private KeyObject (loadPrivateKey).');
  if (typeof signer.certificate !== 'object' || signer.certificate === null || !(signer.certificate.der instanceof Uint8Array)) throw new KakitomeError('INVALID_ARGUMENT', 'A signer needs certificate: a parsed Certificate (parseCertificate).');
  let byCert = prepared.get(signer.key);
  if (!byCert) prepared.set(signer.key, (byCert = new WeakMap()));
  let byChoice = byCert.get(signer.certificate);
  if (!byChoice) byCert.set(signer.certificate, (byChoice = new Map()));
  const k = choiceKey(signer);
  const hit = byChoice.get(k);
  // The kept object itself when the signer gives no signing time (every message of a service): no copy per message.
  if (hit) return signer.signingTime === undefined ? hit : { ...hit, includeSigningTime: signer.signingTime };

  // The options come from JavaScript callers too: check the unions at run time.
  if (signer.hash !== undefined && !['sha256', 'sha384', 'sha512'].includes(signer.hash)) throw new KakitomeError('INVALID_ARGUMENT', `Unsupported signing hash ${String(signer.hash)} (sha256, sha384 or sha512).`);
  if (signer.rsaPadding !== undefined && signer.rsaPadding !== 'pkcs1' && signer.rsaPadding !== 'pss') throw new KakitomeError('INVALID_ARGUMENT', `rsaPadding must be 'pkcs1' or 'pss'.`);
  if (signer.identifier !== undefined && signer.identifier !== 'issuerAndSerialNumber' && signer.identifier !== 'subjectKeyIdentifier') {
    throw new KakitomeError('INVALID_ARGUMENT', `identifier must be 'issuerAndSerialNumber' or 'subjectKeyIdentifier'.`);
  }
  const t = signer.key.asymmetricKeyType;
  if (signer.rsaPadding === 'pss' && t !== 'rsa' && t !== 'rsa-pss') throw new KakitomeError('INVALID_ARGUMENT', `rsaPadding 'pss' needs an RSA key, not ${t}.`);
  if (signer.hash && t !== 'rsa' && t !== 'rsa-pss' && t !== 'ec') {
    throw new KakitomeError('INVALID_ARGUMENT', `The hash of a ${t} signature is fixed by its algorithm (RFC 8419, RFC 9882); do not pass 'hash'.`);
  }
  if (!keyMatchesCertificate(signer.key, signer.certificate)) {
    throw new KakitomeError('KEY_INVALID', `The private key does not belong to the certificate "${signer.certificate.subjectText}".`);
  }
  const scheme = selectSigningScheme(signer.key, signer.hash, signer.rsaPadding ?? 'pkcs1');
  const kind = signer.identifier ?? 'issuerAndSerialNumber';
  const version = kind === 'issuerAndSerialNumber' ? 1 : 3;
  const prefix = Buffer.concat([integer(version), encodeIdentifier(identifierFor(signer.certificate, kind)), scheme.digestAlgorithm]);
  const constantAttributes: Buffer[] = [
    encodeSigningCertificateV2Attribute(signer.certificate),
    encodeAlgorithmProtectionAttribute(scheme.digestAlgorithm, scheme.signatureAlgorithm),
  ];
  const caps = signer.capabilities === undefined ? DEFAULT_CAPABILITIES : signer.capabilities;
  if (caps !== false) constantAttributes.push(encodeAttribute(OID.smimeCapabilities, encodeSmimeCapabilities(caps)));
  if (signer.encryptionKeyPreference) {
    constantAttributes.push(encodeAttribute(OID.smimeEncryptionKeyPreference, encodeEncryptionKeyPreference(signer.encryptionKeyPreference)));
  }
  const p: PreparedSigner = { scheme, version, prefix, constantAttributes, includeSigningTime: undefined, certificate: signer.certificate };
  // Bounded: a caller passing a fresh capabilities array per message would otherwise
  // grow this map forever (it then just loses the cache benefit).
  if (byChoice.size >= MAX_CHOICES_PER_SIGNER) byChoice.clear();
  byChoice.set(k, p);
  return { ...p, includeSigningTime: signer.signingTime };
}

/**
 * Signs a content digest: builds the signed attributes for `digest` (the content's
 * digest with the signer's digest algorithm, see `signerDigestName`), signs their DER
 * and returns the SignerInfo DER. This is what a streaming signer calls after hashing
 * the content.
 *
 * @param digest  content digest computed with `signerDigestName(signer)`
 * @param eContentType  the eContentType OID (the contentType attribute must equal it)
 * @param now  signing time used when `signer.signingTime` is undefined
 */
export function buildSignerInfo(digest: Uint8Array, signer: SignerOptions | PreparedSigner, eContentType: string, now: Date): Buffer {
  const p = 'scheme' in signer ? signer : prepareSigner(signer);
  const attrs = [...p.constantAttributes, encodeContentTypeAttribute(eContentType), encodeMessageDigestAttribute(digest)];
  const when = p.includeSigningTime === undefined ? now : p.includeSigningTime;
  if (when !== false) {
    if (!(when instanceof Date) || Number.isNaN(when.getTime())) throw new KakitomeError('INVALID_ARGUMENT', 'signingTime must be a valid Date or false.');
    attrs.push(encodeSigningTimeAttribute(when));
  }
  const signedAttrs = encodeSignedAttributes(attrs);
  // RFC 5652 5.4: the signature covers the DER SET OF (tag 0x31) ...
  const signature = p.scheme.sign(signedAttrs);
  // ... and SignerInfo carries the same octets under [0] IMPLICIT.
  signedAttrs[0] = 0xa0;
  return sequence(p.prefix, signedAttrs, p.scheme.signatureAlgorithm, octetString(signature));
}

/** The digest algorithm a signer uses: what a streaming signer must hash the content with. */
export function signerDigestName(signer: SignerOptions): DigestName {
  return prepareSigner(signer).scheme.digest;
}

/** The certificates a SignedData carries for `options` (signer certificates first, duplicates removed). */
export function collectCertificates(options: SignOptions): Uint8Array[] {
  const out: Buffer[] = [];
  if (options.includeSignerCertificates !== false) for (const s of options.signers) addCertificate(out, s.certificate);
  if (options.certificates) for (const c of options.certificates) addCertificate(out, c);
  return out;
}

/** Adds `c` unless it is there already: byte comparison, not fingerprints (this runs for every message signed), in plain loops (no closure per message). */
function addCertificate(out: Buffer[], c: Certificate): void {
  for (const d of out) if (d === c.der || d.equals(c.der)) return;
  out.push(c.der);
}

/**
 * Everything about a SignedData except its SignerInfos and content, for `options`.
 * Shared by signData and streaming signers (pass to encodeSignedDataParts). The
 * result is shared between calls: callers must not change it.
 */
export function layoutSignedData(options: SignOptions): { layout: SignedDataLayout; signers: PreparedSigner[] } {
  if (!options.signers || options.signers.length === 0) throw new KakitomeError('INVALID_ARGUMENT', 'At least one signer is needed.');
  if (options.signers.length !== 1 || (options.crls !== undefined && options.crls.length > 0)) return makeLayout(options, options.signers.map(prepareSigner));
  // One signer (nearly every message): its layout is kept with the prepared signer, and
  // used again while the content type and certificates are the same (the same array
  // holding the same objects: a service's cached chain), so the SignedData's fixed
  // fields are encoded once (encode.ts keeps their encoding per layout).
  const p = prepareSigner(options.signers[0]!);
  const kept = keptLayouts.get(p);
  if (kept && sameLayoutOptions(kept, options)) return kept.made;
  const made = makeLayout(options, [p]);
  keptLayouts.set(p, { contentType: made.layout.contentType, includeSignerCertificates: options.includeSignerCertificates !== false, certificates: options.certificates, held: options.certificates ? [...options.certificates] : [], made });
  return made;
}

interface KeptLayout {
  contentType: string;
  includeSignerCertificates: boolean;
  /** The caller's array, and what it held then. */
  certificates: readonly Certificate[] | undefined;
  held: Certificate[];
  made: { layout: SignedDataLayout; signers: PreparedSigner[] };
}

const keptLayouts = new WeakMap<PreparedSigner, KeptLayout>();

function sameLayoutOptions(k: KeptLayout, options: SignOptions): boolean {
  if ((options.contentType ?? OID.data) !== k.contentType || (options.includeSignerCertificates !== false) !== k.includeSignerCertificates) return false;
  const certs = options.certificates;
  if (certs !== k.certificates) return false;
  if (certs === undefined) return true;
  if (certs.length !== k.held.length) return false;
  for (let i = 0; i < certs.length; i++) if (certs[i] !== k.held[i]) return false;
  return true;
}

function makeLayout(options: SignOptions, signers: PreparedSigner[]): { layout: SignedDataLayout; signers: PreparedSigner[] } {
  const digestAlgorithms: Buffer[] = [];
  for (const s of signers) if (!digestAlgorithms.some((d) => d.equals(s.scheme.digestAlgorithm))) digestAlgorithms.push(s.scheme.digestAlgorithm);
  const layout: SignedDataLayout = {
    contentType: options.contentType ?? OID.data,
    digestAlgorithms,
    certificates: collectCertificates(options),
    crls: options.crls ?? [],
    signerVersions: signers.map((s) => s.version),
  };
  return { layout, signers };
}

/**
 * Signs `content` and returns a DER ContentInfo(SignedData) (RFC 5652 5).
 * SignerInfos appear in DER SET OF order, which need not be the order of
 * `options.signers`; match verification results by certificate, not position.
 *
 * @example
 * const der = signData(Buffer.from('hello'), { signers: [{ certificate, key }] });
 */
export function signData(content: Uint8Array, options: SignOptions): Buffer {
  const { layout, signers } = layoutSignedData(options);
  const now = options.now ?? new Date();
  // One signer (nearly every message): its digest without a map of them.
  if (signers.length === 1) {
    const p = signers[0]!;
    return encodeSignedData(layout, options.detached ? undefined : content, [buildSignerInfo(contentDigest(p.scheme.digest, content), p, layout.contentType, now)]);
  }
  const digests = new Map<DigestName, Buffer>();
  const signerInfos = signers.map((p) => {
    let d = digests.get(p.scheme.digest);
    if (!d) digests.set(p.scheme.digest, (d = contentDigest(p.scheme.digest, content)));
    return buildSignerInfo(d, p, layout.contentType, now);
  });
  return encodeSignedData(layout, options.detached ? undefined : content, signerInfos);
}

/** crypto.hash is the one-shot digest (no Hash object per message); SHAKE256 needs createHash's output length. */
function contentDigest(name: DigestName, content: Uint8Array): Buffer {
  return name === 'shake256' ? computeDigest(name, content) : hash(name, content, 'buffer');
}
