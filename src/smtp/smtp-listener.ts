/**
 * Starting and stopping an smtp-server listener, as the gateway and the
 * submission port both do: listen (an address in use is an error, not a crash
 * later), and at stop tell the connections idle between messages to go away (421)
 * once the messages in flight have their replies.
 */
import type { AddressInfo } from 'node:net';
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
