import { XRedisError } from '@x/redis-core';

/**
 * The key was first used with a different request (its fingerprint differs). Nothing was run and
 * nothing was changed. Over HTTP this is a 422: the client reused a key for another request.
 *
 * @example
 * try { await store.run(key, op, { fingerprint: body }); }
 * catch (e) { if (e instanceof IdempotencyFingerprintMismatchError) reply(422); }
 */
export class IdempotencyFingerprintMismatchError extends XRedisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('IDEMPOTENCY_FINGERPRINT_MISMATCH', message, options);
  }
}

/**
 * A duplicate arrived while the first run of its key was still going, and it could not wait for
 * the result (`waitMs` ran out, or was 0). Retry after `retryAfterMs` at the latest: by then the
 * first run has finished, or its claim has lapsed and the key can be claimed again.
 *
 * @example
 * try { await store.run(key, op, { waitMs: 0 }); }
 * catch (e) { if (e instanceof IdempotencyInProgressError) setTimeout(retry, Math.min(e.retryAfterMs, 1000)); }
 */
export class IdempotencyInProgressError extends XRedisError {
  /** Time left on the running claim when last seen, in ms: the longest a retry must wait. */
  readonly retryAfterMs: number;

  constructor(message: string, retryAfterMs: number, options?: { cause?: unknown }) {
    super('IDEMPOTENCY_IN_PROGRESS', message, options);
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * `complete` or `fail` came from a worker whose claim is no longer its own: the lease ran out and
 * another worker claimed the key (or `set` overwrote it). Its result was not stored; the new
 * owner's stands. In `run`, it is thrown after the operation finished; the operation's `signal`
 * was aborted with it as soon as the loss was noticed.
 *
 * @example
 * try { await store.complete(key, claim.token, result); }
 * catch (e) { if (e instanceof IdempotencyLeaseLostError) log.warn('another worker took over', key); }
 */
export class IdempotencyLeaseLostError extends XRedisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('IDEMPOTENCY_LEASE_LOST', message, options);
  }
}
