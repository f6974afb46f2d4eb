/**
 * A plain SMTP client for tests that need commands nodemailer will not write
 * (XFORWARD as Postfix sends it, different DSN parameters per recipient, malformed
 * ones): one command at a time, each reply read whole (multi-line), the message
 * given as one command (latin1, dot-stuffed, ending in CRLF and ".").
 */
import { connect } from 'node:net';

/** Connects to `port`, reads the greeting, sends `commands` one by one; resolves with the replies (the greeting first; their last lines), also when the server closes early. */
export function smtpDialogue(port: number, commands: readonly string[]): Promise<Array<{ code: number; text: string }>> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const replies: Array<{ code: number; text: string }> = [];
    let buffered = '';
    let next = 0;
    socket.setTimeout(30_000, () => socket.destroy(new Error('timeout')));
    socket.on('error', reject);
    socket.on('close', () => resolve(replies));
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      let nl: number;
      while ((nl = buffered.indexOf('\r\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 2);
        if (line[3] === '-') continue;
        replies.push({ code: Number(line.slice(0, 3)), text: line });
        if (next < commands.length) socket.write(Buffer.from(`${commands[next++]}\r\n`, 'latin1'));
        else socket.end();
      }
    });
  });
}
