/**
 * All parsing limits in one place (style guide, "Streaming"). Exceeding one fails
 * with code LIMIT. Callers may pass a partial override to any parser.
 */
export interface Limits {
  /** Deepest ASN.1 nesting accepted. CMS with certificates needs about 12. */
  maxAsn1Depth: number;
  /** Largest in-memory CMS object accepted by the non-streaming APIs. */
  maxCmsBytes: number;
  /** SignerInfos per SignedData. */
  maxSigners: number;
  /** RecipientInfos per EnvelopedData (and recipient encrypted keys per KARI). */
  maxRecipients: number;
  /** Certificates and CRLs carried in one SignedData. */
  maxCertificates: number;
  /** Attributes per signed/unsigned attribute set. */
  maxAttributes: number;
  /** Children of one constructed OCTET STRING (BER segments). */
  maxSegments: number;
  /**
   * Bytes produced by decompressing CompressedData (RFC 3274): one budget per
   * message, shared by all its layers (docs/security.md, section 11).
   */
  maxDecompressedBytes: number;
  /** Nested CMS layers (signed inside encrypted inside signed...). */
  maxLayers: number;
  /**
   * Private-key operations one decryption may spend: one per distinct private key
   * whose certificate a RecipientInfo names (repeated RecipientInfos for it are
   * opened once), plus, for keys offered without a certificate, one per distinct
   * recipient identifier of their key type. Past it the envelope is refused before any.
   */
  maxKeyAttempts: number;
  /** Whole RFC 5322 message accepted by the non-streaming message APIs (src/mime, src/smime). */
  maxMessageBytes: number;
  /**
   * Whole message accepted by the streaming message APIs (signMessageStream,
   * encryptMessageStream, verifyMessageStream, decryptMessageStream). Memory stays
   * flat whatever the size; this bounds the disk their spools may fill.
   */
  maxStreamMessageBytes: number;
  /** Bytes in one entity's header section (go-message uses 1 MiB; real headers are a few KiB). */
  maxHeaderBytes: number;
  /** Bytes in one header line or one line scanned for a multipart boundary. */
  maxLineLength: number;
  /** MIME entities in one message, all levels together. */
  maxMimeParts: number;
  /** Nesting of multiparts (and parsed message/rfc822) inside one message. */
  maxMimeDepth: number;
  /**
   * Iterations of one PKCS#12 key derivation (MAC or encrypted block). OpenSSL
   * writes 2048, Windows 2000, our modern export 600,000.
   */
  maxPkcs12Iterations: number;
  /**
   * Key-derivation work for one PKCS#12 file, all derivations together, in
   * iterations times hash-output blocks (each distinct derivation counted once).
   * Our modern export at its default costs 1,800,000; the PKCS#12 KDF runs about
   * 1-2 µs per iteration here, so the default bounds an import to a few seconds.
   */
  maxPkcs12TotalIterations: number;
  /** Encrypted blocks (EncryptedData and shrouded key bags) in one PKCS#12 file. */
  maxPkcs12EncryptedBlocks: number;
  /**
   * Bytes of one RFC 3161 signature timestamp token (an unsigned attribute of a
   * SignerInfo). A token with the TSA's chain is a few KiB; a larger one is refused
   * before its SignedData is read.
   */
  maxTimestampTokenBytes: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxAsn1Depth: 48,
  maxCmsBytes: 512 * 1024 * 1024,
  maxSigners: 32,
  maxRecipients: 10_000,
  maxCertificates: 256,
  maxAttributes: 64,
  maxSegments: 1 << 22,
  maxDecompressedBytes: 64 * 1024 * 1024,
  maxLayers: 8,
  maxKeyAttempts: 256,
  maxMessageBytes: 512 * 1024 * 1024,
  maxStreamMessageBytes: 16 * 1024 ** 3,
  maxHeaderBytes: 1024 * 1024,
  maxLineLength: 1024 * 1024,
  maxMimeParts: 10_000,
  maxMimeDepth: 32,
  maxPkcs12Iterations: 2_000_000,
  maxPkcs12TotalIterations: 4_000_000,
  maxPkcs12EncryptedBlocks: 32,
  maxTimestampTokenBytes: 64 * 1024,
});

export function resolveLimits(override?: Partial<Limits>): Limits {
  return override ? { ...DEFAULT_LIMITS, ...override } : DEFAULT_LIMITS;
}
