/**
 * Issue 9, item 8: no fetching on an attacker's behalf.
 *
 * The attack: a message signed under a CA nobody trusts, whose certificates name
 * AIA caIssuers, CRL and OCSP URLs on a server the attacker runs. Before the fix
 * the verifier chased caIssuers before any trust existed (blind SSRF, a read
 * receipt, the verifier's address), and the default fetcher reached loopback,
 * private and cloud-metadata addresses. Now: no caIssuers chase unless opted in
 * for listed hosts, CRL/OCSP only for a path that ends at an anchor, and internal
 * addresses refused after name resolution unless allow-listed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { Readable } from 'node:stream';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { createHttpFetcher } from '../../src/pki/create-http-fetcher.ts';
import { classifyInternalAddress } from '../../src/pki/classify-internal-address.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { verifyMessageStream } from '../../src/smime/verify-message-stream.ts';
import { encodePem } from '../../src/asn1/pem.ts';
import { rootCa, subCa, endEntity, buildCrl, type Party } from '../pki/pki-builder.ts';
import { runCli, draftMessage } from '../cli/run-cli.ts';

/** The attacker's server: counts every request, whatever it asks for. */
class TrapServer {
  readonly seen: string[] = [];
  readonly files = new Map<string, Uint8Array>();
  #server: Server | undefined;
  port = 0;
  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      this.seen.push(`${req.method} ${req.headers.host} ${req.url}`);
      const body = this.files.get(req.url ?? '');
      if (body) res.writeHead(200, { 'content-length': body.length }).end(body);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => this.#server!.listen(0, '127.0.0.1', r));
    this.port = (this.#server.address() as { port: number }).port;
  }
  url(path: string, host = '127.0.0.1'): string {
    return `http://${host}:${this.port}${path}`;
  }
  async stop(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((r) => this.#server?.close(() => r()));
  }
}

let trap: TrapServer;
let dir: string;
let trusted: Party;
let attackerRoot: Party;
let attackerCa: Party;
let mallory: Party;
let signed: Buffer;
let trustedPem: string;

before(async () => {
  trap = new TrapServer();
  await trap.start();
  dir = mkdtempSync(join(tmpdir(), 'kakitome-nofetch-'));
  trusted = rootCa('Item8 Trusted Root');
  trustedPem = join(dir, 'trusted.pem');
  writeFileSync(trustedPem, encodePem('CERTIFICATE', trusted.cert.der));
  attackerRoot = rootCa('Item8 Attacker Root');
  const urls = (who: string) => ({
    caIssuerUrls: [trap.url(`/${who}/issuer.cer`)],
    crlDistributionPoints: [trap.url(`/${who}/crl`)],
    ocspUrls: [trap.url(`/${who}/ocsp`)],
  });
  attackerCa = subCa(attackerRoot, 'Item8 Attacker CA', urls('ca'));
  mallory = endEntity(attackerCa, 'mallory@example.com', urls('leaf'));
  // Served, so a verifier that does chase gets a chain (and would then ask for more).
  trap.files.set('/leaf/issuer.cer', attackerCa.cert.der);
  trap.files.set('/ca/issuer.cer', attackerRoot.cert.der);
  signed = signMessage(draftMessage('mallory@example.com', 'victim@example.com', 'Invoice'), { signers: [{ certificate: mallory.cert, key: mallory.key }] });
});

after(async () => {
  await trap.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('a message under an unknown CA makes the default verifier send no request at all', async () => {
  const validateSigner = createSignerValidator({ anchors: [trusted.cert], revocation: { mode: 'hard-fail' } });
  const v = await verifyMessage(signed, { validateSigner });
  assert.equal(v.status, 'valid-untrusted');
  assert.equal(v.code, 'CERT_UNTRUSTED');
  const s = await verifyMessageStream(Readable.from([signed]), { validateSigner });
  assert.equal(s.status, 'valid-untrusted');
  assert.deepEqual(trap.seen, [], 'the attacker\'s server was contacted');
});

test('the same through the command line, with the intermediate carried in the message', async () => {
  const withChain = signMessage(draftMessage('mallory@example.com', 'victim@example.com', 'Invoice 2'), { signers: [{ certificate: mallory.cert, key: mallory.key }], certificates: [attackerCa.cert] });
  for (const message of [signed, withChain]) {
    const r = await runCli(['verify', '--ca', trustedPem, '--revocation', 'hard-fail', '--json'], { input: message });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(JSON.parse(r.stdout.toString('utf8')).code, 'CERT_UNTRUSTED');
  }
  assert.deepEqual(trap.seen, [], 'the attacker\'s server was contacted');
});

test('caIssuers is chased only when opted in, and only on listed hosts', async () => {
  const local = createHttpFetcher({ allowInternal: ['127.0.0.1'] });
  const anchors = [attackerRoot.cert]; // here the root is trusted: only the intermediate is missing
  const off = await createSignerValidator({ anchors, fetcher: local, revocation: { mode: 'off' } })({ certificate: mallory.cert, carried: [], usage: 'signing' });
  assert.equal(off.code, 'CERT_UNTRUSTED');
  const elsewhere = await createSignerValidator({ anchors, fetcher: local, revocation: { mode: 'off' }, fetchCaIssuers: { hosts: ['.example.com'] } })({ certificate: mallory.cert, carried: [], usage: 'signing' });
  assert.equal(elsewhere.code, 'CERT_UNTRUSTED');
  assert.deepEqual(trap.seen, []);
  const listed = await createSignerValidator({ anchors, fetcher: local, revocation: { mode: 'off' }, fetchCaIssuers: { hosts: ['127.0.0.1'] } })({ certificate: mallory.cert, carried: [], usage: 'signing' });
  assert.equal(listed.status, 'trusted', listed.message);
  assert.deepEqual(trap.seen, [`GET 127.0.0.1:${trap.port} /leaf/issuer.cer`]);
  trap.seen.length = 0;
});

test('a trusted chain whose CRL is on loopback, link-local metadata or a name for 127.0.0.1 is not fetched by default', async () => {
  trap.files.set('/good.crl', buildCrl({ issuer: trusted }));
  const cases = [
    { url: trap.url('/good.crl'), kind: /127\.0\.0\.1 is a loopback address/ },
    { url: trap.url('/good.crl', 'localhost'), kind: /localhost resolves to (127\.0\.0\.1|::1), which is a loopback address/ },
    { url: trap.url('/good.crl', '[::ffff:127.0.0.1]'), kind: /loopback address \(as IPv6\)/ },
    { url: 'http://169.254.169.254/latest/meta-data/', kind: /169\.254\.169\.254 is a link-local address/ },
    { url: 'http://[fd00:ec2::254]/latest/meta-data/', kind: /unique local/ },
    { url: 'http://0x7f.1:9/', kind: /127\.0\.0\.1 is a loopback address/ },
  ];
  for (const [i, c] of cases.entries()) {
    const leaf = endEntity(trusted, `crl${i}@example.com`, { crlDistributionPoints: [c.url] });
    const t0 = Date.now();
    const r = await createSignerValidator({ anchors: [trusted.cert], revocation: { mode: 'hard-fail', timeoutMs: 3000 } })({ certificate: leaf.cert, carried: [], usage: 'signing' });
    assert.equal(r.status, 'untrusted', c.url);
    assert.equal(r.revocation.status, 'unknown', c.url);
    assert.match(r.revocation.message, c.kind, c.url);
    assert.match(r.revocation.message, /fetched only when allow-listed/, c.url);
    assert.ok(Date.now() - t0 < 2000, `${c.url}: refused before any connection attempt`);
  }
  assert.deepEqual(trap.seen, [], 'the loopback server was contacted');
});

test('the allow-list lets an internal CA through, by address, CIDR or name', async () => {
  const viaIp = endEntity(trusted, 'ip@example.com', { crlDistributionPoints: [trap.url('/good.crl')] });
  const viaName = endEntity(trusted, 'name@example.com', { crlDistributionPoints: [trap.url('/good.crl', 'localhost')] });
  for (const [leaf, allow] of [[viaIp, ['127.0.0.1']], [viaIp, ['127.0.0.0/8']], [viaName, ['localhost']]] as const) {
    const r = await createSignerValidator({ anchors: [trusted.cert], fetcher: createHttpFetcher({ allowInternal: [...allow] }), revocation: { mode: 'hard-fail' } })({ certificate: leaf.cert, carried: [], usage: 'signing' });
    assert.equal(r.status, 'trusted', `${allow}: ${r.message}`);
    assert.equal(r.revocation.source, 'crl');
  }
  // The command line maps --allow-internal-fetch onto the same option.
  const msg = signMessage(draftMessage('ip@example.com', 'b@example.com', 'hello'), { signers: [{ certificate: viaIp.cert, key: viaIp.key }] });
  const refused = await runCli(['verify', '--ca', trustedPem, '--revocation', 'hard-fail'], { input: msg });
  assert.equal(refused.status, 1, refused.stderr);
  const seenBefore = trap.seen.length;
  const ok = await runCli(['verify', '--ca', trustedPem, '--revocation', 'hard-fail', '--allow-internal-fetch', '127.0.0.1'], { input: msg });
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(trap.seen.length, seenBefore + 1);
  trap.seen.length = 0;
});

test('the connection goes to the address that was judged: one resolution, no rebinding', async () => {
  let lookups = 0;
  const rebinding = async () => (++lookups === 1 ? [{ address: '127.0.0.1', family: 4 }] : [{ address: '10.9.9.9', family: 4 }]);
  const f = createHttpFetcher({ allowInternal: ['127.0.0.1'], lookup: rebinding });
  const body = await f(trap.url('/good.crl', 'crl.internal.test'), { method: 'GET', maxBytes: 65536, timeoutMs: 2000 });
  assert.ok(body.length > 0);
  assert.equal(lookups, 1);
  assert.deepEqual(trap.seen, [`GET crl.internal.test:${trap.port} /good.crl`], 'Host names the URL\'s host, the socket the judged address');
  trap.seen.length = 0;
  // A name with one public and one internal address is refused as a whole.
  const mixed = createHttpFetcher({ lookup: async () => [{ address: '93.184.216.34', family: 4 }, { address: '127.0.0.1', family: 4 }] });
  await assert.rejects(mixed(trap.url('/good.crl', 'mixed.test'), { method: 'GET', maxBytes: 65536, timeoutMs: 2000 }), /mixed\.test resolves to 127\.0\.0\.1, which is a loopback address/);
  assert.deepEqual(trap.seen, []);
});

test('every special-purpose range is refused, IPv4-mapped and other embedded forms included; public addresses are not', () => {
  const refused = [
    '127.0.0.1', '127.255.255.254', '0.0.0.0', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '169.254.0.1',
    '100.64.0.1', '100.100.100.200', '224.0.0.1', '255.255.255.255', '192.0.0.170', '198.18.0.1',
    '::1', '::', 'fc00::1', 'fd00:ec2::254', 'fe80::1', 'fe80::1%eth0', 'febf::1', 'ff02::1',
    '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:169.254.169.254', '::ffff:10.0.0.1', '::ffff:192.168.0.1', '::ffff:0.0.0.0',
    '::127.0.0.1', '64:ff9b::a9fe:a9fe', '64:ff9b::10.0.0.1', '2002:7f00:1::1', '2002:a9fe:a9fe::', '64:ff9b:1::1',
  ];
  for (const a of refused) assert.ok(classifyInternalAddress(a), `${a} must be refused`);
  for (const a of ['8.8.8.8', '93.184.216.34', '172.32.0.1', '100.128.0.1', '169.255.0.1', '2001:4860:4860::8888', '::ffff:8.8.8.8', '64:ff9b::808:808', '2a00:1450::1']) {
    assert.equal(classifyInternalAddress(a), undefined, `${a} is public`);
  }
});
