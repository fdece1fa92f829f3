import { InvalidArgumentError } from '@x/redis-core';

/**
 * The right to work on one item, granted by `get` or `take` and ended by `ack` or `release` (or
 * by its expiry on the server's clock). Plain data: it may be stored or sent to another process,
 * which can then ack it through its own `LeasedKeyQueue` on the same queue.
 *
 * @example
 * const { value, lease } = await q.get();
 * console.log(lease.key, lease.fence, lease.deliveries, lease.expiresAt && new Date(lease.expiresAt));
 * await q.ack(lease);
 */
export interface Lease {
  /** The item's key. */
  readonly key: string;
  /** Unique to this lease. */
  readonly token: string;
  /**
   * Grows with every lease of the queue, and never goes backwards (even if the queue's keys were
   * lost): pass it to a downstream store to refuse writes from a lease that was superseded.
   */
  readonly fence: number;
  /** When the lease expires, in server epoch milliseconds, or `null` for a lease without expiry. */
  readonly expiresAt: number | null;
  /**
   * How many times the item has been leased, this lease included (1 on the first delivery). The
   * count survives expiry and release, and restarts when the item leaves the queue.
   */
  readonly deliveries: number;
}

/** Checks that `value` looks like a lease before anything is sent. */
export function assertLease(value: unknown): Lease {
  const lease = value as Partial<Lease> | null;
  if (
    typeof lease !== 'object' ||
    lease === null ||
    typeof lease.key !== 'string' ||
    lease.key === '' ||
    typeof lease.token !== 'string' ||
    !/^[0-9a-f]{8,64}$/.test(lease.token) ||
    typeof lease.fence !== 'number' ||
    !Number.isSafeInteger(lease.fence) ||
    lease.fence < 1
  ) {
    throw new InvalidArgumentError('lease must be a lease returned by get() or take(): { key, token, fence, expiresAt }');
  }
  return lease as Lease;
}
