import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseContentEncryption } from '../../src/store/choose-content-encryption.ts';
import { encodeSmimeCapabilities } from '../../src/cms/capabilities.ts';
import { OID } from '../../src/asn1/oids.ts';
import { isKakitomeError } from '../../src/errors.ts';

const caps = (...ids: string[]) => encodeSmimeCapabilities(ids.map((capabilityId) => ({ capabilityId })));
const modern = caps(OID.aes256_GCM, OID.aes128_GCM, OID.aes256_CBC, OID.aes128_CBC);
const nss = caps(OID.aes256_CBC, OID.aes128_CBC, OID.des_ede3_cbc);
const old = caps(OID.des_ede3_cbc, OID.rc2_cbc);

test('AES-GCM when every recipient announces it', () => {
  const c = chooseContentEncryption([{ recipient: 'a', capabilities: modern }, { recipient: 'b', capabilities: caps(OID.aes128_GCM, OID.aes128_CBC) }]);
  assert.equal(c.name, 'aes-128-gcm');
  assert.equal(c.authenticated, true);
  assert.equal(chooseContentEncryption([{ recipient: 'a', capabilities: modern }]).name, 'aes-256-gcm');
});

test('the strongest common CBC cipher when one recipient cannot read GCM', () => {
  const c = chooseContentEncryption([{ recipient: 'a', capabilities: modern }, { recipient: 'thunderbird', capabilities: nss }]);
  assert.equal(c.name, 'aes-256-cbc');
  assert.equal(c.authenticated, false);
});

test('never below the floor: 3DES-only recipients are refused with WEAK_ALG', () => {
  assert.throws(() => chooseContentEncryption([{ recipient: 'a', capabilities: modern }, { recipient: 'legacy', capabilities: old }]), (e) => isKakitomeError(e, 'WEAK_ALG') && /legacy/.test(e.message));
  assert.throws(() => chooseContentEncryption([{ recipient: 'n', capabilities: nss }], { floor: 'aes-128-gcm' }), (e) => isKakitomeError(e, 'WEAK_ALG'));
});

test('unknown recipients are assumed CBC-only by default, GCM when the policy follows RFC 8551 2.7.1.2', () => {
  const c = chooseContentEncryption([{ recipient: 'a', capabilities: modern }, { recipient: 'new@x' }]);
  assert.equal(c.name, 'aes-256-cbc');
  assert.deepEqual(c.assumed, ['new@x']);
  assert.equal(chooseContentEncryption([{ recipient: 'new@x' }], { unknownRecipients: 'gcm' }).name, 'aes-256-gcm');
  assert.throws(() => chooseContentEncryption([]), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
});
