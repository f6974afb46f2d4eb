/** Object identifiers used by CMS, S/MIME and X.509, named as in their RFCs. */
export const OID = {
  // RFC 5652 content types
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  envelopedData: '1.2.840.113549.1.7.3',
  digestedData: '1.2.840.113549.1.7.5',
  encryptedData: '1.2.840.113549.1.7.6',
  authEnvelopedData: '1.2.840.113549.1.9.16.1.23', // RFC 5083
  compressedData: '1.2.840.113549.1.9.16.1.9', // RFC 3274

  // RFC 5652 / RFC 8551 / RFC 5035 attributes
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
  counterSignature: '1.2.840.113549.1.9.6',
  smimeCapabilities: '1.2.840.113549.1.9.15',
  smimeEncryptionKeyPreference: '1.2.840.113549.1.9.16.2.11',
  signingCertificate: '1.2.840.113549.1.9.16.2.12',
  signingCertificateV2: '1.2.840.113549.1.9.16.2.47',
  cmsAlgorithmProtect: '1.2.840.113549.1.9.52', // RFC 6211
  microsoftEncryptionKeyPreference: '1.3.6.1.4.1.311.16.4',
  signatureTimeStampToken: '1.2.840.113549.1.9.16.2.14', // RFC 3161 appendix A
  tstInfo: '1.2.840.113549.1.9.16.1.4', // RFC 3161 2.4.2, id-ct-TSTInfo

  // digests
  md5: '1.2.840.113549.2.5',
  sha1: '1.3.14.3.2.26',
  sha224: '2.16.840.1.101.3.4.2.4',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
  sha3_256: '2.16.840.1.101.3.4.2.8',
  sha3_384: '2.16.840.1.101.3.4.2.9',
  sha3_512: '2.16.840.1.101.3.4.2.10',
  shake128: '2.16.840.1.101.3.4.2.11',
  shake256: '2.16.840.1.101.3.4.2.12',

  // RSA (RFC 8017, 4055)
  rsaEncryption: '1.2.840.113549.1.1.1',
  md5WithRSAEncryption: '1.2.840.113549.1.1.4',
  sha1WithRSAEncryption: '1.2.840.113549.1.1.5',
  rsaesOaep: '1.2.840.113549.1.1.7',
  mgf1: '1.2.840.113549.1.1.8',
  pSpecified: '1.2.840.113549.1.1.9',
  rsassaPss: '1.2.840.113549.1.1.10',
  sha256WithRSAEncryption: '1.2.840.113549.1.1.11',
  sha384WithRSAEncryption: '1.2.840.113549.1.1.12',
  sha512WithRSAEncryption: '1.2.840.113549.1.1.13',
  sha224WithRSAEncryption: '1.2.840.113549.1.1.14',

  // EC (RFC 5480, 5758)
  ecPublicKey: '1.2.840.10045.2.1',
  prime256v1: '1.2.840.10045.3.1.7',
  secp384r1: '1.3.132.0.34',
  secp521r1: '1.3.132.0.35',
  ecdsaWithSHA1: '1.2.840.10045.4.1',
  ecdsaWithSHA224: '1.2.840.10045.4.3.1',
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  ecdsaWithSHA384: '1.2.840.10045.4.3.3',
  ecdsaWithSHA512: '1.2.840.10045.4.3.4',

  // EdDSA and X25519/X448 (RFC 8410, 8419, 8418)
  X25519: '1.3.101.110',
  X448: '1.3.101.111',
  Ed25519: '1.3.101.112',
  Ed448: '1.3.101.113',

  // ECDH in CMS (RFC 5753, 8418)
  dhSinglePass_stdDH_sha1kdf: '1.3.133.16.840.63.0.2',
  dhSinglePass_stdDH_sha224kdf: '1.3.132.1.11.0',
  dhSinglePass_stdDH_sha256kdf: '1.3.132.1.11.1',
  dhSinglePass_stdDH_sha384kdf: '1.3.132.1.11.2',
  dhSinglePass_stdDH_sha512kdf: '1.3.132.1.11.3',
  dhSinglePass_cofactorDH_sha1kdf: '1.3.133.16.840.63.0.3',
  dhSinglePass_cofactorDH_sha224kdf: '1.3.132.1.14.0',
  dhSinglePass_cofactorDH_sha256kdf: '1.3.132.1.14.1',
  dhSinglePass_cofactorDH_sha384kdf: '1.3.132.1.14.2',
  dhSinglePass_cofactorDH_sha512kdf: '1.3.132.1.14.3',
  dhSinglePass_stdDH_hkdf_sha256: '1.2.840.113549.1.9.16.3.19', // RFC 8418
  dhSinglePass_stdDH_hkdf_sha384: '1.2.840.113549.1.9.16.3.20',
  dhSinglePass_stdDH_hkdf_sha512: '1.2.840.113549.1.9.16.3.21',

  // content encryption and key wrap
  des_ede3_cbc: '1.2.840.113549.3.7',
  rc2_cbc: '1.2.840.113549.3.2',
  aes128_CBC: '2.16.840.1.101.3.4.1.2',
  aes192_CBC: '2.16.840.1.101.3.4.1.22',
  aes256_CBC: '2.16.840.1.101.3.4.1.42',
  aes128_GCM: '2.16.840.1.101.3.4.1.6',
  aes192_GCM: '2.16.840.1.101.3.4.1.26',
  aes256_GCM: '2.16.840.1.101.3.4.1.46',
  aes128_wrap: '2.16.840.1.101.3.4.1.5',
  aes192_wrap: '2.16.840.1.101.3.4.1.25',
  aes256_wrap: '2.16.840.1.101.3.4.1.45',
  aes128_wrap_pad: '2.16.840.1.101.3.4.1.8',
  aes256_wrap_pad: '2.16.840.1.101.3.4.1.48',
  chacha20Poly1305: '1.2.840.113549.1.9.16.3.18', // RFC 8103

  // compression (RFC 3274)
  zlibCompress: '1.2.840.113549.1.9.16.3.8',

  // post-quantum: KEMRecipientInfo (RFC 9629), ML-KEM (RFC 9936), ML-DSA (RFC 9882)
  kemri: '1.2.840.113549.1.9.16.13.3', // id-ori-kem
  hkdfWithSha256: '1.2.840.113549.1.9.16.3.28', // RFC 8619
  hkdfWithSha384: '1.2.840.113549.1.9.16.3.29',
  hkdfWithSha512: '1.2.840.113549.1.9.16.3.30',
  mlKem512: '2.16.840.1.101.3.4.4.1',
  mlKem768: '2.16.840.1.101.3.4.4.2',
  mlKem1024: '2.16.840.1.101.3.4.4.3',
  mlDsa44: '2.16.840.1.101.3.4.3.17',
  mlDsa65: '2.16.840.1.101.3.4.3.18',
  mlDsa87: '2.16.840.1.101.3.4.3.19',

  // X.509 (RFC 5280) extensions and names
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  /** id-on-SmtpUTF8Mailbox, an otherName of subjectAltName (RFC 9598). */
  smtpUtf8Mailbox: '1.3.6.1.5.5.7.8.9',
  basicConstraints: '2.5.29.19',
  nameConstraints: '2.5.29.30',
  crlDistributionPoints: '2.5.29.31',
  certificatePolicies: '2.5.29.32',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  emailProtection: '1.3.6.1.5.5.7.3.4',
  timeStamping: '1.3.6.1.5.5.7.3.8', // RFC 3161 2.3
  anyExtendedKeyUsage: '2.5.29.37.0',
  commonName: '2.5.4.3',
  emailAddress: '1.2.840.113549.1.9.1',
  /** PKCS#9 extensionRequest (RFC 2985 5.4.2): the extensions a PKCS#10 request asks for. */
  extensionRequest: '1.2.840.113549.1.9.14',
} as const;

export type OidName = keyof typeof OID;

const byValue = new Map<string, OidName>(Object.entries(OID).map(([k, v]) => [v, k as OidName]));

/** The RFC name of an OID, or the dotted form when unknown. */
export function oidName(dotted: string): string {
  return byValue.get(dotted) ?? dotted;
}
