/**
 * Migration 9: cache_revision moves with every change the signing service's cache
 * depends on, in the same transaction, on both engines and from any connection;
 * it stays put for what signing never reads (a harvested certificate's
 * capabilities, audit rows), so a gateway's traffic does not empty the cache.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { TestPki } from '../helpers/pki.ts';
import { engineFactories } from './engine-factories.ts';
import { Store } from '../../src/store/store.ts';
import { TenantDirectory } from '../../src/store/tenant-directory.ts';
import { readCacheRevision } from '../../src/store/cache-revision.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';

const pki = new TestPki('Cache Revision Root');
const alice = pki.identity('p256', 'alice');
const carol = pki.identity('p256', 'carol');
const master = masterKeyFromBytes(randomBytes(32));
after(() => pki.cleanup());

for (const f of engineFactories('kakitome-cache-revision-')) {
  describe(`cache revision on ${f.name}`, () => {
    let store: Store;
    let other: Store;
    let tenants: TenantDirectory;
    before(async () => {
      await f.setup();
      store = await Store.open(f.make(), { masterKey: master });
      // A second connection: another node, or the CLI.
      other = await Store.open(f.make(), { masterKey: master });
      tenants = new TenantDirectory(other);
    });
    after(async () => {
      await other?.close();
      await store?.close();
      await f.teardown();
    });

    /** Runs `change` through the other connection; asserts whether this connection then reads a new revision. */
    async function moves(what: string, change: () => Promise<unknown>, expected = true): Promise<void> {
      const before = await readCacheRevision(store.engine);
      await change();
      const now = await readCacheRevision(store.engine);
      if (expected) assert.ok(now > before, `${what}: the revision should move (${before} -> ${now})`);
      else assert.equal(now, before, `${what}: the revision should stay`);
    }

    test('every change signing depends on moves it; capabilities and audit rows do not', async () => {
      await moves('tenant added', () => tenants.addTenant('acme', ['acme.example']));
      await moves('domain added', () => tenants.addTenant('acme', ['mail.acme.example']));
      const key = await tenants.createApiKey('acme', { scopes: ['sign'] }).then((k) => k.key.id);
      await moves('rate limit', () => tenants.setRateLimit(key, 60));
      await moves('key revoked', () => tenants.revokeApiKey(key));
      let keyId = '';
      await moves('identity imported', async () => (keyId = (await other.importPrivateKey(alice.key, { certificates: [alice.cert] })).id));
      await moves('identity registered', () => tenants.registerIdentities('default', ['alice@example.com']));
      await moves('certificate trusted', () => other.importCertificate(pki.caCert, { trust: 'trusted' }));
      await moves('certificate revoked', () => other.revokeCertificate(alice.cert.fingerprint256, 1));
      await moves('key retired', () => other.retirePrivateKey(keyId));
      await moves('harvested certificate', () => other.harvestCertificate(carol.cert, { address: 'carol@example.com' }));
      await moves('capabilities harvested again', () => other.harvestCertificate(carol.cert, { address: 'carol@example.com', capabilities: Uint8Array.of(0x30, 0x00) }), false);
      await moves('audit rows', () => Promise.all([other.audit('test.one'), other.audit('test.two')]), false);
    });

    test('a change rolled back leaves it where it was', async () => {
      await moves('rolled back', () => other.engine.transaction(async (tx) => {
        await tx.run("UPDATE api_keys SET label = 'x'");
        throw new Error('rollback');
      }).catch(() => undefined), false);
    });
  });
}
