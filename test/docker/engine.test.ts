import { describe, expect, it } from 'vitest';
import { connectDocker } from '../../agent/docker/engine.js';

describe('the Docker engine', () => {
  it('connects to the engine that the env it is given names, not the process environment', async () => {
    const env = { DOCKER_HOST: process.env.DOCKER_HOST };
    const saved = process.env.DOCKER_HOST;
    process.env.DOCKER_HOST = 'unix:///nonexistent/docker.sock';
    try {
      const docker = await connectDocker(env);
      expect((await docker.version()).ApiVersion).toBeTruthy();
      await expect(connectDocker({ DOCKER_HOST: 'unix:///nonexistent/other.sock' })).rejects.toThrow(
        /^cannot reach a Docker engine at unix:\/\/\/nonexistent\/other\.sock \(ENOENT\)/,
      );
      await expect(connectDocker({ DOCKER_HOST: 'ssh://box' })).rejects.toThrow(
        "DOCKER_HOST must be unix:///path/to/docker.sock or tcp://HOST:PORT, got 'ssh://box'; fix or unset it",
      );
    } finally {
      process.env.DOCKER_HOST = saved;
    }
  });
});
