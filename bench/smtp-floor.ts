/**
 * The floor under the SMTP submission port (bench/serve-sign.ts --floor, SMTP
 * rounds): what smtp-server, our relay client and the library's signing cost per
 * message under the same client and sink, with nothing of the service around them.
 * Serving threads as `kakitome serve` has them (one per CPU unless --threads), each
 * an smtp-server on the shared port (SO_REUSEPORT) set up as the submission port's
 * (start-submission.ts: AUTH PLAIN required, no STARTTLS, the same size bound, its
 * replies coalesced by smtp-listener.ts), reading DATA with read-smtp-data.ts and
 * relaying with a RelayPool (src/smtp/relay-message.ts, our relay-connection.ts) to
 * `--relay`:
 *
 * - `--mode=sign`: each message signed by the library exactly as the service signs
 *   it (splitMessage, then signSplitMessage: multipart/signed, the key's digest, the
 *   signer's certificate and `--chain`), with `--key` and `--cert` (PEM), then relayed;
 * - `--mode=bare`: no signing: the first message is signed once and that signed copy
 *   relayed for every message, so the relay and the sink carry the same bytes as in
 *   the signing mode.
 *
 * AUTH checks the username and password against `--user` and `--pass` (a string
 * comparison: no API key, tenant, rate limit, From rules, audit row, log line or
 * counters). The service's CPU per message minus the signing mode's is what its own
 * path adds. Prints `{"port": N}` on standard output once every thread listens;
 * SIGTERM stops it.
 *
 *   node bench/smtp-floor.ts --mode=sign --key=k.pem --cert=c.pem --chain=ca.pem --relay=127.0.0.1:2525 --user=bench --pass=KEY [--threads=2]
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { createPrivateKey } from 'node:crypto';
import { isMainThread, workerData, parentPort } from 'node:worker_threads';
import { startFloorThreads } from './harness/floor-threads.ts';
import { SMTPServer } from 'smtp-server';
import { DEFAULT_LIMITS } from '../src/limits.ts';
import { signSplitMessage } from '../src/smime/sign-message.ts';
import { splitMessage } from '../src/smime/split-message.ts';
import { parseCertificate } from '../src/x509/certificate.ts';
import { parseHostPort } from '../src/smtp/parse-host-port.ts';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../src/server/config.ts';
import { DEFAULT_RELAY_TIMEOUT_MS } from '../src/server/smtp/submission-config.ts';
import { readSmtpData, smtpError } from '../src/smtp/read-smtp-data.ts';
import { RelayPool } from '../src/smtp/relay-message.ts';
import { replyForMessage } from '../src/smtp/reply-for-outcomes.ts';
import { coalesceReplies, listenSmtp } from '../src/smtp/smtp-listener.ts';

interface FloorOptions {
  mode: 'bare' | 'sign';
  key: string;
  cert: string;
  chain?: string;
  relay: string;
  user: string;
  pass: string;
  port: number;
}

/** As `kakitome serve --smtp` bounds them by default (submission-config.ts, config.ts). */
const MAX_MESSAGE_BYTES = DEFAULT_MAX_MESSAGE_BYTES;
const MAX_CLIENTS = 200;
const MAX_RECIPIENTS = 1000;

async function serve(o: FloorOptions): Promise<number> {
  const certificate = parseCertificate(readFileSync(o.cert));
  const key = createPrivateKey(readFileSync(o.key));
  const certificates = [certificate, ...(o.chain ? [parseCertificate(readFileSync(o.chain))] : [])];
  const signOnce = (message: Buffer) => signSplitMessage(splitMessage(message, DEFAULT_LIMITS), { signers: [{ certificate, key }], certificates, opaque: false });
  let signedOnce: Buffer | undefined;
  const sign = o.mode === 'sign' ? signOnce : (message: Buffer) => (signedOnce ??= signOnce(message));
  const name = hostname();
  const relayPool = new RelayPool({ nextHop: parseHostPort('--relay', o.relay), name, maxIdle: MAX_CLIENTS });
  const server = new SMTPServer({
    name,
    banner: 'floor',
    authMethods: ['PLAIN', 'LOGIN'],
    authOptional: false,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    disableReverseLookup: true,
    hideDSN: false,
    size: MAX_MESSAGE_BYTES,
    rejectOversized: true,
    maxClients: MAX_CLIENTS,
    maxRecipients: MAX_RECIPIENTS,
    maxAllowedUnauthenticatedCommands: 6,
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === o.user && auth.password === o.pass) callback(null, { user: o.user });
      else callback(Object.assign(new Error('5.7.8 Authentication credentials invalid'), { responseCode: 535 }));
    },
    onData(stream, session, callback) {
      const envelope = { from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address) };
      readSmtpData(stream, MAX_MESSAGE_BYTES)
        .then(async (message) => {
          if (message === undefined) return callback(smtpError(552, '5.3.4', 'too large'));
          const reply = replyForMessage(await relayPool.relay(envelope, sign(message), DEFAULT_RELAY_TIMEOUT_MS));
          if (reply.code < 300) callback(null, `${reply.enhanced} ${reply.text}`);
          else callback(smtpError(reply.code, reply.enhanced, reply.text));
        })
        .catch((e: Error) => callback(smtpError(451, '4.3.0', e.message)));
    },
  });
  coalesceReplies(server);
  const listening = await listenSmtp(server, { host: '127.0.0.1', port: o.port }, true);
  return listening.port;
}

if (isMainThread) {
  const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const need = (name: string) => arg(name) ?? (() => { throw new Error(`smtp-floor: --${name}= is missing`); })();
  const o: FloorOptions = { mode: arg('mode') === 'sign' ? 'sign' : 'bare', key: need('key'), cert: need('cert'), chain: arg('chain'), relay: need('relay'), user: need('user'), pass: need('pass'), port: 0 };
  await startFloorThreads(new URL(import.meta.url), o, arg('threads') === undefined ? undefined : Number(arg('threads')));
} else {
  parentPort!.postMessage(await serve(workerData as FloorOptions));
}
