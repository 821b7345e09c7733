import { z } from 'zod';

/**
 * The shape of `.dstack/workflows.yaml` (seeds 000 and 001), one strict schema per provider.
 * The loader validates with these and `dstack schema` prints them as JSON Schema, so editors and
 * the loader can never disagree.
 */

const SIZE = /^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$/i;
export const size = z
  .union([z.number().positive(), z.string().regex(SIZE, 'a size such as 512MB or 32GB')])
  .describe('A size such as `512MB` or `32GB`; a plain number is megabytes.');

const pathEntry = z.union([
  z.string().min(1),
  z.strictObject({ path: z.string().min(1).describe('A path relative to the working directory.') }),
]);

const scalar = z.union([z.string(), z.number(), z.boolean()]);
const environment = z
  .union([z.record(z.string(), scalar), z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*=/, 'NAME=VALUE'))])
  .describe('Environment variables: a map, or a list of `NAME=VALUE`.');

const gpu = z.union([
  z.number().int().nonnegative(),
  z.strictObject({
    count: z.number().int().nonnegative().optional().describe('How many GPUs (default 1).'),
    name: z.string().optional().describe('A GPU model, e.g. `V100` or `A100`.'),
    memory: size.optional().describe('The least memory each GPU must have.'),
  }),
]);

/** A label of a runner agent (`resources.labels`, `dstack run --label`, `dstack-agent --labels`). */
export const agentLabel = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, `_`, `.` and `-`');

export const resources = z
  .strictObject({
    cpu: z.number().positive().optional().describe('The number of CPUs the job needs.'),
    memory: size.optional().describe('The memory the job needs, e.g. `32GB`.'),
    gpu: gpu.optional().describe('A GPU count, or `{count, name, memory}`.'),
    shm_size: size.optional().describe('Shared memory size, e.g. `8GB`.'),
    interruptible: z.boolean().optional().describe('Whether the job may be stopped and submitted again.'),
    labels: z
      .array(agentLabel)
      .optional()
      .describe('Labels the runner agent must have (`dstack-agent --labels`), e.g. `[a100, nvme]`.'),
  })
  .describe('The hardware the job needs.');

/** A shell command; `- true` or `- 42` in YAML are not strings, but mean the command all the same. */
const command = z.union([z.string(), z.number(), z.boolean()]).transform(String);

const port = z.union([z.number().int().min(1).max(65535), z.string().regex(/^\d{1,5}$/, 'a port number')]);

/** A branch filter of `on.push.branches`: a glob (`*` within a path segment, `**` across them, `?`), `!` in front excludes. */
const branchPattern = z.string().min(1).regex(/^!?[^\s!]/, 'a branch name or glob such as `main` or `release/*`');

/** `on:` — what starts the workflow besides `dstack run` and `/dstack run` (seed: GitHub Actions' syntax, push only). */
export const triggers = z
  .union([
    z.literal('push'),
    z.array(z.literal('push')).min(1),
    z.strictObject({
      push: z
        .strictObject({
          branches: z.array(branchPattern).min(1).optional().describe('Branches (globs) whose pushes run it; default: every branch.'),
        })
        .nullable()
        .describe('Run on each push to a matching branch, at the pushed commit.'),
    }),
  ])
  .describe('When the GitHub App runs the workflow by itself: `push`, or `{push: {branches: [main, release/*]}}`. `dstack run` ignores it.');

const common = {
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, `_`, `.` and `-`')
    .describe('The name of the workflow.'),
  help: z.string().optional().describe('A one-line description shown by `dstack run --help`.'),
  'depends-on': z
    .array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*(:[A-Za-z0-9][A-Za-z0-9_.-]*)?$/, '`workflow` or `workflow:tag`'))
    .optional()
    .describe('Workflows to run first (`prepare`), or tagged runs to take artifacts from (`prepare:latest`).'),
  on: triggers.optional(),
};

const artifacts = z.array(pathEntry).optional().describe('Folders saved at the end of the job.');
const cache = z.array(pathEntry).optional().describe('Folders restored before the job and saved after it.');
const workingDir = z.string().optional().describe('The folder, relative to the repository, to run in.');
const ports = z.array(port).optional().describe('Ports the job listens on.');
const python = z.union([z.string(), z.number()]).optional().describe('The Python version, e.g. `3.10`.');

/** Keys every provider that runs code has. */
const jobKeys = {
  environment: environment.optional(),
  working_dir: workingDir,
  artifacts,
  cache,
  resources: resources.optional(),
};

export const bashWorkflow = z.strictObject({
  ...common,
  provider: z.literal('bash'),
  commands: z.array(command).min(1).describe('Commands run in one shell, stopping at the first failure.'),
  python,
  env: environment.optional(),
  ports,
  ...jobKeys,
});

export const pythonWorkflow = z.strictObject({
  ...common,
  provider: z.literal('python'),
  script: z.string().min(1).describe('The Python script with its arguments.'),
  requirements: z
    .union([z.string(), z.array(z.string())])
    .optional()
    .describe('A requirements file, or a list of packages.'),
  python,
  ...jobKeys,
});

export const dockerWorkflow = z.strictObject({
  ...common,
  provider: z.literal('docker'),
  image: z.string().min(1).describe('The Docker image.'),
  commands: z.array(command).optional().describe('Commands run by `entrypoint` in the image (default `/bin/sh -c`, one shell, stopping at the first failure); an entrypoint that is no shell gets them as they are, one a line.'),
  entrypoint: z.union([z.string(), z.array(z.string())]).optional().describe("Overrides the image's entrypoint."),
  registry_auth: z
    .strictObject({
      username: z.string().describe('The registry user.'),
      password: z.string().describe('The password or token, typically `${{ secrets.NAME }}`.'),
    })
    .optional()
    .describe('Credentials for a private registry.'),
  ports,
  ...jobKeys,
});

export const curlWorkflow = z.strictObject({
  ...common,
  provider: z.literal('curl'),
  url: z.string().url().describe('The URL of the file to download.'),
  output: z.string().min(1).describe('The path to store the file at.'),
  artifacts,
});

/** `provider: {repo, name, ref}`: a provider defined in another repository (seed 001). */
export const customProviderRef = z
  .strictObject({
    repo: z.string().min(1).describe('The repository that defines the provider: any git URL, or a local path.'),
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, `_`, `.` and `-`')
      .describe("The provider's name: `providers/NAME.yaml` in that repository."),
    ref: z.string().min(1).optional().describe("A tag, branch or commit; default: the repository's default branch."),
  })
  .describe('A provider from another repository.');

/** A workflow that uses a custom provider: its own keys, and the provider's inputs beside them. */
export const customWorkflow = z
  .object({
    ...common,
    provider: customProviderRef,
    artifacts,
    cache,
    resources: resources.optional(),
  })
  .catchall(z.unknown().describe("An input of the provider, e.g. `model: bert-base`."));

/** The keys of a custom-provider workflow that are its own; every other key is an input. */
export const CUSTOM_OWN_KEYS = ['name', 'help', 'provider', 'depends-on', 'on', 'artifacts', 'cache', 'resources'] as const;

export const INPUT_TYPES = ['string', 'integer', 'number', 'boolean'] as const;

/** `providers/NAME.yaml` in a provider repository. */
export const providerFile = z.strictObject({
  help: z.string().optional().describe('What the provider does, in one line.'),
  inputs: z
    .record(
      z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, 'letters, digits, `_` and `-`'),
      z.strictObject({
        type: z.enum(INPUT_TYPES).optional().describe('string (default), integer, number or boolean.'),
        required: z.boolean().optional().describe('Whether the workflow must set it (when it has no default).'),
        default: z.union([z.string(), z.number(), z.boolean()]).optional(),
        help: z.string().optional(),
      }),
    )
    .optional()
    .describe('The keys a workflow using the provider sets, used as `${{ inputs.KEY }}`.'),
  workflow: z
    .record(z.string(), z.unknown())
    .describe('A workflow body in one of the built-in providers (bash, python, docker, curl).'),
});
export type ProviderFile = z.infer<typeof providerFile>;

export const PROVIDERS = {
  bash: bashWorkflow,
  python: pythonWorkflow,
  docker: dockerWorkflow,
  curl: curlWorkflow,
} as const;

export type ProviderName = keyof typeof PROVIDERS;
export const PROVIDER_NAMES = Object.keys(PROVIDERS) as ProviderName[];

export type BashSpec = z.infer<typeof bashWorkflow>;
export type PythonSpec = z.infer<typeof pythonWorkflow>;
export type DockerSpec = z.infer<typeof dockerWorkflow>;
export type CurlSpec = z.infer<typeof curlWorkflow>;
export type CustomSpec = z.infer<typeof customWorkflow>;
export type WorkflowSpec = BashSpec | PythonSpec | DockerSpec | CurlSpec;

const variableValue = z.union([z.string(), z.number(), z.boolean(), z.null()]);
export const variablesFile = z.strictObject({
  variables: z
    .record(z.string(), z.record(z.string(), variableValue).nullable())
    .describe('Per workflow (by name) or `global`: variable names and their default values.'),
});

export const workflowsFile = z.strictObject({
  workflows: z
    .array(z.union([bashWorkflow, pythonWorkflow, dockerWorkflow, curlWorkflow, customWorkflow]))
    .describe('The workflows of this repository.'),
});

/** The JSON Schema of a workflows file, for editors (`dstack schema`). */
export function workflowsJsonSchema(): Record<string, unknown> {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'dstack workflows (.dstack/workflows.yaml, .dstack/workflows/*.yaml)',
    ...z.toJSONSchema(workflowsFile, { target: 'draft-2020-12', io: 'input' }),
  };
}
