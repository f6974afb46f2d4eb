/**
 * A private Postfix (Debian's package) on loopback for the gateway tests, set up as
 * /work/shared/postfix-notes.md describes: its own config, queue and data
 * directories in a temporary folder, nothing under /etc/postfix used; every service
 * non-chrooted; fast retries. It receives on `smtpPort`, hands every message to the
 * content filter (the gateway) as docs/gateway.md tells administrators to, takes it
 * back on `reinjectPort`, and relays it to `relayPort` (the test's sink).
 * Needs root (Postfix's queue is owned by root and its daemons drop to `postfix`).
 */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { requirePeer, runPeer, runPeerOk } from '../peers/run-peer.ts';
import { waitForPort } from '../helpers/free-port.ts';

export const POSTFIX = '/usr/sbin/postfix';

export { freePort, waitForPort } from '../helpers/free-port.ts';


export interface PostfixOptions {
  smtpPort: number;
  reinjectPort: number;
  relayPort: number;
  /** The gateway's --listen; absent: no content filter (Postfix relays what it receives, e.g. from the signing service's submission port). */
  filterPort?: number;
  /** Content filter over LMTP (per-recipient replies) instead of SMTP. */
  lmtp?: boolean;
  /**
   * A second listener configured like `smtpPort` but without the content filter: the
   * same Postfix relaying without the filter (bench/gateway.ts's baseline), rather than
   * the reinjection listener, whose settings are the filter path's own.
   */
  noFilterPort?: number;
  /**
   * The gateway as Postfix's before-queue content filter (SMTPD_PROXY_README) instead:
   * `smtpPort`'s smtpd proxies each client session to `filterPort`
   * (`smtpd_proxy_filter`), nothing is queued before the gateway, and the reinjection
   * listener is docs/gateway.md's after-filter one. `lmtp` does not apply.
   */
  beforeQueue?: boolean;
  /** Before-queue only: without `smtpd_proxy_options=speed_adjust` (Postfix connects to the gateway at MAIL FROM, not once the whole message is in). */
  noSpeedAdjust?: boolean;
  /** Before-queue only: `smtpd_proxy_timeout` in seconds instead of docs/gateway.md's 300. */
  proxyTimeoutSeconds?: number;
  /**
   * How long an idle cached connection is kept (`smtp_`/`lmtp_connection_cache_time_limit`,
   * bounded by `connection_cache_ttl_limit`) instead of Postfix's 2 s: a loaded machine can
   * put more than 2 s between two messages sent one after the other.
   */
  connectionCacheSeconds?: number;
}

/** The listener the gateway relays to, in both designs: no restriction lists but one, only the host itself may inject and send XFORWARD. */
const INJECT_FROM_LOOPBACK_ONLY = [
  '  -o smtpd_helo_restrictions=',
  '  -o smtpd_client_restrictions=',
  '  -o smtpd_sender_restrictions=',
  '  -o smtpd_recipient_restrictions=permit_mynetworks,reject',
  '  -o smtpd_relay_restrictions=permit_mynetworks,reject',
  '  -o smtpd_data_restrictions=',
  '  -o mynetworks=127.0.0.0/8',
  '  -o smtpd_authorized_xforward_hosts=127.0.0.0/8',
];

/** The master.cf lines docs/gateway.md gives (filter transport and reinjection listener), with ports filled in. */
export function gatewayMasterCf(o: { reinjectPort: number; lmtp?: boolean }): string {
  const client = o.lmtp ? 'lmtp' : 'smtp';
  return [
    `kakitome  unix  -       -       n       -       10      ${client}`,
    `  -o ${client}_send_xforward_command=yes`,
    `  -o disable_mime_output_conversion=yes`,
    `  -o ${client}_generic_maps=`,
    `127.0.0.1:${o.reinjectPort} inet n  -       n       -       10      smtpd`,
    '  -o content_filter=',
    '  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters',
    '  -o local_header_rewrite_clients=',
    ...INJECT_FROM_LOOPBACK_ONLY,
  ].join('\n');
}

/**
 * docs/gateway.md's before-queue lines: the `-o` lines of the listener clients submit
 * to, and the after-filter listener the gateway relays to. Postfix's smtpd queues the
 * message only when the gateway's end-of-DATA reply is 250.
 */
export function beforeQueueMasterCf(o: { filterPort: number; reinjectPort: number; noSpeedAdjust?: boolean; proxyTimeoutSeconds?: number }): { proxy: string[]; afterFilter: string } {
  return {
    proxy: [
      `  -o smtpd_proxy_filter=127.0.0.1:${o.filterPort}`,
      ...(o.noSpeedAdjust ? [] : ['  -o smtpd_proxy_options=speed_adjust']),
      `  -o smtpd_proxy_timeout=${o.proxyTimeoutSeconds ?? 300}s`,
      '  -o content_filter=',
    ],
    afterFilter: [
      `127.0.0.1:${o.reinjectPort} inet n  -       n       -       -       smtpd`,
      '  -o content_filter=',
      '  -o smtpd_proxy_filter=',
      '  -o receive_override_options=no_unknown_recipient_checks',
      ...INJECT_FROM_LOOPBACK_ONLY,
    ].join('\n'),
  };
}

export class PostfixInstance {
  readonly dir: string;
  readonly conf: string;
  readonly options: PostfixOptions;

  constructor(options: PostfixOptions) {
    requirePeer(POSTFIX, 'postfix');
    if (process.getuid?.() !== 0) throw new Error('The Postfix tests need root (Postfix owns its queue as root); CI runs as root.');
    this.options = options;
    this.dir = mkdtempSync(join(tmpdir(), 'kakitome-postfix-'));
    chmodSync(this.dir, 0o755);
    this.conf = join(this.dir, 'conf');
    const queue = join(this.dir, 'queue');
    const data = join(this.dir, 'data');
    mkdirSync(this.conf);
    mkdirSync(queue, { mode: 0o755 });
    mkdirSync(data, { mode: 0o700 });
    const uid = Number(execFileSync('id', ['-u', 'postfix']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postfix']).toString().trim());
    chownSync(data, uid, gid);
    const filter = options.filterPort === undefined || options.beforeQueue ? undefined : options.lmtp ? `kakitome:inet:127.0.0.1:${options.filterPort}` : `kakitome:[127.0.0.1]:${options.filterPort}`;
    writeFileSync(join(this.conf, 'main.cf'), [
      'compatibility_level = 3.6',
      `queue_directory = ${queue}`,
      `data_directory = ${data}`,
      'mail_owner = postfix',
      'setgid_group = postdrop',
      'myhostname = mx.corp.test',
      'inet_interfaces = 127.0.0.1',
      'inet_protocols = ipv4',
      'mynetworks = 127.0.0.0/8',
      'mydestination =',
      'local_transport = error:no local delivery',
      `relayhost = [127.0.0.1]:${options.relayPort}`,
      'smtp_dns_support_level = disabled',
      'smtp_tls_security_level = none',
      'smtpd_tls_security_level = none',
      ...(filter ? [`content_filter = ${filter}`] : []),
      'smtp_connection_cache_destinations = 127.0.0.1',
      // The same for the LMTP filter transport (docs/gateway.md): without it Postfix caches only under backlog.
      ...(options.lmtp ? ['lmtp_connection_cache_destinations = 127.0.0.1'] : []),
      ...(options.connectionCacheSeconds ? [`smtp_connection_cache_time_limit = ${options.connectionCacheSeconds}s`, `lmtp_connection_cache_time_limit = ${options.connectionCacheSeconds}s`, `connection_cache_ttl_limit = ${options.connectionCacheSeconds}s`] : []),
      'queue_run_delay = 1s',
      'minimal_backoff_time = 1s',
      'maximal_backoff_time = 5s',
      'in_flow_delay = 0',
      `maillog_file = ${join(this.dir, 'maillog')}`,
      `maillog_file_prefixes = ${this.dir}`,
      'smtputf8_enable = no',
      // delays=a/b/c/d to the microsecond (the default rounds to 10 ms): bench/gateway.ts reads it.
      'delay_logging_resolution_limit = 6',
      '',
    ].join('\n'));
    const services = readFileSync('/usr/share/postfix/master.cf.dist', 'utf8')
      .split('\n')
      .filter((l) => /^[a-z]/.test(l) && !/^(smtp\s+inet|maildrop|uucp|ifmail|bsmtp|scalemail|mailman)/.test(l))
      // Column 5 (chroot) = n: nothing has to be copied into the spool.
      .map((l) => { const c = l.split(/\s+/); c[4] = 'n'; return c.join('  '); });
    const proxy = options.beforeQueue && options.filterPort !== undefined ? beforeQueueMasterCf({ ...options, filterPort: options.filterPort }) : undefined;
    writeFileSync(join(this.conf, 'master.cf'), [
      `127.0.0.1:${options.smtpPort} inet n - n - - smtpd`,
      ...(proxy ? proxy.proxy : []),
      ...(options.noFilterPort === undefined ? [] : [`127.0.0.1:${options.noFilterPort} inet n - n - - smtpd`, '  -o content_filter=']),
      ...services,
      proxy ? proxy.afterFilter : gatewayMasterCf(options),
      '',
    ].join('\n'));
  }

  async start(): Promise<void> {
    const r = await runPeer(POSTFIX, ['-c', this.conf, 'start']);
    try {
      if (r.status !== 0) throw new Error(`postfix start: exit ${r.status}`);
      await waitForPort(this.options.smtpPort);
      await waitForPort(this.options.reinjectPort);
      if (this.options.noFilterPort !== undefined) await waitForPort(this.options.noFilterPort);
    } catch (e) {
      // Without a terminal Postfix prints its configuration errors nowhere: ask `postfix check` (slow, so only now).
      const check = await runPeer('script', ['-qec', `${POSTFIX} -c ${this.conf} check`, '/dev/null']);
      throw new Error(`${(e as Error).message}\npostfix check: ${check.stdout.toString()}${check.stderr}\n${r.stderr}`);
    }
  }

  /**
   * Sets a main.cf parameter (or removes it: `value` undefined, back to Postfix's
   * default) and reloads: daemons started afterwards use it, running ones finish
   * their session with the old one.
   */
  async setParameter(name: string, value?: string): Promise<void> {
    await runPeerOk('/usr/sbin/postconf', ['-c', this.conf, ...(value === undefined ? ['-X', name] : ['-e', `${name}=${value}`])]);
    await runPeerOk(POSTFIX, ['-c', this.conf, 'reload']);
  }

  /** Retries every deferred message now. */
  async flush(): Promise<void> {
    await runPeer('/usr/sbin/postqueue', ['-c', this.conf, '-f']);
  }

  /**
   * Queue ids still in Postfix's queue; with `senders`, only messages from one of them.
   * Postfix writes notices of its own into the queue (its postmaster's "resource" notice
   * while the queue is full, with the null sender or with double-bounce@ as smtpd's
   * transcripts have: CI saw both), so a test counts its own messages by their senders.
   */
  async queued(options: { senders?: readonly string[] } = {}): Promise<number> {
    const r = await runPeer('/usr/sbin/postqueue', ['-c', this.conf, '-j']);
    const entries = r.stdout.toString().split('\n').filter((l) => l.trim().startsWith('{')).map((l) => JSON.parse(l) as { sender?: string });
    const senders = options.senders?.map((s) => s.toLowerCase());
    return senders ? entries.filter((e) => senders.includes((e.sender ?? '').toLowerCase())).length : entries.length;
  }

  /** The master process's id (its pid file in the queue directory), once started. */
  masterPid(): number {
    return Number(readFileSync(join(this.dir, 'queue', 'pid', 'master.pid'), 'latin1').trim());
  }

  log(): string {
    const p = join(this.dir, 'maillog');
    return existsSync(p) ? readFileSync(p, 'utf8') : '';
  }

  async stop(): Promise<void> {
    await runPeer(POSTFIX, ['-c', this.conf, 'stop']);
    rmSync(this.dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  }
}
