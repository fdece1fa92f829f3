import { XRedisError } from '@x/redis-core';

/**
 * The lock is not held by this handle: its lease expired or passed to another holder. Thrown by
 * `release`, `extend` and `assertHeld`, and the reason of `handle.signal` once the lease is lost.
 *
 * @example
 * try { await held.release(); }
 * catch (e) { if (LockNotHeldError.isInstance(e)) reportLostLease(e); }
 */
export class LockNotHeldError extends XRedisError {
  constructor(readonly lockName: string, detail: string) {
    super('LOCK_NOT_HELD', `lock "${lockName}" is not held${detail ? `: ${detail}` : ''}`);
  }
}

/**
 * `acquire` waited `timeoutMs` without getting the lock. Nothing is held and the wait left the queue.
 *
 * @example
 * await lock.acquire({ timeoutMs: 1_000 }).catch((e) => { if (e.code === 'LOCK_TIMEOUT') return null; throw e; });
 */
export class LockTimeoutError extends XRedisError {
  constructor(readonly lockName: string, readonly timeoutMs: number) {
    super('LOCK_TIMEOUT', `lock "${lockName}" was not acquired within ${timeoutMs} ms`);
  }
}
