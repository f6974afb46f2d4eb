/**
 * The services' reference tables follow the code: docs/gateway.md's policy table
 * has every setting of src/policy/policy-settings.ts with its default, and no
 * other; every Prometheus metric the gateway (src/gateway/gateway-metrics.ts) and
 * serve (src/server/metrics.ts) expose is named in gateway.md and api.md, and no
 * metric is named there that the code does not expose; every KAKITOME_* environment
 * variable the code reads is documented.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { SETTING_NAMES, SETTINGS } from '../../src/policy/policy-settings.ts';

const read = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
const gateway = read('docs/gateway.md');
const api = read('docs/api.md');

/** The policy table's rows: "| `name` | default | ..." (two settings may share a row: "`a`, `b`"). */
function policyRows(): Map<string, string> {
  const section = /\n## Policy\n([\s\S]*?)\n## /.exec(gateway)?.[1];
  assert.ok(section, 'gateway.md has "## Policy"');
  const rows = new Map<string, string>();
  for (const m of section.matchAll(/^\| ((?:`\w+`(?:, )?)+) \| ([^|]+) \|/gm)) {
    for (const name of m[1]!.matchAll(/`(\w+)`/g)) rows.set(name[1]!, m[2]!.trim());
  }
  return rows;
}

/** A default as the table writes it: `true`, `[]`, `""`, `if-possible`, 1 GiB, 4 MiB, 120000. */
function written(value: unknown): string {
  if (typeof value === 'number') {
    if (value >= 1024 ** 3 && value % 1024 ** 3 === 0) return `${value / 1024 ** 3} GiB`;
    if (value >= 1024 ** 2 && value % 1024 ** 2 === 0) return `${value / 1024 ** 2} MiB`;
    return String(value);
  }
  return `\`${JSON.stringify(value)?.replace(/^"(.+)"$/, '$1')}\``;
}

test('gateway.md\'s policy table has every setting with its default, and no other', () => {
  const rows = policyRows();
  assert.ok(SETTING_NAMES.length >= 20 && rows.size >= 20, `${SETTING_NAMES.length} settings, ${rows.size} rows`);
  for (const name of SETTING_NAMES) {
    assert.ok(rows.has(name), `gateway.md's policy table lacks ${name}`);
    assert.equal(rows.get(name), written(SETTINGS[name].default), `${name}'s default in gateway.md`);
  }
  const unknown = [...rows.keys()].filter((n) => !(SETTING_NAMES as string[]).includes(n));
  assert.deepEqual(unknown, [], `gateway.md's policy table has settings the code does not: ${unknown.join(', ')}`);
});

test('every metric the gateway and serve expose is documented, and every documented one exists', () => {
  const gatewayMetrics = [...read('src/gateway/gateway-metrics.ts').matchAll(/\b(kakitome_gateway_\w+)/g)].map((m) => m[1]!);
  const serveMetrics = [...read('src/server/metrics.ts').matchAll(/# HELP (kakitome_\w+)/g)].map((m) => m[1]!);
  assert.ok(gatewayMetrics.length >= 10 && serveMetrics.length >= 4, `${gatewayMetrics.length} gateway, ${serveMetrics.length} serve metrics`);
  for (const name of gatewayMetrics) assert.match(gateway, new RegExp(`\`${name}[{\`]`), `gateway.md names ${name}`);
  for (const name of serveMetrics) assert.match(api, new RegExp(`\`${name}[{\`]`), `api.md names ${name}`);
  const known = new Set([...gatewayMetrics, ...serveMetrics]);
  const documented = [...`${gateway}\n${api}`.matchAll(/`(kakitome_\w+)[{`]/g)].map((m) => m[1]!);
  const gone = documented.filter((n) => !known.has(n));
  assert.deepEqual(gone, [], `metrics documented that the code does not expose: ${gone.join(', ')}`);
});

test('every KAKITOME_* environment variable the code reads is documented', () => {
  const files = (dir: string): string[] => readdirSync(new URL(`../../${dir}`, import.meta.url), { withFileTypes: true })
    .flatMap((d) => (d.isDirectory() ? files(`${dir}/${d.name}`) : /\.(ts|js)$/.test(d.name) ? [`${dir}/${d.name}`] : []));
  const readNames = [...files('src'), ...files('bin')].flatMap((f) => [...read(f).matchAll(/env(?:\.|\?\.|\[')(KAKITOME_[A-Z0-9_]+)/g)].map((m) => m[1]!));
  const names = [...new Set(readNames)];
  assert.ok(names.length >= 15 && names.includes('KAKITOME_HOME'), names.join(', '));
  const docs = ['README.md', ...readdirSync(new URL('../../docs', import.meta.url)).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)].map(read).join('\n');
  const missing = names.filter((n) => !new RegExp(`\\b${n}\\b`).test(docs));
  assert.deepEqual(missing, [], `environment variables read but not documented: ${missing.join(', ')}`);
});
