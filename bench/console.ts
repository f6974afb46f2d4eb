/**
 * Issue 11 performance: the web console on a large store.
 *
 * - Seeds a fresh SQLite store directly (one transaction of SQL inserts, no
 *   per-row audit): the organisation's CA (`ca init`), --users people (default
 *   10,000) and --certificates certificates (default 20,000): one mailbox
 *   certificate per person issued by the CA (signed by its key, recorded as
 *   issued, expiries spread over a year), the rest certificates of others taken
 *   from mail (trust harvested), a few key changes waiting for a decision and
 *   unknown roots waiting for trust, and --audit rows of audit log (default
 *   50,000) over 30 days. Real DER certificates throughout (one key pair for
 *   the leaves: the pages parse certificates, they do not make keys).
 * - Starts the console (startServer, as `kakitome serve`) in a child process, so
 *   the client's work is not the server's; the check page's per-address limit is
 *   raised for the bench's one client address (50 uploads come from it).
 * - Signs in as an administrator and requests every console page --requests
 *   times in turn (after a warm-up), one at a time: p50, p95 and max latency per
 *   page against the issue's target (p95 under 50 ms), and the status (every
 *   answer must be 200). Pages limited per person (explain, lookup: 30 a minute)
 *   get 25 requests.
 * - The check page: --uploads concurrent uploads (default 50) of a signed
 *   message of --upload-size bytes (default 1 MiB): every answer 200 with the
 *   verdict "genuine", latency p50/p95/max, and the server's peak RSS.
 *
 *   npx node bench/console.ts [--users=10000] [--certificates=20000] [--audit=50000]
 *       [--requests=100] [--uploads=50] [--upload-size=1048576] [--quick] [--out=FILE]
 *       [--only=NAME[,NAME]]
 *
 * --only: only the pages whose name contains one of the NAMEs (e.g.
 * --only='external certificates'), and no uploads unless --uploads is given: a
 * page's server CPU per request, before and after a change.
 *
 * --quick: 1,000 users, 2,000 certificates, 5,000 audit rows, 20 requests a page,
 * 10 uploads (a check that the bench works, not figures). Not part of `npm test`.
 */
import { fork } from 'node:child_process';
import { generateKeyPairSync, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { OID } from '../src/asn1/oids.ts';
import { findCertificateAuthority, openCaKey } from '../src/ca/certificate-authority.ts';
import { initCertificateAuthority } from '../src/ca/init-certificate-authority.ts';
import { issueMailboxCertificate } from '../src/ca/issue-mailbox-certificate.ts';
import { masterKeyFromBytes } from '../src/keys/master-key.ts';
import { signMessage } from '../src/smime/sign-message.ts';
import { startServer } from '../src/server/start-server.ts';
import { PeopleDirectory } from '../src/store/people-directory.ts';
import { OrganisationSettings } from '../src/store/organisation-settings.ts';
import { openSqliteEngine } from '../src/store/sqlite-engine.ts';
import type { SqlExecutor } from '../src/store/sql-engine.ts';
import { Store, spkiDigest } from '../src/store/store.ts';
import type { Certificate } from '../src/x509/certificate.ts';
import { issueCertificate } from '../src/x509/issue.ts';
import { median } from './harness/measure.ts';

const DOMAIN = 'bench.example';
const ADMIN = `admin@${DOMAIN}`;
const PASSWORD = 'bench console password';
const DAY = 86_400_000;

interface Options {
  users: number;
  certificates: number;
  audit: number;
  requests: number;
  uploads: number;
  /** Only the pages whose name contains one of these (--only=NAME[,NAME]); the uploads then only with --uploads. */
  only?: string[];
  uploadSize: number;
  out?: string;
}

function readOptions(argv: string[]): Options {
  const arg = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const quick = argv.includes('--quick');
  const num = (name: string, full: number, small: number) => Number(arg(name) ?? (quick ? small : full));
  const out = arg('out');
  return {
    users: num('users', 10_000, 1_000), certificates: num('certificates', 20_000, 2_000), audit: num('audit', 50_000, 5_000),
    requests: num('requests', 100, 20), uploads: arg('only') !== undefined && arg('uploads') === undefined ? 0 : num('uploads', 50, 10), uploadSize: num('upload-size', 1024 * 1024, 1024 * 1024),
    ...(out ? { out } : {}),
    ...(arg('only') ? { only: arg('only')!.split(',') } : {}),
  };
}

const hex = (b: Uint8Array | undefined) => (b ? Buffer.from(b).toString('hex') : null);
const SURNAMES = ['田中', '佐藤', '鈴木', '高橋', '伊藤', 'Tanaka', 'Sato', 'Smith', 'Jones', 'Müller'];

async function insertCertificate(tx: SqlExecutor, cert: Certificate, trust: string, source: string, filing: string, at: string): Promise<string> {
  const id = randomUUID();
  await tx.run(
    `INSERT INTO certificates (id, fingerprint, der, subject, subject_hex, issuer_hex, serial_hex, ski_hex, spki_sha256, key_algorithm, not_before, not_after, is_ca, trust, source, added_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)`,
    [id, cert.fingerprint256, cert.der, cert.subjectText, hex(cert.subject), hex(cert.issuer), hex(cert.serial), hex(cert.subjectKeyIdentifier), spkiDigest(cert.spki), 'ecPublicKey',
      cert.notBefore.toISOString(), cert.notAfter.toISOString(), trust, source, at],
  );
  for (const e of cert.emailAddresses) await tx.run('INSERT INTO certificate_emails (certificate_id, email, filing, preferred, filed_at) VALUES (?, ?, ?, 0, ?)', [id, e, filing, at]);
  return id;
}

/** The store, seeded; returns what the client needs. */
async function seed(dir: string, masterKey: Buffer, o: Options): Promise<{ signed: Buffer; personId: string; certificateId: string }> {
  const store = await Store.open(openSqliteEngine(join(dir, 'kakitome.db')), { masterKey: masterKeyFromBytes(masterKey), actor: 'bench' });
  await initCertificateAuthority(store, { name: 'Bench KK', organization: 'Bench KK', keyType: 'p256', crlUrl: `http://pki.${DOMAIN}/smime.crl`, rootCrlUrl: `http://pki.${DOMAIN}/root.crl`, ocspUrl: `http://pki.${DOMAIN}/ocsp` });
  const organisation = new OrganisationSettings(store);
  await organisation.setDomains([DOMAIN]);
  await organisation.setName('Bench KK');
  await new PeopleDirectory(store).addPerson({ email: ADMIN, displayName: 'Bench Admin', roles: ['administrator'], password: PASSWORD });
  // The administrator's own certificate and key: the signer of the check page's message.
  const leaf = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const [mine] = await issueMailboxCertificate(store, { email: ADMIN, keyType: 'p256', publicKey: leaf.publicKey });
  const ca = await findCertificateAuthority(store);
  const caKey: KeyObject = await openCaKey(store, ca, 'bench seed');
  const t0 = performance.now();
  const now = Date.now();
  const issued = Math.min(o.users, o.certificates);
  let personId = '';
  let certificateId = '';
  const outsiders = new TestRoots();
  await store.engine.transaction(async (tx) => {
    for (let i = 0; i < o.users; i++) {
      const id = randomUUID();
      if (i === 0) personId = id;
      const n = String(i).padStart(5, '0');
      await tx.run('INSERT INTO people (id, email, display_name, roles, password_hash, language, created_at) VALUES (?, ?, ?, ?, NULL, ?, ?)',
        [id, `user-${n}@${DOMAIN}`, `${SURNAMES[i % SURNAMES.length]} ${n}`, '', i % 2 ? 'ja' : 'en', new Date(now - i * 60_000).toISOString()]);
    }
    for (let i = 0; i < o.certificates; i++) {
      const n = String(i).padStart(5, '0');
      const at = new Date(now - (o.certificates - i) * 1000).toISOString();
      const notAfter = new Date(now + ((i * 7919) % 400) * DAY - (i % 50 === 0 ? 30 * DAY : 0));
      if (i < issued) {
        const email = `user-${n}@${DOMAIN}`;
        const cert = issueCertificate({
          subject: { commonName: email, emailAddress: email }, publicKey: leaf.publicKey, issuer: ca.certificate, signingKey: caKey, emails: [email],
          serial: randomBytes(16), notBefore: new Date(notAfter.getTime() - 365 * DAY), notAfter, keyUsage: ['digitalSignature', 'keyAgreement'], extKeyUsage: [OID.emailProtection],
        });
        const id = await insertCertificate(tx, cert, 'issued', 'ca', 'current', at);
        if (i === 0) certificateId = id;
        await tx.run('INSERT INTO issued_certificates (certificate_id, ca_id, profile, issued_at) VALUES (?, ?, ?, ?)', [id, ca.id, 'mailbox-strict-multipurpose', at]);
      } else {
        const email = `partner-${n}@partner${i % 100}.example`;
        const { cert } = outsiders.leaf(i, email, leaf.publicKey, notAfter);
        // A few new keys for known addresses waiting for a decision.
        await insertCertificate(tx, cert, 'harvested', 'smime:bench', i % 500 === 0 ? 'pending' : 'current', at);
      }
    }
    for (let i = 0; i < o.audit; i++) {
      const actions = ['api.sign', 'key.use.sign', 'console.invitation', 'certificate.import', 'message.hold', 'person.add'];
      await tx.run('INSERT INTO audit_log (id, at, actor, action, object, detail) VALUES (?, ?, ?, ?, ?, ?)',
        [randomUUID(), new Date(now - ((i * 104_729) % (30 * DAY))).toISOString(), i % 3 ? 'api:bench' : `console:${ADMIN}`, actions[i % actions.length]!, `object-${i}`, 'bench']);
    }
  });
  process.stderr.write(`seeded ${o.users} people, ${o.certificates} certificates, ${o.audit} audit rows in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  // The check page's message: a signed message of the size asked for, from the administrator.
  const line = 'The quarterly figures are attached below; please check them before Thursday.\r\n';
  const body = line.repeat(Math.ceil(o.uploadSize / line.length)).slice(0, Math.max(0, o.uploadSize - 600));
  const draft = Buffer.from(`From: Bench Admin <${ADMIN}>\r\nTo: someone@${DOMAIN}\r\nSubject: Figures\r\nDate: Mon, 23 Nov 2026 14:00:00 +0000\r\nMessage-ID: <bench-check@${DOMAIN}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n${body}`);
  const signed = signMessage(draft, { signers: [{ certificate: mine!.certificate, key: leaf.privateKey }], certificates: [ca.certificate] });
  await store.close();
  return { signed, personId, certificateId };
}

/** Ten roots nobody trusts, each issuing certificates of others (harvested from mail). */
class TestRoots {
  readonly #roots: Array<{ cert: Certificate; key: KeyObject }> = [];
  constructor() {
    for (let i = 0; i < 10; i++) {
      const k = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      this.#roots.push({ key: k.privateKey, cert: issueCertificate({ subject: { commonName: `Partner Root ${i}`, organization: `Partner ${i}` }, publicKey: k.publicKey, signingKey: k.privateKey, ca: true, keyUsage: ['keyCertSign', 'cRLSign'], notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + 3650 * DAY) }) });
    }
  }
  leaf(i: number, email: string, publicKey: KeyObject, notAfter: Date): { cert: Certificate } {
    const r = this.#roots[i % this.#roots.length]!;
    return { cert: issueCertificate({ subject: { commonName: email }, publicKey, issuer: r.cert, signingKey: r.key, emails: [email], serial: randomBytes(12), notBefore: new Date(notAfter.getTime() - 365 * DAY), notAfter, extKeyUsage: [OID.emailProtection] }) };
  }
}

// ---------------------------------------------------------------- the server (child)

async function serve(dir: string, masterKeyHex: string): Promise<void> {
  const store = await Store.open(openSqliteEngine(join(dir, 'kakitome.db')), { masterKey: masterKeyFromBytes(Buffer.from(masterKeyHex, 'hex')), actor: 'serve' });
  const server = await startServer(store, { host: '127.0.0.1', port: 0, maxMessageBytes: 16 * 1024 * 1024, shutdownGraceMs: 2000, revocation: 'allow-unknown' }, {
    log: () => undefined, version: 'bench',
    // One client address sends every request: its check-page limit (30 a minute) is raised; everything else is the default.
    console: { rates: { checkPerAddress: 100_000 } },
  });
  let peakRss = process.memoryUsage().rss;
  const sample = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss); }, 20);
  process.on('message', (m: { stats?: boolean; stop?: boolean }) => {
    if (m.stats) process.send!({ stats: { peakRss, cpu: process.cpuUsage() } });
    if (m.stop) {
      clearInterval(sample);
      void server.close().then(() => store.close()).then(() => process.exit(0));
    }
  });
  process.send!({ url: server.console.origin.baseUrl });
}

// ---------------------------------------------------------------- the client

class Client {
  readonly cookies = new Map<string, string>();
  readonly url: string;
  constructor(url: string) {
    this.url = url;
  }
  async request(path: string, init: { method?: string; body?: string | FormData; headers?: Record<string, string> } = {}): Promise<{ status: number; text: string; ms: number }> {
    const headers: Record<string, string> = { ...init.headers, cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
    if (init.method === 'POST') headers.origin = this.url;
    const t0 = performance.now();
    const res = await fetch(new URL(path, this.url), { method: init.method ?? 'GET', headers, redirect: 'manual', ...(init.body !== undefined ? { body: init.body } : {}) });
    const text = await res.text();
    const ms = performance.now() - t0;
    for (const c of res.headers.getSetCookie()) {
      const [name, value] = c.split(';')[0]!.split('=');
      this.cookies.set(name!, value!);
    }
    return { status: res.status, text, ms };
  }
}

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

interface PageFigure { page: string; requests: number; p50: number; p95: number; max: number; serverCpuMs: number; statuses: string; pass: boolean }

async function measurePage(client: Client, child: ReturnType<typeof fork>, page: string, path: string, n: number): Promise<PageFigure> {
  for (let i = 0; i < Math.min(5, n); i++) await client.request(path);
  const before = (await stats(child)).cpu;
  const times: number[] = [];
  const statuses = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const r = await client.request(path);
    times.push(r.ms);
    statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
  }
  const after = (await stats(child)).cpu;
  const p95 = percentile(times, 95);
  const ok = statuses.size === 1 && statuses.has(200);
  // The server's CPU time per request (user + system): what the latency becomes on an idle machine, and stable on a loaded one.
  const serverCpuMs = (after.user + after.system - before.user - before.system) / 1000 / n;
  return { page, requests: n, p50: median(times), p95, max: Math.max(...times), serverCpuMs, statuses: [...statuses].map(([s, c]) => `${s}×${c}`).join(' '), pass: ok && p95 < 50 };
}

async function main(): Promise<void> {
  const serveDir = process.argv.find((a) => a.startsWith('--serve='))?.slice(8);
  if (serveDir) return serve(serveDir, process.env.BENCH_MASTER_KEY!);
  const o = readOptions(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-bench-console-'));
  const masterKey = randomBytes(32);
  const { signed, personId, certificateId } = await seed(dir, masterKey, o);
  const child = fork(fileURLToPath(import.meta.url), [`--serve=${dir}`], { env: { ...process.env, BENCH_MASTER_KEY: masterKey.toString('hex') }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      child.once('message', (m: { url: string }) => resolve(m.url));
      child.once('exit', (code) => reject(new Error(`the server exited (${code})`)));
    });
    const admin = new Client(url);
    const signIn = await admin.request('/sign-in', { method: 'POST', body: new URLSearchParams({ email: ADMIN, password: PASSWORD, next: '/' }).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    if (signIn.status !== 303) throw new Error(`sign-in: ${signIn.status}`);
    const cursor = /rel="next" href="([^"]+)"/.exec((await admin.request('/admin/certificates')).text)?.[1]?.replaceAll('&amp;', '&');
    const pages: Array<[string, string, number?]> = [
      ['dashboard', '/admin'],
      ['people', '/admin/people'],
      ['a person', `/admin/people/${personId}`],
      ['certificates', '/admin/certificates'],
      ['certificates, next page', cursor ?? '/admin/certificates'],
      ['certificates, all in the store', '/admin/certificates?kind=all'],
      ['certificates, address search', '/admin/certificates?q=user-04'],
      ['certificates, name search', `/admin/certificates?q=${encodeURIComponent('田中')}`],
      ['a certificate', `/admin/certificates/${certificateId}`],
      ['external certificates', '/admin/directory'],
      ['audit log', '/admin/audit'],
      ['audit log, filtered', '/admin/audit?actor=console%3A&from=2026-01-01'],
      ['gateway policy', '/admin/policy'],
      ['explain', `/admin/policy/explain?from=${encodeURIComponent(ADMIN)}&to=user-00001%40${DOMAIN}%2Cpartner-19999%40partner99.example`, 25],
      ['signing service', '/admin/tenants'],
      ['settings', '/admin/settings'],
      ['mail servers', '/admin/mail-server'],
      ['import people', '/admin/people-import'],
      ['bulk issue', '/admin/bulk-issue'],
      ['my certificate', '/me'],
      ['install guides', '/me/guides'],
      ['can I send encrypted mail?', `/lookup?address=partner-19999%40partner99.example`, 25],
      ['check page', '/check'],
    ];
    const figures: PageFigure[] = [];
    for (const [name, path, n] of pages.filter(([name]) => !o.only || o.only.some((x) => name.includes(x)))) {
      const f = await measurePage(admin, child, name, path, Math.min(n ?? o.requests, o.requests));
      figures.push(f);
      process.stderr.write(`${f.pass ? 'ok  ' : 'SLOW'} ${name.padEnd(32)} p50 ${f.p50.toFixed(1).padStart(6)} ms  p95 ${f.p95.toFixed(1).padStart(6)} ms  max ${f.max.toFixed(1).padStart(6)} ms  server CPU ${f.serverCpuMs.toFixed(1).padStart(5)} ms  ${f.statuses}\n`);
    }
    if (o.uploads === 0) {
      const result = { bench: 'console', at: new Date().toISOString(), loadavg: loadavg(), options: o, pages: figures, allPagesUnder50ms: figures.every((f) => f.pass) };
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      if (o.out) writeFileSync(o.out, JSON.stringify(result, null, 2));
      return;
    }
    // The check page: concurrent uploads of the signed message.
    const cpuBefore = await stats(child);
    const clientBefore = process.cpuUsage();
    const t0 = performance.now();
    const uploads = await Promise.all(Array.from({ length: o.uploads }, async () => {
      const form = new FormData();
      form.set('message-file', new Blob([signed], { type: 'message/rfc822' }), 'message.eml');
      const c = new Client(url);
      try {
        const r = await c.request('/check', { method: 'POST', body: form });
        return { ...r, verdict: /data-verdict="([^"]+)"/.exec(r.text)?.[1] ?? 'none' };
      } catch (e) {
        return { status: 0, text: `${String(e)} ${String((e as Error).cause)}`, ms: performance.now() - t0, verdict: 'none' };
      }
    }));
    const wall = performance.now() - t0;
    const client = process.cpuUsage(clientBefore);
    const after = await stats(child);
    const cpuMs = (after.cpu.user + after.cpu.system - cpuBefore.cpu.user - cpuBefore.cpu.system) / 1000;
    const times = uploads.map((u) => u.ms);
    // A signature by the administrator's certificate from the organisation's CA: the verdict is "trusted" (genuine).
    const failed = uploads.filter((u) => u.status !== 200 || u.verdict !== 'trusted');
    const check = {
      uploads: o.uploads, bytes: signed.length, wallMs: wall, p50: median(times), p95: percentile(times, 95), max: Math.max(...times),
      failed: failed.length, statuses: [...new Set(uploads.map((u) => u.status))], verdicts: [...new Set(uploads.map((u) => u.verdict))], serverCpuMsPerUpload: cpuMs / o.uploads, clientCpuMsPerUpload: (client.user + client.system) / 1000 / o.uploads, serverPeakRssMiB: after.peakRss / 1048576,
    };
    for (const f of failed.slice(0, 3)) process.stderr.write(`check page failure: ${f.status} ${f.verdict} ${f.status === 0 ? f.text : ''}\n`);
    process.stderr.write(`check page: ${o.uploads} concurrent uploads of ${(signed.length / 1048576).toFixed(2)} MiB: ${failed.length} failed (statuses ${check.statuses.join(', ')}, verdicts ${check.verdicts.join(', ')}), p50 ${check.p50.toFixed(0)} ms, p95 ${check.p95.toFixed(0)} ms, max ${check.max.toFixed(0)} ms, all in ${wall.toFixed(0)} ms; server CPU ${check.serverCpuMsPerUpload.toFixed(1)} ms an upload (the bench's client ${check.clientCpuMsPerUpload.toFixed(1)} ms), peak RSS ${check.serverPeakRssMiB.toFixed(0)} MiB\n`);
    const result = { bench: 'console', at: new Date().toISOString(), loadavg: loadavg(), options: o, pages: figures, check, allPagesUnder50ms: figures.every((f) => f.pass), checkNoneFailed: failed.length === 0 };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    if (o.out) writeFileSync(o.out, JSON.stringify(result, null, 2));
  } finally {
    child.send({ stop: true });
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

function stats(child: ReturnType<typeof fork>): Promise<{ peakRss: number; cpu: NodeJS.CpuUsage }> {
  return new Promise((resolve) => {
    child.once('message', (m: { stats: { peakRss: number; cpu: NodeJS.CpuUsage } }) => resolve(m.stats));
    child.send({ stats: true });
  });
}

await main();
