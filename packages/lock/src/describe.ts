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

/** A lock's live state, as an operator sees it. */
export interface LockDescription {
  kind: 'lock';
  name: string;
  /** Server time of the read, epoch ms. */
  now: number;
  locked: boolean;
  /** The holder (token, fence, lease expiry), or null when free. */
  holder: DescribedHolder | null;
  /** The last fence handed out (null once the keys expired). */
  fence: number | null;
  /** Queued waiters in order; `alive: false` marks one whose process died in the queue. */
  waiters: DescribedWaiter[];
}

async function describeLock(client: RedisClientLike, name: string, options: DescribeOptions = {}): Promise<LockDescription | null> {
  const ks = keyspace(assertPrefix(options.prefix ?? 'x'), 'lock', assertName('name', name));
  const state = await describeGrantQueue(client, ks, 1);
  if (!state) return null;
  const holder = state.holders[0] ?? null;
  return { kind: 'lock', name, now: state.now, locked: holder !== null, holder, fence: state.fence, waiters: state.waiters };
}

/**
 * The live state of the lock `name` in one round trip (holder, fence, waiters, server time), or
 * `null` when it holds nothing; `describe.list` finds the locks under a prefix with `SCAN` on
 * every master. Read-only: it changes nothing, not even expired leases.
 *
 * @example
 * import { describe } from '@x/lock';
 * const locks = await describe.list(client, { prefix: 'x' });
 * const orders = await describe(client, 'orders', { prefix: 'x' });
 * if (orders?.holder) console.log('held until', new Date(orders.holder.expiresAt));
 */
export const describe: Describe<LockDescription> = Object.assign(describeLock, {
  async list(client: RedisClientLike, options: ListOptions = {}) {
    const names = await scanNames(client, options.prefix ?? 'x', 'lock', ['holders', 'queue', 'meta'], { limit: options.limit });
    return names.map((name) => ({ name }));
  },
});

/**
 * An operator's action: releases the lock held under `token` (the holder's next renewal fails and
 * its signal aborts; the next waiter gets the lock, with a higher fence). Throws `XRedisError`
 * `NOT_HELD` when the token holds nothing.
 *
 * @example
 * await releaseByToken(client, 'orders', token, { prefix: 'x' });
 */
export async function releaseByToken(client: RedisClientLike, name: string, token: string, options: DescribeOptions = {}): Promise<void> {
  const ks = keyspace(assertPrefix(options.prefix ?? 'x'), 'lock', assertName('name', name));
  await releaseGrantByToken(client, ks, 1, token);
}

/**
 * An operator's action: removes a waiter whose process died in the queue (`alive: false` in
 * {@link describe}). Throws `XRedisError` `WAITER_ALIVE` for a live one.
 *
 * @example
 * await dropDeadWaiter(client, 'orders', token, { prefix: 'x' });
 */
export async function dropWaiter(client: RedisClientLike, name: string, token: string, options: DescribeOptions = {}): Promise<void> {
  const ks = keyspace(assertPrefix(options.prefix ?? 'x'), 'lock', assertName('name', name));
  await dropDeadWaiter(client, ks, 1, token);
}
