import { describe as event } from '@x/event';
import { describe as idempotency } from '@x/idempotency';
import { describe as leasedkeyq } from '@x/leasedkeyq';
import { describe as lock, dropWaiter as dropLockWaiter, releaseByToken as releaseLock } from '@x/lock';
import { describe as quota } from '@x/quota';
import { describe as semaphore, dropWaiter as dropSemaphoreWaiter, releaseByToken as releaseSemaphore } from '@x/semaphore';
import { describe as streams, redrive } from '@x/streams';
import type { RedisClientLike } from '@x/redis-core';

/** A resource as a listing names it (`space` for streams). */
export interface ResourceRef {
  name: string;
  space?: string;
}

/** One primitive package's describer, as the inspector composes it: its own `describe`, nothing else. */
export interface Describer {
  (client: RedisClientLike, name: string, options: { prefix: string; space?: string }): Promise<object | null>;
  list(client: RedisClientLike, options: { prefix: string; limit?: number }): Promise<ResourceRef[]>;
}

/** A package the inspector knows. */
export type PackageName = 'lock' | 'semaphore' | 'event' | 'quota' | 'idempotency' | 'leasedkeyq' | 'streams';

/** The describer of each package. */
export const PACKAGES: Record<PackageName, Describer> = { lock, semaphore, event, quota, idempotency, leasedkeyq, streams };

/** The names of the packages, in the page's order. */
export const PACKAGE_NAMES: readonly PackageName[] = ['lock', 'semaphore', 'event', 'quota', 'idempotency', 'leasedkeyq', 'streams'];

/** An operator's action (only with `allowActions`). */
export type Action =
  | { action: 'release'; package: 'lock' | 'semaphore'; name: string; token: string }
  | { action: 'drop-waiter'; package: 'lock' | 'semaphore'; name: string; token: string }
  | { action: 'redrive'; package: 'streams'; name: string; space?: string; deadId?: string };

/** Runs an action through the package that owns the keys. Returns what it reports (moved dead letters). */
export async function runAction(client: RedisClientLike, prefix: string, a: Action): Promise<number | null> {
  if (a.action === 'release') {
    await (a.package === 'lock' ? releaseLock : releaseSemaphore)(client, a.name, a.token, { prefix });
    return null;
  }
  if (a.action === 'drop-waiter') {
    await (a.package === 'lock' ? dropLockWaiter : dropSemaphoreWaiter)(client, a.name, a.token, { prefix });
    return null;
  }
  return redrive(client, a.name, { prefix, ...(a.space ? { space: a.space } : {}), ...(a.deadId ? { deadId: a.deadId } : {}) });
}
