/**
 * A request written by hand (node:http), for bodies fetch cannot send: a lying
 * Content-Length, a slow chunked stream that may be refused while it is sent.
 */
import { request as httpRequest } from 'node:http';

export function rawRequest(url: URL, headers: Record<string, string>, write: (req: ReturnType<typeof httpRequest>, answered: () => boolean) => Promise<void>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let done = false;
    const req = httpRequest(url, { method: 'POST', headers }, (res) => {
      done = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() });
      });
    });
    req.on('error', (e) => (done ? undefined : reject(e)));
    write(req, () => done).catch(reject);
  });
}
