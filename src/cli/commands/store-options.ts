/**
 * What every store and CA command shares: where the store is (--home, or
 * KAKITOME_HOME; --database-url, or KAKITOME_DATABASE_URL for PostgreSQL), and how
 * a result is printed (--json: one JSON document on stdout; otherwise lines for a person).
 */
import type { Command } from 'commander';
import { openStore } from '../../store/open-store.ts';
import type { Store, CertificateRecord, KeyRecord } from '../../store/store.ts';

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

export async function withStore<T>(opts: StoreCliOptions, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore({ ...(opts.home ? { home: opts.home } : {}), ...(opts.databaseUrl ? { databaseUrl: opts.databaseUrl } : {}), actor: `cli:${process.env.USER ?? 'unknown'}` });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** Prints `data` as JSON with --json, else the text lines. */
export function printResult(opts: { json?: boolean }, data: unknown, lines: () => string[]): void {
  if (opts.json) process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
  else process.stdout.write(lines().map((l) => `${l}\n`).join(''));
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
    revoked: r.revokedAt ? { at: r.revokedAt.toISOString(), reason: r.revocationReason ?? 0 } : null,
  };
}

export function certificateLine(r: CertificateRecord): string {
  const flags = [r.trust, r.isCa ? 'CA' : '', r.hasPrivateKey ? 'key' : '', r.revokedAt ? 'REVOKED' : ''].filter(Boolean).join(',');
  return `${r.certificate.fingerprint256.slice(0, 16)}  ${r.certificate.notAfter.toISOString().slice(0, 10)}  [${flags}]  ${r.emails.join(' ') || r.certificate.subjectText}`;
}

export function keyJson(k: KeyRecord) {
  return { id: k.id, algorithm: k.algorithm, status: k.status, label: k.label ?? null, createdAt: k.createdAt.toISOString(), retiredAt: k.retiredAt?.toISOString() ?? null, certificates: k.certificates };
}
