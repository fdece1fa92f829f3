import { existsSync } from 'node:fs';
import { hasRedisServer, spawnRedisServer } from './process';

/** A Redis for tests: `url` to connect to, `stop` to shut it down (a no-op for REDIS_URL). */
export interface RedisServer {
  url: string;
  /** Where it came from: `env`, `testcontainers` or `redis-server`. */
  source: 'env' | 'testcontainers' | 'redis-server';
  stop(): Promise<void>;
}

/**
 * Starts the Redis the tests use: `REDIS_URL` if set; else a testcontainers Redis where a Docker
 * engine answers; else a `redis-server` from the PATH on a free port; else a clear error.
 */
export async function startRedis(): Promise<RedisServer> {
  const fromEnv = process.env.REDIS_URL;
  if (fromEnv) return { url: fromEnv, source: 'env', stop: async () => undefined };
  if (dockerMayAnswer()) {
    try {
      const { RedisContainer } = await import('@testcontainers/redis');
      const container = await new RedisContainer('redis:7').start();
      return {
        url: container.getConnectionUrl(),
        source: 'testcontainers',
        stop: async () => {
          await container.stop();
        },
      };
    } catch {
      // No working container runtime after all: fall through to a local binary.
    }
  }
  if (hasRedisServer()) {
    const server = await spawnRedisServer();
    return { url: `redis://127.0.0.1:${server.port}`, source: 'redis-server', stop: server.stop };
  }
  throw new Error(
    'No Redis for the tests: set REDIS_URL, start a Docker engine, or put redis-server on the PATH ' +
      '(Debian/Ubuntu: apt-get install -y redis-server; macOS: brew install redis).',
  );
}

function dockerMayAnswer(): boolean {
  return Boolean(process.env.DOCKER_HOST) || existsSync('/var/run/docker.sock');
}
