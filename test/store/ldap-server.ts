/**
 * A throwaway OpenLDAP server (Debian's `slapd` package) on loopback for the LDAP
 * certificate-source tests: mdb backend, the core/cosine/inetorgperson schemas,
 * a root DN with a password, in a temporary directory.
 */
import { freePort, waitForPort } from '../helpers/free-port.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface LdapServer {
  url: string;
  baseDn: string;
  rootDn: string;
  password: string;
  stop(): Promise<void>;
}



export async function startSlapd(): Promise<LdapServer> {
  const slapd = ['/usr/sbin/slapd', '/usr/local/sbin/slapd'].find(existsSync);
  if (!slapd) throw new Error('slapd not found: install Debian\'s slapd package');
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-ldap-'));
  mkdirSync(join(dir, 'db'));
  const baseDn = 'dc=example,dc=com';
  const rootDn = `cn=admin,${baseDn}`;
  const password = 'ldap-test-secret';
  writeFileSync(join(dir, 'slapd.conf'), [
    'include /etc/ldap/schema/core.schema',
    'include /etc/ldap/schema/cosine.schema',
    'include /etc/ldap/schema/inetorgperson.schema',
    'modulepath /usr/lib/ldap',
    'moduleload back_mdb',
    `pidfile ${join(dir, 'slapd.pid')}`,
    'database mdb',
    'maxsize 10485760',
    `suffix "${baseDn}"`,
    `rootdn "${rootDn}"`,
    `rootpw ${password}`,
    `directory ${join(dir, 'db')}`,
    '',
  ].join('\n'));
  const port = await freePort();
  // -d 0 keeps slapd in the foreground, so the test owns the process.
  const child: ChildProcess = spawn(slapd, ['-f', join(dir, 'slapd.conf'), '-h', `ldap://127.0.0.1:${port}/`, '-d', '0'], { stdio: 'ignore' });
  await waitForPort(port, 30_000); // slapd on a loaded machine: a generous bound, it only delays a failure
  return {
    url: `ldap://127.0.0.1:${port}`,
    baseDn,
    rootDn,
    password,
    async stop() {
      await new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
