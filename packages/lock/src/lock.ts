import {
  GrantQueue,
  assertDurationMs,
  assertName,
  assertPrefix,
  assertSignal,
  assertTimeoutMs,
  InvalidArgumentError,
  grantTracing,
  keyspace,
  type LeaseHandle,
  type RedisClientLike,
} from '@x/redis-core';
import { assertClient } from '@x/redis-core';
import { LockNotHeldError, LockTimeoutError } from './errors';

/** Options of a {@link Lock}. */
export interface LockOptions {
  /**
   * How long a crashed holder keeps the lock, in ms (100 to 2^31 − 1). While the process lives
   * and `autoExtend` is on, the lease is renewed at a third of this.
   * @default 30_000
   */
  ttlMs?: number;
  /**
   * Renew held leases automatically. When off, `handle.signal` aborts at the lease's deadline.
   * @default true
   */
  autoExtend?: boolean;
  /**
   * Prefix of every key of this lock (`<prefix>:lock:{<name>}:...`).
   * @default 'x'
   */
  prefix?: string;
}

/** Options of a wait. */
export interface AcquireOptions {
  /** Give up after this many ms with `LockTimeoutError`. @default Infinity */
  timeoutMs?: number;
  /** Give up when this aborts, rejecting with its reason. */
  signal?: AbortSignal;
}

/**
 * A held lock: `token`, a strictly increasing `fence`, `expiresAt` (server epoch ms), a `signal`
 * that aborts when the lease is lost, `extend`, `release`, `assertHeld`, and `await using`.
 *
 * @example
 * await using held = await lock.acquire();
 * await db.write(row, { fence: held.fence });
 */
export type LockHandle = LeaseHandle;

/** What `inspect` reports. */
export interface LockState {
  locked: boolean;
  /** The current holder's fence, or null when free. */
  fence: number | null;
  /** The current lease's expiry (server epoch ms), or null when free. */
  expiresAt: number | null;
  /** Live waiters in the queue. */
  waiters: number;
}

const MIN_TTL_MS = 100;

// x:lock:acquire, tryAcquire, release, extend; x:lock:lease-lost, hand-off.
const tracing = grantTracing('lock', { timeout: 'LOCK_TIMEOUT', notHeld: 'LOCK_NOT_HELD' });

/**
 * Mutual exclusion across processes, with fencing tokens and no silent loss.
 *
 * Waiters queue in FIFO order and are woken by a message, never by polling; a release hands the
 * lock to the head waiter inside the releasing script. Keys of one lock share one hash tag, so it
 * works unchanged on Redis Cluster.
 *
 * @example
 * const lock = new Lock(client, 'outbox-relay-leader', { ttlMs: 30_000 });
 * await using held = await lock.acquire({ timeoutMs: 5_000 });
 * await relay.runOnce({ fence: held.fence, signal: held.signal });
 */
export class Lock {
  readonly name: string;
  readonly #ttlMs: number;
  readonly #autoExtend: boolean;
  readonly #queue: GrantQueue;

  constructor(client: RedisClientLike, name: string, options: LockOptions = {}) {
    assertClient(client);
    this.name = assertName('name', name);
    this.#ttlMs = assertDurationMs('ttlMs', options.ttlMs ?? 30_000, MIN_TTL_MS);
    if (options.autoExtend !== undefined && typeof options.autoExtend !== 'boolean') {
      throw new InvalidArgumentError('autoExtend must be a boolean');
    }
    this.#autoExtend = options.autoExtend ?? true;
    const ks = keyspace(assertPrefix(options.prefix ?? 'x'), 'lock', name);
    this.#queue = new GrantQueue(client, ks, {
      limit: 1,
      notHeld: (detail) => new LockNotHeldError(name, detail),
      timeout: (ms) => new LockTimeoutError(name, ms),
      tracing: { resource: name, ...tracing },
    });
  }

  /**
   * Waits in FIFO order until the lock is granted. Rejects with `LockTimeoutError` after
   * `timeoutMs`, or with the signal's reason; a grant that was in flight when it gave up is
   * handed on. Not re-entrant: a second acquire by the same holder waits like anyone else.
   *
   * @example
   * const held = await lock.acquire({ timeoutMs: 5_000, signal: AbortSignal.timeout(10_000) });
   */
  async acquire(options: AcquireOptions = {}): Promise<LockHandle> {
    const timeoutMs = assertTimeoutMs(options.timeoutMs ?? Infinity);
    const signal = assertSignal(options.signal);
    return this.#queue.acquire(this.#request(), { timeoutMs, signal });
  }

  /**
   * Takes the lock if it is free and nobody waits for it; `null` otherwise. One round trip.
   *
   * @example
   * const held = await lock.tryAcquire();
   * if (!held) return; // somebody else is on it
   */
  async tryAcquire(): Promise<LockHandle | null> {
    return this.#queue.tryAcquire(this.#request());
  }

  /**
   * Acquires, runs `fn` with the handle, releases, and returns what `fn` returned. When `fn`
   * throws, the lock is released and the error rethrown.
   *
   * @example
   * const sent = await lock.withLock((held) => relay.runOnce({ fence: held.fence }), { timeoutMs: 5_000 });
   */
  async withLock<T>(fn: (handle: LockHandle) => Promise<T> | T, options: AcquireOptions = {}): Promise<T> {
    const handle = await this.acquire(options);
    let result: T;
    try {
      result = await fn(handle);
    } catch (error) {
      await handle.release().catch(() => undefined);
      throw error;
    }
    await handle.release();
    return result;
  }

  /**
   * Whether somebody holds the lock right now.
   *
   * @example
   * if (await lock.isLocked()) console.log('busy');
   */
  async isLocked(): Promise<boolean> {
    return (await this.inspect()).locked;
  }

  /**
   * The lock's state in one round trip: `{ locked, fence, expiresAt, waiters }`.
   *
   * @example
   * const { locked, waiters } = await lock.inspect();
   */
  async inspect(): Promise<LockState> {
    const { holders, waiters } = await this.#queue.inspect();
    const holder = holders[0];
    return { locked: holder !== undefined, fence: holder?.fence ?? null, expiresAt: holder?.expiresAt ?? null, waiters };
  }

  #request() {
    return { permits: 1, ttlMs: this.#ttlMs, autoExtend: this.#autoExtend };
  }
}
