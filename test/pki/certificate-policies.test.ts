/**
 * Certificate policy processing (RFC 5280 6.1): policy mappings, inhibitPolicyMapping,
 * inhibitAnyPolicy with skip certificates and requireExplicitPolicy, on paths modelled
 * on the NIST PKITS policy tests (4.8 to 4.12), minted here. Each case is decided
 * by the validator and by `openssl verify -policy_check` on the same certificates
 * with the same inputs, and both must give the expected answer.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import type { PolicyProcessingOptions } from '../../src/pki/process-certificate-policies.ts';
import { processCertificatePolicies, MAX_POLICY_NODES } from '../../src/pki/process-certificate-policies.ts';
import { encodePem } from '../../src/asn1/pem.ts';
import { rootCa, subCa, endEntity, certificatePolicies, policyMappings, policyConstraints, inhibitAnyPolicy, type Party } from './pki-builder.ts';

const ANY = '2.5.29.32.0';
const P1 = '1.3.6.1.4.1.99999.40.1';
const P2 = '1.3.6.1.4.1.99999.40.2';
const P3 = '1.3.6.1.4.1.99999.40.3';

let root: Party;
let dir: string;
before(() => {
  root = rootCa('Policy Test Root');
  dir = mkdtempSync(join(tmpdir(), 'kakitome-policy-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Case {
  name: string;
  /** Extensions of each CA, from the one the root issued down. */
  cas: Uint8Array[][];
  leaf: Uint8Array[];
  options?: PolicyProcessingOptions;
  accept: boolean;
  /** Part of the refusal sentence. */
  because?: RegExp;
}

let serial = 0;
function buildChain(c: Case): { leaf: Party; cas: Party[] } {
  const tag = `${c.name.slice(0, 40)} ${++serial}`;
  const cas: Party[] = [];
  let issuer = root;
  c.cas.forEach((exts, k) => {
    issuer = subCa(issuer, `${tag} CA${k + 1}`, { extraExtensions: exts });
    cas.push(issuer);
  });
  const leaf = endEntity(issuer, `leaf${serial}@example.com`, { extraExtensions: c.leaf });
  return { leaf, cas };
}

function opensslAccepts(chain: { leaf: Party; cas: Party[] }, o: PolicyProcessingOptions = {}): { ok: boolean; out: string } {
  const rootPem = join(dir, `root-${serial}.pem`);
  const untrusted = join(dir, `untrusted-${serial}.pem`);
  const leafPem = join(dir, `leaf-${serial}.pem`);
  writeFileSync(rootPem, encodePem('CERTIFICATE', root.cert.der));
  writeFileSync(untrusted, chain.cas.map((x) => encodePem('CERTIFICATE', x.cert.der)).join(''));
  writeFileSync(leafPem, encodePem('CERTIFICATE', chain.leaf.cert.der));
  const args = ['verify', '-policy_check'];
  if (o.requireExplicitPolicy) args.push('-explicit_policy');
  if (o.inhibitAnyPolicy) args.push('-inhibit_any');
  if (o.inhibitPolicyMapping) args.push('-inhibit_map');
  // OpenSSL 3.0 treats "no -policy" as an empty user-initial-policy-set once an
  // explicit policy is required (its tree_calculate_user_set returns before
  // setting the any-policy flag): RFC 5280's default, any-policy, is given as such.
  for (const p of o.initialPolicySet ?? [ANY]) args.push('-policy', p);
  args.push('-CAfile', rootPem, '-untrusted', untrusted, leafPem);
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

async function oursAccepts(chain: { leaf: Party; cas: Party[] }, o: PolicyProcessingOptions | undefined) {
  const v = createSignerValidator({ anchors: [root.cert], revocation: { mode: 'off' }, ...(o ? { certificatePolicies: o } : {}) });
  return v({ certificate: chain.leaf.cert, carried: chain.cas.map((x) => x.cert), usage: 'signing', from: [chain.leaf.cert.emailAddresses[0]!] });
}

const explicit = { requireExplicitPolicy: true };
const cases: Case[] = [
  // 4.8: policies present or absent.
  { name: 'same policy everywhere (4.8.1)', cas: [[certificatePolicies(P1)]], leaf: [certificatePolicies(P1)], options: { ...explicit, initialPolicySet: [P1] }, accept: true },
  { name: 'same policy, another policy required', cas: [[certificatePolicies(P1)]], leaf: [certificatePolicies(P1)], options: { ...explicit, initialPolicySet: [P2] }, accept: false, because: /explicit certificate policy acceptable here/ },
  { name: 'no common policy, none required (4.8.x defaults)', cas: [[certificatePolicies(P1)]], leaf: [certificatePolicies(P2)], accept: true },
  { name: 'no common policy, explicit required by the verifier', cas: [[certificatePolicies(P1)]], leaf: [certificatePolicies(P2)], options: explicit, accept: false },
  { name: 'anyPolicy in the CA, a policy in the leaf, explicit required', cas: [[certificatePolicies(ANY)]], leaf: [certificatePolicies(P2)], options: { ...explicit, initialPolicySet: [P2] }, accept: true },
  { name: 'CA without policies, explicit required (4.8.2)', cas: [[], [certificatePolicies(P1)]], leaf: [certificatePolicies(P1)], options: explicit, accept: false },
  // 4.9: requireExplicitPolicy with skip certificates.
  { name: 'requireExplicitPolicy 0, leaf without policies', cas: [[policyConstraints({ requireExplicitPolicy: 0 }), certificatePolicies(P1)]], leaf: [], accept: false, because: /explicit certificate policy/ },
  { name: 'requireExplicitPolicy 2 reached, last CA without policies (4.9.3)', cas: [[policyConstraints({ requireExplicitPolicy: 2 }), certificatePolicies(P1)], [certificatePolicies(P1)], []], leaf: [certificatePolicies(P1)], accept: false },
  { name: 'requireExplicitPolicy 4 never reached (4.9.1)', cas: [[policyConstraints({ requireExplicitPolicy: 4 }), certificatePolicies(P1)], [certificatePolicies(P1)], []], leaf: [], accept: true },
  { name: 'requireExplicitPolicy 0 in the leaf itself', cas: [[certificatePolicies(P1)]], leaf: [policyConstraints({ requireExplicitPolicy: 0 }), certificatePolicies(P2)], accept: false },
  // 4.10: policy mappings.
  { name: 'mapping P1 to P2, P1 required (4.10.1)', cas: [[certificatePolicies(P1), policyMappings([P1, P2])]], leaf: [certificatePolicies(P2)], options: { ...explicit, initialPolicySet: [P1] }, accept: true },
  { name: 'mapping P1 to P2, P2 required', cas: [[certificatePolicies(P1), policyMappings([P1, P2])]], leaf: [certificatePolicies(P2)], options: { ...explicit, initialPolicySet: [P2] }, accept: false },
  { name: 'mapping without it, leaf P1 is no longer expected', cas: [[certificatePolicies(P1), policyMappings([P1, P2])]], leaf: [certificatePolicies(P1)], options: explicit, accept: false },
  { name: 'mapping chain P1 to P2 to P3', cas: [[certificatePolicies(P1), policyMappings([P1, P2])], [certificatePolicies(P2), policyMappings([P2, P3])]], leaf: [certificatePolicies(P3)], options: { ...explicit, initialPolicySet: [P1] }, accept: true },
  { name: 'mapping of anyPolicy from the CA above (4.10.x)', cas: [[certificatePolicies(ANY), policyMappings([P1, P2])]], leaf: [certificatePolicies(P2)], options: { ...explicit, initialPolicySet: [P1] }, accept: true },
  { name: 'mapping inhibited by the verifier', cas: [[certificatePolicies(P1), policyMappings([P1, P2])]], leaf: [certificatePolicies(P2)], options: { ...explicit, inhibitPolicyMapping: true }, accept: false },
  // 4.11: inhibitPolicyMapping from policyConstraints.
  { name: 'inhibitPolicyMapping 0 in the first CA (4.11.1)', cas: [[certificatePolicies(P1), policyConstraints({ requireExplicitPolicy: 0, inhibitPolicyMapping: 0 })], [certificatePolicies(P1), policyMappings([P1, P2])]], leaf: [certificatePolicies(P2)], accept: false },
  { name: 'inhibitPolicyMapping 1: the next CA may map (4.11.x)', cas: [[certificatePolicies(P1), policyConstraints({ requireExplicitPolicy: 0, inhibitPolicyMapping: 1 })], [certificatePolicies(P1), policyMappings([P1, P2])]], leaf: [certificatePolicies(P2)], accept: true },
  { name: 'inhibitPolicyMapping 1: the CA after it may not', cas: [[certificatePolicies(P1), policyConstraints({ requireExplicitPolicy: 0, inhibitPolicyMapping: 1 })], [certificatePolicies(P1), policyMappings([P1, P2])], [certificatePolicies(P2), policyMappings([P2, P3])]], leaf: [certificatePolicies(P3)], accept: false },
  // 4.12: inhibitAnyPolicy with skip certificates.
  { name: 'inhibitAnyPolicy 0: anyPolicy in the next CA is ignored (4.12.2)', cas: [[certificatePolicies(ANY), inhibitAnyPolicy(0), policyConstraints({ requireExplicitPolicy: 0 })], [certificatePolicies(ANY)]], leaf: [certificatePolicies(P1)], accept: false },
  { name: 'inhibitAnyPolicy 1: the next CA may assert anyPolicy (4.12.x)', cas: [[certificatePolicies(ANY), inhibitAnyPolicy(1), policyConstraints({ requireExplicitPolicy: 0 })], [certificatePolicies(ANY)]], leaf: [certificatePolicies(P1)], accept: true },
  { name: 'inhibitAnyPolicy 1: a leaf asserting only anyPolicy is not enough', cas: [[certificatePolicies(ANY), inhibitAnyPolicy(1), policyConstraints({ requireExplicitPolicy: 0 })], [certificatePolicies(ANY)]], leaf: [certificatePolicies(ANY)], accept: false },
  { name: 'anyPolicy inhibited by the verifier, CA with anyPolicy only', cas: [[certificatePolicies(ANY)]], leaf: [certificatePolicies(P1)], options: { ...explicit, inhibitAnyPolicy: true }, accept: false },
  { name: 'anyPolicy inhibited by the verifier, explicit policies still count', cas: [[certificatePolicies(P1)]], leaf: [certificatePolicies(P1)], options: { ...explicit, inhibitAnyPolicy: true }, accept: true },
  // Hostile: mapping to or from anyPolicy (6.1.4 (a)), duplicates (4.2.1.4).
  { name: 'a CA mapping anyPolicy to a policy', cas: [[certificatePolicies(P1), policyMappings([ANY, P1])]], leaf: [certificatePolicies(P1)], accept: false, because: /anyPolicy, which RFC 5280 6\.1\.4 \(a\) forbids/ },
  { name: 'a CA mapping a policy to anyPolicy', cas: [[certificatePolicies(P1), policyMappings([P1, ANY])]], leaf: [certificatePolicies(P1)], accept: false, because: /anyPolicy, which RFC 5280 6\.1\.4 \(a\) forbids/ },
  { name: 'a policy listed twice', cas: [[certificatePolicies(P1, P1)]], leaf: [certificatePolicies(P1)], accept: false, because: /twice/ },
];

for (const c of cases) {
  test(`policy: ${c.name} → ${c.accept ? 'accepted' : 'refused'}, as openssl verify decides`, async () => {
    const chain = buildChain(c);
    const r = await oursAccepts(chain, c.options);
    assert.equal(r.status === 'trusted', c.accept, r.message);
    if (!c.accept) assert.equal(r.code, 'CERT_UNTRUSTED');
    if (c.because) assert.match(r.message, c.because);
    const o = opensslAccepts(chain, c.options);
    assert.equal(o.ok, c.accept, `openssl verify: ${o.out}`);
  });
}

test('policy: a chain whose mappings multiply the tree is refused within the node bound, quickly', () => {
  // Each CA asserts 20 policies and maps each to 20 others: 20, 400, 8000... nodes.
  const level = (k: number) => Array.from({ length: 20 }, (_, j) => `1.3.6.1.4.1.99999.41.${k}.${j}`);
  const mapAll = (k: number) => level(k).flatMap((from) => level(k + 1).map((to): [string, string] => [from, to]));
  const cas = [0, 1, 2].map((k) => [certificatePolicies(...level(k)), policyMappings(...mapAll(k))]);
  const chain = buildChain({ name: 'explosion', cas, leaf: [certificatePolicies(...level(3))], accept: false });
  const t0 = performance.now();
  const r = processCertificatePolicies([chain.leaf.cert, ...chain.cas.map((x) => x.cert).reverse(), root.cert]);
  assert.ok(performance.now() - t0 < 2000);
  assert.match(r.problem ?? '', new RegExp(`more than ${MAX_POLICY_NODES}`));
});

test('policy: the valid policies of the path are reported, mapped back to the issuer domain', () => {
  const chain = buildChain({ name: 'report', cas: [[certificatePolicies(P1, P3), policyMappings([P1, P2])]], leaf: [certificatePolicies(P2, P3)], accept: true });
  const path = [chain.leaf.cert, ...chain.cas.map((x) => x.cert).reverse(), root.cert];
  assert.deepEqual(processCertificatePolicies(path).policies.toString(), [P2, P3].toString());
  assert.deepEqual(processCertificatePolicies(path, { initialPolicySet: [P1] }).policies, [P2]);
  assert.deepEqual(processCertificatePolicies(path, { initialPolicySet: [P2] }).policies, []);
});

test('policy: a self-issued CA certificate (key rollover) may assert anyPolicy under inhibitAnyPolicy 0 and does not count as a skip (4.12.x)', async () => {
  const tag = `rollover ${++serial}`;
  const ca1 = subCa(root, `${tag} CA1`, { extraExtensions: [certificatePolicies(ANY), inhibitAnyPolicy(0), policyConstraints({ requireExplicitPolicy: 0 })] });
  const rollover = subCa(ca1, `${tag} CA1`, { extraExtensions: [certificatePolicies(ANY)] }, `${tag} CA1 new key`);
  assert.equal(Buffer.compare(rollover.cert.subject, rollover.cert.issuer), 0);
  const check = async (ca2Policies: string[], accept: boolean) => {
    const ca2 = subCa(rollover, `${tag} CA2 ${ca2Policies.join(' ')}`, { extraExtensions: [certificatePolicies(...ca2Policies)] });
    const leaf = endEntity(ca2, `rollover${++serial}@example.com`, { extraExtensions: [certificatePolicies(P1)] });
    const chain = { leaf, cas: [ca1, rollover, ca2] };
    const r = await oursAccepts(chain, undefined);
    assert.equal(r.status === 'trusted', accept, r.message);
    assert.equal(r.path.length === 5 || !accept, true, 'the path goes through the self-issued certificate');
    assert.equal(opensslAccepts(chain).ok, accept, opensslAccepts(chain).out);
  };
  // CA2 names P1 itself: the self-issued certificate's anyPolicy carried it.
  await check([P1], true);
  // CA2 asserts only anyPolicy: inhibited (CA2 is not self-issued).
  await check([ANY], false);
});
