/**
 * Encrypting with a key store, as every front end encrypts (`kakitome encrypt`
 * with a store, POST /api/v1/encrypt): recipients may be addresses, each encrypted
 * to its best current certificate, validated now (findTrustedRecipientCertificate:
 * path to an anchor, revocation, the address in the certificate), so a certificate
 * harvested long ago and revoked since is refused, not encrypted to. The sender's
 * own certificate is added so the Sent copy stays readable (RFC 8551 3.3: one
 * envelope for every recipient), and the content cipher is the best one every
 * recipient is known to read (chooseContentEncryption, RFC 8551 2.7.1) unless the
 * caller names one. Certificates the caller names directly (the CLI's --to FILE)
 * are its explicit choice and are not validated.
 */
import { KakitomeError, isKakitomeError } from '../errors.ts';
import type { ContentEncryptionName } from '../cms/enveloped-data/encrypt.ts';
import type { SignerValidator } from '../pki/types.ts';
import { encryptMessage, type EncryptMessageOptions } from '../smime/encrypt-message.ts';
import { chooseContentEncryption } from '../store/choose-content-encryption.ts';
import { CERTIFICATE_REFUSALS, findTrustedRecipientCertificate } from '../store/find-trusted-recipient-certificate.ts';
import type { CertificateRecord, Store } from '../store/store.ts';
import type { Certificate } from '../x509/certificate.ts';
import { createTrustValidator } from './create-trust-validator.ts';
import type { TrustOptions } from './trust-options.ts';

export interface TrustedEncryptionOptions {
  /** Certificates named directly, with where they came from (the CLI's --to FILE); the store adds what it knows of them (capabilities). */
  certificates: Array<{ certificate: Certificate; path: string }>;
  /** Addresses whose current certificate in the store is validated now and encrypted to. */
  addresses: string[];
  /** Absent: chosen from the recipients' capabilities. */
  cipher?: ContentEncryptionName;
  /** RSA recipients: RSAES-OAEP instead of PKCS#1 v1.5. */
  oaep: boolean;
  /** Sign first with this signer (the CLI's --sign-cert); signFromStore overrides it per sender. */
  sign?: EncryptMessageOptions['sign'];
  /** Sign first with the sender's identity from the store. */
  signFromStore?: boolean;
  /** Add the sender's own certificate as a recipient; default true. */
  self?: boolean;
  /** "[...]" as the outer Subject and the RFC 9788 legacy display in the body (EncryptMessageOptions.hideSubject). */
  hideSubject?: boolean;
  /** How address recipients are validated: always now, never on legacy algorithms, whatever these say. */
  trust: TrustOptions;
}

/** Encrypts one message from `from` (the sender: the Sent copy and the signer; undefined: no copy, unsigned unless `sign`). */
export type TrustedEncryption = (message: Buffer, from: string | undefined) => Promise<{ output: Uint8Array; warnings: string[] }>;

interface Recipient {
  certificate: Certificate;
  /** For errors and the cipher choice: the address or file. */
  label: string;
  capabilities?: Uint8Array;
  /** The store holds the private key: this copy is read by Kakitome itself. */
  ownKey: boolean;
  /** Named directly (a file), not by address. */
  fromFile?: boolean;
}

/**
 * Builds the validator and resolves the fixed recipients once (an address without
 * a valid current certificate fails here); each message then adds its sender's
 * copy and signer, looked up once per sender.
 */
export async function prepareTrustedEncryption(store: Store, o: TrustedEncryptionOptions): Promise<TrustedEncryption> {
  const validate = createTrustValidator({ ...o.trust, validityClock: 'now', allowLegacy: false }, store);
  const fixed = await resolveRecipients(store, o.certificates, o.addresses, validate);
  const hide = o.hideSubject ? { hideSubject: true } : {};
  const senders = new Map<string, { copy?: Recipient; sign?: NonNullable<EncryptMessageOptions['sign']> }>();
  const senderFor = async (address: string) => {
    let s = senders.get(address);
    if (s) return s;
    s = {};
    if (o.self !== false) s.copy = await senderCopy(store, address, validate);
    if (o.signFromStore) {
      const id = await store.findSigningIdentity(address);
      if (!id) throw new KakitomeError('INVALID_ARGUMENT', `Signing from the key store: it holds no current signing key for ${address}. Issue one with the internal CA, or import the key and certificate.`, { remedy: 'signingKey' });
      s.sign = { signers: [{ certificate: id.certificate, key: id.key }], certificates: id.chain };
    }
    senders.set(address, s);
    return s;
  };
  return async (message, from) => {
    if (from === undefined && o.signFromStore) throw new KakitomeError('INVALID_ARGUMENT', 'Signing from the key store: the message has no From address to sign as; give the sender\'s address.', { remedy: 'from' });
    const sender = from !== undefined ? await senderFor(from) : {};
    const all = [...fixed];
    if (sender.copy && !all.some((r) => r.certificate.fingerprint256 === sender.copy!.certificate.fingerprint256)) all.push(sender.copy);
    const signWith = sender.sign ?? o.sign;
    const warnings: string[] = [];
    const output = encryptMessage(message, {
      recipients: all.map(({ certificate }) => ({ certificate, ...(o.oaep ? { rsaPadding: 'oaep' as const } : {}) })),
      contentEncryption: o.cipher ?? chooseCipher(all),
      ...(signWith ? { sign: signWith } : {}),
      ...hide,
      warnings,
    });
    return { output, warnings };
  };
}

function recipientOf(rec: CertificateRecord, label: string): Recipient {
  return { certificate: rec.certificate, label, ownKey: rec.hasPrivateKey, ...(rec.capabilities ? { capabilities: rec.capabilities } : {}) };
}

/**
 * The Sent copy's certificate: one whose key the store holds (it is ours, and
 * Kakitome reads it), else the sender's validated certificate. No usable
 * certificate means no Sent copy (docs/cli.md), never a copy to an unvalidated one.
 */
async function senderCopy(store: Store, address: string, validate: SignerValidator): Promise<Recipient | undefined> {
  const own = (await store.findRecipientCertificates(address)).find((r) => r.hasPrivateKey);
  if (own) return recipientOf(own, address);
  try {
    const found = await findTrustedRecipientCertificate(store, address, validate);
    return found ? recipientOf(found.record, address) : undefined;
  } catch (e) {
    if (isKakitomeError(e) && CERTIFICATE_REFUSALS.has(e.code)) return undefined;
    throw e;
  }
}

/** Files keep what the store knows of them (capabilities); addresses must have a current certificate that validates now. */
async function resolveRecipients(store: Store, files: Array<{ certificate: Certificate; path: string }>, addresses: string[], validate: SignerValidator): Promise<Recipient[]> {
  const out: Recipient[] = [];
  for (const { certificate, path } of files) {
    const rec = await store.findCertificateByFingerprint(certificate.fingerprint256);
    out.push(rec ? { ...recipientOf(rec, path), certificate, fromFile: true } : { certificate, label: path, ownKey: false, fromFile: true });
  }
  for (const address of addresses) {
    const rec = (await findTrustedRecipientCertificate(store, address, validate))?.record;
    if (!rec) {
      const pending = (await store.certificateHistory(address)).some((h) => h.filing.filing === 'pending');
      throw new KakitomeError(
        'INVALID_ARGUMENT',
        `No current certificate for ${address} in the key store: import theirs, or verify a signed message from ${address} (verifying with the key store keeps the sender's certificate), then encrypt again.${pending ? ` A new key for ${address} waits for an administrator's decision: accept it in the key store (its history lists it).` : ''}`,
        { remedy: 'recipientCertificate' },
      );
    }
    if (!out.some((r) => r.certificate.fingerprint256 === rec.certificate.fingerprint256)) out.push(recipientOf(rec, address));
  }
  return out;
}

/**
 * QUIRK: a copy whose key the store holds (the sender's own) is read by Kakitome,
 * which reads every cipher; its unknown capabilities must not pull everyone else
 * down to CBC. A certificate file the store knows nothing about keeps the default
 * of encrypting to files (AES-256-GCM; the cipher is the caller's to set). The
 * correspondents found by address decide, with what they announced.
 */
function chooseCipher(recipients: readonly Recipient[]): ContentEncryptionName {
  const others = recipients.filter((r) => r.capabilities !== undefined || !(r.ownKey || r.fromFile));
  if (others.length === 0) return 'aes-256-gcm';
  return chooseContentEncryption(others.map((r) => ({ recipient: r.label, ...(r.capabilities ? { capabilities: r.capabilities } : {}) }))).name;
}
