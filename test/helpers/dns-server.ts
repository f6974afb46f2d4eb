/**
 * A real DNS server on loopback for the DKIM, SPF and DMARC tests: Debian's
 * dnsmasq (package dnsmasq-base), answering only from the records given (no
 * upstream, no /etc/hosts), authoritative-like for every name under the domains
 * given: a name it was not told about is NXDOMAIN, as in the real DNS.
 *
 * No resolver is mocked: the code under test gets a node:dns Resolver pointed at
 * this server, and dkimpy (the independent verifier) a dnspython resolver.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';

export interface DnsRecords {
  /** TXT records: owner name and text (cut into 255-byte strings here; no commas). */
  txt?: ReadonlyArray<readonly [string, string]>;
  /** A records: owner name and IPv4 address. */
  a?: ReadonlyArray<readonly [string, string]>;
  /** Zones answered locally (NXDOMAIN for unknown names), e.g. ['example.test']. */
  zones: readonly string[];
}

export interface DnsServer {
  host: string;
  port: number;
  /** "127.0.0.1:PORT", as `--dns-server` takes it. */
  address: string;
  /** Stops the server (DNS down); `start` brings it back on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
}

async function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function txtArgument(name: string, text: string): string {
  const strings: string[] = [];
  // dnsmasq takes the strings as they are (no quoting on its command line), separated by commas.
  if (text.includes(',')) throw new Error(`a TXT text for dnsmasq cannot hold a comma: ${text}`);
  for (let i = 0; i < text.length; i += 255) strings.push(text.slice(i, i + 255));
  return `--txt-record=${name},${strings.join(',')}`;
}

export async function startDnsServer(records: DnsRecords): Promise<DnsServer> {
  const port = await freeUdpPort();
  const args = [
    '--keep-in-foreground', '--conf-file=/dev/null', `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces',
    '--no-resolv', '--no-hosts', '--no-poll', '--pid-file=', '--log-facility=-',
    ...records.zones.map((z) => `--local=/${z}/`),
    ...(records.txt ?? []).map(([name, text]) => txtArgument(name, text)),
    ...(records.a ?? []).map(([name, ip]) => `--host-record=${name},${ip}`),
  ];
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn('dnsmasq', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const failed = new Promise<never>((_, reject) => child!.once('exit', (code) => reject(new Error(`dnsmasq exited (${code}): ${stderr}`))));
    failed.catch(() => undefined);
    // Ready once it answers.
    const probe = new Resolver({ timeout: 200, tries: 1 });
    probe.setServers([`127.0.0.1:${port}`]);
    for (let i = 0; i < 50; i++) {
      const answered = await Promise.race([probe.resolveTxt(`ready.${records.zones[0]}`).then(() => true, (e: NodeJS.ErrnoException) => e.code === 'ENOTFOUND' || e.code === 'ENODATA'), failed]);
      if (answered) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`dnsmasq did not answer on 127.0.0.1:${port}: ${stderr}`);
  };
  await start();
  return {
    host: '127.0.0.1',
    port,
    address: `127.0.0.1:${port}`,
    async stop() {
      const c = child;
      if (!c || c.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        c.once('exit', () => resolve());
        c.kill('SIGTERM');
      });
    },
    start,
  };
}

/** A node:dns Resolver that asks only `server`. */
export function resolverFor(server: DnsServer): Resolver {
  const r = new Resolver({ timeout: 1000, tries: 1 });
  r.setServers([server.address]);
  return r;
}
