import { XRedisError } from '@x/redis-core';

/**
 * `waitFor` waited `timeoutMs` and the key was still over its limit. Nothing was charged.
 *
 * @example
 * const d = await limiter.waitFor('user:42', { timeoutMs: 2_000 }).catch((e) => {
 *   if (RateLimitTimeoutError.isInstance(e) && e.code === 'RATE_LIMIT_TIMEOUT') return null;
 *   throw e;
 * });
 */
export class RateLimitTimeoutError extends XRedisError {
  constructor(
    readonly limiterName: string,
    readonly key: string,
    readonly timeoutMs: number,
  ) {
    super('RATE_LIMIT_TIMEOUT', `rate limiter "${limiterName}": key "${key}" was not admitted within ${timeoutMs} ms`);
  }
}

/**
 * A key of the limiter holds something this package did not write (edited by hand, or by another
 * program under the same prefix). Nothing was changed.
 *
 * @example
 * catch (e) { if (XRedisError.isInstance(e) && e.code === 'CORRUPT_STATE') alertOperators(e); }
 */
export class CorruptStateError extends XRedisError {
  constructor(message: string) {
    super('CORRUPT_STATE', message);
  }
}
