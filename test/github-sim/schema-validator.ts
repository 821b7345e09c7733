import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

// ajv-formats is CommonJS with a default export: under NodeNext its namespace is the module.
const addFormats = ((addFormatsModule as any).default ?? addFormatsModule) as (ajv: Ajv) => Ajv;
type Json = any;
const HERE = path.dirname(fileURLToPath(import.meta.url));

/**
 * OpenAPI 3.0 `nullable: true` as JSON Schema: ajv's own `nullable` only works beside `type`,
 * while GitHub's description also puts it beside `allOf`/`$ref` and on enums whose list omits
 * `null` (a known quirk: `"enum": ["success", …], "nullable": true` allows null).
 */
export function openapi30ToJsonSchema(node: Json): Json {
  if (Array.isArray(node)) return node.map(openapi30ToJsonSchema);
  if (node === null || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'nullable' || k === 'discriminator') continue;
    out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as Json).map(([p, s]) => [p, openapi30ToJsonSchema(s)])) : openapi30ToJsonSchema(v);
  }
  if (node.nullable !== true) return out;
  if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
  if (typeof out.type === 'string') return { ...out, type: [out.type, 'null'] };
  return { anyOf: [out, { type: 'null' }] };
}

function rewriteRefs(node: Json, base: string): Json {
  if (Array.isArray(node)) return node.map((n) => rewriteRefs(n, base));
  if (node === null || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) out[k] = k === '$ref' && typeof v === 'string' && v.startsWith('#') ? base + v : rewriteRefs(v, base);
  return out;
}

function newAjv(): Ajv {
  // strict: false because GitHub's descriptions carry OpenAPI-only keywords (readOnly, x-*).
  const ajv = new Ajv({ strict: false, allErrors: true, logger: false });
  addFormats(ajv);
  // Git lets any string be an email (tests use `t@x`), and GitHub passes it on as is.
  ajv.addFormat('email', /^[^\s@]+@[^\s@]+$/);
  return ajv;
}

function describe(validate: ValidateFunction): string {
  return (validate.errors ?? []).slice(0, 30).map((e) => `${e.instancePath || '(root)'} ${e.message}${e.params && 'allowedValues' in e.params ? ` ${JSON.stringify(e.params.allowedValues)}` : ''}`).join('; ');
}

/** A problem found by the validator: null when the value is valid. */
export type ValidationResult = string | null;

/**
 * Validates requests and responses against openapi-subset.json, and webhook payloads against
 * webhooks-subset.json: both generated from GitHub's official descriptions by
 * generate-openapi-subset.ts. Compiled schemas are cached per operation, status and media type.
 */
export class SchemaValidator {
  readonly rest: Json;
  readonly webhooks: Json;
  private readonly restAjv = newAjv();
  private readonly hooksAjv = newAjv();
  private readonly cache = new Map<string, ValidateFunction>();
  private readonly operations = new Map<string, Json>();

  constructor(rest: Json = readJson('openapi-subset.json'), webhooks: Json = readJson('webhooks-subset.json')) {
    this.rest = rest;
    this.webhooks = webhooks;
    this.restAjv.addSchema({ $id: 'rest', components: openapi30ToJsonSchema(rest.components) });
    // The webhooks description is OpenAPI 3.1: its schemas are JSON Schema already.
    this.hooksAjv.addSchema({ $id: 'hooks', components: webhooks.components });
    for (const methods of Object.values<Json>(rest.paths)) for (const op of Object.values<Json>(methods)) this.operations.set(op.operationId, op);
  }

  operation(operationId: string): Json {
    const op = this.operations.get(operationId);
    if (!op) throw new Error(`operation ${operationId} is not in openapi-subset.json`);
    return op;
  }

  /** Follows a `#/components/...` reference of the REST description. */
  resolve(node: Json): Json {
    while (node && typeof node.$ref === 'string') node = node.$ref.split('/').slice(1).reduce((o: Json, k: string) => o?.[k], this.rest);
    return node;
  }

  private compile(key: string, schema: Json, hooks = false): ValidateFunction {
    let fn = this.cache.get(key);
    if (!fn) {
      fn = hooks ? this.hooksAjv.compile(rewriteRefs(schema, 'hooks')) : this.restAjv.compile(rewriteRefs(openapi30ToJsonSchema(schema), 'rest'));
      this.cache.set(key, fn);
    }
    return fn;
  }

  /** The JSON request body's schema of an operation, or null when it takes none (or not JSON). */
  requestSchema(operationId: string): Json | null {
    return this.resolve(this.operation(operationId).requestBody)?.content?.['application/json']?.schema ?? null;
  }

  validateRequest(operationId: string, body: unknown): ValidationResult {
    const schema = this.requestSchema(operationId);
    if (!schema) return null;
    const fn = this.compile(`req ${operationId}`, schema);
    return fn(body) ? null : describe(fn);
  }

  /**
   * Checks that `status` is one the operation declares and that a JSON body fits its schema.
   * Error statuses an operation does not list (401, 429, 5xx: every route can answer them) must
   * still be GitHub's error shape.
   */
  validateResponse(operationId: string, status: number, body: unknown, mediaType = 'application/json'): ValidationResult {
    const declared = this.resolve(this.operation(operationId).responses[String(status)]);
    if (!declared) {
      if (status < 400) return `status ${status} is not a response of ${operationId}`;
      const fn = this.compile('basic-error', { $ref: '#/components/schemas/basic-error' });
      return this.rest.components.schemas['basic-error'] && !fn(body) ? `error body: ${describe(fn)}` : null;
    }
    if (!declared.content) return body === undefined || body === null || body === '' ? null : `status ${status} of ${operationId} has no body`;
    const schema = declared.content[mediaType]?.schema;
    if (!schema) return mediaType === 'application/json' ? `status ${status} of ${operationId} is not JSON` : null;
    const fn = this.compile(`res ${operationId} ${status} ${mediaType}`, schema);
    return fn(body) ? null : describe(fn);
  }

  webhookNames(): string[] {
    return Object.keys(this.webhooks.webhooks);
  }

  validateWebhook(name: string, payload: unknown): ValidationResult {
    const hook = this.webhooks.webhooks[name];
    if (!hook) return `webhook ${name} is not in webhooks-subset.json`;
    const fn = this.compile(`hook ${name}`, hook.schema, true);
    return fn(payload) ? null : describe(fn);
  }
}

function readJson(name: string): Json {
  return JSON.parse(fs.readFileSync(path.join(HERE, name), 'utf8'));
}
