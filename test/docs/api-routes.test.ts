/**
 * docs/api.md documents the signing service's routes as the OpenAPI document serve
 * publishes at /api/v1/openapi.json (src/server/openapi.ts over the route table,
 * src/server/routes.ts): every route has its `###` section naming its method, path
 * and (where the heading gives one) the same scope, no section names a route that is
 * gone, every error status a route declares is in the problem-details table, and
 * every query and header parameter is named.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { buildOpenApiDocument } from '../../src/server/openapi.ts';
import { ROUTES } from '../../src/server/routes.ts';

interface Operation { security?: Array<{ apiKey?: string[] }>; responses: Record<string, unknown>; parameters?: Array<{ name: string; in: string }> }
const openapi = buildOpenApiDocument(ROUTES, { version: 'test' }) as { paths: Record<string, Record<string, Operation>> };
const doc = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');

/** Each `###` heading's routes: "### `POST /api/v1/sign` (scope `sign`)", "### GET and PATCH `/path` (scope `admin`)", "### `/healthz`, `/metrics`" (GET). */
function documentedRoutes(): Map<string, string | undefined> {
  const routes = new Map<string, string | undefined>();
  for (const heading of doc.split('\n').filter((l) => l.startsWith('### '))) {
    const paths = [...heading.matchAll(/`(?:[A-Z]+ )?(\/[^`\s]*)`/g)].map((m) => m[1]!);
    if (!paths.length) continue;
    const methods = [...new Set([...heading.matchAll(/\b(GET|POST|PUT|PATCH|DELETE)\b/g)].map((m) => m[1]!))];
    const scope = /\(scope `(\w+)`\)/.exec(heading)?.[1];
    for (const path of paths) for (const method of methods.length ? methods : ['GET']) routes.set(`${method} ${path}`, scope);
  }
  return routes;
}

const served = new Map<string, Operation>();
for (const [path, ops] of Object.entries(openapi.paths)) for (const [method, op] of Object.entries(ops)) served.set(`${method.toUpperCase()} ${path}`, op);
const documented = documentedRoutes();

test('the OpenAPI document and api.md\'s headings are read (the test reads what it checks)', () => {
  assert.ok(served.size >= 15, `${served.size} routes served`);
  assert.ok(documented.has('POST /api/v1/sign'), 'api.md has a section for POST /api/v1/sign');
});

test('every route the service serves has its section in docs/api.md, with the same scope', () => {
  const missing = [...served.keys()].filter((r) => !documented.has(r));
  assert.deepEqual(missing, [], `routes without a section in docs/api.md: ${missing.join(', ')}`);
  for (const [route, scope] of documented) {
    const op = served.get(route);
    if (!op || scope === undefined) continue;
    assert.deepEqual(op.security?.[0]?.apiKey, [scope], `${route}: docs/api.md says scope ${scope}`);
  }
});

test('every route docs/api.md documents is served', () => {
  const gone = [...documented.keys()].filter((r) => !served.has(r));
  assert.deepEqual(gone, [], `docs/api.md documents routes the service does not have: ${gone.join(', ')}`);
});

test('every error status a route declares is in docs/api.md\'s problem-details table (503: /healthz)', () => {
  const rows = new Set([...doc.matchAll(/^\| (\d{3}) \| `[A-Z_]+`/gm)].map((m) => m[1]!));
  assert.ok(rows.size >= 8, `${rows.size} statuses in the table`);
  for (const [route, op] of served) {
    for (const status of Object.keys(op.responses).filter((s) => Number(s) >= 400)) {
      if (status === '503' && route === 'GET /healthz') assert.match(doc, /`\/healthz`[^\n]*503|503[^\n]*`\/healthz`/);
      else assert.ok(rows.has(status), `${route} answers ${status}, which docs/api.md's status table lacks`);
    }
  }
});

test('every query and header parameter a route declares is named in docs/api.md', () => {
  const text = doc.toLowerCase();
  const missing: string[] = [];
  for (const [route, op] of served) {
    for (const p of op.parameters ?? []) {
      if (p.in !== 'path' && !text.includes(p.name.toLowerCase())) missing.push(`${route} ${p.in} ${p.name}`);
    }
  }
  assert.deepEqual(missing, [], `parameters missing from docs/api.md: ${missing.join(', ')}`);
});
