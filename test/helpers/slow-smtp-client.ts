/**
 * A raw SMTP peer over TCP for the slow-client tests (client-deadlines, the gateway's
 * and the submission port's): what it received, when it was closed, and a sender of
 * bytes one at a time.
 */
import { connect, type Socket } from 'node:net';

export interface RawPeer {
  socket: Socket;
  /** Everything received so far (latin1). */
  text(): string;
  /** Resolves with the milliseconds from connecting to the close. */
  closed: Promise<number>;
  waitFor(re: RegExp, ms?: number): Promise<void>;
}

export function rawPeer(port: number): RawPeer {
  const started = performance.now();
  const socket = connect({ host: '127.0.0.1', port });
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  socket.on('error', () => {});
  return {
    socket, text: () => text,
    closed: new Promise((resolve) => socket.once('close', () => resolve(performance.now() - started))),
    waitFor: (re, ms = 8000) => new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${re} in ${JSON.stringify(text)}`)), ms);
      const check = () => {
        if (!re.test(text)) return;
        clearTimeout(t);
        socket.off('data', check);
        resolve();
      };
      socket.on('data', check);
      check();
    }),
  };
}

/** Sends `text` one byte every `everyMs` while the socket is writable. */
export async function trickle(socket: Socket, text: string, everyMs: number): Promise<void> {
  for (const byte of Buffer.from(text, 'latin1')) {
    if (socket.destroyed || !socket.writable) return;
    socket.write(Buffer.of(byte));
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
