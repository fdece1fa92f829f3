/**
 * A resource's balances. `available + reserved + leased + consumed == supplied` always holds.
 *
 * @example
 * const { available, reserved, leased, consumed, supplied } = await quota.getState('wallet:123');
 */
export interface QuotaState {
  resource: string;
  /** Units anyone may take now. */
  available: number;
  /** Units held by pending reservations. */
  reserved: number;
  /** Units still unspent in active chunk leases. */
  leased: number;
  /** Units consumed for good (direct consumes, commits, chunk consumes). */
  consumed: number;
  /** Every unit ever put in (`topUp`, and `setAvailable`'s difference). */
  supplied: number;
  /** Goes up by one with every call that changed the balances. */
  version: number;
}

/**
 * What `tryConsume` and `commit` return.
 *
 * @example
 * const { applied, remaining, operationId } = await quota.tryConsume('wallet:123', 5);
 */
export interface ConsumeResult {
  /** False when `available` could not cover the amount (nothing was taken). */
  applied: boolean;
  /** `available` right after the call. */
  remaining: number;
  /** The operation's id: a replay returns the first call's. */
  operationId: string;
}

/**
 * What `commit` returns: a `ConsumeResult` plus the amount that was consumed.
 *
 * @example
 * const { amount, remaining } = await quota.commit('wallet:123', hold.reservationId, { amount: 3 });
 */
export interface CommitResult extends ConsumeResult {
  /** The amount committed (the whole hold, or the `amount` asked for). */
  amount: number;
}

/**
 * What `topUp` returns.
 *
 * @example
 * const { added, available } = await quota.topUp('wallet:123', 100);
 */
export interface TopUpResult {
  added: number;
  /** `available` right after the call. */
  available: number;
  operationId: string;
}

/**
 * A pending reservation (a hold).
 *
 * @example
 * const { reservationId, expiresAtMs } = await quota.reserve('wallet:123', 10);
 */
export interface Reservation {
  reservationId: string;
  resource: string;
  amount: number;
  /** Server time (epoch ms) at which the hold expires unless committed or cancelled. */
  expiresAtMs: number;
  status: 'pending';
}

/**
 * The state of a chunk lease.
 *
 * @example
 * if ((await quota.getChunk('wallet:123', leaseId))?.status === 'expired') allocateAgain();
 */
export type ChunkStatus = 'active' | 'released' | 'expired';

/**
 * A chunk lease: units taken out of `available` for one owner, until released or expired.
 *
 * @example
 * const lease = await quota.allocateChunk('wallet:123', 100, { ownerId: 'worker-a' });
 */
export interface ChunkLease {
  leaseId: string;
  resource: string;
  ownerId: string;
  /** Units granted to the lease in total. */
  granted: number;
  /**
   * Units not consumed yet. For a released lease: the units given back; for an expired one: the
   * units that went back to `available` when it expired.
   */
  remaining: number;
  /** Server time (epoch ms) of expiry; for a released lease, the time of release. */
  expiresAtMs: number;
  status: ChunkStatus;
}

/**
 * What `consumeChunk` returns.
 *
 * @example
 * const { applied, remaining } = await quota.consumeChunk('wallet:123', leaseId, 5, { ownerId: 'worker-a' });
 */
export interface ChunkConsumeResult {
  /** False when the lease's `remaining` could not cover the amount (nothing was taken). */
  applied: boolean;
  leaseId: string;
  /** The lease's `remaining` right after the call. */
  remaining: number;
  expiresAtMs: number;
}
