import { InvalidArgumentError, XRedisError, type ScriptErrorMap } from '@x/redis-core';

/**
 * The resource's `available` quota cannot cover a reservation or a chunk allocation. (A
 * `tryConsume` that does not fit is not an error: it returns `applied: false`.)
 *
 * @example
 * try { await quota.reserve('wallet:1', 50); }
 * catch (e) { if (e instanceof InsufficientQuotaError) askForTopUp(); }
 */
export class InsufficientQuotaError extends XRedisError {
  constructor(message: string) {
    super('INSUFFICIENT_QUOTA', message);
  }
}

/**
 * An idempotency key (or reservation id, lease id, operation id) was used before for another
 * request: another amount, another operation, another lease or owner. Nothing was changed.
 *
 * @example
 * await quota.tryConsume('wallet:1', 5, { idempotencyKey: 'req-1' });
 * await quota.tryConsume('wallet:1', 6, { idempotencyKey: 'req-1' }); // throws IdempotencyConflictError
 */
export class IdempotencyConflictError extends XRedisError {
  constructor(message: string) {
    super('IDEMPOTENCY_CONFLICT', message);
  }
}

/**
 * The reservation's TTL ran out before it was committed; its units went back to `available`.
 *
 * @example
 * try { await quota.commit('wallet:1', hold.reservationId); }
 * catch (e) { if (e instanceof ReservationExpiredError) reserveAgain(); }
 */
export class ReservationExpiredError extends XRedisError {
  constructor(message: string) {
    super('RESERVATION_EXPIRED', message);
  }
}

/**
 * `reserve` was called with the id of a reservation that was already committed.
 *
 * @example
 * await quota.commit('wallet:1', 'order-7');
 * await quota.reserve('wallet:1', 10, { reservationId: 'order-7' }); // throws ReservationAlreadyCommittedError
 */
export class ReservationAlreadyCommittedError extends XRedisError {
  constructor(message: string) {
    super('RESERVATION_ALREADY_COMMITTED', message);
  }
}

/**
 * No reservation with this id can be committed: it was never made, was cancelled, or its receipt
 * is older than `receiptTtlMs`.
 *
 * @example
 * await quota.cancel('wallet:1', id);
 * await quota.commit('wallet:1', id); // throws ReservationNotFoundError
 */
export class ReservationNotFoundError extends XRedisError {
  constructor(message: string) {
    super('RESERVATION_NOT_FOUND', message);
  }
}

/**
 * The chunk lease belongs to another `ownerId`.
 *
 * @example
 * await quota.consumeChunk('wallet:1', lease.leaseId, 1, { ownerId: 'someone-else' }); // throws
 */
export class LeaseOwnershipMismatchError extends XRedisError {
  constructor(message: string) {
    super('LEASE_OWNERSHIP_MISMATCH', message);
  }
}

/**
 * The chunk lease's TTL ran out; what was left of it went back to `available`. An expired lease
 * cannot be used or renewed: allocate a new one.
 *
 * @example
 * try { await quota.renewChunk('wallet:1', leaseId, { ownerId, ttlMs }); }
 * catch (e) { if (e instanceof LeaseExpiredError) lease = await quota.allocateChunk(...); }
 */
export class LeaseExpiredError extends XRedisError {
  constructor(message: string) {
    super('LEASE_EXPIRED', message);
  }
}

/**
 * The chunk lease was released; its remaining units went back to `available`. Thrown by
 * `consumeChunk`, `renewChunk` and `allocateChunk` of that lease id (`releaseChunk` again returns
 * the first release's result).
 *
 * @example
 * await quota.releaseChunk('wallet:1', leaseId, { ownerId });
 * await quota.consumeChunk('wallet:1', leaseId, 1, { ownerId }); // throws LeaseAlreadyReleasedError
 */
export class LeaseAlreadyReleasedError extends XRedisError {
  constructor(message: string) {
    super('LEASE_ALREADY_RELEASED', message);
  }
}

/**
 * No chunk lease with this id exists: it was never allocated, or its receipt is older than
 * `receiptTtlMs`.
 *
 * @example
 * await quota.consumeChunk('wallet:1', 'no-such-lease', 1, { ownerId }); // throws LeaseNotFoundError
 */
export class LeaseNotFoundError extends XRedisError {
  constructor(message: string) {
    super('LEASE_NOT_FOUND', message);
  }
}

/**
 * A key of the resource holds something this package did not write (edited by hand, or by
 * another program under the same prefix). Nothing more was changed.
 *
 * @example
 * catch (e) { if (XRedisError.isInstance(e) && e.code === 'CORRUPT_STATE') alertOperators(e); }
 */
export class CorruptStateError extends XRedisError {
  constructor(message: string) {
    super('CORRUPT_STATE', message);
  }
}

/**
 * The local consumer was closed: its lease was given back, so it hands out nothing more.
 *
 * @example
 * await consumer.close();
 * consumer.tryConsume(1); // throws ConsumerClosedError
 */
export class ConsumerClosedError extends XRedisError {
  constructor(message = 'the local consumer is closed') {
    super('CONSUMER_CLOSED', message);
  }
}

/** Every business error a quota script can return, by code. */
export const QUOTA_ERRORS: ScriptErrorMap = {
  INVALID_ARGUMENT: (detail) => new InvalidArgumentError(detail),
  INSUFFICIENT_QUOTA: (detail) => new InsufficientQuotaError(detail),
  IDEMPOTENCY_CONFLICT: (detail) => new IdempotencyConflictError(detail),
  RESERVATION_EXPIRED: (detail) => new ReservationExpiredError(detail),
  RESERVATION_ALREADY_COMMITTED: (detail) => new ReservationAlreadyCommittedError(detail),
  RESERVATION_NOT_FOUND: (detail) => new ReservationNotFoundError(detail),
  LEASE_OWNERSHIP_MISMATCH: (detail) => new LeaseOwnershipMismatchError(detail),
  LEASE_EXPIRED: (detail) => new LeaseExpiredError(detail),
  LEASE_ALREADY_RELEASED: (detail) => new LeaseAlreadyReleasedError(detail),
  LEASE_NOT_FOUND: (detail) => new LeaseNotFoundError(detail),
  CORRUPT_STATE: (detail) => new CorruptStateError(detail),
};
