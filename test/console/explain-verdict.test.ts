/**
 * The check page's words for a verdict (src/server/console/explain-verdict.ts),
 * from real verdicts of the library: a signature by a trusted certificate whose
 * address is not the sender's is a sender problem, not a certificate problem.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, sign as cryptoSign } from 'node:crypto';
import { sequence, set, setOf, oid, integer, octetString, explicit, implicit, retag, time } from '../../src/asn1/der.ts';
import { OID } from '../../src/asn1/oids.ts';
import { encodeAttribute } from '../../src/cms/attributes.ts';
import { encodeIdentifier, identifierFor } from '../../src/cms/identifier.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { viewVerdict } from '../../src/smime/verdict-view.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { explainVerdict } from '../../src/server/console/explain-verdict.ts';
import { en } from '../../src/server/console/messages/en.ts';
import { ja } from '../../src/server/console/messages/ja.ts';
import { draftMessage } from '../cli/run-cli.ts';
import { TestPki, type Identity } from '../helpers/pki.ts';

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

// RFC 5652 11.4, built by hand with src/asn1/der.ts and signed for real: `signer` signs the content,
// `countersigner` signs signer's signature value (its messageDigest attribute is that value's digest).
const countersigner = pki.identity('p256', 'kenji');
const ECDSA_SHA256 = sequence(oid(OID.ecdsaWithSHA256));
const SHA256 = sequence(oid(OID.sha256));

function signerInfo(id: Identity, attrs: Buffer[], unsigned: Buffer[] = [], signature?: Buffer): { der: Buffer; signature: Buffer } {
  const signed = setOf(attrs);
  const value = signature ?? cryptoSign('sha256', signed, id.key);
  const der = sequence(integer(1), encodeIdentifier(identifierFor(id.cert)), SHA256, retag(signed, 0xa0), ECDSA_SHA256, octetString(value), ...(unsigned.length ? [retag(setOf(unsigned), 0xa1)] : []));
  return { der, signature: value };
}

function countersignedMail(forge: boolean): Buffer {
  const content = Buffer.from('Content-Type: text/plain; charset=utf-8\r\n\r\nThe figures are attached.\r\n');
  const digest = (b: Uint8Array) => octetString(createHash('sha256').update(b).digest());
  const attrs = [encodeAttribute(OID.contentType, oid(OID.data)), encodeAttribute(OID.messageDigest, digest(content)), encodeAttribute(OID.signingTime, time(new Date()))];
  const main = signerInfo(signer, attrs);
  const cs = signerInfo(countersigner, [encodeAttribute(OID.messageDigest, digest(main.signature))], [], forge ? cryptoSign('sha256', Buffer.from('something else'), countersigner.key) : undefined);
  const si = signerInfo(signer, attrs, [encodeAttribute(OID.counterSignature, cs.der)], main.signature);
  const sd = sequence(integer(1), set(SHA256), sequence(oid(OID.data), explicit(0, octetString(content))), implicit(0, true, signer.cert.der, countersigner.cert.der, pki.caCert.der), set(si.der));
  const der = sequence(oid(OID.signedData), explicit(0, sd));
  return Buffer.from(`From: <${signer.email}>\r\nTo: taro@example.com\r\nSubject: Figures\r\nMIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n${der.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`);
}

test('a countersignature is shown under the signer, valid or not, with its certificate\'s trust, and the result stays as without it (both languages)', async () => {
  const plain = await explained(`<${signer.email}>`);
  assert.equal(plain.view.status, 'trusted');
  assert.ok(!plain.x.facts.some((f) => f.label === en.verdict.countersignature), 'no countersignature fact without one');
  for (const forge of [false, true]) {
    const view = viewVerdict(await verifyMessage(countersignedMail(forge), { validateSigner }));
    assert.equal(view.signers[0]!.countersignatures?.length, 1);
    for (const m of [en, ja]) {
      const x = explainVerdict(m, view, (d) => d.toISOString());
      const expected = explainVerdict(m, plain.view, (d) => d.toISOString());
      assert.equal(x.tone, expected.tone);
      assert.equal(x.headline, expected.headline);
      assert.equal(x.advice, expected.advice);
      assert.equal(x.code, expected.code);
      const at = x.facts.findIndex((f) => f.label === m.verdict.countersignature);
      assert.ok(at > x.facts.findIndex((f) => f.label === m.verdict.certificate), 'under the signer\'s facts');
      const value = x.facts[at]!.value;
      // The countersigner's certificate chains to the same anchor as the signer's: trusted (path-validated since session 15).
      assert.equal(value, forge ? m.verdict.countersignatureInvalid(countersigner.cert.subjectText, 'BAD_SIG') : m.verdict.countersignatureValid(countersigner.cert.subjectText, m.verdict.countersignerTrusted(pki.caCert.subjectText)));
      if (forge) assert.match(value, m === en ? /Not path-validated/ : /パス検証なし/);
      assert.deepEqual(x.facts.filter((_, i) => i !== at).map((f) => f.label), expected.facts.map((f) => f.label));
    }
  }
});
