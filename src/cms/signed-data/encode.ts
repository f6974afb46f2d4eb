/**
 * SignedData encoding (RFC 5652 5.1, 5.2): DER for in-memory output, and the
 * indefinite-length BER framing (X.690 8.1.3.6) a streaming signer writes around
 * content it does not hold in memory.
 */
import { Tag } from '../../asn1/ber.ts';
import { sequence, oid, integer, setOf, implicit, sortDer, indefiniteHeader, END_OF_CONTENTS, encodeLength } from '../../asn1/der.ts';
import { OID } from '../../asn1/oids.ts';

export interface SignedDataLayout {
  /** eContentType OID. */
  contentType: string;
  /** DER DigestAlgorithmIdentifiers (one per distinct signer digest). */
  digestAlgorithms: Uint8Array[];
  /** DER certificates for the CertificateSet (may be empty). */
  certificates: Uint8Array[];
  /** DER CRLs for RevocationInfoChoices (may be empty). */
  crls: Uint8Array[];
  /** SignerInfo versions (1 or 3), to compute the SignedData version. */
  signerVersions: number[];
}

/**
 * SignedData version (RFC 5652 5.1): we write only X.509 certificates and CRLs, so 3
 * when any SignerInfo is version 3 or eContentType is not id-data, otherwise 1.
 */
export function signedDataVersion(contentType: string, signerVersions: number[]): number {
  return signerVersions.includes(3) || contentType !== OID.data ? 3 : 1;
}

// The CertificateSet a signer sends is the same in every message: its encoding is
// kept per first certificate (the objects are the callers' cached Certificate.der
// buffers) and reused when the list holds the very same objects.
const certificateSets = new WeakMap<Uint8Array, { certs: Uint8Array[]; encoded: Buffer }>();

function encodeCertificateSet(certs: Uint8Array[]): Buffer {
  const first = certs[0]!;
  const hit = certificateSets.get(first);
  if (hit && hit.certs.length === certs.length && hit.certs.every((c, i) => c === certs[i])) return hit.encoded;
  const encoded = implicit(0, true, ...sortDer(certs));
  certificateSets.set(first, { certs: [...certs], encoded });
  return encoded;
}

function certificateFields(layout: SignedDataLayout): Buffer[] {
  const out: Buffer[] = [];
  // [0] IMPLICIT CertificateSet and [1] IMPLICIT RevocationInfoChoices: SET OF, DER-sorted.
  if (layout.certificates.length) out.push(encodeCertificateSet(layout.certificates));
  if (layout.crls.length) out.push(implicit(1, true, ...sortDer(layout.crls)));
  return out;
}

const VERSIONS = new Map<number, Buffer>([1, 3].map((v) => [v, integer(v)]));

/**
 * The whole ContentInfo(SignedData) in DER. `content` undefined gives a detached
 * signature (eContent absent, RFC 5652 5.2).
 *
 * Assembled in one allocation: the nested-TLV helpers would copy the content once
 * per nesting level (five), which is measurable when signing thousands of messages.
 */
export function encodeSignedData(layout: SignedDataLayout, content: Uint8Array | undefined, signerInfos: Uint8Array[]): Buffer {
  const { version, digestSet, ctOid, certs } = fixedFields(layout);
  const sdOid = oid(OID.signedData);
  const signers = signerInfos.length === 1 ? signerInfos : sortDer(signerInfos);
  let signersLength = 0;
  for (const s of signers) signersLength += s.length;
  // Lengths inside out; each header is written in place below.
  const eContentInner = content === undefined ? 0 : headerLength(content.length) + content.length;
  const encapInner = ctOid.length + (content === undefined ? 0 : headerLength(eContentInner) + eContentInner);
  let sdInner = version.length + digestSet.length + headerLength(encapInner) + encapInner + headerLength(signersLength) + signersLength;
  for (const c of certs) sdInner += c.length;
  const explicitInner = headerLength(sdInner) + sdInner;
  const ciInner = sdOid.length + headerLength(explicitInner) + explicitInner;
  const out = Buffer.allocUnsafe(headerLength(ciInner) + ciInner);
  let pos = writeHeader(out, 0, Tag.SEQUENCE, ciInner);
  pos = put(out, pos, sdOid);
  pos = writeHeader(out, pos, 0xa0, explicitInner);
  pos = writeHeader(out, pos, Tag.SEQUENCE, sdInner);
  pos = put(out, pos, version);
  pos = put(out, pos, digestSet);
  pos = writeHeader(out, pos, Tag.SEQUENCE, encapInner);
  pos = put(out, pos, ctOid);
  if (content !== undefined) {
    pos = writeHeader(out, pos, 0xa0, eContentInner);
    pos = writeHeader(out, pos, Tag.OCTET_STRING, content.length);
    pos = put(out, pos, content);
  }
  for (const c of certs) pos = put(out, pos, c);
  pos = writeHeader(out, pos, Tag.SET, signersLength);
  for (const s of signers) pos = put(out, pos, s);
  if (pos !== out.length) throw new Error('encodeSignedData: length arithmetic is wrong');
  return out;
}

/** A SignedData's fields that its layout fixes, encoded. */
interface FixedFields {
  version: Buffer;
  digestSet: Buffer;
  ctOid: Buffer;
  certs: Buffer[];
}

// Kept per layout object: sign.ts hands out the same layout for a signer's every message.
const fixedFieldsOf = new WeakMap<SignedDataLayout, FixedFields>();

function fixedFields(layout: SignedDataLayout): FixedFields {
  let f = fixedFieldsOf.get(layout);
  if (!f) {
    f = {
      version: VERSIONS.get(signedDataVersion(layout.contentType, layout.signerVersions))!,
      digestSet: setOf(layout.digestAlgorithms),
      ctOid: oid(layout.contentType),
      certs: certificateFields(layout),
    };
    fixedFieldsOf.set(layout, f);
  }
  return f;
}

/** Octets of a DER identifier and definite length for `length` content octets (X.690 8.1.3). */
function headerLength(length: number): number {
  return length < 0x80 ? 2 : length < 0x100 ? 3 : length < 0x10000 ? 4 : length < 0x1000000 ? 5 : 6;
}

/** Writes a DER identifier and definite length at `pos`; returns the position after it. */
function writeHeader(out: Buffer, pos: number, tag: number, length: number): number {
  out[pos++] = tag;
  if (length < 0x80) {
    out[pos++] = length;
    return pos;
  }
  const n = headerLength(length) - 2;
  out[pos++] = 0x80 | n;
  for (let i = n - 1; i >= 0; i--) out[pos++] = Math.floor(length / 2 ** (8 * i)) & 0xff;
  return pos;
}

function put(out: Buffer, pos: number, bytes: Uint8Array): number {
  out.set(bytes, pos);
  return pos + bytes.length;
}

export interface SignedDataParts {
  /** Everything up to the first content octet (the whole encapContentInfo when detached). */
  header: Buffer;
  /** One content chunk as a primitive OCTET STRING segment of the constructed eContent (X.690 8.7.3). Empty chunks give an empty Buffer. */
  encodeContentChunk(chunk: Uint8Array): Buffer;
  /** Closes eContent, then certificates, crls and signerInfos, then the outer end-of-contents. */
  trailer(signerInfos: Uint8Array[]): Buffer;
}

/**
 * Indefinite-length framing for streaming output, as NSS, gpgsm and Bouncy Castle
 * write it: ContentInfo, [0], SignedData and encapContentInfo use indefinite lengths,
 * eContent is a constructed OCTET STRING of primitive segments. Nothing in the header
 * depends on the content, so it can be written before the content is read; the
 * SignerInfos are computed from the content digest and passed to `trailer`.
 */
export function encodeSignedDataParts(layout: SignedDataLayout, detached: boolean): SignedDataParts {
  const version = VERSIONS.get(signedDataVersion(layout.contentType, layout.signerVersions))!;
  const head = [
    indefiniteHeader(Tag.SEQUENCE),
    oid(OID.signedData),
    indefiniteHeader(0xa0),
    indefiniteHeader(Tag.SEQUENCE),
    version,
    setOf(layout.digestAlgorithms),
  ];
  if (detached) head.push(sequence(oid(layout.contentType)));
  else head.push(indefiniteHeader(Tag.SEQUENCE), oid(layout.contentType), indefiniteHeader(0xa0), indefiniteHeader(Tag.OCTET_STRING | 0x20));
  const header = Buffer.concat(head);
  const closeContent = detached ? Buffer.alloc(0) : Buffer.concat([END_OF_CONTENTS, END_OF_CONTENTS, END_OF_CONTENTS]);
  const certs = Buffer.concat(certificateFields(layout));
  return {
    header,
    encodeContentChunk(chunk: Uint8Array): Buffer {
      if (chunk.length === 0) return Buffer.alloc(0);
      const len = encodeLength(chunk.length);
      const out = Buffer.allocUnsafe(1 + len.length + chunk.length);
      out[0] = Tag.OCTET_STRING;
      len.copy(out, 1);
      out.set(chunk, 1 + len.length);
      return out;
    },
    trailer(signerInfos: Uint8Array[]): Buffer {
      return Buffer.concat([closeContent, certs, setOf(signerInfos), END_OF_CONTENTS, END_OF_CONTENTS, END_OF_CONTENTS]);
    },
  };
}
