/**
 * Kakitome's public API. This list is written by hand: anything not exported here
 * is internal and may change. Grouped by layer, bottom up (ARCHITECTURE.md).
 */

// Errors and limits
export { KakitomeError, DecryptionError, isKakitomeError, type ErrorCode, type Remedy } from './errors.ts';
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
export type { SignerValidator, SignerValidationInput, TrustReport, RevocationReport, CertificateRevocationReport, IdentityReport, ClockUsed, TrustStore, Fetcher } from './pki/types.ts';
export { createSignerValidator, type SignerValidatorOptions } from './pki/create-signer-validator.ts';
export { loadTrustAnchors, createStaticTrustStore } from './pki/load-trust-anchors.ts';
export { createHttpFetcher, type HttpFetcherOptions } from './pki/create-http-fetcher.ts';
export { DEFAULT_POLICY, allowLegacyAlgorithms, describeAlgorithmPolicy, type AlgorithmPolicy } from './pki/algorithm-policy.ts';
export { DEFAULT_REVOCATION_OPTIONS, type RevocationMode, type RevocationOptions } from './pki/check-revocation.ts';

// Large content, streamed (bounded memory; output released only after verification)
export { signStream, signFile, type SignStreamOptions } from './cms/stream/sign-stream.ts';
export { verifyStream, verifyFile, type VerifyStreamOptions } from './cms/stream/verify-stream.ts';
export { encryptStream, encryptFile, type EncryptStreamOptions } from './cms/stream/encrypt-stream.ts';
export { decryptStream, decryptFile, type DecryptStreamOptions, type DecryptStreamResult } from './cms/stream/decrypt-stream.ts';
// A file as chunks in three reused buffers: flat memory for verifyMessageStream/decryptMessageStream (and the CMS stream readers).
export { readFileChunks } from './cms/stream/read-file-chunks.ts';

// S/MIME messages (RFC 8551, 1847, 9788): whole RFC 5322 messages in and out
export { signMessage, type SignMessageOptions } from './smime/sign-message.ts';
export { encryptMessage, type EncryptMessageOptions } from './smime/encrypt-message.ts';
export { verifyMessage, type VerifyMessageOptions } from './smime/verify-message.ts';
export { decryptMessage, type DecryptMessageOptions } from './smime/decrypt-message.ts';
export { decryptAttachedMessages, type DecryptAttachedMessagesResult } from './smime/decrypt-attached-messages.ts';
export { inspectMessage, type InspectReport } from './smime/inspect-message.ts';
export { verdictExitCode, type MessageVerdict, type VerdictStatus, type SignerVerdict, type CountersignatureVerdict, type LayerReport, type EncryptionReport, type ProtectedHeadersReport, type AttachedMessageVerdict } from './smime/verdict.ts';
export { signMessageStream, type SignMessageStreamOptions } from './smime/sign-message-stream.ts';
export { encryptMessageStream, type EncryptMessageStreamOptions } from './smime/encrypt-message-stream.ts';
export { verifyMessageStream, type VerifyMessageStreamOptions } from './smime/verify-message-stream.ts';
export { decryptMessageStream, type DecryptMessageStreamOptions } from './smime/decrypt-message-stream.ts';

// Keys and certificates: store, key history, PKCS#12, internal CA
export { Store, type StoreOptions, type CertificateRecord, type KeyRecord, type AuditEntry, type TrustLevel, type Filing, type AddressFiling, type HarvestResult } from './store/store.ts';
export { harvestSigner, type HarvestInput, type HarvestOutcome, type HarvestRefusal } from './store/harvest-signer.ts';
export { findTrustedRecipientCertificate, type TrustedRecipient } from './store/find-trusted-recipient-certificate.ts';
export { openStore, type StoreConfig } from './store/open-store.ts';
export type { KeyDirectory, SigningIdentity } from './store/key-directory.ts';
export { chooseContentEncryption, type RecipientCapabilities, type ContentEncryptionPolicy } from './store/choose-content-encryption.ts';
export { loadMasterKey, createMasterKeyFile, writeMasterKeyFile, type MasterKey, type MasterKeySource } from './keys/master-key.ts';
export { protectMasterKey, type MasterKeyKdf } from './keys/protect-master-key.ts';
export { exportPrivateKeyPem, type PrivateKeyPemProtection } from './keys/export-private-key-pem.ts';
export { exportPkcs12, type ExportPkcs12Options, type Pkcs12Profile } from './keys/export-pkcs12.ts';
export { importPkcs12, type Pkcs12Contents, type ImportPkcs12Options } from './keys/import-pkcs12.ts';
export { createLegacyDecipher, type LegacyDecipher, type LegacyDecipherOptions, type LegacyDecryption, type LegacyCipher } from './keys/pkcs12-legacy-cipher.ts';
export { initCertificateAuthority, type InitCaOptions } from './ca/init-certificate-authority.ts';
export { issueMailboxCertificate, type IssueMailboxOptions, type IssuedCertificate } from './ca/issue-mailbox-certificate.ts';
export { renewMailboxCertificate, type RenewOptions } from './ca/renew-mailbox-certificate.ts';
export { revokeIssuedCertificate, type RevocationReasonName } from './ca/revoke-issued-certificate.ts';
export { publishCrl, type PublishCrlOptions } from './ca/publish-crl.ts';
export { startOcspResponder, type OcspResponderOptions, type RunningOcspResponder } from './ca/ocsp-responder.ts';
export { issueOcspSigningCertificate, renewOcspSigningCertificates, type OcspSigningOptions, type OcspSigner } from './ca/issue-ocsp-signing-certificate.ts';
