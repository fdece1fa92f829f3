import {
  assertName,
  assertPrefix,
  describeGrantQueue,
  dropDeadWaiter,
  keyspace,
  releaseGrantByToken,
  scanNames,
  type DescribedHolder,
  type DescribedWaiter,
  type Describe,
  type DescribeOptions,
  type ListOptions,
  type RedisClientLike,
} from '@x/redis-core';

/** A semaphore's live state, as an operator sees it. */
export interface SemaphoreDescription {
  kind: 'semaphore';
  name: string;
  /** Server time of the read, epoch ms. */
  now: number;
  /** The limit in force, or null when the semaphore was never created (or its config expired). */
  limit: number | null;
  /** Permits held by live holders. */
  used: number;
  /** Permits free right now (0 while a shrink is still draining). */
  free: number;
  /** The last fence handed out (null once the keys expired). */
  fence: number | null;
  holders: DescribedHolder[];
  /** Queued waiters in order; `alive: false` marks one whose process died in the queue. */
  waiters: DescribedWaiter[];
}

async function describeSemaphore(client: RedisClientLike, name: string, options: DescribeOptions = {}): Promise<SemaphoreDescription | null> {
  const ks = keyspace(assertPrefix(options.prefix ?? 'x'), 'semaphore', assertName('name', name));
  const s = await describeGrantQueue(client, ks, null);
  if (!s) return null;
  const free = s.limit === null ? 0 : Math.max(0, s.limit - s.used);
  return { kind: 'semaphore', name, now: s.now, limit: s.limit, used: s.used, free, fence: s.fence, holders: s.holders, waiters: s.waiters };
}

/**
 * The live state of the semaphore `name` in one round trip (limit, holders, waiters, server
 * time), or `null` when it does not exist; `describe.list` finds the semaphores under a prefix
 * with `SCAN` on every master. Read-only.
 *
 * @example
 * import { describe } from '@x/semaphore';
 * const pool = await describe(client, 'gpu-pool', { prefix: 'x' });
 * console.log(`${pool?.used}/${pool?.limit} in use, ${pool?.waiters.length} waiting`);
 */
export const describe: Describe<SemaphoreDescription> = Object.assign(describeSemaphore, {
  async list(client: RedisClientLike, options: ListOptions = {}) {
    const names = await scanNames(client, options.prefix ?? 'x', 'semaphore', ['config', 'holders', 'queue'], { limit: options.limit });
    return names.map((name) => ({ name }));
  },
});

/**
 * An operator's action: gives back the permits held under `token` (the holder's next renewal
 * fails and its signal aborts; waiters get the permits). Throws `XRedisError` `NOT_HELD` when
 * the token holds nothing.
 *
 * @example
 * await releaseByToken(client, 'gpu-pool', token, { prefix: 'x' });
 */
export async function releaseByToken(client: RedisClientLike, name: string, token: string, options: DescribeOptions = {}): Promise<void> {
  const ks = keyspace(assertPrefix(options.prefix ?? 'x'), 'semaphore', assertName('name', name));
  await releaseGrantByToken(client, ks, null, token);
}

/**
 * An operator's action: removes a waiter whose process died in the queue (`alive: false` in
 * {@link describe}), so the permits it blocked go to the live waiters behind it. Throws
 * `XRedisError` `WAITER_ALIVE` for a live one.
 *
 * @example
 * await dropWaiter(client, 'gpu-pool', token, { prefix: 'x' });
 */
export async function dropWaiter(client: RedisClientLike, name: string, token: string, options: DescribeOptions = {}): Promise<void> {
  const ks = keyspace(assertPrefix(options.prefix ?? 'x'), 'semaphore', assertName('name', name));
  await dropDeadWaiter(client, ks, null, token);
}
