/**
 * CA roots waiting for a trust decision (src/store/record-unknown-root.ts,
 * list-unknown-roots.ts, decide-unknown-root.ts): a signer whose chain ends at a
 * self-signed root the store does not trust records the root and waits for it,
 * trusted and kept for nothing; an administrator's trust makes the root an anchor
 * and harvests the waiting certificates that validate again; decline and reopen;
 * what is not an unknown root (a forged root, a leaf that only claims an issuer,
 * a non-CA, a signer not matching From) records nothing; every bound holds against
 * hostile certificates. On SQLite and PostgreSQL.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { TestPki } from '../helpers/pki.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { draftMessage, runCli, storeHomeEnv } from '../cli/run-cli.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { engineFactories } from './engine-factories.ts';
import { issueCertificate } from '../../src/x509/issue.ts';
import type { Certificate } from '../../src/x509/certificate.ts';
import { OID } from '../../src/asn1/oids.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { Store } from '../../src/store/store.ts';
import { createStoreTrustStore } from '../../src/store/store-trust-store.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { harvestVerdictSigners, MAX_SEEN_SIGNERS } from '../../src/operations/harvest-verdict-signers.ts';
import { harvest as gatewayHarvest } from '../../src/gateway/process-inbound.ts';
import { viewVerdict } from '../../src/smime/verdict-view.ts';
import { MAX_EXAMPLE_SENDERS, MAX_UNKNOWN_ROOTS, MAX_WAITING_CERTIFICATES } from '../../src/store/record-unknown-root.ts';
import { countUnknownRoots, listUnknownRoots, listWaitingCertificates } from '../../src/store/list-unknown-roots.ts';
import { declineUnknownRoot, reopenUnknownRoot, trustUnknownRoot } from '../../src/store/decide-unknown-root.ts';

const corp = new TestPki('Roots Corp Root');
const foreign = new TestPki('Partner Root CA');
const other = new TestPki('Another Partner Root');
after(() => {
  for (const p of [corp, foreign, other]) p.cleanup();
});

interface Signer { cert: Certificate; key: KeyObject; email: string }

function signed(id: Signer, carried: Certificate[], from = id.email, subject = 'Hello'): Buffer {
  return signMessage(draftMessage(`<${from}>`, 'staff@example.com', subject), { signers: [{ certificate: id.cert, key: id.key }], certificates: carried });
}

const validatorOf = (store: Store) => createSignerValidator({ trustStore: createStoreTrustStore(store), revocation: { mode: 'off' } });

/** Verifies with the store's anchors and harvests as the CLI and gateway do; the view's warnings. */
async function receive(store: Store, message: Buffer): Promise<string[]> {
  const validate = validatorOf(store);
  const verdict = await verifyMessage(message, { validateSigner: validate });
  const view = viewVerdict(verdict);
  await harvestVerdictSigners(store, verdict, view, validate);
  return view.warnings;
}

/** A self-signed CA whose subject is `name` (huge or hostile on purpose in some tests). */
function rootNamed(name: string, extra: { emails?: string[] } = {}): { cert: Certificate; key: KeyObject } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const cert = issueCertificate({ subject: { commonName: name }, publicKey, signingKey: privateKey, ca: true, keyUsage: ['keyCertSign', 'cRLSign'], ...extra });
  return { cert, key: privateKey };
}

function leafUnder(issuer: { cert: Certificate; key: KeyObject }, name: string): Signer {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const email = `${name}@partner.example`;
  const cert = issueCertificate({ subject: { commonName: name, emailAddress: email }, publicKey, issuer: issuer.cert, signingKey: issuer.key, keyUsage: ['digitalSignature', 'keyAgreement'], extKeyUsage: [OID.emailProtection], emails: [email] });
  return { cert, key: privateKey, email };
}

const foreignRoot = { cert: foreign.caCert, key: foreign.caKey };

for (const f of engineFactories('kakitome-roots-')) {
  describe(`unknown roots on ${f.name}`, () => {
    let store: Store;
    before(async () => {
      await f.setup();
      store = await Store.open(f.make(), { actor: 'test-admin' });
      await store.importCertificate(corp.caCert, { trust: 'trusted' });
    });
    after(async () => {
      await store?.close();
      await f.teardown();
    });

    test('a signer under an unknown root: the root is recorded with the certificate waiting for it, nothing trusted or kept', async () => {
      const alice = foreign.identity('p256', 'alice');
      const warnings = await receive(store, signed(alice, [foreign.caCert]));
      // In the library's words (every front end shows them); the CLI adds its command (below).
      assert.ok(warnings.some((w) => w.includes(foreign.caCert.fingerprint256) && w.includes('trusts the recorded root')), warnings.join('\n'));
      assert.ok(!warnings.some((w) => w.includes('kakitome ')), warnings.join('\n'));
      const [root, ...rest] = await listUnknownRoots(store);
      assert.equal(rest.length, 0);
      assert.equal(root!.fingerprint, foreign.caCert.fingerprint256);
      assert.equal(root!.subject, foreign.caCert.subjectText);
      assert.equal(root!.issuer, foreign.caCert.issuerText);
      assert.equal(root!.keyAlgorithm, 'rsaEncryption');
      assert.equal(root!.notAfter.toISOString(), foreign.caCert.notAfter.toISOString());
      assert.deepEqual(root!.examples, [alice.email]);
      assert.equal(root!.timesSeen, 1);
      assert.equal(root!.waiting, 1);
      assert.equal(await countUnknownRoots(store), 1);
      assert.deepEqual((await listWaitingCertificates(store, foreign.caCert.fingerprint256)).map((w) => [w.fingerprint, w.address, w.outcome]), [[alice.cert.fingerprint256, alice.email, undefined]]);
      // Not an anchor, not an intermediate, not a certificate to encrypt to.
      assert.equal(await store.findCertificateByFingerprint(foreign.caCert.fingerprint256), undefined);
      assert.equal(await store.findCertificateByFingerprint(alice.cert.fingerprint256), undefined);
      assert.equal(await store.findRecipientCertificate(alice.email), undefined);
      assert.equal((await verifyMessage(signed(alice, [foreign.caCert]), { validateSigner: validatorOf(store) })).status, 'valid-untrusted');
      // Seen again: counted, the same certificate does not wait twice.
      await receive(store, signed(alice, [foreign.caCert], alice.email, 'Again'));
      const again = (await listUnknownRoots(store))[0]!;
      assert.equal(again.timesSeen, 2);
      assert.equal(again.waiting, 1);
      assert.ok(again.lastSeen >= root!.lastSeen);
    });

    test('trust: the root becomes an anchor (audited with the actor), the waiting certificate is validated again and harvested', async () => {
      const alice = foreign.identity('p256', 'alice');
      // A signing-only certificate waits too, and fails the encryption check on trust: it stays out, with its reason.
      const signer = foreign.identity('ed25519', 'signer');
      await receive(store, signed(signer, [foreign.caCert]));
      let created = 0;
      const r = await trustUnknownRoot(store.actingAs('console:boss@example.com'), foreign.caCert.fingerprint256.toUpperCase().match(/../g)!.join(':'), {
        createValidator: () => {
          created++;
          return validatorOf(store);
        },
      });
      assert.equal(created, 1);
      assert.equal(r.root.trust, 'trusted');
      const byAddress = new Map(r.outcomes.map((o) => [o.address, o]));
      assert.equal(byAddress.get(alice.email)!.outcome, 'harvested');
      assert.equal(byAddress.get(signer.email)!.outcome, 'refused');
      assert.match(byAddress.get(signer.email)!.reason!, /^CERT_USAGE/);
      assert.equal((await store.findRecipientCertificate(alice.email))!.certificate.fingerprint256, alice.cert.fingerprint256);
      assert.equal(await store.findRecipientCertificate(signer.email), undefined);
      assert.equal(await countUnknownRoots(store), 0);
      assert.deepEqual(await listUnknownRoots(store), []);
      const audit = await store.auditLog({ object: foreign.caCert.fingerprint256 });
      assert.ok(audit.some((e) => e.action === 'root.trust' && e.actor === 'console:boss@example.com'), JSON.stringify(audit));
      const waited = await listWaitingCertificates(store, foreign.caCert.fingerprint256);
      assert.deepEqual(waited.map((w) => w.outcome).sort(), ['harvested', 'refused']);
      // The signer's mail is trusted from now on; a second decision is refused.
      assert.equal((await verifyMessage(signed(alice, [foreign.caCert]), { validateSigner: validatorOf(store) })).status, 'trusted');
      await assert.rejects(trustUnknownRoot(store, foreign.caCert.fingerprint256, { createValidator: () => validatorOf(store) }), /trusted already/);
      await assert.rejects(declineUnknownRoot(store, foreign.caCert.fingerprint256), /not waiting|No CA root/);
    });

    test('decline: remembered, no longer waiting, still counted when seen; reopen undoes it', async () => {
      const bob = other.identity('p256', 'bob');
      await receive(store, signed(bob, [other.caCert]));
      assert.equal(await countUnknownRoots(store), 1);
      await declineUnknownRoot(store, other.caCert.fingerprint256);
      assert.equal(await countUnknownRoots(store), 0);
      assert.deepEqual((await listUnknownRoots(store, { decision: 'declined' })).map((r) => r.fingerprint), [other.caCert.fingerprint256]);
      const warnings = await receive(store, signed(bob, [other.caCert], bob.email, 'Still here'));
      assert.ok(warnings.some((w) => w.includes('declined')), warnings.join('\n'));
      const declined = (await listUnknownRoots(store, { decision: 'declined' }))[0]!;
      assert.equal(declined.timesSeen, 2);
      assert.equal(declined.decidedBy, 'test-admin');
      assert.ok((await store.auditLog({ object: other.caCert.fingerprint256 })).some((e) => e.action === 'root.decline'));
      await assert.rejects(declineUnknownRoot(store, other.caCert.fingerprint256), /waiting for a decision/);
      await reopenUnknownRoot(store, other.caCert.fingerprint256);
      assert.equal(await countUnknownRoots(store), 1);
      await assert.rejects(reopenUnknownRoot(store, other.caCert.fingerprint256), /declined/);
      await assert.rejects(trustUnknownRoot(store, 'ab'.repeat(32), { createValidator: () => validatorOf(store) }), /No CA root/);
      await assert.rejects(declineUnknownRoot(store, 'not a fingerprint'), /64 hexadecimal digits/);
    });

    test('the gateway inbound harvest records the root too (a valid-untrusted verdict), once per signer while its set is not full', async () => {
      const root = rootNamed('Gateway Partner Root');
      const carol = leafUnder(root, 'carol');
      const validate = validatorOf(store);
      const verdict = await verifyMessage(signed(carol, [root.cert]), { validateSigner: validate });
      assert.equal(verdict.status, 'valid-untrusted');
      const harvested = new Set<string>();
      await gatewayHarvest({ store, harvested }, verdict, validate);
      const recorded = (await listUnknownRoots(store)).find((r) => r.fingerprint === root.cert.fingerprint256);
      assert.ok(recorded, 'the gateway recorded the unknown root');
      assert.deepEqual(recorded.examples, [carol.email]);
      assert.equal(harvested.size, 1);
      // A full set is emptied before it grows past its bound (senders can mint certificates without end).
      for (let i = harvested.size; i < MAX_SEEN_SIGNERS; i++) harvested.add(`filler ${i}`);
      await gatewayHarvest({ store, harvested }, await verifyMessage(signed(leafUnder(root, 'dave'), [root.cert]), { validateSigner: validate }), validate);
      assert.equal(harvested.size, 1);
    });
  });
}

describe('unknown roots: what is not one, and the bounds (SQLite)', () => {
  let store: Store;
  const f = engineFactories('kakitome-roots-bounds-')[0]!;
  before(async () => {
    await f.setup();
    store = await Store.open(f.make(), { actor: 'test' });
    await store.importCertificate(corp.caCert, { trust: 'trusted' });
  });
  after(async () => {
    await store?.close();
    await f.teardown();
  });

  const fps = async () => (await store.engine.all('SELECT fingerprint FROM unknown_roots')).map((r) => String(r.fingerprint));

  test('a root signed by nobody, a leaf that only claims an issuer, a non-CA "root", a signer not matching From, a trusted signer: nothing recorded', async () => {
    // A "root" whose self-signature is another key's.
    const honest = rootNamed('Forged Root');
    const forgedKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const forged = issueCertificate({ subject: { commonName: 'Forged Root' }, publicKey: forgedKeys.publicKey, signingKey: honest.key, ca: true, keyUsage: ['keyCertSign'] });
    await receive(store, signed(leafUnder({ cert: forged, key: forgedKeys.privateKey }, 'forged'), [forged]));
    // A leaf naming a carried root as its issuer, signed by some other key.
    const claimed = rootNamed('Claimed Root');
    const impostor = leafUnder({ cert: claimed.cert, key: rootNamed('Someone Else').key }, 'impostor');
    await receive(store, signed(impostor, [claimed.cert]));
    // A self-signed end entity is not a CA root.
    const { publicKey: pk, privateKey: sk } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const selfie = issueCertificate({ subject: { commonName: 'selfie' }, publicKey: pk, signingKey: sk, keyUsage: ['digitalSignature'], extKeyUsage: [OID.emailProtection], emails: ['selfie@partner.example'] });
    await receive(store, signed({ cert: selfie, key: sk, email: 'selfie@partner.example' }, [selfie]));
    // A signer that does not match From.
    const real = rootNamed('Mismatch Root');
    await receive(store, signed(leafUnder(real, 'carol'), [real.cert], 'ceo@example.com'));
    // A trusted signer (the corporate CA) carrying an unrelated root.
    await receive(store, signed(corp.identity('p256', 'staff'), [rootNamed('Unrelated Root').cert]));
    // The message does not carry the root: no certificate to decide on.
    await receive(store, signed(leafUnder(rootNamed('Absent Root'), 'dave'), []));
    assert.deepEqual(await fps(), []);
    assert.equal((await store.auditLog({})).filter((e) => e.action === 'root.unknown').length, 0);
  });

  test('hostile names are kept short and plain; a huge root certificate is not recorded', async () => {
    const hostile = rootNamed(`Evil\u202e\u0007\r\nRoot ${'A'.repeat(5000)}`);
    await receive(store, signed(leafUnder(hostile, 'eve'), [hostile.cert]));
    const [root] = await listUnknownRoots(store);
    assert.equal(root!.fingerprint, hostile.cert.fingerprint256);
    assert.ok([...root!.subject].length <= 257, `${root!.subject.length}`);
    assert.ok(!/[\u0000-\u001f\u202e]/.test(root!.subject), root!.subject.slice(0, 40));
    const huge = rootNamed('Huge Root', { emails: Array.from({ length: 800 }, (_, i) => `a${i}@huge-root.example`) });
    assert.ok(huge.cert.der.length > 16 * 1024);
    await receive(store, signed(leafUnder(huge, 'frank'), [huge.cert]));
    assert.ok(!(await fps()).includes(huge.cert.fingerprint256));
  });

  test('bounds: example senders, certificates waiting per root, roots in all', async () => {
    const partner = rootNamed('Busy Partner Root');
    const senders = Array.from({ length: MAX_EXAMPLE_SENDERS + 2 }, (_, i) => leafUnder(partner, `s${i}`));
    for (const s of senders) await receive(store, signed(s, [partner.cert]));
    const root = (await listUnknownRoots(store)).find((r) => r.fingerprint === partner.cert.fingerprint256)!;
    assert.equal(root.examples.length, MAX_EXAMPLE_SENDERS);
    assert.equal(root.timesSeen, senders.length);
    assert.equal(root.waiting, senders.length);
    // Fill the root's waiting list to its bound: the next certificate does not wait.
    for (let i = root.waiting; i < MAX_WAITING_CERTIFICATES; i++) {
      await store.engine.run('INSERT INTO unknown_root_leaves (root_fingerprint, fingerprint, address, der, chain, preferred, seen_at) VALUES (?, ?, ?, ?, ?, 1, ?)', [partner.cert.fingerprint256, `${i}`.padStart(64, '0'), `x${i}@partner.example`, Buffer.from([0x30, 0]), '[]', new Date().toISOString()]);
    }
    const late = leafUnder(partner, 'late');
    await receive(store, signed(late, [partner.cert]));
    assert.equal((await listWaitingCertificates(store, partner.cert.fingerprint256)).length, MAX_WAITING_CERTIFICATES);
    assert.ok(!(await listWaitingCertificates(store, partner.cert.fingerprint256)).some((w) => w.fingerprint === late.cert.fingerprint256));
    // Fill the list of roots: a new root is not recorded.
    const n = (await fps()).length;
    const now = new Date().toISOString();
    for (let i = n; i < MAX_UNKNOWN_ROOTS; i++) {
      await store.engine.run("INSERT INTO unknown_roots (fingerprint, der, subject, issuer, not_before, not_after, key_algorithm, first_seen, last_seen, times_seen, examples, decision) VALUES (?, ?, 'x', 'x', ?, ?, 'x', ?, ?, 1, '[]', 'declined')", [`f${i}`.padStart(64, '0'), Buffer.from([0x30, 0]), now, now, now, now]);
    }
    const tooMany = rootNamed('One Root Too Many');
    await receive(store, signed(leafUnder(tooMany, 'gina'), [tooMany.cert]));
    assert.ok(!(await fps()).includes(tooMany.cert.fingerprint256));
    assert.equal((await fps()).length, MAX_UNKNOWN_ROOTS);
  });
});

test('the CLI: verify records the root, certs roots lists it, trust decides as the library does, decline and reopen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-roots-cli-'));
  const cli = new TestPki('CLI Partner Root');
  try {
    const home = join(dir, 'home');
    const env = storeHomeEnv(home, dir);
    const kk = (args: string[]) => runCli(args, { env, cwd: dir });
    assert.equal((await kk(['init'])).status, 0);
    const alice = cli.identity('p256', 'alice');
    writeFileSync(join(dir, 'in.eml'), signed(alice, [cli.caCert]));
    const verified = await kk(['verify', '-i', join(dir, 'in.eml'), '--revocation', 'off', '--json']);
    assert.notEqual(verified.status, 0, 'the signer is not trusted');
    // The JSON is the library's verdict (as the API answers it): the root by its fingerprint, no CLI command.
    const verdict = JSON.parse(verified.stdout.toString());
    assert.deepEqual(verdict.details.unknownRoots.map((r: { fingerprint: string; declined: boolean }) => [r.fingerprint, r.declined]), [[cli.caCert.fingerprint256, false]]);
    assert.ok(!verified.stdout.toString().includes('kakitome '), verified.stdout.toString());
    // The human report names the command to run.
    const report = await kk(['verify', '-i', join(dir, 'in.eml'), '--revocation', 'off']);
    assert.ok(report.stderr.toString().includes(`kakitome certs roots trust ${cli.caCert.fingerprint256}`), report.stderr.toString());
    const listed = await kk(['certs', 'roots', '--json']);
    assert.equal(listed.status, 0, listed.stderr.toString());
    const roots = JSON.parse(listed.stdout.toString()).roots;
    assert.deepEqual(roots.map((r: { fingerprint: string }) => r.fingerprint), [cli.caCert.fingerprint256]);
    assert.equal(roots[0].certificates[0].address, alice.email);
    assert.match((await kk(['certs', 'roots'])).stdout.toString(), new RegExp(`${cli.caCert.fingerprint256}  .*CLI Partner Root`));

    assert.equal((await kk(['certs', 'roots', 'decline', cli.caCert.fingerprint256])).status, 0);
    assert.match((await kk(['certs', 'roots'])).stdout.toString(), /No CA root is waiting/);
    assert.match((await kk(['certs', 'roots', 'list', '--declined'])).stdout.toString(), new RegExp(cli.caCert.fingerprint256));
    assert.equal((await kk(['certs', 'roots', 'reopen', cli.caCert.fingerprint256])).status, 0);
    const bad = await kk(['certs', 'roots', 'trust', 'ab'.repeat(32)]);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr.toString(), /No CA root/);

    const trusted = await kk(['certs', 'roots', 'trust', cli.caCert.fingerprint256, '--revocation', 'off', '--json']);
    assert.equal(trusted.status, 0, trusted.stderr.toString());
    const out = JSON.parse(trusted.stdout.toString());
    assert.equal(out.root.trust, 'trusted');
    assert.deepEqual(out.certificates.map((c: { address: string; outcome: string }) => [c.address, c.outcome]), [[alice.email, 'harvested']]);
    assert.equal((await kk(['verify', '-i', join(dir, 'in.eml'), '--revocation', 'off'])).status, 0);
    const check = await Store.open(openSqliteEngine(join(home, 'kakitome.db')), { actor: 'test' });
    assert.equal((await check.findRecipientCertificate(alice.email))!.certificate.fingerprint256, alice.cert.fingerprint256);
    assert.ok((await check.auditLog({ object: cli.caCert.fingerprint256 })).some((e) => e.action === 'root.trust' && e.actor.startsWith('cli:')));
    await check.close();
  } finally {
    cli.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});
