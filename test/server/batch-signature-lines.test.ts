/**
 * A batch chunk's output, entry by entry, is what the general path writes: the mbox
 * entry formatMboxEntry makes of the signed message, whose signature part's lines are
 * base64Lines of its DER (src/smime/sign-entity.ts SignatureLines copies the lines of
 * the DER prefix signatures share, so a chunk of messages from two identities checks
 * that a kept prefix never lends its lines to a signature it does not begin), and
 * every message verifies with openssl (the CA certificate as the only anchor).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { initCertificateAuthority } from '../../src/ca/init-certificate-authority.ts';
import { issueMailboxCertificate } from '../../src/ca/issue-mailbox-certificate.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { formatMboxEntry, MboxEntryWriter, splitMboxBuffer } from '../../src/mime/mbox.ts';
import { parseEntity } from '../../src/mime/parse-entity.ts';
import { decodeBody } from '../../src/mime/decode-body.ts';
import { base64Lines } from '../../src/smime/sign-entity.ts';
import { encodePem } from '../../src/asn1/pem.ts';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { TenantDirectory } from '../../src/store/tenant-directory.ts';
import { DEFAULT_BATCH_CONFIG } from '../../src/server/config.ts';
import { Metrics } from '../../src/server/metrics.ts';
import { ServiceCache } from '../../src/server/service-cache.ts';
import type { ServiceContext } from '../../src/server/service-context.ts';
import { signBatchChunk } from '../../src/server/batches/sign-batch-chunk.ts';
import type { ChunkEntry } from '../../src/server/batches/chunk-records.ts';

const senders = ['news@acme.example', 'info@acme.example'];
// Some bodies hold "From " lines, which the mbox quotes.
const message = (i: number) => Buffer.from(`From: Acme <${senders[i % 3 === 0 ? 1 : 0]}>\r\nTo: reader${i}@example.net\r\nSubject: Statement ${i}\r\nMessage-ID: <${i}@acme.example>\r\n\r\nStatement ${i}.\r\n${i % 4 === 0 ? 'From the desk of the treasurer.\r\n' : ''}${'x'.repeat(i * 13)}\r\n`);

test('a chunk signed by two RSA identities in turn: each entry is the general mbox entry of its message, the signature lines are base64Lines of the DER, and openssl verifies it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-batch-lines-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const store = await Store.open(openSqliteEngine(join(dir, 'store.db')), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'tester' });
  t.after(() => store.close());
  const ca = await initCertificateAuthority(store, { name: 'Lines Test CA', keyType: 'p256' });
  for (const email of senders) await issueMailboxCertificate(store, { email, keyType: 'rsa2048' });
  const tenants = new TenantDirectory(store);
  await tenants.addTenant('acme', ['acme.example']);
  await tenants.registerIdentities('acme', senders);
  const key = (await tenants.createApiKey('acme', { scopes: ['sign'] })).key;
  const ctx = { store, tenants, config: { batch: DEFAULT_BATCH_CONFIG }, metrics: new Metrics(), version: 'test', cache: new ServiceCache(store, tenants), log: () => {}, shuttingDown: () => false } as unknown as ServiceContext;
  const root = join(dir, 'root.pem');
  writeFileSync(root, encodePem('CERTIFICATE', ca.root.certificate.der));

  const entries: ChunkEntry[] = Array.from({ length: 24 }, (_, i) => ({ envelope: i % 5 === 0 ? '' : `sender-${i}@acme.example Sun Dec  6 10:00:00 2026`, message: message(i) }));
  const output = new MboxEntryWriter(1);
  for (const round of [0, 1]) {
    const signed = await signBatchChunk(ctx, { batchId: 'b', entries, firstIndex: 0, key, keyId: key.id, options: {}, interrupted: () => undefined, output });
    assert.deepEqual(signed.failures, []);
    assert.equal(signed.signed, entries.length);
    const out = Buffer.from(signed.output);
    const read = splitMboxBuffer(out, 1 << 20);
    assert.equal(read.length, entries.length);
    let at = 0;
    for (const [i, e] of read.entries()) {
      const sent = entries[i]!;
      if (sent.envelope) assert.equal(e.envelope, sent.envelope);
      else assert.match(e.envelope, /^MAILER-DAEMON \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$/);
      const entry = formatMboxEntry(e.envelope, e.message!);
      assert.ok(out.subarray(at, at + entry.length).equals(entry), `round ${round}, entry ${i}: the general mbox entry`);
      at += entry.length;
      const signature = parseEntity(e.message!).children[1]!;
      assert.equal(signature.body.toString('latin1'), base64Lines(decodeBody(signature)).toString('latin1'), `round ${round}, message ${i}: the signature's lines`);
      if (round === 1 && i < 6) {
        const file = join(dir, `m${i}.eml`);
        writeFileSync(file, e.message!);
        execFileSync('openssl', ['cms', '-verify', '-in', file, '-CAfile', root, '-purpose', 'smimesign', '-out', '/dev/null'], { stdio: 'pipe' });
      }
    }
    assert.equal(at, out.length);
  }
});
