/**
 * `kakitome keys import|export|list|retire|purge`: private keys in the store.
 * Export happens only on this explicit request and is audited with --reason.
 */
import { Option, type Command } from 'commander';
import { KakitomeError } from '../../errors.ts';
import { readFileBounded, writeOutput } from '../io.ts';
import { resolveNewPassphrase, resolvePassSpec } from '../pass-spec.ts';
import { commandAction } from './message-options.ts';
import { addStoreOptions, keyJson, printResult, withStore, wroteLine, type StoreCliOptions } from './store-options.ts';

interface ImportOpts extends StoreCliOptions { key?: string; cert?: string; p12?: string; pass?: string; label?: string }
interface ExportOpts extends StoreCliOptions { id: string; out?: string; format: 'p12' | 'pem'; pass?: string; legacy?: boolean; unencrypted?: boolean; reason: string }
interface RetireOpts extends StoreCliOptions { id: string; reason?: string }
interface PurgeOpts extends StoreCliOptions { id: string; confirm: string; reason: string }

export function register(program: Command): void {
  const keys = program.command('keys').summary('private keys in the store: import, export, list, retire, purge');

  const imp = keys.command('import').description('Import a private key with its certificate (--key and --cert), or a PKCS#12 file (--p12). The key is sealed under the master key.')
    .option('--key <file>', 'private key, PEM or DER')
    .option('--cert <file>', 'its certificate (PEM bundle: the first is the key\'s, the rest are imported as chain)')
    .option('--p12 <file>', 'PKCS#12 file (.p12/.pfx)')
    .option('--pass <spec>', 'passphrase of the key or .p12: file:PATH, fd:N, env:VAR, stdin or prompt')
    .option('--label <text>', 'a label for the key');
  addStoreOptions(imp).action(commandAction('keys import', async (o: ImportOpts) => {
    const pass = o.pass === undefined ? undefined : await resolvePassSpec(o.pass);
    return withStore(o, async (store) => {
      if (o.p12) {
        const { importCertificateFile } = await import('../../store/import-certificate-file.ts');
        const r = await importCertificateFile(store, await readFileBounded(o.p12, `--p12 ${o.p12}`), { password: pass ?? '', source: o.p12 });
        if (!r.key) throw new KakitomeError('KEY_INVALID', `${o.p12} holds no private key.`);
        printResult(o, { status: 'ok', key: keyJson(r.key) }, () => [`Imported key ${r.key!.id} with ${r.certificates.length} certificate(s).`]);
        return 0;
      }
      if (!o.key || !o.cert) throw new KakitomeError('INVALID_ARGUMENT', 'Give --key and --cert, or --p12.');
      const [{ loadPrivateKey }, { parseCertificates }, { spkiDigest }] = await Promise.all([import('../../keys/private-key.ts'), import('../../x509/certificate.ts'), import('../../store/store.ts')]);
      const key = loadPrivateKey(await readFileBounded(o.key, `--key ${o.key}`), pass);
      const certs = parseCertificates(await readFileBounded(o.cert, `--cert ${o.cert}`));
      const own = certs.filter((c) => spkiDigest(c.spki) === spkiDigest(key));
      if (!own.length) throw new KakitomeError('KEY_INVALID', 'The key matches none of the certificates given.');
      const rec = await store.importPrivateKey(key, { certificates: own, source: o.key, ...(o.label ? { label: o.label } : {}) });
      for (const c of certs.filter((c) => !own.includes(c))) await store.importCertificate(c, { source: o.cert });
      printResult(o, { status: 'ok', key: keyJson(rec) }, () => [`Imported key ${rec.id} (${rec.algorithm}).`]);
      return 0;
    });
  }));

  const exp = keys.command('export').description('Export a private key (PKCS#12 by default, or encrypted PKCS#8 PEM) on explicit request; audited with the reason.')
    .requiredOption('--id <key-id>', 'key id (see `keys list`)')
    .requiredOption('--reason <text>', 'why the key leaves the store (recorded in the audit log)')
    .addOption(new Option('--format <f>', 'output format').choices(['p12', 'pem']).default('p12'))
    .option('--pass <spec>', 'password protecting the exported key (required, never empty): prompt (asked twice), file:PATH, fd:N or env:VAR')
    .option('--unencrypted', 'with --format pem and without --pass: write the key in the clear (anyone who reads the file has the key)')
    .option('--legacy', 'PKCS#12 with 3DES and a SHA-1 MAC, for Windows before 10 1709, older iOS and gpgsm 2.2')
    .option('-o, --out <file>', 'output file (default: standard output)');
  addStoreOptions(exp).action(commandAction('keys export', async (o: ExportOpts) => {
    if (o.unencrypted && (o.format !== 'pem' || o.pass !== undefined)) throw new KakitomeError('INVALID_ARGUMENT', '--unencrypted goes with --format pem and without --pass.');
    if (o.pass === undefined && !o.unencrypted) {
      throw new KakitomeError('INVALID_ARGUMENT', o.format === 'p12' ? 'A PKCS#12 export needs --pass SPEC (file:PATH, fd:N, env:VAR or prompt).' : 'A PEM export is encrypted: give --pass SPEC, or --unencrypted to write the key in the clear.');
    }
    const pass = o.pass === undefined ? undefined : await resolveNewPassphrase(o.pass, 'Passphrase for the exported key: ');
    return withStore(o, async (store) => {
      const rec = await store.findKey(o.id);
      if (!rec) throw new KakitomeError('INVALID_ARGUMENT', `No key ${o.id}.`);
      const key = await store.exportPrivateKey(o.id, o.reason);
      if (o.format === 'pem') {
        const { exportPrivateKeyPem } = await import('../../keys/export-private-key-pem.ts');
        await writeOutput(o.out, Buffer.from(exportPrivateKeyPem(key, pass === undefined ? { unencrypted: true } : { passphrase: pass })));
      } else {
        const certFp = rec.certificates.at(-1);
        const cert = certFp ? await store.findCertificateByFingerprint(certFp) : undefined;
        if (!cert) throw new KakitomeError('INVALID_ARGUMENT', 'This key has no certificate; export it with --format pem.');
        const chain = await store.findIssuerChain(cert.certificate);
        const { exportPkcs12 } = await import('../../keys/export-pkcs12.ts');
        await writeOutput(o.out, exportPkcs12({ key, certificate: cert.certificate, chain, password: pass!, profile: o.legacy ? 'legacy' : 'modern', ...(rec.label ? { friendlyName: rec.label } : {}) }));
      }
      if (o.out) printResult(o, { status: 'ok', id: o.id, out: o.out }, () => wroteLine(o.out, `key ${o.id} (${o.format === 'pem' ? (pass === undefined ? 'PEM, unencrypted' : 'PEM, encrypted') : 'PKCS#12'})`));
      return 0;
    });
  }));

  const list = keys.command('list').description('List stored keys (active and retired).');
  addStoreOptions(list).action(commandAction('keys list', async (o: StoreCliOptions) => withStore(o, async (store) => {
    const all = await store.listKeys();
    printResult(o, { keys: all.map(keyJson) }, () => all.map((k) => `${k.id}  ${k.status.padEnd(7)}  ${k.algorithm.padEnd(8)}  ${k.label ?? ''}`));
    return 0;
  })));

  const retire = keys.command('retire').description('Retire a key: it no longer signs or is offered for new mail, but still decrypts old mail. Nothing is deleted.')
    .requiredOption('--id <key-id>', 'key id').option('--reason <text>', 'recorded in the audit log');
  addStoreOptions(retire).action(commandAction('keys retire', async (o: RetireOpts) => withStore(o, async (store) => {
    const k = await store.retirePrivateKey(o.id, o.reason ?? 'retired from the command line');
    printResult(o, { status: 'ok', key: keyJson(k) }, () => [`Key ${k.id} is ${k.status}.`]);
    return 0;
  })));

  const purge = keys.command('purge').description('Destroy a key for good: mail encrypted to it becomes unreadable. Audited.')
    .requiredOption('--id <key-id>', 'key id').requiredOption('--confirm <key-id>', 'the key id again').requiredOption('--reason <text>', 'recorded in the audit log');
  addStoreOptions(purge).action(commandAction('keys purge', async (o: PurgeOpts) => withStore(o, async (store) => {
    await store.purgePrivateKey(o.id, { confirmId: o.confirm, reason: o.reason });
    printResult(o, { status: 'ok', purged: o.id }, () => [`Key ${o.id} destroyed.`]);
    return 0;
  })));
}
