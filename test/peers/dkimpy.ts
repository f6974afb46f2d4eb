/**
 * dkimpy (Debian's python3-dkim), the independent DKIM verifier: its own
 * `dkimverify` entry point, run by Debian's python3 with dnspython's default
 * resolver pointed at the test's DNS server on loopback (test/helpers/dns-server.ts)
 * instead of /etc/resolv.conf. Nothing else of it is changed: it fetches the key
 * record over real DNS and verifies as it would for any mail.
 */
import { runPeer, requirePeer } from './run-peer.ts';
import type { DnsServer } from '../helpers/dns-server.ts';

const PYTHON = '/usr/bin/python3';

const WRAPPER = [
  'import sys, dns.resolver',
  'r = dns.resolver.Resolver(configure=False)',
  "r.nameservers = ['127.0.0.1']",
  'r.port = int(sys.argv[1])',
  'dns.resolver.default_resolver = r',
  "sys.argv = ['dkimverify'] + sys.argv[2:]",
  'from dkim.dkimverify import main',
  'main()',
].join('\n');

export interface DkimpyVerdict {
  ok: boolean;
  output: string;
}

/** dkimverify --index N on `message` (the N-th DKIM-Signature from the top, 0 first). */
export async function dkimpyVerify(message: Uint8Array, dns: DnsServer, index = 0): Promise<DkimpyVerdict> {
  requirePeer('dkimverify', 'python3-dkim');
  const r = await runPeer(PYTHON, ['-c', WRAPPER, String(dns.port), '--index', String(index)], { input: message, timeoutMs: 30_000 });
  const output = `${r.stdout.toString()}${r.stderr}`.trim();
  if (r.status !== 0 && r.status !== 1) throw new Error(`dkimverify failed to run (${r.status ?? r.signal}): ${output}`);
  return { ok: r.status === 0 && /signature ok/.test(output), output };
}
