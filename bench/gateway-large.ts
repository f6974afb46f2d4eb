/**
 * Issue 13, "large messages stream (1 GiB under 256 MiB RSS)": one message of
 * --mib MiB (default 1024) each way through the real `kakitome gateway` process, as
 * test/gateway/gateway-large.test.ts does with 200 MiB: outbound signed (Alice to
 * Erin), inbound signed and encrypted by openssl cms -stream and decrypted and
 * verified by the gateway; each delivered by a next hop that writes it to a file.
 * Reports the time from sending to the gateway's reply each way and the gateway's
 * peak RSS (VmHWM) after each, and with --check verifies the outbound copy with
 * openssl cms -verify and both contents by SHA-256 (openssl reads the whole message
 * into memory: ~2 GiB for 1 GiB).
 *
 *   npx node bench/gateway-large.ts [--mib=N] [--workers=N] [--check] [--out=FILE]
 *
 * Needs about 6 × --mib of free disk in the temporary directory. Not part of `npm test`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadavg } from 'node:os';
import { encodePem } from '../src/asn1/pem.ts';
import { createWorld, openWorldStore } from '../test/gateway/gateway-fixture.ts';
import { freePort } from '../test/gateway/postfix-instance.ts';
import { bodyDigest, FileSink, largeRound, opensslVerifyFile, peakRssMiB, startGatewayChild } from '../test/gateway/large-message.ts';

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const mib = Number(arg('mib') ?? 1024);
const workers = arg('workers') ?? '1';
const check = process.argv.includes('--check');

const world = await createWorld();
try {
  const files = join(world.dir, 'large');
  mkdirSync(files);
  const sink = await new FileSink(files).start();
  const policy = join(world.dir, 'policy.json');
  writeFileSync(policy, JSON.stringify({ revocation: 'allow-unknown', maxMessageBytes: 4 * 1024 ** 3 }));
  const args = ['--next-hop', `127.0.0.1:${sink.port}`, '--domain', 'corp.test', '--authserv-id', 'mx.corp.test', '--policy', policy, '--spool-dir', join(world.dir, 'spool'), '--workers', workers];
  // A first start warms the launcher's module compile cache, as on a deployed gateway.
  await (await startGatewayChild(world.env, world.dir, await freePort(), args)).stop();
  const port = await freePort();
  const gateway = await startGatewayChild(world.env, world.dir, port, args);
  const store = await openWorldStore(world);
  const alicePem = join(files, 'alice.pem');
  writeFileSync(alicePem, encodePem('CERTIFICATE', (await store.findRecipientCertificates('alice@corp.test'))[0]!.certificate.der));
  await store.close();
  const load0 = loadavg()[0]!;
  const idle = peakRssMiB(gateway.child.pid!);
  const round = await largeRound(world, alicePem, port, gateway.child.pid!, sink, files, mib);
  await gateway.stop();
  await sink.stop();
  const lines = [
    `gateway, one ${mib} MiB message each way, --workers ${workers}, load ${load0.toFixed(1)} -> ${loadavg()[0]!.toFixed(1)}; peak RSS before: ${idle.toFixed(0)} MiB`,
    `outbound (signed):           reply ${round.outbound.reply.code} after ${(round.outbound.ms / 1000).toFixed(1)} s, peak RSS ${round.outbound.rssMiB.toFixed(0)} MiB`,
    `inbound (decrypt + verify):  reply ${round.inbound.reply.code} after ${(round.inbound.ms / 1000).toFixed(1)} s, peak RSS ${round.inbound.rssMiB.toFixed(0)} MiB`,
  ];
  if (check) {
    const verified = await opensslVerifyFile(round.outbound.delivered!, world.corpRoot, join(files, 'verified.out'));
    const outOk = verified.ok && (await bodyDigest(join(files, 'verified.out'))) === (await bodyDigest(round.outbound.path));
    const inOk = (await bodyDigest(round.inbound.delivered!)) === (await bodyDigest(round.inbound.entity));
    lines.push(`checked: outbound ${outOk ? 'verified by openssl, content identical' : `FAILED ${verified.detail}`}; inbound ${inOk ? 'content identical' : 'FAILED'}`);
  }
  console.log(lines.join('\n'));
  const out = arg('out');
  if (out) writeFileSync(resolve(out), `${JSON.stringify({ date: new Date().toISOString(), gatewayLarge: { mib, workers, idleRssMiB: idle, outbound: { ms: round.outbound.ms, rssMiB: round.outbound.rssMiB }, inbound: { ms: round.inbound.ms, rssMiB: round.inbound.rssMiB } } }, null, 2)}\n`);
} finally {
  world.cleanup();
}
