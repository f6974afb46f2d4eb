/**
 * Signed mail from a CA the store does not trust, received as the gateway and the
 * CLI receive it (verify with the store's anchors, then harvest): its root is
 * recorded as waiting for a trust decision (src/store/record-unknown-root.ts).
 */
import { signMessage } from '../../src/smime/sign-message.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { createStoreTrustStore } from '../../src/store/store-trust-store.ts';
import { harvestVerdictSigners } from '../../src/operations/harvest-verdict-signers.ts';
import { viewVerdict } from '../../src/smime/verdict-view.ts';
import type { Store } from '../../src/store/store.ts';
import { draftMessage } from '../cli/run-cli.ts';
import type { Identity, TestPki } from './pki.ts';

export async function receiveFromUnknownRoot(store: Store, pki: TestPki, name: string): Promise<Identity> {
  const id = pki.identity('p256', name);
  const message = signMessage(draftMessage(`<${id.email}>`, 'staff@example.co.jp', 'Hello'), { signers: [{ certificate: id.cert, key: id.key }], certificates: [pki.caCert] });
  const validate = createSignerValidator({ trustStore: createStoreTrustStore(store), revocation: { mode: 'off' } });
  const verdict = await verifyMessage(message, { validateSigner: validate });
  await harvestVerdictSigners(store, verdict, viewVerdict(verdict), validate);
  return id;
}
