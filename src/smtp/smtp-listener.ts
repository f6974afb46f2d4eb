/**
 * Starting and stopping an smtp-server listener, as the gateway and the
 * submission port both do: listen (an address in use is an error, not a crash
 * later), and at stop tell the connections idle between messages to go away (421)
 * once the messages in flight have their replies.
 */
import type { AddressInfo, Socket } from 'node:net';
import type { SMTPServer } from 'smtp-server';
import type { HostPort } from './parse-host-port.ts';

/**
 * Listens on `at` (port 0: any free port) and resolves with the bound address.
 * `reusePort`: several listeners (serving threads) share the port (SO_REUSEPORT).
 */
export async function listenSmtp(server: SMTPServer, at: HostPort, reusePort = false): Promise<HostPort> {
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.server.listen({ port: at.port, host: at.host, ...(reusePort ? { reusePort: true } : {}) }, () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const bound = server.server.address() as AddressInfo;
  return { host: bound.address, port: bound.port };
}

/** Says 421 to every connection still open and closes it (call once the messages in flight are answered). */
export function dismissSmtpConnections(server: SMTPServer, text: string): void {
  for (const connection of (server as unknown as { connections: Set<{ send(code: number, text: string): void; close(): void }> }).connections) {
    connection.send(421, text);
    connection.close();
  }
}

/**
 * Replies written within two turns of the event loop leave in one write: the socket
 * is corked at the first reply and uncorked at the check phase of the turn after
 * next (setImmediate twice). smtp-server writes every reply on its own, so a client
 * that pipelines MAIL, RCPT and DATA (RFC 2920) got three writes, each a system call
 * that on loopback also runs the receiver's TCP input; and it goes on to the command
 * after an asynchronous handler's answer (onMailFrom) with setImmediate, so one turn
 * was not enough to catch the RCPT reply after MAIL's (measured: 4.0 writes per
 * message with a pipelining client, 3.0 corked for one turn, 2.0 for two). The
 * socket is wrapped as it is accepted; a reply waits at most two turns, a 220 not at
 * all (STARTTLS: the TLS socket takes the connection over right after it). After STARTTLS smtp-server writes to the TLS socket,
 * which is not wrapped (the TLS layer writes its records itself).
 *
 * `turns: 1` uncorks at the check phase of the same turn: enough for a server whose
 * onMailFrom answers in a microtask when it does not wait (the gateway's admission
 * gate) and whose onRcptTo answers at once, since smtp-server then answers RCPT and
 * DATA in that same microtask (its own default onRcptTo answers a turn later). It
 * saves every reply a turn of the event loop (an `epoll_wait` and the timers' and
 * immediates' phases) and the client that long. The submission port keeps two (its
 * handlers were not checked for this).
 */
export function coalesceReplies(server: SMTPServer, turns: 1 | 2 = 2): void {
  server.server.on('connection', (socket: Socket) => {
    const write = socket.write;
    let corked = false;
    const uncork = () => {
      corked = false;
      socket.uncork();
    };
    const wait = turns === 1 ? uncork : () => setImmediate(uncork);
    socket.write = function (this: Socket, ...args: Parameters<Socket['write']>) {
      // 220 (the greeting, "ready to start TLS") leaves at once, with anything corked before it:
      // after STARTTLS's 220 smtp-server hands the socket to TLS in the same turn.
      if (typeof args[0] === 'string' && args[0].startsWith('220')) {
        const r = write.apply(this, args);
        if (corked) uncork();
        return r;
      }
      if (!corked) {
        corked = true;
        socket.cork();
        setImmediate(wait);
      }
      return write.apply(this, args);
    } as Socket['write'];
  });
}
