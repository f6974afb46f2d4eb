/**
 * What the relay (src/smtp/relay-message.ts's RelayPool over relay-connection.ts, shared by
 * the submission port and the gateway) costs per message on its own: a 2 KB message signed
 * once by the library (P-256: 4.7 KB as relayed; the submission port's are 4.2 KB), relayed
 * over --connections pooled connections to the SMTP bench's sink (bench/smtp-load.ts sink, a
 * child process: PIPELINING and CHUNKING, so BDAT as to Postfix), one transaction after
 * another on each, for --rounds rounds of --seconds after a warm-up. Prints the CPU time of
 * this process per message per round (the relay's JavaScript, its two writes and two reads
 * a message); the sink's is its own. Compare builds by alternating runs (docs/performance.md,
 * "Session 16").
 *
 *   node bench/smtp-relay.ts [--connections=16] [--seconds=4] [--rounds=3] [--warmup=2]
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { signMessage } from '../src/smime/sign-message.ts';
import { RelayPool } from '../src/smtp/relay-message.ts';
import { TestPki } from '../test/helpers/pki.ts';
import { twoKilobyteEmail } from './messages.ts';

const arg = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const CONNECTIONS = arg('connections', 16);
const SECONDS = arg('seconds', 4);
const ROUNDS = arg('rounds', 3);
const WARMUP = arg('warmup', 2);

const id = new TestPki('Relay Bench Root').identity('p256', 'relay-bench');
const message = signMessage(twoKilobyteEmail(id.email), { signers: [{ certificate: id.cert, key: id.key }] });
const envelope = { from: id.email, to: ['recipient@example.org'] };

const dir = mkdtempSync(join(tmpdir(), 'kakitome-relay-bench-'));
const sink = fork(fileURLToPath(new URL('./smtp-load.ts', import.meta.url)), ['sink', `--dir=${dir}`, '--keep-every=1000000000'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const { port } = await new Promise<{ port: number }>((resolve) => sink.once('message', (m) => resolve(m as { port: number })));
const pool = new RelayPool({ nextHop: { host: '127.0.0.1', port }, name: 'relay-bench', maxIdle: CONNECTIONS });

/** Relays for `seconds` on CONNECTIONS transactions at a time; the messages the sink accepted. */
async function load(seconds: number): Promise<number> {
  let relayed = 0;
  const end = performance.now() + seconds * 1000;
  await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
    while (performance.now() < end) {
      const [outcome] = await pool.relay(envelope, message, 30_000);
      if (outcome!.status !== 'accepted') throw new Error(`relay-bench: the sink answered ${outcome!.response}`);
      relayed++;
    }
  }));
  return relayed;
}

await load(WARMUP);
const rounds: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const cpu = process.cpuUsage();
  const relayed = await load(SECONDS);
  const used = process.cpuUsage(cpu);
  rounds.push(Math.round(((used.user + used.system) / relayed) * 10) / 10);
}
process.stdout.write(`${JSON.stringify({ bytes: message.length, connections: CONNECTIONS, cpuMicrosPerMessage: rounds })}\n`);
pool.close();
sink.send('stop');
rmSync(dir, { recursive: true, force: true });
