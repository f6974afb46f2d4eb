/**
 * Warm-cache trust decisions per second: chain + CRL revocation + identity for 50
 * known senders, with the certificate reused and parsed afresh per message.
 * The brief's target is 10,000 verified messages/s per core (RSA-2048), so the
 * trust step must cost a small fraction of the ~45,000/s raw RSA verify.
 * Run: npx node bench/trust-validation.ts
 */
import { createSignerValidator } from '../src/pki/create-signer-validator.ts';
import { createHttpFetcher } from '../src/pki/create-http-fetcher.ts';
import { Certificate } from '../src/x509/certificate.ts';
import { rootCa, subCa, endEntity, buildCrl, StaticHttpServer } from '../test/pki/pki-builder.ts';

export interface TrustFigures {
  validationsPerSecond: number;
  validationsPerSecondParsing: number;
  parsesPerSecond: number;
}

export async function measureTrustValidation(n = 20_000): Promise<TrustFigures> {
  const http = new StaticHttpServer();
  await http.start();
  try {
    const root = rootCa('Bench Root');
    const ca = subCa(root, 'Bench CA', { crlDistributionPoints: [http.url('/root.crl')] });
    http.files.set('/root.crl', buildCrl({ issuer: root }));
    http.files.set('/ca.crl', buildCrl({ issuer: ca }));
    const senders = Array.from({ length: 50 }, (_, i) => endEntity(ca, `user${i}@example.com`, { crlDistributionPoints: [http.url('/ca.crl')] }, 'p256', 'bench'));
    const v = createSignerValidator({ anchors: [root.cert], revocation: { mode: 'hard-fail' }, fetcher: createHttpFetcher({ allowedHosts: ['127.0.0.1'] }) });
    const run = async (fresh: boolean) => {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        const s = senders[i % senders.length]!;
        const cert = fresh ? Certificate.fromDer(s.cert.der) : s.cert;
        const r = await v({ certificate: cert, carried: [ca.cert], usage: 'signing', from: [`user${i % senders.length}@example.com`] });
        if (r.status !== 'trusted') throw new Error(r.message);
      }
      return Math.round(n / ((performance.now() - t0) / 1000));
    };
    await run(false); // warm the caches
    const validationsPerSecond = await run(false);
    const validationsPerSecondParsing = await run(true);
    const t1 = performance.now();
    for (let i = 0; i < n; i++) Certificate.fromDer(senders[i % senders.length]!.cert.der).fingerprint256;
    const parsesPerSecond = Math.round(n / ((performance.now() - t1) / 1000));
    return { validationsPerSecond, validationsPerSecondParsing, parsesPerSecond };
  } finally {
    http.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const f = await measureTrustValidation();
  console.log(`warm trust validations/s: ${f.validationsPerSecond} (reused certificate), ${f.validationsPerSecondParsing} (parsed per message); certificate parses/s: ${f.parsesPerSecond}`);
}
