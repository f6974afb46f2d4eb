/**
 * Describes a message's structure without any key: the MIME tree, and for each
 * S/MIME entity its CMS type, algorithms, signers (identifiers, certificates
 * carried, signing times) and recipients. Nothing here is a verification result:
 * a signer listed by inspectMessage has not been checked (use verifyMessage).
 */
import { readTime } from '../asn1/ber.ts';
import { OID, oidName } from '../asn1/oids.ts';
import { KakitomeError, isKakitomeError } from '../errors.ts';
import { resolveLimits, type Limits } from '../limits.ts';
import { parseAttributes, singleValue } from '../cms/attributes.ts';
import { parseContentInfo } from '../cms/content-info.ts';
import { describeIdentifier } from '../cms/identifier.ts';
import { parseEnvelope } from '../cms/enveloped-data/parse.ts';
import { recipientIdentifiers } from '../cms/recipients/recipient-info.ts';
import { parseSignedData } from '../cms/signed-data/parse.ts';
import { readOctets } from '../asn1/ber.ts';
import { decodeBody } from '../mime/decode-body.ts';
import { decodeHeaderText } from '../mime/decode-header-text.ts';
import type { MimeEntity } from '../mime/entity.ts';
import { parseEntity } from '../mime/parse-entity.ts';
import { readPartFilename } from '../mime/read-part-filename.ts';
import { readContentEntity } from '../mime/read-content-entity.ts';
import { canonicalizeLfOnly } from '../mime/canonicalize-line-breaks.ts';
import type { Certificate } from '../x509/certificate.ts';
import { classifyEntity } from './classify-entity.ts';
import { readCertsOnly } from './read-certs-only.ts';

export interface CertificateSummary {
  subject: string;
  issuer: string;
  serial: string;
  emails: string[];
  notBefore: Date;
  notAfter: Date;
  fingerprint256: string;
}

export interface CmsSummary {
  /** 'signedData', 'envelopedData', 'authEnvelopedData', 'compressedData', 'certs-only' or the OID. */
  type: string;
  signed?: {
    detached: boolean;
    /** eContentType ('data' for MIME content). */
    contentType: string;
    digestAlgorithms: string[];
    certificates: CertificateSummary[];
    signers: Array<{ identifier: string; digestAlgorithm: string; signatureAlgorithm: string; signingTime?: Date }>;
    /** The encapsulated content's MIME structure (opaque signing). */
    content?: InspectNode;
  };
  enveloped?: {
    contentEncryption: string;
    authenticated: boolean;
    recipients: Array<{ kind: string; identifiers: string[] }>;
  };
  certificates?: CertificateSummary[];
}

export interface InspectNode {
  /** Part number as IMAP counts it ("1", "1.2"); "" for the message itself. */
  path: string;
  mediaType: string;
  params: Record<string, string>;
  transferEncoding: string;
  /** Body bytes (encoded). */
  size: number;
  filename?: string;
  /** Set for S/MIME entities. */
  smime?: CmsSummary;
  /** Why the S/MIME entity could not be described, with its code. */
  error?: { code: string; message: string };
  warnings: string[];
  children: InspectNode[];
}

export interface InspectReport {
  /** The message header fields, decoded for display. */
  headers: Array<[string, string]>;
  tree: InspectNode;
  /** Short lines, outermost first: "multipart/signed (sha-256) -> signedData, 1 signer". */
  layers: string[];
  warnings: string[];
}

function summarizeCertificate(c: Certificate): CertificateSummary {
  return { subject: c.subjectText, issuer: c.issuerText, serial: c.serialHex, emails: c.emailAddresses, notBefore: c.notBefore, notAfter: c.notAfter, fingerprint256: c.fingerprint256 };
}

function summarizeCms(der: Uint8Array, limits: Limits, depth: number, layers: string[], label: string): CmsSummary {
  const ci = parseContentInfo(der, limits);
  if (ci.contentType === OID.signedData) {
    let sd;
    try {
      sd = parseSignedData(ci.content, limits);
    } catch (e) {
      if (!isKakitomeError(e, 'NO_SIGNERS')) throw e;
      const certs = readCertsOnly(der, limits).map(summarizeCertificate);
      layers.push(`${label} -> certs-only, ${certs.length} certificate(s)`);
      return { type: 'certs-only', certificates: certs };
    }
    const signers = sd.signerInfos.map((si) => {
      let signingTime: Date | undefined;
      if (si.signedAttrs) {
        try {
          const t = singleValue(parseAttributes(si.signedAttrs, 'signedAttrs', limits.maxAttributes), OID.signingTime, 'signingTime');
          if (t) signingTime = readTime(t, 'signingTime');
        } catch {
          // Inspection reports structure; a bad attribute set is verifyMessage's to judge.
        }
      }
      return { identifier: describeIdentifier(si.identifier), digestAlgorithm: oidName(si.digestAlgorithm.oid), signatureAlgorithm: oidName(si.signatureAlgorithm.oid), ...(signingTime ? { signingTime } : {}) };
    });
    layers.push(`${label} -> signedData, ${signers.length} signer(s), ${sd.certificates.length} certificate(s)`);
    const signed: NonNullable<CmsSummary['signed']> = {
      detached: sd.eContent === undefined,
      contentType: oidName(sd.contentType),
      digestAlgorithms: sd.digestAlgorithms.map((a) => oidName(a.oid)),
      certificates: sd.certificates.map(summarizeCertificate),
      signers,
    };
    if (sd.eContent && sd.contentType === OID.data) {
      const content = canonicalizeLfOnly(Buffer.from(readOctets(sd.eContent, limits.maxSegments)));
      signed.content = describeEntity(readContentEntity(content, limits).entity, '1', limits, depth + 1, layers);
    }
    return { type: 'signedData', signed };
  }
  if (ci.contentType === OID.envelopedData || ci.contentType === OID.authEnvelopedData) {
    const env = parseEnvelope(ci.content, limits, ci.contentType);
    const recipients = env.recipients.map((r) => ({ kind: r.kind === 'other' ? r.type : r.kind, identifiers: recipientIdentifiers(r).map(describeIdentifier) }));
    layers.push(`${label} -> ${env.type}, ${env.contentEncryption.cipher.name}, ${recipients.length} recipient(s)`);
    return { type: env.type, enveloped: { contentEncryption: env.contentEncryption.cipher.name, authenticated: env.type === 'authEnvelopedData', recipients } };
  }
  layers.push(`${label} -> ${oidName(ci.contentType)}`);
  return { type: oidName(ci.contentType) };
}

function describeEntity(e: MimeEntity, path: string, limits: Limits, depth: number, layers: string[]): InspectNode {
  if (depth > limits.maxLayers) throw new KakitomeError('LIMIT', `More than ${limits.maxLayers} nested S/MIME layers.`);
  const fn = readPartFilename(e);
  const node: InspectNode = {
    path,
    mediaType: e.contentType.mediaType,
    params: { ...e.contentType.params },
    transferEncoding: e.transferEncoding,
    size: e.body.length,
    ...(fn ? { filename: fn } : {}),
    warnings: [...e.warnings],
    children: [],
  };
  const k = classifyEntity(e);
  // The layer this entity is, named before its CMS is read: a layer that cannot be
  // read is still listed (unreadable, with its code), so the report's first line
  // never says "not signed or encrypted" above a signature or envelope it could not parse.
  let label: string | undefined;
  const layersBefore = layers.length;
  try {
    if (k.kind === 'multipart-signed') {
      node.warnings.push(...k.warnings);
      const sig = e.children[1];
      label = `${path || 'message'}: multipart/signed (micalg ${e.contentType.params.micalg ?? 'none'})`;
      if (sig) node.smime = summarizeCms(decodeBody(sig), limits, depth + 1, layers, label);
    } else if (k.kind === 'pkcs7-mime') {
      node.warnings.push(...k.warnings);
      label = `${path || 'message'}: ${e.contentType.mediaType}${k.smimeType ? ` (smime-type ${k.smimeType})` : ''}`;
      node.smime = summarizeCms(decodeBody(e), limits, depth + 1, layers, label);
    } else if (k.kind === 'foreign-signed') {
      node.warnings.push(`multipart/signed with protocol ${k.protocol} (not S/MIME).`);
    }
  } catch (err) {
    if (!(err instanceof KakitomeError) || err.code === 'LIMIT') throw err;
    node.error = { code: err.code, message: err.message };
    if (label !== undefined && layers.length === layersBefore) layers.push(`${label} -> unreadable (${err.code})`);
  }
  // Children after the entity's own summary, so `layers` lists outermost first.
  node.children = e.children.map((c, i) => describeEntity(c, path ? `${path}.${i + 1}` : `${i + 1}`, limits, depth, layers));
  return node;
}

export function inspectMessage(message: Uint8Array, options: { limits?: Partial<Limits> } = {}): InspectReport {
  const limits = resolveLimits(options.limits);
  const input = Buffer.from(message.buffer, message.byteOffset, message.byteLength);
  const canonical = canonicalizeLfOnly(input);
  const warnings: string[] = canonical === input ? [] : ['The message uses bare LF line breaks (not canonical CRLF).'];
  const root = parseEntity(canonical, { limits });
  const layers: string[] = [];
  const tree = describeEntity(root, '', limits, 0, layers);
  return { headers: root.headers.map((h) => [h.name, decodeHeaderText(h.value)]), tree, layers, warnings };
}
