/**
 * docs/security.md section 18: the gateway's spool has no names. The attacker is
 * another local process looking for mail in the spool directory, or for what a
 * crash left there. The real `kakitome gateway` holds a large message (its next hop
 * accepts the connection and never answers): the spool directory, created 0700,
 * lists nothing, while the gateway holds the received message and its signed copy as
 * descriptors of deleted 0600 files in it; kill -9 leaves nothing; what a crash
 * between creating and removing a spool directory could leave is swept at the next
 * start once it is a minute old (a younger one may be another process's, in flight).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readlinkSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { createWorld, waitFor, type GatewayWorld } from '../gateway/gateway-fixture.ts';
import { freePort } from '../gateway/postfix-instance.ts';
import { sendFile, startGatewayChild, writeLargeEntity } from '../gateway/large-message.ts';

let world: GatewayWorld;
let silent: Server;
const sockets: Socket[] = [];
let silentPort: number;

before(async () => {
  world = await createWorld();
  // A next hop that takes the connection and never says a word.
  silent = createServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
  silentPort = (silent.address() as { port: number }).port;
});

after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((resolve) => silent.close(resolve));
  world?.cleanup();
});

/** The gateway's descriptors that point into `dir` (`path (deleted)` once unlinked). */
function descriptorsInto(pid: number, dir: string): Array<{ fd: string; target: string }> {
  const out: Array<{ fd: string; target: string }> = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (target.startsWith(`${dir}/`)) out.push({ fd, target });
    } catch {
      // Closed meanwhile.
    }
  }
  return out;
}


test('a large message in the spool has no name: the directory (0700) lists nothing while the gateway holds deleted 0600 files; kill -9 leaves nothing; a crash\'s leftovers are swept at start', { timeout: 5 * 60_000 }, async () => {
  const spoolDir = join(world.dir, 'spool');
  const policy = join(world.dir, 'policy.json');
  writeFileSync(policy, JSON.stringify({ revocation: 'allow-unknown', streamAboveBytes: 1024 * 1024, relayTimeoutMs: 120_000 }));
  const args = ['--next-hop', `127.0.0.1:${silentPort}`, '--domain', 'corp.test', '--authserv-id', 'mx.corp.test', '--policy', policy, '--spool-dir', spoolDir, '--workers', '0'];
  const port = await freePort();
  const gateway = await startGatewayChild(world.env, world.dir, port, args);
  const pid = gateway.child.pid!;
  assert.equal(statSync(spoolDir).mode & 0o777, 0o700, 'the spool directory is created private');

  const message = join(world.dir, 'large.eml');
  await writeLargeEntity(message, 'From: Alice <alice@corp.test>\r\nTo: erin@example.com\r\nSubject: Quarterly archive\r\n', 16 * 1024 * 1024);
  const sent = sendFile(port, 'alice@corp.test', ['erin@example.com'], message).catch((e: Error) => ({ code: 0, response: e.message }));
  // The received message and its signed copy are spooled; the relay waits for a greeting that never comes.
  await waitFor('the spooled message and its copy', () => descriptorsInto(pid, spoolDir).length >= 2 && sockets.length > 0, 60_000, 50);
  const held = descriptorsInto(pid, spoolDir);
  for (const d of held) {
    assert.match(d.target, / \(deleted\)$/, `${d.target}: unlinked while in use`);
    assert.equal(statSync(`/proc/${pid}/fd/${d.fd}`).mode & 0o777, 0o600, `${d.target}: 0600`);
  }
  assert.deepEqual(readdirSync(spoolDir), [], 'no name in the spool directory while the message is held');

  gateway.child.kill('SIGKILL');
  await gateway.stop();
  assert.notEqual((await sent).code, 250, 'never accepted');
  assert.deepEqual(readdirSync(spoolDir), [], 'nothing left after kill -9');

  // What a crash between creating a spool directory and removing it could leave: swept once a minute old.
  const stale = join(spoolDir, 'kakitome-spool-Stale1');
  mkdirSync(stale, { mode: 0o700 });
  writeFileSync(join(stale, 'content'), 'decrypted text someone could read', { mode: 0o600 });
  const old = new Date(Date.now() - 5 * 60_000);
  utimesSync(stale, old, old);
  const fresh = join(spoolDir, 'kakitome-spool-Fresh1');
  mkdirSync(fresh, { mode: 0o700 });
  const again = await startGatewayChild(world.env, world.dir, await freePort(), args);
  try {
    assert.deepEqual(readdirSync(spoolDir), ['kakitome-spool-Fresh1'], 'the stale one swept, a young one (perhaps another process\'s) kept');
    await waitFor('the sweep in the log', () => again.lines.some((l) => l.includes('"event":"spool-swept"') && l.includes('"removed":1')), 5000);
  } finally {
    await again.stop();
  }
});
