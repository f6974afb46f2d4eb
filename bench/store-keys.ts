/**
 * Key lookups and uses (issue 12, item 5): Store.findDecryptionKeys for one
 * envelope recipient (look the key up, open it, record the use, return it once the
 * record is committed) on SQLite (a file, WAL, synchronous=FULL) and PostgreSQL
 * (a server on loopback with fsync on, as in production), one caller and 64 in
 * flight (a gateway decrypting inbound mail), beside a raw lookup: the same indexed
 * SELECT run directly on the engine per lookup, nothing opened, nothing recorded.
 *
 * "Per core" is lookups per CPU-second: CPU time of this process plus, for
 * PostgreSQL, of the server's processes, read from /proc (the server shares the
 * machine's cores). Wall rates are reported too; on a shared machine they depend on
 * the neighbours, and a lone caller waits for one fsync per lookup whatever the CPU.
 * Also reported: one audit row per commit, what every key use cost before.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, readdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execFileSync } from 'node:child_process';
import { Store } from '../src/store/store.ts';
import { openSqliteEngine } from '../src/store/sqlite-engine.ts';
import { openPostgresEngine } from '../src/store/postgres-engine.ts';
import type { SqlEngine } from '../src/store/sql-engine.ts';
import { masterKeyFromBytes } from '../src/keys/master-key.ts';
import { identifierFor, type CmsIdentifier } from '../src/cms/identifier.ts';
import { startPostgres } from '../test/store/postgres-server.ts';
import type { TestPki } from '../test/helpers/pki.ts';
import { median } from './harness/measure.ts';

export const KEY_USE_TARGET = 10_000;

export interface StoreKeyRow {
  engine: 'sqlite' | 'postgres';
  /** Lookups in flight at once. */
  concurrency: number;
  /** Store.findDecryptionKeys per second, wall clock. */
  lookupsPerSec: number;
  /** Lookups per CPU-second (this process plus the PostgreSQL server): the per-core figure. */
  perCore: number;
  /** perCore / 10,000. */
  ratioToTarget: number;
  /** The raw SELECT per lookup, no opening, no record: wall and per CPU-second. */
  rawPerSec: number;
  rawPerCore: number;
  /** CPU µs per lookup+use in this process and in the PostgreSQL server (0 for SQLite). */
  clientCpuMicros: number;
  serverCpuMicros: number;
}

export interface StoreKeyFigures {
  keys: number;
  rows: StoreKeyRow[];
  /** One audit row per transaction, one caller: the old cost of every key use. */
  commitPerRowPerSec: Record<'sqlite' | 'postgres', number>;
}

const TICK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** CPU seconds of the postmaster and its backends so far. */
function serverCpuSeconds(pid: number): number {
  let ticks = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${d}/stat`, 'utf8');
    } catch {
      continue;
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "(comm) ": state ppid ... utime is field 14 overall (index 11 here), stime 15.
    if (Number(d) === pid || Number(f[1]) === pid) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / TICK;
}

interface Rate {
  wall: number;
  perCpu: number;
  /** CPU µs per operation in this process and in the PostgreSQL server. */
  clientMicros: number;
  serverMicros: number;
}

async function rate(op: () => Promise<unknown>, concurrency: number, ms: number, serverPid?: number): Promise<Rate> {
  let n = 0;
  const s0 = serverPid ? serverCpuSeconds(serverPid) : 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() - t0 < ms) {
      await op();
      n++;
    }
  }));
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const client = (c.user + c.system) / 1e6;
  const server = serverPid ? serverCpuSeconds(serverPid) - s0 : 0;
  return { wall: n / wall, perCpu: n / (client + server), clientMicros: (1e6 * client) / n, serverMicros: (1e6 * server) / n };
}

const RAW_LOOKUP = `SELECT c.id AS certificate_id, c.der, c.issuer_hex, c.serial_hex, c.ski_hex, k.* FROM certificates c JOIN private_keys k ON k.spki_sha256 = c.spki_sha256
  WHERE c.serial_hex IN (?) AND NOT EXISTS (SELECT 1 FROM certificates ca WHERE ca.spki_sha256 = c.spki_sha256 AND ca.is_ca = 1)`;

async function measureEngine(name: 'sqlite' | 'postgres', engine: () => SqlEngine, pki: TestPki, quick: boolean, serverPid?: number): Promise<{ rows: StoreKeyRow[]; commitPerRow: number }> {
  const store = await Store.open(engine(), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'bench' });
  const raw = engine();
  try {
    const ids: CmsIdentifier[] = [];
    for (let i = 0; i < (quick ? 10 : 100); i++) {
      const id = pki.identity(i % 2 ? 'p256' : 'rsa2048', `store-bench-${i}`);
      await store.importPrivateKey(id.key, { certificates: [id.cert] });
      ids.push(identifierFor(id.cert));
    }
    const serials = ids.map((i) => Buffer.from((i as { serial: Uint8Array }).serial).toString('hex'));
    let next = 0;
    const lookup = async () => {
      const found = await store.findDecryptionKeys([ids[next++ % ids.length]!]);
      if (found.length !== 1) throw new Error('bench: the key was not found');
    };
    const rawLookup = async () => {
      if ((await raw.all(RAW_LOOKUP, [serials[next++ % serials.length]!])).length !== 1) throw new Error('bench: the raw lookup found nothing');
    };
    const ms = quick ? 1000 : 3000;
    const rounds = quick ? 1 : 3;
    await rate(lookup, 64, 300); // warm-up: keys opened once, statements prepared
    const rows: StoreKeyRow[] = [];
    for (const concurrency of [1, 64]) {
      const k: Rate[] = [];
      const r: Rate[] = [];
      for (let i = 0; i < rounds; i++) {
        k.push(await rate(lookup, concurrency, ms, serverPid));
        r.push(await rate(rawLookup, concurrency, ms, serverPid));
      }
      const perCore = median(k.map((x) => x.perCpu));
      rows.push({
        engine: name, concurrency, lookupsPerSec: median(k.map((x) => x.wall)), perCore, ratioToTarget: perCore / KEY_USE_TARGET,
        rawPerSec: median(r.map((x) => x.wall)), rawPerCore: median(r.map((x) => x.perCpu)),
        clientCpuMicros: median(k.map((x) => x.clientMicros)), serverCpuMicros: median(k.map((x) => x.serverMicros)),
      });
    }
    const commitPerRow = await rate(
      () => store.engine.transaction((tx) => tx.run('INSERT INTO audit_log (id, at, actor, action, object, detail) VALUES (?, ?, ?, ?, ?, ?)', [randomUUID(), new Date().toISOString(), 'bench', 'bench.commit', null, null])),
      1, ms,
    );
    return { rows, commitPerRow: commitPerRow.wall };
  } finally {
    await raw.close();
    await store.close();
  }
}

export async function measureStoreKeys(pki: TestPki, quick: boolean): Promise<StoreKeyFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-bench-store-'));
  const pg = await startPostgres({ fsync: true });
  try {
    const sqlite = await measureEngine('sqlite', () => openSqliteEngine(join(dir, 'kakitome.db')), pki, quick);
    const postgres = await measureEngine('postgres', () => openPostgresEngine(pg.url), pki, quick, pg.pid());
    return { keys: quick ? 10 : 100, rows: [...sqlite.rows, ...postgres.rows], commitPerRowPerSec: { sqlite: sqlite.commitPerRow, postgres: postgres.commitPerRow } };
  } finally {
    pg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
