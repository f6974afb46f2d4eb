/**
 * The gateway's listener greets at once. smtp-server (3.21.7, pinned in package.json)
 * holds every new session's 220 for 100 ms to catch clients that talk before it (a
 * defence for listeners open to the Internet), and has no option to turn that off.
 * Only Postfix reaches the gateway's --listen, and as a before-queue filter
 * (`smtpd_proxy_filter`, docs/gateway.md) Postfix opens a connection to it for every
 * mail transaction: measured with a real Postfix, each message then kept its client
 * waiting 106-180 ms, of which 100 ms was this hold, and with N client sessions the
 * hold alone bounded throughput to N × 10 messages a second. (After-queue, Postfix's
 * connection cache makes a new connection rare.)
 *
 * So `connect` is smtp-server's own (SMTPServer.connect: the connection made, kept
 * and wired to the server) with `init` less its timer: the same listeners, the same
 * `maxClients` refusal, then `connectionReady` (reverse lookup, if enabled, and the
 * greeting) at once. Anything a client sends before the greeting is still answered
 * as smtp-server does (its parser is not ready until then).
 */
import { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

export function greetAtOnce(server: SMTPServer): void {
  server.connect = (socket, socketOptions) => {
    const connection = new SMTPConnection(server, socket, socketOptions);
    server.connections.add(connection);
    connection.on('error', (err: Error) => server._onError(err));
    connection.on('connect', (data) => server._onClientConnect(data));
    connection._setListeners(() => {
      if (server.options.maxClients && server.connections.size > server.options.maxClients) {
        return connection.send(421, `${connection.name} Too many connected clients, try again in a moment`, false);
      }
      connection.connectionReady();
    });
  };
}
