import { XRedisError } from '@x/redis-core';

/**
 * `wait` ran out of `timeoutMs` before the event was signalled. The wait consumed nothing (an
 * AutoResetEvent signal handed to it in flight went back to the next waiter).
 *
 * @example
 * await done.wait({ timeoutMs: 60_000 }).catch((e) => {
 *   if (EventTimeoutError.isInstance(e) && e.code === 'EVENT_TIMEOUT') return retryLater();
 *   throw e;
 * });
 */
export class EventTimeoutError extends XRedisError {
  constructor(
    readonly eventName: string,
    readonly timeoutMs: number,
  ) {
    super('EVENT_TIMEOUT', `event "${eventName}" was not signalled within ${timeoutMs} ms`);
  }
}
