/**
 * A hostile signer: someone with a real certificate signs attributes of their own
 * making. The signed attributes are mutated and then signed again for real, so the
 * signature verifies and every attribute reader (contentType, messageDigest,
 * signingTime, SMIMECapabilities, ESS signingCertificateV2, CMSAlgorithmProtection)
 * faces damaged input behind a valid signature.
 *
 * Oracle: typed errors only; a 'valid' result still has the original content, the
 * original eContentType and the signer's certificate (a valid signature over
 * garbage attributes must not become a valid message about something else).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { sign as cryptoSign } from 'node:crypto';
import { TestPki, type Identity } from '../helpers/pki.ts';
import { signData } from '../../src/cms/signed-data/sign.ts';
import { verifySignedData } from '../../src/cms/signed-data/verify.ts';
import { parseContentInfo } from '../../src/cms/content-info.ts';
import { parseSignedData } from '../../src/cms/signed-data/parse.ts';
import { sequence, integer, set, explicit, implicit, octetString, oid, retag } from '../../src/asn1/der.ts';
import { OID } from '../../src/asn1/oids.ts';
import { fuzz, iterations, seed, timeoutFor, type Seed, REPLAYING } from './fuzz-kit.ts';

const pki = new TestPki('Kakitome Hostile Signer Root');
after(() => pki.cleanup());
const ed = pki.identity('ed25519');
const ec = pki.identity('p256');
const content = Buffer.from('Content-Type: text/plain\r\n\r\nI owe you nothing.\r\n');

interface Template {
  id: Identity;
  hash: string | null;
  sid: Uint8Array;
  digestAlg: Uint8Array;
  sigAlg: Uint8Array;
  attrs: Seed;
}

function template(id: Identity, hash: string | null): Template {
  const der = signData(content, { signers: [{ certificate: id.cert, key: id.key, encryptionKeyPreference: id.cert }] });
  const si = parseSignedData(parseContentInfo(der).content).signerInfos[0]!;
  const fields = si.der;
  // The sid is the second field of the SignerInfo: read it back from the original.
  const sidStart = si.digestAlgorithmTlv.start - (fields.byteOffset - der.byteOffset);
  const versionLen = 3; // INTEGER 1 or 3
  const headerLen = fields[1]! < 0x80 ? 2 : 2 + (fields[1]! & 0x7f);
  return {
    id,
    hash,
    sid: fields.subarray(headerLen + versionLen, sidStart),
    digestAlg: si.digestAlgorithmTlv.bytes,
    sigAlg: si.signatureAlgorithmTlv.bytes,
    attrs: seed(`${id.kind}-attrs`, retag(si.signedAttrs!.bytes, 0x31)),
  };
}

const templates = [template(ed, null), template(ec, 'sha256')];

/** A SignedData whose signer signed `attrSet` (the bytes as given, re-tagged [0]). */
function signedBy(t: Template, attrSet: Buffer): Buffer {
  const signature = cryptoSign(t.hash, attrSet, t.id.key);
  const attrs = Buffer.from(attrSet);
  attrs[0] = 0xa0;
  const si = sequence(integer(1), t.sid, t.digestAlg, attrs, t.sigAlg, octetString(signature));
  const encap = sequence(oid(OID.data), explicit(0, octetString(content)));
  const sd = sequence(integer(1), set(t.digestAlg), encap, implicit(0, true, t.id.cert.der), set(si));
  return sequence(oid(OID.signedData), explicit(0, sd));
}

test('the re-signing harness reproduces a valid signature', () => {
  for (const t of templates) assert.equal(verifySignedData(signedBy(t, t.attrs.bytes)).status, 'valid');
});

test('mutated signed attributes under a valid signature: typed errors, and valid only about the original content', { timeout: timeoutFor(2000, 5) }, async () => {
  const seeds = templates.map((t) => t.attrs);
  let valid = 0;
  const outcomes = await fuzz('hostile-signer', seeds, iterations(2000), (m, s) => {
    if (m.bytes.length === 0) return;
    const t = templates[seeds.indexOf(s)]!;
    const v = verifySignedData(signedBy(t, m.bytes));
    if (v.status !== 'valid') {
      assert.ok(v.code, `${m.what}: invalid without a code`);
      return;
    }
    valid++;
    assert.deepEqual(v.content, content, m.what);
    assert.equal(v.contentType, OID.data, m.what);
    assert.equal(v.signers[0]!.certificate?.fingerprint256, t.id.cert.fingerprint256, m.what);
  });
  assert.ok(REPLAYING || (outcomes.get('ok') ?? 0) > 0 && (outcomes.get('MALFORMED') ?? 0) > 0, `explores: valid ${valid}, ${[...outcomes]}`);
  if (process.env['KAKITOME_FUZZ_REPORT']) console.log('hostile-signer', valid, 'valid;', [...outcomes]);
});
