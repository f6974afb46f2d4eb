/**
 * The sign job: loads the signer once (certificate, key, chain), then signs
 * message after message. Loaded only when a sign runs (the CLI starts faster).
 *
 * The signer comes from --cert/--key or --p12 (a PKCS#12 file, legacy RC2 ones too).
 * Without them the signer comes from the key store: the identity of --from,
 * or else of each message's From address (a gateway signs for many senders). Each
 * address is looked up once per job: every lookup opens, and audits, a private key.
 */
import type { KeyObject } from 'node:crypto';
import { KakitomeError } from '../../errors.ts';
import type { Certificate } from '../../x509/certificate.ts';
import { signMessage, type SignMessageOptions } from '../../smime/sign-message.ts';
import type { DkimSigningKey } from '../../store/dkim-key-directory.ts';
import type { Store } from '../../store/store.ts';
import { EXIT_OK } from '../exit-codes.ts';
import type { Job, StreamJob } from '../job.ts';
import { assertKeyMatches, loadCertificateFile, loadKeyFile, loadLeafCertificate } from '../load-credentials.ts';
import type { StoreLocation } from '../commands/store-options.ts';
import { readMessageFrom } from '../read-message-from.ts';

export interface SignJobOptions {
  cert?: string;
  key?: string;
  /** A PKCS#12 file holding the signer's key, certificate and chain (instead of cert/key). */
  p12?: string;
  chain: string[];
  opaque: boolean;
  hash?: 'sha256' | 'sha384' | 'sha512';
  pss: boolean;
  passphrase?: string;
  /** Sign as this address (store); absent with a store: each message's From address. */
  from?: string;
  /** The key store, when the signer comes from it (no --cert/--key). */
  store?: StoreLocation;
  /** DKIM-sign after S/MIME with the From domain's active DKIM keys from the store (the whole message is read: no streaming). */
  dkim?: boolean;
}

type Signer = SignMessageOptions['signers'][number];

/** Loads the signer once; the job then signs message after message. */
export async function createSignJob(o: SignJobOptions): Promise<Job> {
  const algorithm = { ...(o.hash ? { hash: o.hash } : {}), ...(o.pss ? { rsaPadding: 'pss' as const } : {}) };
  const extraChain: Certificate[] = [];
  for (const path of o.chain) extraChain.push(...(await loadCertificateFile('--chain', path)));
  const fromFiles = await loadFileSigner(o);
  if (fromFiles !== undefined) {
    const chain: Certificate[] = [...fromFiles.chain, ...extraChain];
    const signer = { certificate: fromFiles.certificate, key: fromFiles.key, ...algorithm };
    const job: Job = async (message) => ({
      exitCode: EXIT_OK,
      output: signMessage(message, { signers: [signer], certificates: chain, opaque: o.opaque }),
    });
    job.stream = streamSigner(signer, chain, o.opaque);
    return job;
  }
  if (o.store === undefined) throw new KakitomeError('INVALID_ARGUMENT', 'sign needs a signer: --cert FILE --key FILE, --p12 FILE, or a key store (kakitome init) and --from ADDRESS.');
  const { openLocatedStore } = await import('../commands/store-options.ts');
  const store = await openLocatedStore(o.store);
  const identities = new Map<string, { signer: Signer; chain: Certificate[] }>();
  const identityFor = async (address: string) => {
    const known = identities.get(address);
    if (known) return known;
    const id = await findIdentity(store, address);
    // The store's chain (issuing CA, root) is sent so the recipient can build the path.
    const resolved = { signer: { certificate: id.certificate, key: id.key, ...algorithm }, chain: [...id.chain, ...extraChain] };
    identities.set(address, resolved);
    return resolved;
  };
  try {
    // --from is checked before any message is read: a typo fails at once.
    if (o.from !== undefined) await identityFor(o.from.trim().toLowerCase());
  } catch (e) {
    await store.close();
    throw e;
  }
  const dkimKeys = new Map<string, Promise<DkimSigningKey[]>>();
  const dkimFor = (domain: string) => {
    let keys = dkimKeys.get(domain);
    // Loaded on first use, like the store itself: plain signing never loads them.
    if (!keys) dkimKeys.set(domain, (keys = import('../../store/dkim-key-directory.ts').then(({ DkimKeyDirectory }) => new DkimKeyDirectory(store).signingKeys(domain))));
    return keys;
  };
  const job: Job = async (message) => {
    const address = o.from !== undefined ? o.from.trim().toLowerCase() : readMessageFrom(message);
    const { signer, chain } = await identityFor(address);
    const signed = signMessage(message, { signers: [signer], certificates: chain, opaque: o.opaque });
    if (!o.dkim) return { exitCode: EXIT_OK, output: signed };
    // The DKIM domain is the From field's, whoever signs S/MIME.
    const from = readMessageFrom(message);
    const domain = from.slice(from.lastIndexOf('@') + 1);
    const keys = await dkimFor(domain);
    if (!keys.length) throw new KakitomeError('KEY_INVALID', `No active DKIM key for ${domain} in the key store: add one (kakitome dkim add ${domain} --selector SEL) and publish its record, or sign without --dkim.`);
    const { signDkim } = await import('../../dkim/sign-dkim.ts');
    return { exitCode: EXIT_OK, output: signDkim(signed, { signers: keys }) };
  };
  job.close = () => store.close();
  // With --from the signer is known before the message is read, so a large one can stream (not with --dkim: DKIM hashes the finished message).
  if (o.from !== undefined && !o.dkim) {
    const { signer, chain } = await identityFor(o.from.trim().toLowerCase());
    job.stream = streamSigner(signer, chain, o.opaque);
  }
  return job;
}

/** The signer from --p12, or from --cert/--key; undefined when it comes from the store. */
async function loadFileSigner(o: SignJobOptions): Promise<{ key: KeyObject; certificate: Certificate; chain: Certificate[] } | undefined> {
  if (o.p12 !== undefined) return (await import('../load-pkcs12.ts')).loadPkcs12Signer('--p12', o.p12, o.passphrase);
  if (o.cert === undefined || o.key === undefined) return undefined;
  const { leaf, extra } = await loadLeafCertificate('--cert', o.cert);
  const key = await loadKeyFile('--key', o.key, o.passphrase);
  assertKeyMatches(key, leaf, '--key', '--cert');
  // A --cert bundle's extra certificates travel as the chain too, as with openssl -certfile.
  return { key, certificate: leaf, chain: extra };
}

/**
 * Signing a message too large for memory (signMessageStream), multipart/signed or
 * opaque. Its modules load on first use: a batch worker never streams, and loads
 * faster without them.
 */
function streamSigner(signer: Signer, chain: Certificate[], opaque: boolean): StreamJob {
  return async (input, output) => {
    const { signMessageStream } = await import('../../smime/sign-message-stream.ts');
    const { warnings } = await signMessageStream(input, output, { signers: [signer], certificates: chain, opaque, end: false });
    return { exitCode: EXIT_OK, keepOutput: true, warnings };
  };
}

async function findIdentity(store: Store, address: string) {
  const id = await store.findSigningIdentity(address);
  if (id) return id;
  throw new KakitomeError(
    'INVALID_ARGUMENT',
    `The key store holds no current signing key for ${address}: issue one (kakitome ca issue --email ${address}), import one (kakitome keys import --p12 FILE), or give --cert FILE --key FILE or --p12 FILE.`,
  );
}
