import type { Target, TestClient } from '@x/testing';
import type { NodeRedisLike, RedisClientLike } from '@x/redis-core';
import type { RateLimitAlgorithm, RateLimitDecision, RateLimiter } from '../src';

export const ALGORITHMS: RateLimitAlgorithm[] = ['gcra', 'token-bucket', 'fixed-window', 'sliding-window'];

/** Every key under `prefix` on the target (every master of the cluster). */
export async function keysUnder(client: TestClient, target: Target, prefix: string): Promise<string[]> {
  const pattern = `${prefix}:*`;
  if (target === 'standalone') return (await client.keys(pattern)).sort();
  const cluster = client as unknown as { masters: unknown[]; nodeClient(node: unknown): TestClient | Promise<TestClient> };
  const all: string[] = [];
  for (const master of cluster.masters) {
    const node = await cluster.nodeClient(master);
    all.push(...(await node.keys(pattern)));
  }
  return all.sort();
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Charges the key to its limit and returns the refusal that follows. A fixed window may roll over
 * between the two calls on a loaded machine: then it charges again, so the refusal is certain.
 */
export async function fill(limiter: RateLimiter, key: string): Promise<RateLimitDecision> {
  const cost = Math.min(...limiter.limits.map((l) => l.limit));
  for (let i = 0; i < 10; i++) {
    await limiter.limit(key, { cost });
    const next = await limiter.limit(key);
    if (!next.allowed) return next;
  }
  throw new Error(`could not fill ${key}`);
}

export const HOUR = 3_600_000;

/** The client, counting the scripts sent through it. */
export function counting(client: TestClient): { client: RedisClientLike; scripts: () => number } {
  let n = 0;
  const c = client as unknown as NodeRedisLike;
  const wrapped = Object.create(client) as NodeRedisLike;
  wrapped.evalSha = (sha, options) => {
    n += 1;
    return c.evalSha(sha, options);
  };
  wrapped.eval = (source, options) => {
    n += 1;
    return c.eval(source, options);
  };
  return { client: wrapped, scripts: () => n };
}
