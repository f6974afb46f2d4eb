/**
 * What every store and CA command shares: where the store is (--home, or
 * KAKITOME_HOME; --database-url, or KAKITOME_DATABASE_URL for PostgreSQL), and how
 * a result is printed (--json: one JSON document on stdout; otherwise lines for a person).
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { KakitomeError } from '../../errors.ts';
import { resolveKakitomeHome, type MasterKey } from '../../keys/master-key.ts';
import type { Store, CertificateRecord, KeyRecord } from '../../store/store.ts';
import { isStdio } from '../io.ts';
import { resolvePassSpec } from '../pass-spec.ts';

export interface StoreCliOptions {
  home?: string;
  databaseUrl?: string;
  json?: boolean;
}

export function addStoreOptions(cmd: Command): Command {
  return cmd
    .option('--home <dir>', 'Kakitome home (default: $KAKITOME_HOME or ~/.kakitome)')
    .option('--database-url <url>', 'postgres://... to use PostgreSQL (default: $KAKITOME_DATABASE_URL, else SQLite in the home)')
    .option('--json', 'print one JSON document on standard output');
}

/**
 * The passphrase of a protected master key, asked for only when the key file is
 * protected: KAKITOME_MASTER_PASS_SPEC names where it is (a pass SPEC: file:PATH,
 * fd:N, env:VAR), else it is asked on the terminal. (A systemd credential
 * kakitome-master-pass is used before either; see keys/master-key.ts.)
 */
export function masterKeyPassphrase(): Promise<string> {
  return resolvePassSpec(process.env.KAKITOME_MASTER_PASS_SPEC || 'prompt', { stdinInUse: true, prompt: 'Kakitome master key passphrase: ' });
}

/** Opens the store for a store command, runs `fn`, closes it. `masterKey`: one the command already holds (init just made it). */
export function withStore<T>(opts: StoreCliOptions, fn: (store: Store) => Promise<T>, masterKey?: MasterKey): Promise<T> {
  return runWithStore(opts, { masterKeyPassphrase, ...(masterKey ? { masterKey } : {}) }, fn);
}

/**
 * Opens the store without its master key for a command that only reads or files
 * certificates (certs list, history, find, accept; expiring; keys list; ca revoke):
 * no master key file is read and no passphrase is asked for.
 */
export function withCertificateStore<T>(opts: StoreCliOptions, fn: (store: Store) => Promise<T>): Promise<T> {
  return runWithStore(opts, { withoutMasterKey: true }, fn);
}

async function runWithStore<T>(opts: StoreCliOptions, config: StoreConfig, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStoreLazily({ ...(opts.home ? { home: opts.home } : {}), ...(opts.databaseUrl ? { databaseUrl: opts.databaseUrl } : {}), actor: `cli:${process.env.USER ?? 'unknown'}`, ...config });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/**
 * The line saying which file --out wrote (`what`: "the root certificate"), so a
 * person sees where it went; none when it went to standard output, which the
 * written bytes fill (a line after them would end up in the file read from it).
 */
export function wroteLine(out: string | undefined, what: string): string[] {
  return out === undefined || isStdio(out) ? [] : [`Wrote ${what} to ${out}.`];
}

/**
 * Prints `data` as JSON with --json, else the text lines: on stdout, or on stderr when
 * the command wrote its data there (`-o -`: `kakitome ca crl -o - > ca.crl` must
 * leave the CRL alone in the file).
 */
export function printResult(opts: { json?: boolean; out?: string }, data: unknown, lines: () => string[]): void {
  const to = opts.out === '-' ? process.stderr : process.stdout;
  if (opts.json) to.write(`${JSON.stringify(data, null, 2)}\n`);
  else to.write(lines().map((l) => `${l}\n`).join(''));
}

export function certificateJson(r: CertificateRecord) {
  return {
    fingerprint: r.certificate.fingerprint256,
    subject: r.certificate.subjectText,
    issuer: r.certificate.issuerText,
    serial: r.certificate.serialHex,
    emails: r.emails,
    notBefore: r.certificate.notBefore.toISOString(),
    notAfter: r.certificate.notAfter.toISOString(),
    trust: r.trust,
    source: r.source,
    isCa: r.isCa,
    hasPrivateKey: r.hasPrivateKey,
    preferred: r.preferred,
    /** Per address: current (used to encrypt), pending (a new key awaiting `certs accept`), superseded (history). */
    filings: r.filings.map((f) => ({ email: f.email, filing: f.filing, preferred: f.preferred, filedAt: f.filedAt.toISOString() })),
    revoked: r.revokedAt ? { at: r.revokedAt.toISOString(), reason: r.revocationReason ?? 0 } : null,
  };
}

export function certificateLine(r: CertificateRecord): string {
  const filings = [...new Set(r.filings.map((f) => f.filing).filter((f) => f !== 'current'))];
  const flags = [r.trust, r.isCa ? 'CA' : '', r.hasPrivateKey ? 'key' : '', r.revokedAt ? 'REVOKED' : '', ...filings].filter(Boolean).join(',');
  return `${r.certificate.fingerprint256.slice(0, 16)}  ${r.certificate.notAfter.toISOString().slice(0, 10)}  [${flags}]  ${r.emails.join(' ') || r.certificate.subjectText}`;
}

export function keyJson(k: KeyRecord) {
  return { id: k.id, algorithm: k.algorithm, status: k.status, label: k.label ?? null, createdAt: k.createdAt.toISOString(), retiredAt: k.retiredAt?.toISOString() ?? null, certificates: k.certificates };
}

/** Where a message command finds the store: plain data, so it crosses into batch workers. */
export interface StoreLocation {
  home?: string;
  databaseUrl?: string;
  /**
   * The master key, opened once on the main thread (unlockMessageStore) before any
   * job or worker starts: KAKITOME_MASTER_KEY leaves the environment then, and a
   * passphrase is asked once, not once per worker. A KeyObject crosses into workers.
   * Absent: the store is opened without it (certificates and trust anchors only).
   */
  masterKey?: MasterKey;
}

/** --home and --database-url for sign, verify, encrypt and decrypt (their --json is their own). */
export function addStoreLocationOptions(cmd: Command): Command {
  return cmd
    .option('--home <dir>', 'key store home (default: $KAKITOME_HOME, else ~/.kakitome when it holds a store)')
    .option('--database-url <url>', 'postgres://... key store (default: $KAKITOME_DATABASE_URL)');
}

/**
 * The store a message command uses, if one is configured: PostgreSQL when a URL is
 * given (option or KAKITOME_DATABASE_URL), else the SQLite file of the home (--home,
 * KAKITOME_HOME, or ~/.kakitome) when it exists. A message command never creates a
 * store: a home named explicitly without a store is an error that says to run
 * `kakitome init`; the default home without one just means "no store".
 */
export function locateMessageStore(opts: { home?: string; databaseUrl?: string }, env: NodeJS.ProcessEnv = process.env): StoreLocation | undefined {
  const databaseUrl = opts.databaseUrl ?? env.KAKITOME_DATABASE_URL;
  if (databaseUrl) return { databaseUrl, ...(opts.home ? { home: opts.home } : {}) };
  const explicit = opts.home ?? (env.KAKITOME_HOME || undefined);
  const home = explicit ?? resolveKakitomeHome(env);
  if (existsSync(join(home, 'kakitome.db'))) return { home };
  if (explicit !== undefined) {
    throw new KakitomeError('INVALID_ARGUMENT', `No key store in ${home}: create one with \`kakitome init\` (KAKITOME_HOME=${home}), or unset KAKITOME_HOME / drop --home to work with files only.`);
  }
  return undefined;
}

/** Opens the master key of a located store, once, on the main thread (see StoreLocation.masterKey). */
export async function unlockMessageStore(location: StoreLocation): Promise<StoreLocation> {
  if (location.masterKey) return location;
  const { resolveMasterKey } = await import('../../store/open-store.ts');
  return { ...location, masterKey: await resolveMasterKey({ ...location, masterKeyPassphrase }) };
}

/**
 * Opens the located store for a message command (the audit log names the CLI user):
 * with the master key unlockMessageStore opened, else without one (verify, and
 * encrypt without --sign, read only certificates and trust anchors).
 */
export function openLocatedStore(location: StoreLocation): Promise<Store> {
  return openStoreLazily({ ...location, actor: `cli:${process.env.USER ?? 'unknown'}`, ...(location.masterKey ? {} : { withoutMasterKey: true }) });
}

type StoreConfig = NonNullable<Parameters<typeof import('../../store/open-store.ts').openStore>[0]>;

/** The store's modules (SQLite engine, migrations, sealing) load only when a command opens one. */
async function openStoreLazily(options: StoreConfig): Promise<Store> {
  return (await import('../../store/open-store.ts')).openStore(options);
}
