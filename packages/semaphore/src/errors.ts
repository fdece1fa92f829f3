import { XRedisError } from '@x/redis-core';

/**
 * `acquire` waited `timeoutMs` without getting its permits. Nothing is held and the wait left the
 * queue.
 *
 * @example
 * const permit = await pool.acquire({ timeoutMs: 1_000 }).catch((e) => {
 *   if (SemaphoreTimeoutError.isInstance(e) && e.code === 'SEMAPHORE_TIMEOUT') return null;
 *   throw e;
 * });
 */
export class SemaphoreTimeoutError extends XRedisError {
  constructor(
    readonly semaphoreName: string,
    readonly timeoutMs: number,
  ) {
    super('SEMAPHORE_TIMEOUT', `semaphore "${semaphoreName}": no permit within ${timeoutMs} ms`);
  }
}

/**
 * `create` found the semaphore already created with another limit. Nothing was changed; `limit` is
 * the limit in force.
 *
 * @example
 * try { await Semaphore.create(client, 'gpu-pool', { limit: 5 }); }
 * catch (e) { if (e instanceof SemaphoreLimitMismatchError) console.log(`running with ${e.limit}`); }
 */
export class SemaphoreLimitMismatchError extends XRedisError {
  constructor(
    readonly semaphoreName: string,
    readonly limit: number,
    readonly requested: number,
  ) {
    super(
      'SEMAPHORE_LIMIT_MISMATCH',
      `semaphore "${semaphoreName}" exists with limit ${limit}, not ${requested} (use setLimit to resize it)`,
    );
  }
}

/**
 * The semaphore does not exist: `attach` waited `timeoutMs` for a creator, or the semaphore was
 * destroyed (or expired after `idleTtlMs`) while in use.
 *
 * @example
 * const pool = await Semaphore.attach(client, 'gpu-pool', { timeoutMs: 5_000 }).catch((e) => {
 *   if (SemaphoreNotFoundError.isInstance(e)) return Semaphore.create(client, 'gpu-pool', { limit: 5 });
 *   throw e;
 * });
 */
export class SemaphoreNotFoundError extends XRedisError {
  constructor(
    readonly semaphoreName: string,
    detail: string,
  ) {
    super('SEMAPHORE_NOT_FOUND', `semaphore "${semaphoreName}" does not exist${detail ? `: ${detail}` : ''}`);
  }
}

/**
 * The permit is not held any more: its lease ran out or the semaphore was destroyed. Thrown by
 * `release`, `extend` and `assertHeld`, and the reason of `permit.signal` once the lease is lost.
 *
 * @example
 * try { await permit.release(); }
 * catch (e) { if (PermitNotHeldError.isInstance(e)) log.warn('permit was lost while working', e); }
 */
export class PermitNotHeldError extends XRedisError {
  constructor(
    readonly semaphoreName: string,
    detail: string,
  ) {
    super('PERMIT_NOT_HELD', `permit of semaphore "${semaphoreName}" is not held${detail ? `: ${detail}` : ''}`);
  }
}

/**
 * The `Semaphore` instance was closed: waits still pending were cancelled with this error, and
 * later calls are refused with it.
 *
 * @example
 * process.on('SIGTERM', () => pool.close()); // waiting acquires reject with SemaphoreClosedError
 */
export class SemaphoreClosedError extends XRedisError {
  constructor(readonly semaphoreName: string) {
    super('SEMAPHORE_CLOSED', `semaphore "${semaphoreName}" was closed in this process`);
  }
}
