/**
 * The OpenAPI 3.1 document, written from the route table (routes.ts) and its zod
 * schemas. Named schemas (meta id) go to components/schemas and are referenced.
 */
import { z } from 'zod';
import { Problem } from './schemas.ts';
import type { RouteSpec } from './routes.ts';

type Json = Record<string, unknown>;

export function buildOpenApiDocument(routes: readonly RouteSpec[], info: { version: string }): Json {
  // Every schema with a meta id becomes a component; references between them are $refs.
  const uri = (id: string) => `#/components/schemas/${id}`;
  const all = z.toJSONSchema(z.globalRegistry, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any', uri });
  const components: Record<string, Json> = {};
  for (const [id, schema] of Object.entries(all.schemas)) {
    const { $schema: _s, $id: _i, ...rest } = schema as Json;
    components[id] = rest;
  }
  const ref = (schema: z.ZodType): Json => {
    const id = z.globalRegistry.get(schema)?.id;
    if (id) return { $ref: uri(id) };
    const { $schema: _s, ...rest } = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as Json;
    return rest;
  };
  const parametersOf = (object: z.ZodObject | undefined, where: 'path' | 'query' | 'header'): Json[] => {
    if (!object) return [];
    const id = z.globalRegistry.get(object)?.id;
    const schema = (id ? components[id] : z.toJSONSchema(object, { target: 'draft-2020-12', io: 'input' })) as { properties?: Record<string, Json>; required?: string[] };
    return Object.entries(schema.properties ?? {}).map(([name, s]) => {
      const { description, ...rest } = s;
      return { name, in: where, required: where === 'path' || (schema.required ?? []).includes(name), ...(description ? { description } : {}), schema: rest };
    });
  };
  const paths: Record<string, Json> = {};
  for (const r of routes) {
    const op: Json = { operationId: r.operationId, summary: r.summary, description: r.description };
    if (r.scope) op.security = [{ apiKey: [r.scope] }];
    const parameters = [...parametersOf(r.params, 'path'), ...parametersOf(r.query, 'query'), ...parametersOf(r.headers, 'header')];
    if (parameters.length) op.parameters = parameters;
    if (r.body) {
      const content = Object.fromEntries(Object.entries(r.body.content).map(([type, schema]) => [type, { schema: schema ? ref(schema) : { type: 'string', contentMediaType: type } }]));
      op.requestBody = { required: true, description: r.body.description, content };
    }
    op.responses = Object.fromEntries(Object.entries(r.responses).map(([status, spec]) => {
      const schema = spec.contentType === 'application/problem+json' ? ref(Problem) : spec.schema ? ref(spec.schema) : { type: 'string' };
      return [status, { description: spec.description, ...(spec.contentType ? { content: { [spec.contentType]: { schema } } } : {}) }];
    }));
    (paths[r.path] ??= {})[r.method] = op;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Kakitome signing service', version: info.version, description: 'S/MIME signing, verification, encryption and decryption over HTTP. See docs/api.md.' },
    servers: [{ url: '/' }],
    paths,
    components: {
      schemas: components,
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An API key from `kakitome tenant key NAME` (kk_<id>_<secret>). Scopes: sign, verify, admin.' } },
    },
  };
}
