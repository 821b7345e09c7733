import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { fixQuirks, OPERATIONS, restSubset, webhooksSubset } from './generate-openapi-subset.js';
import { openapi30ToJsonSchema, SchemaValidator } from './schema-validator.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const read = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));

describe('the OpenAPI subset the sim validates against', () => {
  it('is what generate-openapi-subset.ts makes from the installed @octokit packages', () => {
    const rest = read(path.join(path.dirname(require.resolve('@octokit/openapi/package.json')), 'generated/api.github.com.json'));
    const hooks = read(path.join(path.dirname(require.resolve('@octokit/openapi-webhooks/package.json')), 'generated/api.github.com.json'));
    const examples = read(require.resolve('@octokit/webhooks-examples'));
    // A stale committed file means: run `npx tsx test/github-sim/generate-openapi-subset.ts`.
    expect(read(path.join(here, 'openapi-subset.json'))).toEqual(restSubset(rest));
    expect(read(path.join(here, 'webhooks-subset.json'))).toEqual(webhooksSubset(hooks, examples));
    expect(Object.values(read(path.join(here, 'openapi-subset.json')).paths).flatMap((m) => Object.keys(m as object))).toHaveLength(OPERATIONS.length);
  });

  it('reads OpenAPI 3.0 nullable as null allowed, also on enums that omit null', () => {
    expect(openapi30ToJsonSchema({ type: 'string', enum: ['success', 'failure'], nullable: true })).toEqual({ type: ['string', 'null'], enum: ['success', 'failure', null] });
    expect(openapi30ToJsonSchema({ nullable: true, allOf: [{ $ref: '#/x' }] })).toEqual({ anyOf: [{ allOf: [{ $ref: '#/x' }] }, { type: 'null' }] });
    const v = new SchemaValidator();
    const run = v.validateResponse('checks/get', 200, {});
    expect(run).toMatch(/must have required property 'id'/);
    expect(v.validateResponse('checks/get', 429, { message: 5 })).toMatch(/^error body: \/message must be string/);
    expect(v.validateResponse('checks/get', 201, {})).toBe('status 201 is not a response of checks/get');
    expect(v.validateResponse('repos/delete-release-asset', 204, undefined)).toBeNull();
  });

  it('fixes an account written as Simple User and Enterprise at once', () => {
    expect(fixQuirks({ allOf: [{ title: 'Simple User' }, { title: 'Enterprise' }] })).toEqual({ anyOf: [{ title: 'Simple User' }, { title: 'Enterprise' }] });
  });
});
