/**
 * The encrypt job: loads the recipients (and the signer for sign-then-encrypt)
 * once, then encrypts message after message.
 *
 * With a key store, recipients may be addresses: their best current certificate,
 * validated now with the CLI's validator (findTrustedRecipientCertificate: path to
 * an anchor, revocation, the address in the certificate), so a certificate
 * harvested long ago and revoked since is refused, not encrypted to. The sender's
 * own certificate is added so the Sent copy stays readable (RFC 8551 3.3: one
 * envelope for every recipient), and the content cipher is the best one every
 * recipient is known to read (chooseContentEncryption, RFC 8551 2.7.1) unless
 * --cipher says otherwise.
 */
import { KakitomeError, isKakitomeError } from '../../errors.ts';
import type { Certificate } from '../../x509/certificate.ts';
import type { ContentEncryptionName } from '../../cms/enveloped-data/encrypt.ts';
import { encryptMessage, type EncryptMessageOptions } from '../../smime/encrypt-message.ts';
import { encryptMessageStream } from '../../smime/encrypt-message-stream.ts';
import { chooseContentEncryption } from '../../store/choose-content-encryption.ts';
import { CERTIFICATE_REFUSALS, findTrustedRecipientCertificate } from '../../store/find-trusted-recipient-certificate.ts';
import type { SignerValidator } from '../../pki/types.ts';
import { createCliValidator } from '../create-cli-validator.ts';
import type { TrustOptions } from '../commands/trust-options.ts';
import type { CertificateRecord, Store } from '../../store/store.ts';
import { EXIT_OK } from '../exit-codes.ts';
import type { Job } from '../job.ts';
import { assertKeyMatches, loadCertificateFile, loadKeyFile, loadLeafCertificate } from '../load-credentials.ts';
import type { CipherChoice } from '../commands/encrypt.ts';
import { openLocatedStore, type StoreLocation } from '../commands/store-options.ts';
import { readMessageFromIfAny } from '../read-message-from.ts';

export interface EncryptJobOptions {
  /** Certificate files. */
  to: string[];
  /** Addresses looked up in the store. */
  toAddresses?: string[];
  /** Absent: AES-256-GCM without a store; with a store, chosen from the recipients' capabilities. */
  cipher?: CipherChoice;
  oaep: boolean;
  signCert?: string;
  signKey?: string;
  passphrase?: string;
  /** Sign first with the sender's identity from the store. */
  signFromStore?: boolean;
  /** Add the sender's own certificate (store) as a recipient; default true with a store. */
  self?: boolean;
  /** The sender's address; absent: each message's From address. */
  from?: string;
  store?: StoreLocation;
  /** With a store: how address recipients are validated (default: the store's anchors, revocation soft-fail). */
  trust?: TrustOptions;
  /** "[...]" as the outer Subject and the RFC 9788 legacy display in the body (EncryptMessageOptions.hideSubject). */
  hideSubject?: boolean;
}

const DEFAULT_TRUST: TrustOptions = { ca: [], certfile: [], revocation: 'allow-unknown', validityClock: 'now', fetchCaIssuers: [], allowInternalFetch: [], allowLegacy: false };

interface Recipient {
  certificate: Certificate;
  /** For errors and the cipher choice: the address or file. */
  label: string;
  capabilities?: Uint8Array;
  /** The store holds the private key: this copy is read by Kakitome itself. */
  ownKey: boolean;
  /** Named as a file on the command line. */
  fromFile?: boolean;
}

export async function createEncryptJob(o: EncryptJobOptions): Promise<Job> {
  const certificates: Array<{ certificate: Certificate; path: string }> = [];
  for (const path of o.to) for (const certificate of await loadCertificateFile('--to', path)) certificates.push({ certificate, path });
  const addresses = o.toAddresses ?? [];
  if (certificates.length === 0 && addresses.length === 0) throw new KakitomeError('INVALID_ARGUMENT', 'encrypt needs at least one recipient: --to CERT or --to ADDRESS.');
  let sign: EncryptMessageOptions['sign'];
  if (o.signCert !== undefined && o.signKey !== undefined) {
    const { leaf, extra } = await loadLeafCertificate('--sign-cert', o.signCert);
    const key = await loadKeyFile('--sign-key', o.signKey, o.passphrase);
    assertKeyMatches(key, leaf, '--sign-key', '--sign-cert');
    sign = { signers: [{ certificate: leaf, key }], certificates: extra };
  }
  const fixedCipher: ContentEncryptionName | undefined = o.cipher;
  const hide = o.hideSubject ? { hideSubject: true } : {};
  if (o.store === undefined) {
    if (addresses.length > 0) throw new KakitomeError('INVALID_ARGUMENT', `--to ${addresses[0]} is an address: looking it up needs a key store (kakitome init), or give the certificate file.`);
    if (o.signFromStore) throw new KakitomeError('INVALID_ARGUMENT', '--sign needs a key store; or give --sign-cert and --sign-key.');
    const recipients = certificates.map(({ certificate }) => ({ certificate, ...(o.oaep ? { rsaPadding: 'oaep' as const } : {}) }));
    const job: Job = async (message) => {
      const warnings: string[] = [];
      const output = encryptMessage(message, { recipients, contentEncryption: fixedCipher ?? 'aes-256-gcm', ...(sign ? { sign } : {}), ...hide, warnings });
      return { exitCode: EXIT_OK, output, ...(warnings.length ? { warnings } : {}) };
    };
    // A large message streams, signed inside (multipart/signed) when --sign-cert is given.
    job.stream = async (input, output) => {
      const { warnings } = await encryptMessageStream(input, output, { recipients, contentEncryption: fixedCipher ?? 'aes-256-gcm', ...(sign ? { sign } : {}), ...hide, end: false });
      return { exitCode: EXIT_OK, keepOutput: true, warnings };
    };
    return job;
  }

  const store = await openLocatedStore(o.store);
  let fixed: Recipient[];
  let validate: SignerValidator;
  try {
    validate = await createCliValidator({ ...(o.trust ?? DEFAULT_TRUST), validityClock: 'now', allowLegacy: false }, store);
    fixed = await resolveRecipients(store, certificates, addresses, validate);
  } catch (e) {
    await store.close();
    throw e;
  }
  const senders = new Map<string, { copy?: Recipient; sign?: NonNullable<EncryptMessageOptions['sign']> }>();
  const senderFor = async (address: string) => {
    let s = senders.get(address);
    if (s) return s;
    s = {};
    if (o.self !== false) s.copy = await senderCopy(store, address, validate);
    if (o.signFromStore) {
      const id = await store.findSigningIdentity(address);
      if (!id) throw new KakitomeError('INVALID_ARGUMENT', `--sign: the key store holds no current signing key for ${address} (kakitome ca issue --email ${address}, or kakitome keys import).`);
      s.sign = { signers: [{ certificate: id.certificate, key: id.key }], certificates: id.chain };
    }
    senders.set(address, s);
    return s;
  };
  const job: Job = async (message) => {
    const from = o.from?.trim().toLowerCase() ?? readMessageFromIfAny(message);
    if (from === undefined && o.signFromStore) throw new KakitomeError('INVALID_ARGUMENT', '--sign: the message has no From address; give --from ADDRESS.');
    const sender = from !== undefined ? await senderFor(from) : {};
    const all = [...fixed];
    if (sender.copy && !all.some((r) => r.certificate.fingerprint256 === sender.copy!.certificate.fingerprint256)) all.push(sender.copy);
    const signWith = sender.sign ?? sign;
    const warnings: string[] = [];
    const output = encryptMessage(message, {
      recipients: all.map(({ certificate }) => ({ certificate, ...(o.oaep ? { rsaPadding: 'oaep' as const } : {}) })),
      contentEncryption: fixedCipher ?? chooseCipher(all),
      ...(signWith ? { sign: signWith } : {}),
      ...hide,
      warnings,
    });
    return { exitCode: EXIT_OK, output, ...(warnings.length ? { warnings } : {}) };
  };
  job.close = () => store.close();
  return job;
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

/** File recipients keep what the store knows of them (capabilities); addresses must have a current certificate that validates now. */
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
        `No current certificate for ${address} in the key store: import theirs (kakitome certs import FILE), or verify a signed message from ${address} (kakitome verify keeps the sender's certificate), then encrypt again.${pending ? ` A new key for ${address} waits for an administrator's decision: kakitome certs history ${address}, kakitome certs accept FINGERPRINT.` : ''}`,
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
 * of encrypting to files (AES-256-GCM; --cipher is the user's to set). The
 * correspondents found by address decide, with what they announced.
 */
function chooseCipher(recipients: readonly Recipient[]): ContentEncryptionName {
  const others = recipients.filter((r) => r.capabilities !== undefined || !(r.ownKey || r.fromFile));
  if (others.length === 0) return 'aes-256-gcm';
  return chooseContentEncryption(others.map((r) => ({ recipient: r.label, ...(r.capabilities ? { capabilities: r.capabilities } : {}) }))).name;
}
