/**
 * What the slow-client deadlines (src/smtp/client-deadlines.ts) cost per message: one
 * smtp-server listener set up like the gateway's (greetAtOnce, coalesceReplies) in this
 * process, a client here too sending MAIL, RCPT, DATA pipelined on --connections
 * connections, rounds alternating without and with enforceClientDeadlines (each pair
 * in turn order). Prints
 * process CPU µs per message per round (client and server together: the difference
 * is the deadlines' cost).
 *
 *   node bench/smtp-deadlines.ts [--messages=2000] [--rounds=3] [--connections=4]
 */
import { connect, type Socket } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { enforceClientDeadlines } from '../src/smtp/client-deadlines.ts';
import { greetAtOnce } from '../src/smtp/greet-at-once.ts';
import { readSmtpData } from '../src/smtp/read-smtp-data.ts';
import { coalesceReplies, listenSmtp } from '../src/smtp/smtp-listener.ts';

const arg = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const MESSAGES = arg('messages', 2000);
const ROUNDS = arg('rounds', 3);
const CONNECTIONS = arg('connections', 4);
const BODY = `From: a@example.com\r\nTo: b@example.com\r\nSubject: bench\r\n\r\n${'x'.repeat(2000)}\r\n.\r\n`;

async function round(deadlines: boolean): Promise<number> {
  const server = new SMTPServer({
    authOptional: true, disabledCommands: ['AUTH', 'STARTTLS'], disableReverseLookup: true, logger: false, closeTimeout: 100,
    onData(stream, _s, callback) {
      void readSmtpData(stream, 1 << 20).then(() => callback(null, 'ok'), (e: Error) => callback(e));
    },
  });
  coalesceReplies(server);
  greetAtOnce(server);
  if (deadlines) enforceClientDeadlines(server, () => ({ commandMs: 300_000, dataGraceMs: 300_000, minDataRate: 500, sessionMs: 1_800_000 }), () => {});
  const { port } = await listenSmtp(server, { host: '127.0.0.1', port: 0 });
  const per = Math.ceil(MESSAGES / CONNECTIONS);
  const cpu = process.cpuUsage();
  await Promise.all(Array.from({ length: CONNECTIONS }, () => new Promise<void>((resolve) => {
    const s: Socket = connect({ host: '127.0.0.1', port });
    let text = '';
    let sent = 0;
    let stage = 'greet';
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (stage === 'greet' && /^220 /m.test(text)) {
        text = '';
        stage = 'ehlo';
        s.write('EHLO bench\r\n');
      } else if (stage === 'ehlo' && /^250 /m.test(text)) {
        text = '';
        stage = 'data';
        s.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n');
      } else if (stage === 'data' && /^354 /m.test(text)) {
        text = '';
        stage = 'end';
        s.write(BODY);
      } else if (stage === 'end' && /^250 ok/m.test(text)) {
        text = '';
        if (++sent === per) {
          s.end('QUIT\r\n');
          return resolve();
        }
        stage = 'data';
        s.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n');
      }
    });
  })));
  const used = process.cpuUsage(cpu);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return (used.user + used.system) / (per * CONNECTIONS);
}

await round(false);
await round(true);
for (let i = 0; i < ROUNDS; i++) {
  // Which goes first alternates: the second of a pair runs after the first's garbage.
  let off: number;
  let on: number;
  if (i % 2 === 0) {
    off = await round(false);
    on = await round(true);
  } else {
    on = await round(true);
    off = await round(false);
  }
  console.log(JSON.stringify({ round: i + 1, withoutUsPerMessage: Math.round(off * 10) / 10, withUsPerMessage: Math.round(on * 10) / 10 }));
}
