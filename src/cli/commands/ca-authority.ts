/**
 * `kakitome ca init|issue|renew|revoke|crl|ocsp`: the internal CA. The CA modules
 * load when a ca command runs, not on every start of the CLI.
 */
import { Option, type Command } from 'commander';
import { KakitomeError } from '../../errors.ts';
import { encodePem } from '../../asn1/pem.ts';
import type { MailboxKeyType, MailboxUsage } from '../../ca/issue-mailbox-certificate.ts';
import { REVOCATION_REASONS, type RevocationReasonName } from '../../ca/revoke-issued-certificate.ts';
import type { CaKeyType } from '../../ca/certificate-authority.ts';
import { createPublicKey } from 'node:crypto';
import { openOutputFirst, readFileBounded } from '../io.ts';
import { commandAction } from './message-options.ts';
import { addStoreOptions, printResult, withCertificateStore, withStore, wroteLine, type StoreCliOptions } from './store-options.ts';
import type { Certificate } from '../../x509/certificate.ts';

interface InitOpts extends StoreCliOptions { out?: string; name: string; organization?: string; country?: string; keyType: CaKeyType; crlUrl?: string; ocspUrl?: string; rootCrlUrl?: string }
interface IssueOpts extends StoreCliOptions { email?: string; keyType: MailboxKeyType; usage: MailboxUsage | 'separate'; days: string; publicKey?: string; csr?: string; ca?: string; out?: string; der?: boolean }
interface RenewOpts extends StoreCliOptions { fingerprint: string; keepKey?: boolean; days?: string; out?: string }
interface RevokeOpts extends StoreCliOptions { fingerprint: string; reason: RevocationReasonName }
interface CrlOpts extends StoreCliOptions { ca?: string; out?: string; hours: string; pem?: boolean }
interface OcspOpts extends StoreCliOptions { host: string; port: string; maxConnections: string; requestTimeout: string }
interface OcspSignerOpts extends StoreCliOptions { days: string; renewBefore: string }

const certJson = (c: Certificate) => ({ fingerprint: c.fingerprint256, subject: c.subjectText, serial: c.serialHex, emails: c.emailAddresses, notBefore: c.notBefore.toISOString(), notAfter: c.notAfter.toISOString() });

export function register(program: Command): void {
  const ca = program.command('ca').summary('internal CA: init, issue, renew, revoke, crl, ocsp, ocsp-signer');

  const init = ca.command('init').description('Create a root CA and an issuing CA (keys sealed in the store).')
    .requiredOption('--name <name>', 'CA name, e.g. "Example Corp"')
    .option('--organization <o>', 'organization (default: the name)')
    .option('--country <cc>', 'two-letter country code')
    .addOption(new Option('--key-type <t>', 'CA key type').choices(['p256', 'p384', 'rsa3072', 'rsa4096']).default('p384'))
    .option('--crl-url <url>', 'http:// URL where the issuing CA\'s CRL will be published (put in mailbox certificates; `ca crl`)')
    .option('--ocsp-url <url>', 'http:// URL of the OCSP responder (put in mailbox certificates and the issuing CA\'s; `ca ocsp` answers for both)')
    .option('--root-crl-url <url>', 'http:// URL where the root\'s CRL will be published (put in the issuing CA\'s certificate; `ca crl --ca "NAME Root CA"`)')
    .option('-o, --out <file>', 'write the root certificate as PEM, to give to correspondents (they import it with certs import --trust trusted)');
  addStoreOptions(init).action(commandAction('ca init', async (o: InitOpts) => withStore(o, async (store) => {
    const { initCertificateAuthority } = await import('../../ca/init-certificate-authority.ts');
    const r = await withOutputFirst(o.out, async (write) => {
      const made = await initCertificateAuthority(store, { name: o.name, keyType: o.keyType, ...(o.organization ? { organization: o.organization } : {}), ...(o.country ? { country: o.country } : {}), ...(o.crlUrl ? { crlUrl: o.crlUrl } : {}), ...(o.ocspUrl ? { ocspUrl: o.ocspUrl } : {}), ...(o.rootCrlUrl ? { rootCrlUrl: o.rootCrlUrl } : {}) });
      await write(Buffer.from(encodePem('CERTIFICATE', made.root.certificate.der)));
      return made;
    });
    printResult(o, { status: 'ok', root: certJson(r.root.certificate), issuing: certJson(r.issuing.certificate), rootPem: encodePem('CERTIFICATE', r.root.certificate.der), out: o.out ?? null }, () => [
      `Root CA:    ${r.root.certificate.subjectText} (${r.root.certificate.fingerprint256})`,
      `Issuing CA: ${r.issuing.certificate.subjectText} (${r.issuing.certificate.fingerprint256})`,
      ...wroteLine(o.out, 'the root certificate (PEM)'),
      'Distribute the root certificate (kakitome certs list --trust trusted) to mail clients as a trusted S/MIME root.',
    ]);
    return 0;
  })));

  const issue = ca.command('issue').description('Issue a mailbox certificate (S/MIME BR mailbox-validated strict). With --csr, for the key of a PKCS#10 request made on the user\'s device; with --public-key, for that key; otherwise a key is generated and kept in the store.')
    .option('--email <address>', 'mailbox address (required unless --csr names one; with --csr the request must name this one or none)')
    .option('--csr <file>', 'PKCS#10 certification request (PEM or DER, e.g. from `openssl req -new`): its signature must verify; only its key and mailbox address are taken, the profile decides the rest')
    .addOption(new Option('--usage <u>', 'dual: one certificate signs and encrypts; separate: two certificates and keys').choices(['dual', 'signing', 'encryption', 'separate']).default('dual'))
    .addOption(new Option('--key-type <t>', 'key type of a generated key (RSA reads everywhere; EC keys cannot be decrypted by NSS/gpgsm 2.2)').choices(['rsa2048', 'rsa3072', 'p256', 'p384']).default('rsa2048'))
    .option('--days <n>', 'validity in days (at most 825)', '365')
    .option('--public-key <file>', 'certify this public key (PEM/DER public or private key); the user keeps the private key')
    .option('--ca <name>', 'issuing CA name (default: the issuing CA)')
    .option('-o, --out <file>', 'write the certificate(s) as PEM')
    .option('--der', 'write the certificate to --out as DER (one certificate)');
  addStoreOptions(issue).action(commandAction('ca issue', async (o: IssueOpts) => {
    if (o.csr !== undefined) return issueFromRequest(o);
    if (o.email === undefined) throw new KakitomeError('INVALID_ARGUMENT', 'ca issue needs --email ADDRESS (or --csr FILE naming one).');
    if (o.der && (o.usage === 'separate' || !o.out)) throw new KakitomeError('INVALID_ARGUMENT', '--der writes one certificate to --out FILE: it needs --out and a single usage.');
    const email = o.email;
    const publicKey = o.publicKey ? await loadPublicKey(o.publicKey) : undefined;
    return withStore(o, async (store) => {
      const { issueMailboxCertificate } = await import('../../ca/issue-mailbox-certificate.ts');
      const out = await withOutputFirst(o.out, async (write) => {
        const issued = await issueMailboxCertificate(store, { email, usage: o.usage, keyType: o.keyType, validityDays: Number(o.days), ...(publicKey ? { publicKey } : {}), ...(o.ca ? { caName: o.ca } : {}) });
        await write(o.der ? issued[0]!.certificate.der : Buffer.from(issued.map((c) => encodePem('CERTIFICATE', c.certificate.der)).join('')));
        return issued;
      });
      printResult(o, { status: 'ok', certificates: out.map((c) => ({ ...certJson(c.certificate), usage: c.usage, keyId: c.keyId ?? null })), out: o.out ?? null }, () => [
        ...out.map((c) => `${c.usage.padEnd(10)} ${c.certificate.fingerprint256}  until ${c.certificate.notAfter.toISOString().slice(0, 10)}${c.keyId ? `  key ${c.keyId}` : ''}`),
        ...wroteLine(o.out, o.der ? 'the certificate (DER)' : out.length > 1 ? `the ${out.length} certificates (PEM)` : 'the certificate (PEM)'),
      ]);
      return 0;
    });
  }));

  const renew = ca.command('renew').description('Renew an issued certificate (new key unless --keep-key); the old certificate and key stay for old mail.')
    .requiredOption('--fingerprint <sha256>', 'certificate to renew').option('--keep-key', 'certify the same key again').option('--days <n>', 'validity in days').option('-o, --out <file>', 'write the new certificate as PEM');
  addStoreOptions(renew).action(commandAction('ca renew', async (o: RenewOpts) => withStore(o, async (store) => {
    const { renewMailboxCertificate } = await import('../../ca/renew-mailbox-certificate.ts');
    const r = await withOutputFirst(o.out, async (write) => {
      const renewed = await renewMailboxCertificate(store, o.fingerprint, { ...(o.keepKey ? { keepKey: true } : {}), ...(o.days ? { validityDays: Number(o.days) } : {}) });
      await write(Buffer.from(encodePem('CERTIFICATE', renewed.certificate.der)));
      return renewed;
    });
    printResult(o, { status: 'ok', certificate: { ...certJson(r.certificate), keyId: r.keyId ?? null }, renewed: o.fingerprint, out: o.out ?? null }, () => [`Renewed: ${r.certificate.fingerprint256}`, ...wroteLine(o.out, 'the new certificate (PEM)')]);
    return 0;
  })));

  const revoke = ca.command('revoke').description('Revoke an issued certificate with a reason; it shows in the next CRL and in OCSP at once.')
    .requiredOption('--fingerprint <sha256>', 'certificate to revoke')
    .addOption(new Option('--reason <r>', 'CRLReason (RFC 5280 5.3.1)').choices(Object.keys(REVOCATION_REASONS).filter((r) => r !== 'certificateHold' && r !== 'removeFromCRL')).default('unspecified'));
  addStoreOptions(revoke).action(commandAction('ca revoke', async (o: RevokeOpts) => withCertificateStore(o, async (store) => {
    const { revokeIssuedCertificate } = await import('../../ca/revoke-issued-certificate.ts');
    const r = await revokeIssuedCertificate(store, o.fingerprint, o.reason);
    printResult(o, { status: 'ok', fingerprint: r.certificate.fingerprint256, revokedAt: r.revokedAt?.toISOString(), reason: o.reason }, () => [`Revoked ${r.certificate.fingerprint256} (${o.reason}).`]);
    return 0;
  })));

  const crl = ca.command('crl').description('Publish a signed CRL (DER, or PEM with --pem) for the issuing CA, or for the root with --ca "NAME Root CA" (it covers the issuing CA).')
    .option('--ca <name>', 'CA name').option('--hours <n>', 'hours until nextUpdate (at most 240; a root\'s: 8784)', '168').option('--pem', 'PEM instead of DER').requiredOption('-o, --out <file>', 'output file');
  addStoreOptions(crl).action(commandAction('ca crl', async (o: CrlOpts) => withStore(o, async (store) => {
    const { publishCrl } = await import('../../ca/publish-crl.ts');
    const r = await withOutputFirst(o.out, async (write) => {
      const published = await publishCrl(store, { validityHours: Number(o.hours), ...(o.ca ? { caName: o.ca } : {}) });
      await write(o.pem ? Buffer.from(encodePem('X509 CRL', published.der)) : published.der);
      return published;
    });
    printResult(o, { status: 'ok', crlNumber: r.crlNumber, thisUpdate: r.thisUpdate.toISOString(), nextUpdate: r.nextUpdate.toISOString(), revoked: r.revokedCount, out: o.out }, () => [`CRL ${r.crlNumber} with ${r.revokedCount} revoked, next update ${r.nextUpdate.toISOString()}.`, ...wroteLine(o.out, o.pem ? 'the CRL (PEM)' : 'the CRL (DER)')]);
    return 0;
  })));

  const ocsp = ca.command('ocsp').description('Run the OCSP responder for the internal CAs until interrupted. Answers are signed by each CA\'s delegated OCSP signing certificate; no CA key is opened.')
    .option('--host <addr>', 'listen address', '127.0.0.1').option('--port <n>', 'port', '8080')
    .option('--max-connections <n>', 'connections open at once; more are refused', '256')
    .option('--request-timeout <seconds>', 'time a client has to send its whole request (headers: half of it)', '10');
  addStoreOptions(ocsp).action(commandAction('ca ocsp', async (o: OcspOpts) => withStore(o, async (store) => {
    const { startOcspResponder } = await import('../../ca/ocsp-responder.ts');
    const maxConnections = positiveInteger(o.maxConnections, '--max-connections');
    const requestTimeoutMs = positiveInteger(o.requestTimeout, '--request-timeout') * 1000;
    const r = await startOcspResponder(store, { host: o.host, port: Number(o.port) }, { maxConnections, requestTimeoutMs, headersTimeoutMs: Math.ceil(requestTimeoutMs / 2) });
    const signers = r.signers().map((c) => ({ subject: c.subjectText, fingerprint: c.fingerprint256, notAfter: c.notAfter.toISOString() }));
    printResult(o, { status: 'listening', url: r.url, signers }, () => [`OCSP responder listening on ${r.url}`, ...signers.map((s) => `  signing as ${s.subject} until ${s.notAfter} (renew with \`kakitome ca ocsp-signer\`, daily)`)]);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await r.close();
    return 0;
  })));

  const signer = ca.command('ocsp-signer').description('Issue or renew each CA\'s delegated OCSP signing certificate (id-kp-OCSPSigning, ocsp-nocheck) where it is missing, revoked or near its end. Run it daily; a running `ca ocsp` picks new ones up within a minute.')
    .option('--days <n>', 'validity of a new certificate in days (at most 90)', '30')
    .option('--renew-before <days>', 'renew when fewer days remain', '10');
  addStoreOptions(signer).action(commandAction('ca ocsp-signer', async (o: OcspSignerOpts) => withStore(o, async (store) => {
    const { renewOcspSigningCertificates } = await import('../../ca/issue-ocsp-signing-certificate.ts');
    const { listCertificateAuthorities } = await import('../../ca/certificate-authority.ts');
    // With no CA there is nothing to sign OCSP answers for: "every CA has one" would be true and useless.
    if ((await listCertificateAuthorities(store)).length === 0) throw new KakitomeError('NOT_FOUND', 'The store has no internal CA, so there is no OCSP signing certificate to issue: create the CA first with `kakitome ca init`.');
    const issued = await renewOcspSigningCertificates(store, { validityDays: positiveInteger(o.days, '--days'), renewBeforeDays: positiveInteger(o.renewBefore, '--renew-before') });
    printResult(o, { status: 'ok', issued: issued.map((s) => ({ ca: s.ca.name, ...certJson(s.certificate) })) }, () => (issued.length ? issued.map((s) => `${s.ca.name}: new OCSP signer ${s.certificate.fingerprint256} until ${s.certificate.notAfter.toISOString()}`) : ['Every CA has a current OCSP signing certificate.']));
    return 0;
  })));
}

/** `ca issue --csr FILE`: the request is read and checked before the store (and the CA key) is opened. */
async function issueFromRequest(o: IssueOpts): Promise<number> {
  if (o.publicKey !== undefined) throw new KakitomeError('INVALID_ARGUMENT', '--csr and --public-key both name the key to certify: give one.');
  if (o.usage === 'separate') throw new KakitomeError('INVALID_ARGUMENT', 'A certification request carries one key: --usage separate needs two (make two requests, --usage signing and --usage encryption).');
  if (o.der && !o.out) throw new KakitomeError('INVALID_ARGUMENT', '--der writes the certificate to --out FILE.');
  const { MAX_REQUEST_BYTES } = await import('../../x509/parse-certification-request.ts');
  const request = await readFileBounded(o.csr!, `--csr ${o.csr}`, MAX_REQUEST_BYTES);
  return withStore(o, async (store) => {
    const { issueFromCertificationRequest } = await import('../../ca/issue-from-certification-request.ts');
    const r = await withOutputFirst(o.out, async (write) => {
      const issued = await issueFromCertificationRequest(store, { request, usage: o.usage as MailboxUsage, validityDays: Number(o.days), ...(o.email !== undefined ? { email: o.email } : {}), ...(o.ca ? { caName: o.ca } : {}) });
      await write(o.der ? issued.certificate.der : Buffer.from(encodePem('CERTIFICATE', issued.certificate.der)));
      return issued;
    });
    printResult(o, { status: 'ok', certificates: [{ ...certJson(r.certificate), usage: r.usage, keyId: null }], request: { sha256: r.requestSha256, ignored: r.ignored }, certificatePem: encodePem('CERTIFICATE', r.certificate.der), out: o.out ?? null }, () => [
      `${r.usage.padEnd(10)} ${r.certificate.fingerprint256}  until ${r.certificate.notAfter.toISOString().slice(0, 10)}  for ${r.certificate.emailAddresses[0]} (request sha256:${r.requestSha256.slice(0, 16)}...)`,
      ...r.ignored.map((i) => `  ignored from the request: ${i}`),
      ...wroteLine(o.out, o.der ? 'the certificate (DER)' : 'the certificate (PEM)'),
      ...(o.out ? [] : [encodePem('CERTIFICATE', r.certificate.der).trimEnd()]),
    ]);
    return 0;
  });
}

/**
 * Runs `work` with `--out` opened first (io.ts openOutputFirst): a path that cannot
 * be written stops the command before the CA, certificate, key or CRL number is made.
 */
async function withOutputFirst<T>(out: string | undefined, work: (write: (data: Uint8Array) => Promise<void>) => Promise<T>): Promise<T> {
  const output = await openOutputFirst(out);
  try {
    return await work(output.write);
  } catch (e) {
    await output.abort();
    throw e;
  }
}

function positiveInteger(text: string, option: string): number {
  const n = Number(text);
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(n) || n < 1) throw new KakitomeError('INVALID_ARGUMENT', `${option} takes a whole number above 0.`);
  return n;
}

async function loadPublicKey(path: string) {
  const bytes = await readFileBounded(path, `--public-key ${path}`);
  try {
    return createPublicKey(bytes.toString('latin1').includes('-----BEGIN') ? bytes.toString('latin1') : { key: bytes, format: 'der', type: 'spki' });
  } catch {
    try {
      const [{ toPublic }, { loadPrivateKey }] = await Promise.all([import('../../x509/issue.ts'), import('../../keys/private-key.ts')]);
      return toPublic(loadPrivateKey(bytes));
    } catch (e) {
      throw new KakitomeError('KEY_INVALID', `${path} is not a public or private key.`, { cause: e });
    }
  }
}
