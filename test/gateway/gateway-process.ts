/**
 * The real `kakitome gateway` process for the tests with a real Postfix: started
 * with the world's store, its JSON log lines collected, resolved once it listens;
 * a poll that fails with the end of Postfix's log; the world, sink and Postfix those
 * tests share; and the inbound check they share (a signed message from outside with
 * a forged Authentication-Results, delivered with ours alone, verified by openssl).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN } from '../cli/run-cli.ts';
import { createWorld, draft, opensslVerifyMime, sendTo, Sink, waitFor, type GatewayWorld } from './gateway-fixture.ts';
import { freePort, PostfixInstance } from './postfix-instance.ts';
import { signMessage } from '../../src/smime/sign-message.ts';

export interface GatewayProcess {
  child: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
}

export function startGatewayProcess(world: GatewayWorld, args: string[]): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [BIN, 'gateway', ...args], { env: world.env, cwd: world.dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const lines: string[] = [];
  let buffered = '';
  child.stderr!.on('data', (d: Buffer) => {
    buffered += d.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    lines.push(...parts);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`the gateway did not start:\n${lines.join('\n')}${buffered}`)), 20_000);
    const poll = setInterval(() => {
      if (lines.some((l) => l.includes('"event":"listening"'))) {
        clearInterval(poll);
        clearTimeout(deadline);
        resolve({ child, lines, exited });
      }
    }, 50);
    void exited.then((code) => {
      clearInterval(poll);
      clearTimeout(deadline);
      reject(new Error(`the gateway exited with ${code}:\n${lines.join('\n')}${buffered}`));
    });
  });
}

export async function until(what: string, check: () => boolean | Promise<boolean>, pf: PostfixInstance, timeoutMs = 30_000): Promise<void> {
  const t0 = Date.now();
  if (process.env.GW_TRACE) process.stderr.write(`waiting for ${what}\n`);
  try {
    // Polled every 200 ms: the checks here ask Postfix (postqueue) or read its log.
    await waitFor(() => `${what}\n--- Postfix log ---\n${pf.log().split('\n').slice(-30).join('\n')}`, check, timeoutMs, 200);
  } finally {
    if (process.env.GW_TRACE) process.stderr.write(`${what}: ${Date.now() - t0} ms\n`);
  }
}

export interface PostfixWorld {
  world: GatewayWorld;
  sink: Sink;
  pf: PostfixInstance;
  ports: { smtp: number; reinject: number; filter: number; metrics: number };
  /** The gateway's --policy file (revocation allow-unknown: the test PKIs publish no CRL). */
  policyPath: string;
  stop(): Promise<void>;
}

/** A store, a sink as Postfix's relay host, and a started Postfix whose filter (after-queue, or before-queue) is `ports.filter`. */
export async function startPostfixWorld(o: { beforeQueue?: boolean } = {}): Promise<PostfixWorld> {
  const world = await createWorld();
  const sink = await new Sink().start();
  const ports = { smtp: await freePort(), reinject: await freePort(), filter: await freePort(), metrics: await freePort() };
  const policyPath = join(world.dir, 'policy.json');
  writeFileSync(policyPath, JSON.stringify({ revocation: 'allow-unknown' }));
  const pf = new PostfixInstance({ smtpPort: ports.smtp, reinjectPort: ports.reinject, relayPort: sink.port, filterPort: ports.filter, ...(o.beforeQueue ? { beforeQueue: true } : {}) });
  await pf.start();
  return {
    world, sink, pf, ports, policyPath,
    stop: async () => {
      await pf.stop();
      await sink.stop();
      world.cleanup();
    },
  };
}

/** Dave (outside) sends Alice a signed message carrying a forged `smime=pass` of ours: it arrives with our one Authentication-Results, a pass, and openssl verifies it. */
export async function checkInboundVerified(w: PostfixWorld): Promise<void> {
  w.sink.deliveries.length = 0;
  const dave = w.world.pki.identity('rsa2048', 'dave');
  const signed = signMessage(draft('dave@example.com', 'alice@corp.test', 'Inbound', 'From outside.', 'Authentication-Results: mx.corp.test; smime=pass\r\n'), { signers: [{ certificate: dave.cert, key: dave.key }] });
  assert.equal((await sendTo(w.ports.smtp, 'dave@example.com', ['alice@corp.test'], signed)).code, 250);
  await until('the inbound message', () => w.sink.deliveries.length === 1, w.pf);
  const got = w.sink.deliveryTo('alice@corp.test').message.toString('latin1');
  const ours = got.split('\r\n\r\n')[0]!.split('\r\n').filter((l) => /^Authentication-Results: mx\.corp\.test/.test(l));
  assert.equal(ours.length, 1, got.slice(0, 2000));
  assert.match(ours[0]!, /smime=pass/);
  assert.ok((await opensslVerifyMime(w.world.dir, Buffer.from(got, 'latin1'), w.world.pki.caPath)).ok);
}
