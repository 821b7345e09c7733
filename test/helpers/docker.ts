import { execFileSync } from 'node:child_process';

/** The container test fixtures (test/fixtures/docker/start.sh), from the environment. */
export const IMAGE = process.env.DSTACK_TEST_IMAGE ?? 'dstack-test/busybox:1';
export const PYTHON_IMAGE = process.env.DSTACK_TEST_PYTHON_IMAGE ?? 'dstack-test/python:1';
export const REGISTRY = process.env.DSTACK_TEST_REGISTRY ?? '127.0.0.1:45555';
export const AUTH_REGISTRY = process.env.DSTACK_TEST_AUTH_REGISTRY ?? '127.0.0.1:45556';
export const REGISTRY_USER = process.env.DSTACK_TEST_REGISTRY_USER ?? 'dstack-test';
export const REGISTRY_PASSWORD = process.env.DSTACK_TEST_REGISTRY_PASSWORD ?? 's3cret-pass';

/** Runs the docker CLI against the test engine. */
export function docker(...args: string[]): string {
  return execFileSync('docker', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString().trim();
}

/** The ids of containers with a label (`key=value`), running or not. */
export function containersWithLabel(label: string): string[] {
  return docker('ps', '-a', '-q', '--filter', `label=${label}`).split('\n').filter(Boolean);
}
