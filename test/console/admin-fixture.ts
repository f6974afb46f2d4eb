/**
 * A console server for the administration tests: a SQLite store with a clock the
 * test moves, the organisation's CA (`ca init`), its mail domain, and one signed-in
 * client per role (administrator, registration officer, auditor, helpdesk, and a
 * person without a role). Real sockets, real store, no browser.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import type { ConsoleRole } from '../../src/store/people-directory.ts';
import { initCertificateAuthority } from '../../src/ca/init-certificate-authority.ts';
import { startServer, type RunningServer } from '../../src/server/start-server.ts';
import type { ConsoleOptions } from '../../src/server/console/console-context.ts';
import type { ConsoleMailConfig } from '../../src/server/config.ts';
import { ConsoleClient, TEST_PASSWORD } from './console-client.ts';

export const ROLE_PEOPLE: Record<string, { email: string; roles: ConsoleRole[] }> = {
  admin: { email: 'admin@example.co.jp', roles: ['administrator'] },
  officer: { email: 'officer@example.co.jp', roles: ['registration-officer'] },
  auditor: { email: 'auditor@example.co.jp', roles: ['auditor'] },
  helpdesk: { email: 'helpdesk@example.co.jp', roles: ['helpdesk'] },
  user: { email: 'user@example.co.jp', roles: [] },
};

export interface AdminFixture {
  store: Store;
  server: RunningServer;
  /** Moves the store's clock (the server reads the same clock). */
  advance(ms: number): void;
  now(): Date;
  /** A client signed in as one of ROLE_PEOPLE, or anonymous. */
  client(role: keyof typeof ROLE_PEOPLE | 'anonymous'): Promise<ConsoleClient>;
  close(): Promise<void>;
}

/** `mail`: the console's mail relay (serve --mail-relay, --mail-from), e.g. a test SMTP sink. */
export async function startAdminFixture(o: ConsoleOptions = {}, serve: { mail?: ConsoleMailConfig } = {}): Promise<AdminFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-console-admin-'));
  let offset = 0;
  const clock = () => new Date(Date.now() + offset);
  const store = await Store.open(openSqliteEngine(join(dir, 'kakitome.db')), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'test', clock });
  await initCertificateAuthority(store, { name: 'Sample KK', organization: 'Sample KK', keyType: 'p256', crlUrl: 'http://pki.example.co.jp/smime.crl', rootCrlUrl: 'http://pki.example.co.jp/root.crl', ocspUrl: 'http://pki.example.co.jp/ocsp' });
  const server = await startServer(store, { host: '127.0.0.1', port: 0, maxMessageBytes: 1024 * 1024, shutdownGraceMs: 2000, revocation: 'allow-unknown', ...serve }, {
    log: () => undefined, version: 'test',
    console: { passwordHash: { memoryKiB: 1024, passes: 1, parallelism: 1 }, rates: { signInPerAddress: 1000, signInPerAccount: 1000 }, ...o },
  });
  await server.console.organisation.setDomains(['example.co.jp']);
  await server.console.organisation.setName('Sample KK');
  for (const p of Object.values(ROLE_PEOPLE)) await server.console.people.addPerson({ email: p.email, roles: p.roles, password: TEST_PASSWORD });
  const origin = server.console.origin.baseUrl;
  return {
    store, server,
    advance: (ms) => { offset += ms; },
    now: clock,
    async client(role) {
      const c = new ConsoleClient(() => ({ url: server.url, origin }));
      if (role !== 'anonymous') {
        const r = await c.signIn(ROLE_PEOPLE[role]!.email);
        if (r.status !== 303) throw new Error(`sign-in as ${role}: ${r.status}`);
      }
      return c;
    },
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
