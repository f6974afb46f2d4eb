/**
 * The floor under POST /api/v1/sign (bench/serve-sign.ts --floor): what node:http
 * itself costs per request under the same wrk load, with nothing of the service
 * around it. Serving threads as `kakitome serve` has them (one per CPU unless
 * --threads, each a node:http server on the shared port with SO_REUSEPORT), each
 * reading the 2 KB body and answering it:
 *
 * - `--mode=bare`: a fixed answer of `--answer-bytes` (the size of a signed answer);
 * - `--mode=sign`: the message signed by the library exactly as the service signs
 *   it (splitMessage, then signSplitMessage: multipart/signed, the key's digest,
 *   the signer's certificate and `--chain`), with `--key` and `--cert` (PEM).
 *
 * No API key, tenant, From rules, audit row, log line or counters: the service's
 * CPU per request minus this one's is what its own path adds. Prints
 * `{"port": N}` on standard output once every thread listens; SIGTERM stops it.
 *
 *   node bench/serve-floor.ts --mode=sign --key=k.pem --cert=c.pem --chain=ca.pem [--threads=2]
 */
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { createPrivateKey } from 'node:crypto';
import { isMainThread, workerData, parentPort } from 'node:worker_threads';
import { startFloorThreads } from './harness/floor-threads.ts';
import { DEFAULT_LIMITS } from '../src/limits.ts';
import { signSplitMessage } from '../src/smime/sign-message.ts';
import { splitMessage } from '../src/smime/split-message.ts';
import { parseCertificate } from '../src/x509/certificate.ts';

interface FloorOptions {
  mode: 'bare' | 'sign';
  key?: string;
  cert?: string;
  chain?: string;
  answerBytes: number;
  port: number;
}

function serve(o: FloorOptions): Promise<number> {
  let answer: (body: Buffer) => Buffer;
  if (o.mode === 'sign') {
    const certificate = parseCertificate(readFileSync(o.cert!));
    const key = createPrivateKey(readFileSync(o.key!));
    const certificates = [certificate, ...(o.chain ? [parseCertificate(readFileSync(o.chain))] : [])];
    answer = (body) => signSplitMessage(splitMessage(body, DEFAULT_LIMITS), { signers: [{ certificate, key }], certificates, opaque: false });
  } else {
    const fixed = Buffer.alloc(o.answerBytes, 'a');
    answer = () => fixed;
  }
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const out = answer(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
      // As sign-route.ts answers: the header fields as a flat list.
      res.writeHead(200, ['content-type', 'message/rfc822', 'content-length', String(out.length)]);
      res.end(out);
    });
  });
  return new Promise((resolve) => server.listen({ host: '127.0.0.1', port: o.port, reusePort: true }, () => resolve((server.address() as { port: number }).port)));
}

if (isMainThread) {
  const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const o: FloorOptions = { mode: arg('mode') === 'sign' ? 'sign' : 'bare', key: arg('key'), cert: arg('cert'), chain: arg('chain'), answerBytes: Number(arg('answer-bytes') ?? 4200), port: 0 };
  await startFloorThreads(new URL(import.meta.url), o, arg('threads') === undefined ? undefined : Number(arg('threads')));
} else {
  parentPort!.postMessage(await serve(workerData as FloorOptions));
}
