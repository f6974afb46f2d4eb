/**
 * Section 19: held messages are sealed at rest. The attacker holds a copy of the
 * database (a dump, a backup, a replica) but not the master key, or can write to it
 * and moves sealed bytes around: the held mail (policy missingCertificate or
 * unauthenticatedEncryption: hold) shows nowhere in the file, and no row or segment
 * opens anywhere but where it was sealed. Listing (envelope, size) needs no key.
 * Rows an older version kept in clear are sealed the first time the store opens
 * with its key; a master-key rotation re-wraps them.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { openStore } from '../../src/store/open-store.ts';
import { HeldMessages, SEGMENT_BYTES } from '../../src/store/held-messages.ts';
import { isKakitomeError } from '../../src/errors.ts';

const root = mkdtempSync(join(tmpdir(), 'kakitome-held-at-rest-'));
after(() => rmSync(root, { recursive: true, force: true }));
const master = masterKeyFromBytes(randomBytes(32));
let n = 0;
const freshHome = () => join(root, `home-${++n}`);
const open = (home: string, key = master) => openStore({ home, masterKey: key, actor: 'test' });

const SECRET = 'Quarterly figures: 4711 KAKITOME confidential';
/** A message of `size` bytes with the secret at the start and in every segment. */
function mail(size: number): Buffer {
  const head = Buffer.from(`From: alice@corp.test\r\nTo: erin@example.com\r\nSubject: ${SECRET}\r\n\r\n`);
  const line = Buffer.from(`${SECRET}\r\n`);
  const body = Buffer.alloc(size - head.length);
  for (let i = 0; i + line.length <= body.length; i += line.length) line.copy(body, i);
  return Buffer.concat([head, body]);
}
const input = (message: Buffer, recipient = 'erin@example.com') => ({ sender: 'alice@corp.test', recipients: [recipient], message, reasonCode: 'ENCRYPTION_REQUIRED', reason: 'no certificate' });
/** Every byte of the database as it lies on disk (the file and its write-ahead log). */
const diskBytes = (home: string) => Buffer.concat(readdirSync(home).filter((f) => f.startsWith('kakitome.db')).map((f) => readFileSync(join(home, f))));
const keyInvalid = (e: unknown) => isKakitomeError(e) && e.code === 'KEY_INVALID';

test('the database file holds no held mail; listing needs no key, opening does', async () => {
  const home = freshHome();
  const store = await open(home);
  const message = mail(2 * SEGMENT_BYTES + 12345);
  const id = await new HeldMessages(store).hold(input(message));
  assert.equal(Number((await store.engine.all('SELECT COUNT(*) AS n FROM held_message_segments WHERE id = ?', [id]))[0]!.n), 3, 'three segments');
  const raw = (await store.engine.all('SELECT * FROM held_messages'))[0]!;
  for (const v of Object.values(raw)) assert.ok(!Buffer.from(v instanceof Uint8Array ? v : String(v)).includes(SECRET), 'no column of the row holds the mail');
  await store.close();
  assert.ok(!diskBytes(home).includes(SECRET), 'not one copy of the secret in the file');
  assert.ok(!diskBytes(home).includes(Buffer.from(SECRET, 'utf8').toString('base64').slice(0, 24)), 'nor encoded');

  const keyless = await openStore({ home, withoutMasterKey: true, actor: 'test' });
  const listed = await new HeldMessages(keyless).list();
  assert.deepEqual(listed.map((h) => [h.id, h.sender, h.recipients, h.size]), [[id, 'alice@corp.test', ['erin@example.com'], message.length]]);
  await assert.rejects(new HeldMessages(keyless).find(id), /master key/i);
  await keyless.close();

  const other = await openStore({ home, masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'test' }).catch((e: unknown) => e);
  assert.ok(keyInvalid(other), 'another master key does not even open the store');
  const again = await open(home);
  assert.deepEqual(await (await new HeldMessages(again).find(id)).message(), message);
  await again.close();
});

test('a row or a segment moved, swapped, dropped or altered does not open', async () => {
  const store = await open(freshHome());
  const held = new HeldMessages(store);
  const a = await held.hold(input(mail(SEGMENT_BYTES + 100)));
  const b = await held.hold(input(mail(SEGMENT_BYTES + 100), 'frank@example.com'));
  const opens = async (id: string) => (await held.find(id)).message();
  const sql = (q: string, p: unknown[] = []) => store.engine.run(q, p as never);
  // A's row and segments moved to a new id: the additional data names the id.
  const moved = 'f'.repeat(32);
  await sql(`INSERT INTO held_messages SELECT ?, held_at, queue_id, sender, recipients, reason_code, reason, size, message, generation, sealed_key, master_key_id, dsn FROM held_messages WHERE id = ?`, [moved, a]);
  await sql('INSERT INTO held_message_segments SELECT ?, seq, sealed FROM held_message_segments WHERE id = ?', [moved, a]);
  await assert.rejects(opens(moved), keyInvalid, 'a row moved to another id does not open');
  // B's sealed key put on A's row (B's envelope shown, A's bytes): does not open.
  await sql('UPDATE held_messages SET sealed_key = (SELECT sealed_key FROM held_messages WHERE id = ?) WHERE id = ?', [b, moved]);
  await assert.rejects(opens(moved), keyInvalid);
  // A's segments in the other order.
  const swap = async () => {
    await sql('UPDATE held_message_segments SET seq = seq + 10 WHERE id = ?', [a]);
    await sql('UPDATE held_message_segments SET seq = 11 - seq WHERE id = ?', [a]);
  };
  await swap();
  await assert.rejects(opens(a), keyInvalid, 'reordered');
  await swap();
  assert.equal((await opens(a)).length, SEGMENT_BYTES + 100, 'back in order, it opens');
  // The tail dropped, with the size made to match: the first segment was not sealed as the last.
  await sql('DELETE FROM held_message_segments WHERE id = ? AND seq = 1', [b]);
  await sql('UPDATE held_messages SET size = ? WHERE id = ?', [SEGMENT_BYTES, b]);
  await assert.rejects(opens(b), keyInvalid, 'truncated');
  // One bit flipped.
  const seg = (await store.engine.all('SELECT sealed FROM held_message_segments WHERE id = ? AND seq = 0', [a]))[0]!.sealed as Uint8Array;
  const flipped = Buffer.from(seg);
  flipped[100]! ^= 1;
  await sql('UPDATE held_message_segments SET sealed = ? WHERE id = ? AND seq = 0', [flipped, a]);
  await assert.rejects(opens(a), keyInvalid, 'altered');
  await store.close();
});

test('a row an older version kept in clear is sealed when the store opens with its key; rotation re-wraps held messages', async () => {
  const home = freshHome();
  let store = await open(home);
  const message = mail(5000);
  // What the schema before migration 12 wrote: the message in clear, no sealed key.
  await store.engine.run("INSERT INTO held_messages (id, held_at, queue_id, sender, recipients, reason_code, reason, size, message, generation) VALUES (?, ?, NULL, 'alice@corp.test', '[\"erin@example.com\"]', 'ENCRYPTION_REQUIRED', 'no certificate', ?, ?, 0)", ['a'.repeat(32), new Date().toISOString(), message.length, message]);
  await assert.rejects(new HeldMessages(store).find('a'.repeat(32)), /not sealed yet/);
  await store.close();
  store = await open(home);
  const row = (await store.engine.all('SELECT message, sealed_key FROM held_messages'))[0]!;
  assert.equal((row.message as Uint8Array).length, 0, 'the clear copy is gone from the row');
  assert.ok((row.sealed_key as Uint8Array).length > 0);
  assert.deepEqual(await (await new HeldMessages(store).find('a'.repeat(32))).message(), message);
  assert.ok((await store.auditLog({ limit: 10 })).some((e) => e.action === 'message.seal'));
  const next = masterKeyFromBytes(randomBytes(32));
  store = await store.rotateMasterKey(next);
  await store.close();
  const rotated = await open(home, next);
  assert.deepEqual(await (await new HeldMessages(rotated).find('a'.repeat(32))).message(), message, 'opens under the new master key');
  await rotated.close();
});
