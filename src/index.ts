/**
 * Kakitome's public API. This list is written by hand: anything not exported here
 * is internal and may change. Grouped by layer, bottom up (ARCHITECTURE.md).
 */

// Errors and limits
export { KakitomeError, DecryptionError, isKakitomeError, type ErrorCode } from './errors.ts';
export { DEFAULT_LIMITS, type Limits } from './limits.ts';

// Certificates and keys
export { Certificate, parseCertificate, parseCertificates, type Extension } from './x509/certificate.ts';
export { issueCertificate, type IssueOptions, type NameSpec, type KeyUsageName } from './x509/issue.ts';
export { loadPrivateKey, keyMatchesCertificate } from './keys/private-key.ts';
export { decodePem, encodePem } from './asn1/pem.ts';
export { OID, oidName } from './asn1/oids.ts';

// CMS (RFC 5652 and the algorithm RFCs)
export { parseContentInfo, type ContentInfo } from './cms/content-info.ts';
export { type CmsIdentifier, describeIdentifier } from './cms/identifier.ts';
export { signData, type SignOptions, type SignerOptions } from './cms/signed-data/sign.ts';
export { verifySignedData, type VerifyOptions, type SignerVerification, type SignedDataVerification } from './cms/signed-data/verify.ts';
export { encryptData, type EncryptOptions, type RecipientOptions, type ContentEncryptionName } from './cms/enveloped-data/encrypt.ts';
export { decryptData, type DecryptOptions, type DecryptResult, type DecryptKey, type KeyManagement } from './cms/enveloped-data/decrypt.ts';
export { compressData, decompressData } from './cms/compressed-data.ts';
export { DEFAULT_CAPABILITIES, type SmimeCapability } from './cms/capabilities.ts';

// Trust (RFC 5280 paths, CRL/OCSP, RFC 8550 identity, algorithm policy)
export type { SignerValidator, SignerValidationInput, TrustReport, RevocationReport, IdentityReport, ClockUsed, TrustStore, Fetcher } from './pki/types.ts';
export { createSignerValidator, type SignerValidatorOptions } from './pki/create-signer-validator.ts';
export { loadTrustAnchors, createStaticTrustStore } from './pki/load-trust-anchors.ts';
export { createHttpFetcher, type HttpFetcherOptions } from './pki/create-http-fetcher.ts';
export { DEFAULT_POLICY, describeAlgorithmPolicy, type AlgorithmPolicy } from './pki/algorithm-policy.ts';
export { DEFAULT_REVOCATION_OPTIONS, type RevocationMode, type RevocationOptions } from './pki/check-revocation.ts';
