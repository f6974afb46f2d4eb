/**
 * `kakitome certs import|list|history|accept|reject|roots|find`: the certificate
 * directory; `certs roots` lists the CA roots signed mail chained to that wait for
 * a trust decision, and trusts, declines or reopens one (decide-unknown-root.ts).
 * `kakitome expiring --within DAYS`: certificates with keys (and CA certificates)
 * expiring soon; exit status 1 when any does, so cron and monitors can act on it.
 */
import { Option, type Command } from 'commander';
import { KakitomeError } from '../../errors.ts';
import type { CertificateRecord, TrustLevel } from '../../store/store.ts';
import { rejectPendingCertificate } from '../../store/reject-pending-certificate.ts';
import type { RevocationMode } from '../../pki/check-revocation.ts';
import { readFileBounded } from '../io.ts';
import { resolvePassSpec } from '../pass-spec.ts';
import { commandAction } from './message-options.ts';
import { addStoreOptions, certificateJson, certificateLine, printResult, withCertificateStore, withStore, type StoreCliOptions } from './store-options.ts';

interface ImportOpts extends StoreCliOptions { trust: TrustLevel; pass?: string }
interface ListOpts extends StoreCliOptions { email?: string; trust?: TrustLevel }
interface ExpiringOpts extends StoreCliOptions { within: string }
interface FindOpts extends StoreCliOptions { ldapUrl?: string; ldapBase?: string }
interface AcceptOpts extends StoreCliOptions { email?: string }
interface RootsOpts extends StoreCliOptions { declined?: boolean }
interface TrustRootOpts extends StoreCliOptions { revocation: RevocationMode }

export function register(program: Command): void {
  const certs = program.command('certs').summary('the certificate directory: import, list, history, accept, reject, roots, find');

  const imp = certs.command('import').description('Import certificates from files: PEM, DER, certs-only .p7b/.p7c, or .p12 (with --pass; its key is imported too).')
    .argument('<files...>', 'certificate files')
    .addOption(new Option('--trust <level>', '"trusted" makes CA certificates trust anchors (and raises one already stored); use it only for CAs you vouch for. Certificates in a .p12 are always imported').choices(['trusted', 'imported']).default('imported'))
    .option('--pass <spec>', 'password of .p12 files: file:PATH, fd:N, env:VAR, stdin or prompt');
  addStoreOptions(imp).action(async (files: string[], o: ImportOpts) => commandAction('certs import', async (opts: ImportOpts) => {
    const pass = opts.pass === undefined ? undefined : await resolvePassSpec(opts.pass);
    return withStore(opts, async (store) => {
      const out: CertificateRecord[] = [];
      const { importCertificateFile } = await import('../../store/import-certificate-file.ts');
      for (const f of files) {
        const r = await importCertificateFile(store, await readFileBounded(f, f), { trust: opts.trust, source: f, ...(pass !== undefined ? { password: pass } : {}) });
        out.push(...r.certificates);
      }
      printResult(opts, { status: 'ok', certificates: out.map(certificateJson) }, () => out.map(certificateLine));
      return 0;
    });
  })(o));

  const list = certs.command('list').description('List stored certificates.')
    .option('--email <address>', 'only certificates for this address')
    .addOption(new Option('--trust <level>', 'only this trust level').choices(['trusted', 'imported', 'harvested']));
  addStoreOptions(list).action(commandAction('certs list', async (o: ListOpts) => withCertificateStore(o, async (store) => {
    const all = await store.listCertificates({ ...(o.email ? { email: o.email } : {}), ...(o.trust ? { trust: o.trust } : {}) });
    printResult(o, { certificates: all.map(certificateJson) }, () => all.map(certificateLine));
    return 0;
  })));

  const history = certs.command('history').description('Every certificate ever filed under ADDRESS, oldest first, with its filing: current (used to encrypt), pending (a new key from signed mail, not used until accepted), superseded (replaced by an accepted key).')
    .argument('<address>', 'e-mail address');
  addStoreOptions(history).action(async (address: string, o: StoreCliOptions) => commandAction('certs history', async (opts: StoreCliOptions) => withCertificateStore(opts, async (store) => {
    const all = await store.certificateHistory(address);
    printResult(opts, { address, certificates: all.map((h) => ({ ...certificateJson(h.record), filing: h.filing.filing, preferredForAddress: h.filing.preferred, filedAt: h.filing.filedAt.toISOString() })) }, () =>
      all.length ? all.map((h) => `${h.filing.filedAt.toISOString().slice(0, 10)}  ${h.filing.filing.padEnd(10)}  ${certificateLine(h.record)}`) : [`No certificate was ever filed under ${address}.`]);
    return 0;
  }))(o));

  const accept = certs.command('accept').description('Decide for a new key: the certificate becomes the one mail to its address is encrypted to, and the certificates with other keys for that address are superseded (kept as history). Audited.')
    .argument('<fingerprint>', 'SHA-256 fingerprint of the certificate (see `certs history ADDRESS`)')
    .option('--email <address>', 'the address to accept it for (needed when it is filed under several)');
  addStoreOptions(accept).action(async (fingerprint: string, o: AcceptOpts) => commandAction('certs accept', async (opts: AcceptOpts) => withCertificateStore(opts, async (store) => {
    const rec = await store.acceptCertificate(fingerprint, opts.email);
    printResult(opts, { status: 'ok', certificate: certificateJson(rec) }, () => [`Accepted: ${certificateLine(rec)}`]);
    return 0;
  }))(o));

  const reject = certs.command('reject').description('Decide against a new key waiting for a decision: it is kept as history only, never used to encrypt to the address (harvesting it again does not bring it back); the certificates in use stay. Audited.')
    .argument('<fingerprint>', 'SHA-256 fingerprint of the pending certificate (see `certs history ADDRESS`)')
    .requiredOption('--email <address>', 'the address it is waiting under');
  addStoreOptions(reject).action(async (fingerprint: string, o: AcceptOpts) => commandAction('certs reject', async (opts: AcceptOpts) => withCertificateStore(opts, async (store) => {
    const rec = await rejectPendingCertificate(store, fingerprint, opts.email!);
    printResult(opts, { status: 'ok', certificate: certificateJson(rec) }, () => [`Rejected: ${certificateLine(rec)}`]);
    return 0;
  }))(o));

  registerRoots(certs);

  const find = certs.command('find').description('The certificate mail to ADDRESS would be encrypted to now (valid, not revoked, best ranked), and the signing certificate if we hold its key. With --ldap-url, a directory is asked when the store has none (kept only if its chain validates against the store\'s trusted CAs).')
    .argument('<address>', 'e-mail address')
    .option('--ldap-url <url>', 'ldap://host:port to search when the store has no certificate')
    .option('--ldap-base <dn>', 'search base, e.g. dc=example,dc=com');
  addStoreOptions(find).action(async (address: string, o: FindOpts) => commandAction('certs find', async (opts: FindOpts) => withCertificateStore(opts, async (store) => {
    let enc = await store.findRecipientCertificate(address);
    if (!enc && opts.ldapUrl) {
      if (!opts.ldapBase) throw new KakitomeError('INVALID_ARGUMENT', '--ldap-url needs --ldap-base.');
      // Loaded on use: the LDAP client is not needed by any other command.
      const { findRecipientCertificateWithLdap } = await import('../../store/lookup-ldap-certificates.ts');
      const { createStoreTrustStore } = await import('../../store/store-trust-store.ts');
      const { createSignerValidator } = await import('../../pki/create-signer-validator.ts');
      const validate = createSignerValidator({ trustStore: createStoreTrustStore(store) });
      enc = await findRecipientCertificateWithLdap(store, address, { url: opts.ldapUrl, baseDn: opts.ldapBase, onWarning: (w) => process.stderr.write(`kakitome certs find: warning: ${w}\n`) }, validate);
    }
    const signing = (await store.listCertificates({ email: address })).find((r) => r.hasPrivateKey && !r.revokedAt && r.certificate.notAfter > store.now());
    if (!enc && !signing) throw new KakitomeError('CERT_UNTRUSTED', `No current certificate for ${address}.`);
    printResult(opts, { address, encryption: enc ? certificateJson(enc) : null, signing: signing ? certificateJson(signing) : null }, () => [
      enc ? `encrypt to: ${certificateLine(enc)}` : `no certificate to encrypt to ${address}`,
      ...(signing ? [`sign with:  ${certificateLine(signing)}`] : []),
    ]);
    return 0;
  }))(o));

  const exp = program.command('expiring').summary('certificates with keys, and CA certificates, expiring within DAYS (exit 1 if any)')
    .requiredOption('--within <days>', 'window in days');
  addStoreOptions(exp).action(commandAction('expiring', async (o: ExpiringOpts) => withCertificateStore(o, async (store) => {
    const days = Number(o.within);
    if (!Number.isFinite(days) || days < 0) throw new KakitomeError('INVALID_ARGUMENT', '--within takes a number of days.');
    const soon = await store.findExpiring(days);
    printResult(o, { within: days, expiring: soon.map(certificateJson) }, () => (soon.length ? soon.map(certificateLine) : [`Nothing expires within ${days} days.`]));
    return soon.length ? 1 : 0;
  })));
}

/** `kakitome certs roots [list] [--declined]`, `certs roots trust|decline|reopen FINGERPRINT`. */
function registerRoots(certs: Command): void {
  const roots = certs.command('roots').summary('CA roots that signed mail chained to, waiting for a trust decision: list, trust, decline, reopen');
  const list = roots.command('list', { isDefault: true }).description('The CA roots signed mail chained to that the store does not trust, waiting for a decision (most recently seen first), with the certificates waiting for each.')
    .option('--declined', 'the declined ones instead');
  addStoreOptions(list).action(commandAction('certs roots', async (o: RootsOpts) => withCertificateStore(o, async (store) => {
    const { listUnknownRoots, listWaitingCertificates } = await import('../../store/list-unknown-roots.ts');
    const found = await listUnknownRoots(store, { decision: o.declined ? 'declined' : 'waiting', limit: 200 });
    const withLeaves = await Promise.all(found.map(async (r) => ({ ...r, certificates: await listWaitingCertificates(store, r.fingerprint) })));
    printResult(o, { roots: withLeaves }, () => withLeaves.length
      ? withLeaves.flatMap((r) => [
        `${r.fingerprint}  ${r.subject}`,
        `  valid ${r.notBefore.toISOString().slice(0, 10)} to ${r.notAfter.toISOString().slice(0, 10)}, ${r.keyAlgorithm}; seen ${r.timesSeen} times, ${r.firstSeen.toISOString().slice(0, 10)} to ${r.lastSeen.toISOString().slice(0, 10)}, from ${r.examples.join(', ')}; ${r.waiting} certificates waiting`,
      ])
      : [o.declined ? 'No CA root was declined.' : 'No CA root is waiting for a trust decision.']);
    return 0;
  })));

  const trust = roots.command('trust').description('Trust a CA root recorded from signed mail, after checking its fingerprint with its owner: it becomes a trust anchor (as certs import --trust trusted), and the certificates waiting for it are validated again now (path and revocation) and kept for encrypting to their senders if they pass. Audited.')
    .argument('<fingerprint>', 'the root\'s SHA-256 fingerprint, whole (see `certs roots`)')
    .addOption(new Option('--revocation <mode>', 'revocation checking of the waiting certificates (as verify\'s --revocation)').choices(['require', 'allow-unknown', 'off']).default('allow-unknown'));
  addStoreOptions(trust).action(async (fingerprint: string, o: TrustRootOpts) => commandAction('certs roots trust', async (opts: TrustRootOpts) => withCertificateStore(opts, async (store) => {
    const { trustUnknownRoot } = await import('../../store/decide-unknown-root.ts');
    const { createTrustValidator } = await import('../../operations/create-trust-validator.ts');
    const { storeTrustOptions } = await import('../../operations/trust-options.ts');
    const r = await trustUnknownRoot(store, fingerprint, { createValidator: () => createTrustValidator(storeTrustOptions(opts.revocation), store) });
    printResult(opts, { status: 'ok', root: certificateJson(r.root), certificates: r.outcomes }, () => [
      `Trusted: ${certificateLine(r.root)}`,
      ...r.outcomes.map((x) => (x.outcome === 'harvested' ? `  kept for ${x.address}: ${x.fingerprint}${x.filing === 'pending' ? ' (pending: the address has another key in use; kakitome certs accept decides)' : ''}` : `  not kept for ${x.address}: ${x.fingerprint}: ${x.reason}`)),
    ]);
    return 0;
  }))(o));

  for (const [name, what] of [['decline', 'Decline a CA root waiting for a decision: remembered, no longer listed as waiting (reopen undoes it). Audited.'], ['reopen', 'Undo a decline: the CA root is listed as waiting again. Audited.']] as const) {
    const cmd = roots.command(name).description(what).argument('<fingerprint>', 'the root\'s SHA-256 fingerprint (see `certs roots`)');
    addStoreOptions(cmd).action(async (fingerprint: string, o: StoreCliOptions) => commandAction(`certs roots ${name}`, async (opts: StoreCliOptions) => withCertificateStore(opts, async (store) => {
      const m = await import('../../store/decide-unknown-root.ts');
      await (name === 'decline' ? m.declineUnknownRoot : m.reopenUnknownRoot)(store, fingerprint);
      printResult(opts, { status: 'ok', fingerprint, decision: name === 'decline' ? 'declined' : 'waiting' }, () => [`${name === 'decline' ? 'Declined' : 'Waiting again'}: ${fingerprint}`]);
      return 0;
    }))(o));
  }
}
