/**
 * The encrypt job: loads the recipients (and the signer for sign-then-encrypt)
 * once, then encrypts message after message.
 *
 * Without a key store the recipients are certificate files, encrypted to as they
 * are. With one, recipients may be addresses, and the library's operation
 * (src/operations/encrypt-to-trusted-recipients.ts) validates them now, adds the
 * sender's Sent copy and chooses the cipher (unless --cipher says otherwise).
 */
import { KakitomeError } from '../../errors.ts';
import type { Certificate } from '../../x509/certificate.ts';
import type { ContentEncryptionName } from '../../cms/enveloped-data/encrypt.ts';
import { encryptMessage, type EncryptMessageOptions } from '../../smime/encrypt-message.ts';
import { encryptMessageStream } from '../../smime/encrypt-message-stream.ts';
import { prepareTrustedEncryption, type TrustedEncryption } from '../../operations/encrypt-to-trusted-recipients.ts';
import { storeTrustOptions } from '../../operations/trust-options.ts';
import type { TrustJobOptions } from '../commands/trust-options.ts';
import { EXIT_OK } from '../exit-codes.ts';
import type { Job } from '../job.ts';
import { assertKeyMatches, loadCertificateFile, loadKeyFile, loadLeafCertificate } from '../load-credentials.ts';
import { loadTrustOptions } from '../load-trust-options.ts';
import { openLocatedStore, type StoreLocation } from '../commands/store-options.ts';
import { readMessageFromIfAny } from '../read-message-from.ts';

export interface EncryptJobOptions {
  /** Certificate files. */
  to: string[];
  /** Addresses looked up in the store. */
  toAddresses?: string[];
  /** --cipher (one of commands/encrypt.ts CIPHERS). Absent: AES-256-GCM without a store; with a store, chosen from the recipients' capabilities. */
  cipher?: ContentEncryptionName;
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
  /** With a store: how address recipients are validated (default: the store's anchors, revocation allow-unknown). */
  trust?: TrustJobOptions;
  /** "[...]" as the outer Subject and the RFC 9788 legacy display in the body (EncryptMessageOptions.hideSubject). */
  hideSubject?: boolean;
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
  const hide = o.hideSubject ? { hideSubject: true } : {};
  if (o.store === undefined) {
    if (addresses.length > 0) throw new KakitomeError('INVALID_ARGUMENT', `--to ${addresses[0]} is an address: looking it up needs a key store (kakitome init), or give the certificate file.`);
    if (o.signFromStore) throw new KakitomeError('INVALID_ARGUMENT', '--sign needs a key store; or give --sign-cert and --sign-key.');
    const recipients = certificates.map(({ certificate }) => ({ certificate, ...(o.oaep ? { rsaPadding: 'oaep' as const } : {}) }));
    const job: Job = async (message) => {
      const warnings: string[] = [];
      const output = encryptMessage(message, { recipients, contentEncryption: o.cipher ?? 'aes-256-gcm', ...(sign ? { sign } : {}), ...hide, warnings });
      return { exitCode: EXIT_OK, output, ...(warnings.length ? { warnings } : {}) };
    };
    // A large message streams, signed inside (multipart/signed) when --sign-cert is given.
    job.stream = async (input, output) => {
      const { warnings } = await encryptMessageStream(input, output, { recipients, contentEncryption: o.cipher ?? 'aes-256-gcm', ...(sign ? { sign } : {}), ...hide, end: false });
      return { exitCode: EXIT_OK, keepOutput: true, warnings };
    };
    return job;
  }

  const store = await openLocatedStore(o.store);
  let encrypt: TrustedEncryption;
  try {
    const trust = o.trust ? await loadTrustOptions(o.trust) : storeTrustOptions('allow-unknown');
    encrypt = await prepareTrustedEncryption(store, {
      certificates, addresses, oaep: o.oaep, ...(sign ? { sign } : {}), ...(o.cipher ? { cipher: o.cipher } : {}), ...hide,
      ...(o.signFromStore ? { signFromStore: true } : {}), ...(o.self !== undefined ? { self: o.self } : {}), trust,
    });
  } catch (e) {
    await store.close();
    throw e;
  }
  const job: Job = async (message) => {
    const { output, warnings } = await encrypt(message, o.from?.trim().toLowerCase() ?? readMessageFromIfAny(message));
    return { exitCode: EXIT_OK, output, ...(warnings.length ? { warnings } : {}) };
  };
  job.close = () => store.close();
  return job;
}
