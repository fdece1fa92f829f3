import { XRedisError } from '@x/redis-core';

/**
 * `put` with `ifInFlight: 'reject'` found the key leased to a consumer. Nothing was changed.
 * Put again later, or use `'update'` / `'buffer'`.
 *
 * @example
 * try { await q.put('k', v, { ifInFlight: 'reject' }); }
 * catch (e) { if (e instanceof KeyAlreadyInFlightError) console.log(`${e.key} is being worked on`); }
 */
export class KeyAlreadyInFlightError extends XRedisError {
  /** The key that is in flight. */
  readonly key: string;

  constructor(key: string, options?: { cause?: unknown }) {
    super('KEY_ALREADY_IN_FLIGHT', `key ${JSON.stringify(key)} is in flight`, options);
    this.key = key;
  }
}

/**
 * The lease is not the current lease of its key: it was never granted, was released, expired (its
 * item went back to the queue and may have been leased again), or was returned by `close()`.
 * Nothing was changed; the work done under the lease may be repeated by another consumer.
 *
 * @example
 * try { await q.ack(lease); }
 * catch (e) { if (e instanceof InvalidLeaseError) log('too late: the item was handed out again'); }
 */
export class InvalidLeaseError extends XRedisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_LEASE', message, options);
  }
}

/**
 * The lease was acknowledged already (`ack`, `release` or `extend` after an `ack`). The item is
 * gone from the queue; nothing was changed.
 *
 * @example
 * await q.ack(lease);
 * await q.ack(lease); // throws LeaseAlreadyAcknowledgedError
 */
export class LeaseAlreadyAcknowledgedError extends XRedisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('LEASE_ALREADY_ACKNOWLEDGED', message, options);
  }
}

/**
 * This queue instance was closed with `close()`; create a new instance to go on.
 *
 * @example
 * await q.close();
 * await q.put('k', v); // throws QueueClosedError
 */
export class QueueClosedError extends XRedisError {
  constructor(message = 'the queue is closed', options?: { cause?: unknown }) {
    super('QUEUE_CLOSED', message, options);
  }
}

/**
 * `get` or `take` found nothing within `timeoutMs`. Nothing was taken.
 *
 * @example
 * try { await q.get({ timeoutMs: 1_000 }); }
 * catch (e) { if (e instanceof QueueTimeoutError) return; }
 */
export class QueueTimeoutError extends XRedisError {
  /** The total time waited, as asked. */
  readonly timeoutMs: number;

  constructor(what: string, timeoutMs: number, options?: { cause?: unknown }) {
    super('QUEUE_TIMEOUT', `${what} found nothing within ${timeoutMs} ms`, options);
    this.timeoutMs = timeoutMs;
  }
}
