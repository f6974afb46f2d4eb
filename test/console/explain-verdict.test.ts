/**
 * The check page's words for a verdict (src/server/console/explain-verdict.ts),
 * from real verdicts of the library: a signature by a trusted certificate whose
 * address is not the sender's is a sender problem, not a certificate problem.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { signMessage } from '../../src/smime/sign-message.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { viewVerdict } from '../../src/smime/verdict-view.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { explainVerdict } from '../../src/server/console/explain-verdict.ts';
import { en } from '../../src/server/console/messages/en.ts';
import { ja } from '../../src/server/console/messages/ja.ts';
import { draftMessage } from '../cli/run-cli.ts';
import { TestPki } from '../helpers/pki.ts';

const pki = new TestPki('Explain Verdict Root');
after(() => pki.cleanup());
const validateSigner = createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' }, fetchCaIssuers: false });
const signer = pki.identity('p256', 'aiko');

async function explained(from: string, m = en) {
  const message = signMessage(draftMessage(from, 'taro@example.com', 'Figures'), { signers: [{ certificate: signer.cert, key: signer.key }], certificates: [pki.caCert] });
  const view = viewVerdict(await verifyMessage(message, { validateSigner }));
  const x = explainVerdict(m, view, (d) => d.toISOString());
  return { view, x, fact: (label: string) => x.facts.find((f) => f.label === label)?.value };
}

test('signed by a trusted certificate for another address: the certificate is trusted, the sender is what is wrong (both languages)', async () => {
  for (const m of [en, ja]) {
    const genuine = await explained(`<${signer.email}>`, m);
    assert.equal(genuine.view.status, 'trusted');
    const root = genuine.fact(m.verdict.certificate);
    assert.equal(root, m.verdict.certTrusted(pki.caCert.subjectText));
    const impostor = await explained('The CEO <ceo@example.com>', m);
    assert.equal(impostor.x.headline, m.verdict.mismatch(signer.email, 'ceo@example.com'));
    assert.equal(impostor.fact(m.verdict.certificate), root, 'the chain is as trusted as for the genuine mail');
    assert.notEqual(impostor.fact(m.verdict.matchesSender), genuine.fact(m.verdict.matchesSender));
  }
});

test('a certificate from an authority nobody trusts is still said to be untrusted', async () => {
  const stranger = new TestPki('Nobody Trusts Me');
  try {
    const id = stranger.identity('p256', 'stranger');
    const message = signMessage(draftMessage(`<${id.email}>`, 'taro@example.com', 'Hello'), { signers: [{ certificate: id.cert, key: id.key }], certificates: [stranger.caCert] });
    const x = explainVerdict(en, viewVerdict(await verifyMessage(message, { validateSigner })), (d) => d.toISOString());
    assert.equal(x.facts.find((f) => f.label === en.verdict.certificate)?.value, en.verdict.certUntrusted);
  } finally {
    stranger.cleanup();
  }
});
