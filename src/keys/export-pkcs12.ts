/**
 * Writing PKCS#12 (RFC 7292) files: a private key, its certificate and the chain,
 * for moving an identity to Outlook, Thunderbird, iOS, gpgsm or another gateway.
 *
 * Two profiles:
 * - "modern" (default): PBES2 / PBKDF2-HMAC-SHA256 / AES-256-CBC for the key and the
 *   certificates, HMAC-SHA256 MAC: what OpenSSL 3 writes by default.
 * - "legacy": pbeWithSHAAnd3-KeyTripleDES-CBC for both and an HMAC-SHA1 MAC, the
 *   form Windows before 10 1709, older iOS and gpgsm 2.2 import, and NSS and OpenSSL
 *   (with or without -legacy) read. RC2 (OpenSSL's legacy default for certificates)
 *   is not written: node has it only in a child process with the legacy provider
 *   (import uses one, pkcs12-legacy-cipher.ts), and 3DES is accepted by all of those
 *   importers.
 *
 * Layout follows OpenSSL's (interoperability is the point of the format): an
 * AuthenticatedSafe of [encryptedData(cert bags), data(shrouded key bag)], the
 * end-entity certificate and the key sharing a localKeyId (SHA-1 of the certificate).
 * A file may carry more identities (`others`: a person's past decryption keys, "keys
 * for my old mail"): one shrouded key bag each, each with its certificate under its
 * own localKeyId. Every key bag costs the reader one more key derivation, so the
 * default iteration count shrinks to keep the whole file within what importers
 * accept (DEFAULT_LIMITS.maxPkcs12TotalIterations).
 */
import { createHash, createHmac, randomBytes, type KeyObject } from 'node:crypto';
import { sequence, oid, octetString, integer, explicit, implicit, set, setOf, tlv, NULL } from '../asn1/der.ts';
import { Tag } from '../asn1/ber.ts';
import { OID } from '../asn1/oids.ts';
import { KakitomeError } from '../errors.ts';
import type { Certificate } from '../x509/certificate.ts';
import { keyMatchesCertificate } from './private-key.ts';
import { DEFAULT_LIMITS } from '../limits.ts';
import { derivePkcs12Key, pkcs12PasswordBytes } from './pkcs12-kdf.ts';
import { encryptPbes2, encryptPbeSha1TripleDes, type PbeResult } from './pkcs12-pbe.ts';
import { PKCS12_OID, MAC_DIGEST_OID } from './pkcs12-bags.ts';

export type Pkcs12Profile = 'modern' | 'legacy';

export interface Pkcs12Identity {
  key: KeyObject;
  certificate: Certificate;
  friendlyName?: string;
}

/** At most this many identities in one file (each is one key derivation for the reader). */
export const MAX_PKCS12_IDENTITIES = 32;

export interface ExportPkcs12Options {
  key: KeyObject;
  /** The key's certificate. */
  certificate: Certificate;
  /** Issuer certificates to include (nearest first). */
  chain?: Certificate[];
  /** Never empty (INVALID_ARGUMENT). */
  password: string;
  profile?: Pkcs12Profile;
  friendlyName?: string;
  /** KDF iterations; default 600,000 (modern, OWASP 2023 for PBKDF2-SHA256) or 2048 (legacy, as OpenSSL), fewer when `others` would exceed what importers accept. */
  iterations?: number;
  /** More identities in the same file (past keys), after the first. */
  others?: Pkcs12Identity[];
}

function attributes(localKeyId: Buffer, friendlyName?: string): Buffer {
  const attrs = [sequence(oid(PKCS12_OID.localKeyId), set(octetString(localKeyId)))];
  if (friendlyName !== undefined) {
    attrs.push(sequence(oid(PKCS12_OID.friendlyName), set(tlv(Tag.BMP_STRING, Buffer.from(friendlyName, 'utf16le').swap16()))));
  }
  return setOf(attrs);
}

function safeBag(bagId: string, value: Uint8Array, attrs?: Buffer): Buffer {
  return attrs ? sequence(oid(bagId), explicit(0, value), attrs) : sequence(oid(bagId), explicit(0, value));
}

/** EncryptedData (RFC 5652 8) holding one SafeContents, as PKCS#12 uses it. */
function encryptedDataContentInfo(pbe: PbeResult): Buffer {
  const eci = sequence(oid(OID.data), pbe.algorithm, implicit(0, false, pbe.ciphertext));
  return sequence(oid(OID.encryptedData), explicit(0, sequence(integer(0), eci)));
}

function dataContentInfo(content: Uint8Array): Buffer {
  return sequence(oid(OID.data), explicit(0, octetString(content)));
}

function checkIdentity(i: Pkcs12Identity): void {
  if (i.key.type !== 'private') throw new KakitomeError('KEY_INVALID', 'A PKCS#12 export needs the private key.');
  if (!keyMatchesCertificate(i.key, i.certificate)) throw new KakitomeError('KEY_INVALID', 'The private key does not belong to the certificate.');
}

export function exportPkcs12(o: ExportPkcs12Options): Buffer {
  const identities: Pkcs12Identity[] = [{ key: o.key, certificate: o.certificate, ...(o.friendlyName !== undefined ? { friendlyName: o.friendlyName } : {}) }, ...(o.others ?? [])];
  if (identities.length > MAX_PKCS12_IDENTITIES) throw new KakitomeError('LIMIT', `A PKCS#12 export carries at most ${MAX_PKCS12_IDENTITIES} keys.`);
  identities.forEach(checkIdentity);
  // An empty password encrypts the key under a value every attacker tries first.
  if (o.password === '') throw new KakitomeError('INVALID_ARGUMENT', 'A PKCS#12 export needs a password: an empty one leaves the private key readable by anyone who gets the file.');
  const profile = o.profile ?? 'modern';
  // What reading the file costs (pkcs12-key-deriver.ts units): the MAC and one
  // encryption per safe and key bag, one PBKDF2 block each (modern) or a 2-block key
  // and a 1-block IV from the SHA-1 PKCS#12 KDF each (legacy), plus the MAC's block.
  // A file our own import refuses would be no export.
  const encryptions = 1 + identities.length;
  const costPerIteration = profile === 'modern' ? 1 + encryptions : 1 + 3 * encryptions;
  const most = Math.min(DEFAULT_LIMITS.maxPkcs12Iterations, Math.floor(DEFAULT_LIMITS.maxPkcs12TotalIterations / costPerIteration));
  const iterations = o.iterations ?? Math.min(profile === 'modern' ? 600_000 : 2048, most);
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > most) throw new KakitomeError('INVALID_ARGUMENT', `Iterations must be between 1 and ${most} for the ${profile} profile (importers bound the work one file may ask for).`);
  const encrypt = (plain: Uint8Array) => (profile === 'modern' ? encryptPbes2(o.password, plain, iterations) : encryptPbeSha1TripleDes(o.password, plain, iterations));

  const certBag = (c: Certificate, attrs?: Buffer) => safeBag(PKCS12_OID.certBag, sequence(oid(PKCS12_OID.x509Certificate), explicit(0, octetString(c.der))), attrs);
  const keyIds = identities.map((i) => createHash('sha1').update(i.certificate.der).digest());
  const own = new Set(identities.map((i) => i.certificate.fingerprint256));
  const chain = [...new Map((o.chain ?? []).filter((c) => !own.has(c.fingerprint256)).map((c) => [c.fingerprint256, c])).values()];
  const certContents = sequence(...identities.map((i, n) => certBag(i.certificate, attributes(keyIds[n]!, i.friendlyName))), ...chain.map((c) => certBag(c)));

  const keyContents = sequence(...identities.map((i, n) => {
    const pkcs8 = i.key.export({ format: 'der', type: 'pkcs8' });
    const shrouded = encrypt(pkcs8);
    pkcs8.fill(0);
    const epki = sequence(shrouded.algorithm, octetString(shrouded.ciphertext));
    return safeBag(PKCS12_OID.pkcs8ShroudedKeyBag, epki, attributes(keyIds[n]!, i.friendlyName));
  }));

  const authSafe = sequence(encryptedDataContentInfo(encrypt(certContents)), dataContentInfo(keyContents));

  // RFC 7292 5.1 step 4: MacData; the MAC key comes from the PKCS#12 KDF with ID 3 (B.4).
  const macHash = profile === 'modern' ? 'sha256' : 'sha1';
  const macSalt = randomBytes(profile === 'modern' ? 16 : 8);
  // The MAC is a password verifier too: fewer iterations here would let an attacker
  // test passwords against the MAC instead of the PBKDF2-protected key.
  const macIterations = iterations;
  const macKey = derivePkcs12Key(macHash, pkcs12PasswordBytes(o.password), macSalt, 3, macIterations, macHash === 'sha256' ? 32 : 20);
  const mac = createHmac(macHash, macKey).update(authSafe).digest();
  const macData = sequence(sequence(sequence(oid(MAC_DIGEST_OID[macHash]), NULL), octetString(mac)), octetString(macSalt), integer(macIterations));

  return sequence(integer(3), dataContentInfo(authSafe), macData);
}
