/**
 * Serving threads share their ports through SO_REUSEPORT, which Linux grants to any
 * socket of the same user that asks for it: a second `kakitome serve` on the same
 * port (a unit started twice, a test instance left running, another store) would bind
 * beside the first without an error, and the kernel would spread the clients over two
 * services with different stores and keys. Before the first serving thread binds, the
 * coordinator binds the address once without SO_REUSEPORT: that bind fails with
 * EADDRINUSE whenever anything else holds the port, reuse or not, and the service
 * refuses to start as a single-threaded server would. The probe is closed at once; the
 * serving threads bind next (a process that takes the port in between is the same
 * race any restart has).
 */
import { createServer } from 'node:net';
import { once } from 'node:events';

/** Throws the listen error (EADDRINUSE, EACCES...) if `host:port` cannot be bound exclusively now; port 0 is always free. */
export async function probePort(host: string, port: number): Promise<void> {
  if (port === 0) return;
  const probe = createServer();
  probe.listen({ host, port, exclusive: true });
  try {
    await Promise.race([once(probe, 'listening'), once(probe, 'error').then(([e]) => Promise.reject(e))]);
  } finally {
    if (probe.listening) await new Promise<void>((resolve) => probe.close(() => resolve()));
  }
}
