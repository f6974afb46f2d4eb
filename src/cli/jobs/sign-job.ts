/**
 * The sign job: loads the signer once (certificate, key, chain), then signs
 * message after message. Loaded only when a sign runs (the CLI starts faster).
 */
import type { Certificate } from '../../x509/certificate.ts';
import { signMessage } from '../../smime/sign-message.ts';
import { EXIT_OK } from '../exit-codes.ts';
import type { Job } from '../job.ts';
import { assertKeyMatches, loadCertificateFile, loadKeyFile, loadLeafCertificate } from '../load-credentials.ts';

export interface SignJobOptions {
  cert: string;
  key: string;
  chain: string[];
  opaque: boolean;
  hash?: 'sha256' | 'sha384' | 'sha512';
  pss: boolean;
  passphrase?: string;
}

/** Loads the signer once; the job then signs message after message. */
export async function createSignJob(o: SignJobOptions): Promise<Job> {
  const { leaf, extra } = await loadLeafCertificate('--cert', o.cert);
  const key = await loadKeyFile('--key', o.key, o.passphrase);
  assertKeyMatches(key, leaf, '--key', '--cert');
  // A --cert bundle's extra certificates travel as the chain too, as with openssl -certfile.
  const chain: Certificate[] = [...extra];
  for (const path of o.chain) chain.push(...(await loadCertificateFile('--chain', path)));
  const signer = {
    certificate: leaf,
    key,
    ...(o.hash ? { hash: o.hash } : {}),
    ...(o.pss ? { rsaPadding: 'pss' as const } : {}),
  };
  return async (message) => ({
    exitCode: EXIT_OK,
    output: signMessage(message, { signers: [signer], certificates: chain, opaque: o.opaque }),
  });
}
