/**
 * Reading PKCS#12 (RFC 7292) files from OpenSSL, NSS, Windows, macOS/iOS and gpgsm.
 *
 * Strictness: BER accepted (NSS and Windows write indefinite lengths); the MAC
 * (password integrity mode, 5.1) is required and checked before anything is
 * decrypted; public-key integrity/privacy modes (signedData/envelopedData) are
 * refused; bags, nesting and iteration counts are bounded. Every password or
 * integrity failure is KEY_INVALID with one message.
 *
 * Cost: the file names its own key-derivation work, so every derivation goes
 * through one Pkcs12KeyDeriver per import (pkcs12-key-deriver.ts): each distinct
 * derivation is done once, encrypted blocks and the total work are bounded
 * (src/limits.ts, LIMIT), and the MAC and top-level blocks are priced before the
 * first derivation.
 *
 * RC2 and RC4 (legacy files from Windows, macOS, `openssl pkcs12 -legacy`, NSS with
 * -C/-c) are decrypted by a child process with OpenSSL's legacy provider
 * (pkcs12-legacy-cipher.ts), after the MAC has passed, with keys derived here: at
 * most one child for the top-level blocks and one for the shrouded key bags, none
 * for a file without RC2/RC4.
 */
import { createHmac, createPrivateKey, createPublicKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { decode, Tag, readOid, readOctetString, readOctets, readSmallInt, readString, type Tlv } from '../asn1/ber.ts';
import { OID } from '../asn1/oids.ts';
import { KakitomeError, malformed } from '../errors.ts';
import { Certificate } from '../x509/certificate.ts';
import type { Limits } from '../limits.ts';
import { decryptPbeBlocks, parsePbeAlgorithm, type PbeBlock, type PbeScheme } from './pkcs12-pbe.ts';
import { createLegacyDecipher, type LegacyDecipher } from './pkcs12-legacy-cipher.ts';
import { Pkcs12KeyDeriver, type DerivationSpec, type KeyDerivation } from './pkcs12-key-deriver.ts';
import { PKCS12_OID, MAC_DIGESTS } from './pkcs12-bags.ts';

export interface Pkcs12Contents {
  /** The first private key, and the certificate for it (matched by public key). */
  key?: KeyObject;
  certificate?: Certificate;
  /** Every other certificate (issuers, usually). */
  chain: Certificate[];
  keys: KeyObject[];
  certificates: Certificate[];
  friendlyName?: string;
  /** Bag types present but not imported (CRLs, secrets). */
  skipped: string[];
}

export interface ImportPkcs12Options {
  /** Largest file accepted (default 4 MiB). */
  maxBytes?: number;
  /** Most SafeBags accepted (default 256). */
  maxBags?: number;
  /** maxPkcs12Iterations, maxPkcs12TotalIterations, maxPkcs12EncryptedBlocks (src/limits.ts). */
  limits?: Partial<Limits>;
  /** Called before each key derivation is done (metering; each distinct one is done once). */
  onKeyDerivation?: (d: KeyDerivation) => void;
  /**
   * Runs RC2/RC4 blocks (default: createLegacyDecipher bounded by maxBytes, a child
   * process of this node with OpenSSL's legacy provider). Called only for such files.
   */
  legacyDecipher?: LegacyDecipher;
}

const MAX_NESTING = 4;

interface MacCheck {
  hash: string;
  digest: Uint8Array;
  /** The MAC key, and for the empty password its QUIRK form too (see verifyMac). */
  keys: DerivationSpec[];
}

function parseMacData(macData: Tlv, password: string): MacCheck {
  const f = macData.fields('MacData');
  const di = f.expect(Tag.SEQUENCE, 'mac').fields('DigestInfo');
  const alg = di.expect(Tag.SEQUENCE, 'digestAlgorithm').children();
  const hash = MAC_DIGESTS[readOid(alg[0] ?? malformed('empty digestAlgorithm'))];
  if (!hash) throw new KakitomeError('UNSUPPORTED_ALG', 'PKCS#12 MAC with an unknown digest (PBMAC1 is not supported).');
  const digest = readOctetString(di.expect(Tag.OCTET_STRING, 'digest'));
  di.end();
  const salt = readOctetString(f.expect(Tag.OCTET_STRING, 'macSalt'));
  const iterT = f.optional(Tag.INTEGER);
  f.end();
  const iterations = iterT ? readSmallInt(iterT, 'iterations') : 1; // DEFAULT 1
  const length = { sha1: 20, sha224: 28, sha256: 32, sha384: 48, sha512: 64 }[hash];
  const key = { kdf: 'pkcs12', hash, salt, iterations, length, purpose: 3 } as const;
  // QUIRK: for an empty password some writers (older Windows, Java keytool) feed the
  // KDF no octets at all instead of the two-octet BMPString terminator.
  const keys: DerivationSpec[] = [{ ...key, password: 'bmp' }, ...(password === '' ? [{ ...key, password: 'none' } as const] : [])];
  return { hash, digest, keys };
}

function verifyMac(mac: MacCheck, authSafe: Uint8Array, deriver: Pkcs12KeyDeriver): void {
  for (const spec of mac.keys) {
    const computed = createHmac(mac.hash, deriver.derive(spec)).update(authSafe).digest();
    if (computed.length === mac.digest.length && timingSafeEqual(computed, mac.digest)) return;
  }
  throw new KakitomeError('KEY_INVALID', 'The PKCS#12 file could not be opened: wrong password or damaged file.');
}

function readAttributes(t: Tlv | undefined): { friendlyName?: string } {
  const out: { friendlyName?: string } = {};
  if (!t) return out;
  for (const a of t.children()) {
    const f = a.fields('PKCS12Attribute');
    const id = readOid(f.expect(Tag.OID, 'attrId'));
    const values = f.expect(Tag.SET, 'attrValues').children();
    f.end();
    if (id === PKCS12_OID.friendlyName && values[0]) out.friendlyName = readString(values[0], 'friendlyName');
  }
  return out;
}

export function importPkcs12(data: Uint8Array, password: string, options: ImportPkcs12Options = {}): Pkcs12Contents {
  const maxBytes = options.maxBytes ?? 4 * 1024 * 1024;
  const maxBags = options.maxBags ?? 256;
  if (data.length > maxBytes) throw new KakitomeError('LIMIT', `PKCS#12 file of ${data.length} bytes exceeds ${maxBytes}.`);
  const pfx = decode(data, { maxDepth: 32 });
  if (pfx.tag !== Tag.SEQUENCE) malformed('PFX is not a SEQUENCE');
  const f = pfx.fields('PFX');
  if (readSmallInt(f.expect(Tag.INTEGER, 'version')) !== 3) malformed('PFX version is not 3');
  const authSafeCi = f.expect(Tag.SEQUENCE, 'authSafe').fields('ContentInfo');
  const macData = f.optional(Tag.SEQUENCE);
  f.end();
  const ct = readOid(authSafeCi.expect(Tag.OID, 'contentType'));
  if (ct !== OID.data) throw new KakitomeError('UNSUPPORTED_ALG', 'PKCS#12 public-key integrity mode (signedData) is not supported.');
  const wrapper = authSafeCi.expect(0xa0, 'content').children();
  authSafeCi.end();
  if (wrapper.length !== 1) malformed('authSafe content');
  const authSafeBytes = readOctetString(wrapper[0]!, 'authSafe');
  // RFC 7292 5.1: password integrity. A file without a MAC cannot be told apart
  // from one an attacker rewrote, so it is refused.
  if (!macData) throw new KakitomeError('KEY_INVALID', 'The PKCS#12 file has no integrity MAC; refusing it.');
  const mac = parseMacData(macData, password);
  const authSafe = decode(authSafeBytes, { maxDepth: 32 });
  if (authSafe.tag !== Tag.SEQUENCE) malformed('AuthenticatedSafe is not a SEQUENCE');
  const parts = authSafe.children().map(readAuthSafePart);

  const deriver = new Pkcs12KeyDeriver(password, options.limits, options.onKeyDerivation);
  try {
    // Price what the file announces before the first derivation: the MAC and every
    // top-level encrypted block. Shrouded key bags inside are charged as they come.
    const announced = [...mac.keys];
    for (const part of parts) {
      if (part.kind !== 'encrypted') continue;
      deriver.countEncryptedBlock();
      announced.push(...part.scheme.derivations);
    }
    deriver.ensureAffordable(announced);
    verifyMac(mac, authSafeBytes, deriver);
    const legacy = options.legacyDecipher ?? createLegacyDecipher({ maxBytes });
    return readContents(parts, deriver, legacy, maxBags);
  } finally {
    deriver.wipe();
  }
}

type AuthSafePart = { kind: 'data'; bytes: Uint8Array } | { kind: 'encrypted'; scheme: PbeScheme; bytes: Uint8Array };

/** One ContentInfo of the AuthenticatedSafe: plain data, or password-encrypted data (RFC 7292 5.1 step 2). */
function readAuthSafePart(ci: Tlv): AuthSafePart {
  const cf = ci.fields('ContentInfo');
  const type = readOid(cf.expect(Tag.OID, 'contentType'));
  const content = cf.expect(0xa0, 'content').children();
  cf.end();
  if (content.length !== 1) malformed('ContentInfo content');
  if (type === OID.data) return { kind: 'data', bytes: readOctetString(content[0]!, 'data') };
  if (type !== OID.encryptedData) throw new KakitomeError('UNSUPPORTED_ALG', 'PKCS#12 public-key privacy mode (envelopedData) is not supported.');
  const ed = content[0]!.fields('EncryptedData');
  readSmallInt(ed.expect(Tag.INTEGER, 'version'));
  const eci = ed.expect(Tag.SEQUENCE, 'encryptedContentInfo').fields('EncryptedContentInfo');
  ed.optional(0xa1); // unprotectedAttrs: nothing PKCS#12 needs
  ed.end();
  if (readOid(eci.expect(Tag.OID, 'contentType')) !== OID.data) malformed('EncryptedData does not hold data');
  const alg = eci.expect(Tag.SEQUENCE, 'contentEncryptionAlgorithm');
  const encT = eci.next('encryptedContent');
  eci.end();
  if (encT.baseTag !== 0x80) malformed('encryptedContent');
  return { kind: 'encrypted', scheme: parsePbeAlgorithm(alg), bytes: readOctets(encT) };
}

function readContents(parts: readonly AuthSafePart[], deriver: Pkcs12KeyDeriver, legacy: LegacyDecipher, maxBags: number): Pkcs12Contents {
  const out: Pkcs12Contents = { chain: [], keys: [], certificates: [], skipped: [] };
  // Keys in file order: a plain keyBag's PKCS#8, or the index of a shrouded one in
  // `shrouded`, decrypted together once every bag is read (one batch for RC2/RC4).
  const keySlots: (Uint8Array | number)[] = [];
  const shrouded: PbeBlock[] = [];
  let bags = 0;
  const readSafeContents = (bytes: Uint8Array, depth: number): void => {
    if (depth > MAX_NESTING) throw new KakitomeError('LIMIT', 'PKCS#12 SafeContents nested too deeply.');
    const sc = decode(bytes, { maxDepth: 32 });
    if (sc.tag !== Tag.SEQUENCE) malformed('SafeContents is not a SEQUENCE');
    for (const bag of sc.children()) {
      if (++bags > maxBags) throw new KakitomeError('LIMIT', `More than ${maxBags} PKCS#12 bags.`);
      const bf = bag.fields('SafeBag');
      const bagId = readOid(bf.expect(Tag.OID, 'bagId'));
      const valueW = bf.expect(0xa0, 'bagValue').children();
      const attrs = readAttributes(bf.optional(Tag.SET));
      bf.end();
      if (valueW.length !== 1) malformed('bagValue');
      const value = valueW[0]!;
      if (attrs.friendlyName !== undefined) out.friendlyName ??= attrs.friendlyName;
      switch (bagId) {
        case PKCS12_OID.keyBag:
          keySlots.push(value.bytes);
          break;
        case PKCS12_OID.pkcs8ShroudedKeyBag: {
          const ef = value.fields('EncryptedPrivateKeyInfo');
          const alg = ef.expect(Tag.SEQUENCE, 'encryptionAlgorithm');
          const enc = readOctetString(ef.next('encryptedData'));
          ef.end();
          deriver.countEncryptedBlock();
          keySlots.push(shrouded.length);
          shrouded.push({ scheme: parsePbeAlgorithm(alg), bytes: enc });
          break;
        }
        case PKCS12_OID.certBag: {
          const cf = value.fields('CertBag');
          const certId = readOid(cf.expect(Tag.OID, 'certId'));
          const cv = cf.expect(0xa0, 'certValue').children();
          cf.end();
          if (certId !== PKCS12_OID.x509Certificate) {
            out.skipped.push(`certBag ${certId}`);
            break;
          }
          if (cv.length !== 1) malformed('certValue');
          out.certificates.push(Certificate.fromDer(readOctetString(cv[0]!, 'certValue')));
          break;
        }
        case PKCS12_OID.safeContentsBag:
          readSafeContents(value.bytes, depth + 1);
          break;
        default:
          out.skipped.push(bagId === PKCS12_OID.crlBag ? 'crlBag' : bagId === PKCS12_OID.secretBag ? 'secretBag' : bagId);
      }
    }
  };
  const encrypted = parts.filter((p) => p.kind === 'encrypted');
  const decrypted = decryptPbeBlocks(encrypted, deriver, legacy);
  for (const part of parts) readSafeContents(part.kind === 'data' ? part.bytes : decrypted[encrypted.indexOf(part)]!, 0);
  const pkcs8s = decryptPbeBlocks(shrouded, deriver, legacy);
  try {
    for (const slot of keySlots) out.keys.push(toKey(typeof slot === 'number' ? pkcs8s[slot]! : slot));
  } finally {
    for (const pkcs8 of pkcs8s) pkcs8.fill(0);
  }

  const key = out.keys[0];
  if (key) {
    const spki = key.type === 'private' ? spkiOf(key) : undefined;
    const match = out.certificates.find((c) => spki !== undefined && Buffer.compare(Buffer.from(c.spki), spki) === 0);
    out.key = key;
    if (match) out.certificate = match;
  }
  out.chain = out.certificates.filter((c) => c !== out.certificate);
  return out;
}

function toKey(pkcs8: Uint8Array): KeyObject {
  try {
    return createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' });
  } catch (e) {
    throw new KakitomeError('KEY_INVALID', 'A private key in the PKCS#12 file is not a valid PKCS#8 key.', { cause: e });
  }
}

function spkiOf(key: KeyObject): Buffer {
  return createPublicKey(key).export({ format: 'der', type: 'spki' });
}
