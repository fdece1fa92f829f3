import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import {
  GrantQueue,
  InvalidArgumentError,
  assertDurationMs,
  assertInteger,
  assertName,
  assertPrefix,
  assertSignal,
  assertTimeoutMs,
  grantTracing,
  keyspace,
  waitFor,
  type Grant,
  type GrantHolder,
  type Keyspace,
  type LeaseHandle,
  type RedisClientLike,
} from '@x/redis-core';
import { assertClient } from '@x/redis-core';
import {
  PermitNotHeldError,
  SemaphoreClosedError,
  SemaphoreLimitMismatchError,
  SemaphoreNotFoundError,
  SemaphoreTimeoutError,
} from './errors';
import { MAX_LIMIT, semaphoreScripts, type SemaphoreScripts } from './scripts';

/** Options of {@link Semaphore.create}. */
export interface SemaphoreCreateOptions {
  /** Number of permits, 1 to 1,000,000. The first creator sets it; see {@link Semaphore.setLimit}. */
  limit: number;
  /**
   * How long the permits of a crashed holder stay taken, in ms (100 to 2^31 − 1). While this
   * process lives, held permits are renewed at a third of it.
   * @default 30_000
   */
  leaseTtlMs?: number;
  /**
   * Let every key of the semaphore expire once nobody has used it for this many ms (held
   * permits and waiting acquires count as use). Set by the first creator, like `limit`.
   * @default undefined (the semaphore never expires)
   */
  idleTtlMs?: number;
  /**
   * Prefix of every key (`<prefix>:semaphore:{<name>}:...`).
   * @default 'x'
   */
  prefix?: string;
}

/** Options of {@link Semaphore.attach}. */
export interface SemaphoreAttachOptions {
  /** How long to wait for a creator before `SemaphoreNotFoundError` (`Infinity` allowed). @default 60_000 */
  timeoutMs?: number;
  /** Stop waiting when this aborts, rejecting with its reason. */
  signal?: AbortSignal;
  /** As for {@link SemaphoreCreateOptions.leaseTtlMs}. @default 30_000 */
  leaseTtlMs?: number;
  /** As for {@link SemaphoreCreateOptions.prefix}. @default 'x' */
  prefix?: string;
}

/** Options of {@link Semaphore.acquire}. */
export interface SemaphoreAcquireOptions {
  /** Permits to take at once, from 1 to the limit. @default 1 */
  permits?: number;
  /** Give up after this many ms with `SemaphoreTimeoutError`. @default Infinity */
  timeoutMs?: number;
  /** Give up when this aborts, rejecting with its reason. */
  signal?: AbortSignal;
}

/** Options of {@link Semaphore.tryAcquire}. */
export interface SemaphoreTryAcquireOptions {
  /** Permits to take at once, from 1 to the limit. @default 1 */
  permits?: number;
}

/**
 * Held permits: `token`, `permits`, a strictly increasing `fence`, `expiresAt` (server epoch ms),
 * a `signal` that aborts when the lease is lost, `extend`, `release`, `assertHeld`, and
 * `await using`.
 *
 * @example
 * await using permit = await pool.acquire({ permits: 2 });
 * await render(job, { signal: permit.signal, fence: permit.fence });
 */
export type Permit = LeaseHandle;

/**
 * A live holder as {@link Semaphore.holders} lists it.
 *
 * @example
 * const busy: PermitHolder[] = await pool.holders();
 * console.log(busy.map((h) => `${h.permits} until ${new Date(h.expiresAt).toISOString()}`));
 */
export type PermitHolder = GrantHolder;

const MIN_LEASE_TTL_MS = 100;
const DEFAULT_LEASE_TTL_MS = 30_000;
/** Re-check period of `attach` in case the creation message was lost. */
const ATTACH_RECHECK_MS = 5_000;

/** The controller whose signal every pending wait of an instance listens to (any number of them). */
function abortController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}

interface Setup {
  client: RedisClientLike;
  name: string;
  ks: Keyspace;
  leaseTtlMs: number;
  scripts: SemaphoreScripts;
  queue: GrantQueue;
}

// x:semaphore:acquire, tryAcquire, release, extend; x:semaphore:lease-lost, hand-off.
const tracing = grantTracing('semaphore', { timeout: 'SEMAPHORE_TIMEOUT', notHeld: 'PERMIT_NOT_HELD' });

function setup(
  client: RedisClientLike,
  name: string,
  options: { leaseTtlMs?: number | undefined; prefix?: string | undefined },
  requestedLimit = NaN,
): Setup {
  assertClient(client);
  assertName('name', name);
  const prefix = assertPrefix(options.prefix ?? 'x');
  const leaseTtlMs = assertDurationMs('leaseTtlMs', options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS, MIN_LEASE_TTL_MS);
  const ks = keyspace(prefix, 'semaphore', name);
  const scripts = semaphoreScripts({
    SEMAPHORE_LIMIT_MISMATCH: (detail) => new SemaphoreLimitMismatchError(name, Number(detail), requestedLimit),
    NOT_FOUND: (detail) => new SemaphoreNotFoundError(name, detail),
  });
  // The limit lives in the config hash (limit: null), where create and setLimit put it.
  const queue = new GrantQueue(client, ks, {
    limit: null,
    notHeld: (detail) => new PermitNotHeldError(name, detail),
    timeout: (ms) => new SemaphoreTimeoutError(name, ms),
    notFound: (detail) => new SemaphoreNotFoundError(name, detail),
    tracing: { resource: name, ...tracing },
  });
  return { client, name, ks, leaseTtlMs, scripts, queue };
}

function idleOf(value: unknown): number | null {
  const n = Number(value);
  return value === '' || value === null || value === undefined || !Number.isFinite(n) ? null : n;
}

/**
 * N permits shared by many processes, handed out in FIFO order, and never leaked by a crash.
 *
 * Permits are leases: a holder that dies gives them back within `leaseTtlMs`, and a live one
 * renews them on its own. Waiters queue in FIFO order (a large request at the head is not starved
 * by small ones behind it) and are woken by a message, never by polling; a release hands its
 * permits to the head waiter inside the releasing script. All keys share one hash tag, so it works
 * unchanged on Redis Cluster.
 *
 * @example
 * const pool = await Semaphore.create(client, 'gpu-pool', { limit: 5 });
 * await using permit = await pool.acquire({ timeoutMs: 10_000 });
 * await train(batch, { signal: permit.signal });
 */
export class Semaphore {
  /** The semaphore's name. */
  readonly name: string;
  readonly #client: RedisClientLike;
  readonly #ks: Keyspace;
  readonly #leaseTtlMs: number;
  readonly #scripts: SemaphoreScripts;
  readonly #queue: GrantQueue;
  readonly #closing = abortController();
  /** Permits handed out by this instance (released ones are pruned lazily). */
  readonly #held = new Set<Grant>();
  #pruneAt = 64;
  readonly #pending = new Set<Promise<unknown>>();
  #closed = false;
  /** Idle TTL of the semaphore as set by its creator (null: never expires). */
  readonly #idleMs: number | null;
  #watchdog: NodeJS.Timeout | undefined;
  #lastTouchAt = -Infinity;

  private constructor(s: Setup, idleMs: number | null) {
    this.name = s.name;
    this.#client = s.client;
    this.#ks = s.ks;
    this.#leaseTtlMs = s.leaseTtlMs;
    this.#scripts = s.scripts;
    this.#idleMs = idleMs;
    this.#lastTouchAt = performance.now();
    this.#queue = s.queue;
  }

  /**
   * Creates the semaphore, or joins it when it exists with the same limit (idempotent: every
   * process may call it). One round trip. A semaphore that exists with another limit rejects with
   * `SemaphoreLimitMismatchError` and is left unchanged. Wakes every `attach` waiting for it.
   *
   * @example
   * const pool = await Semaphore.create(client, 'gpu-pool', { limit: 5, leaseTtlMs: 30_000 });
   */
  static async create(client: RedisClientLike, name: string, options: SemaphoreCreateOptions): Promise<Semaphore> {
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options with a limit are required');
    const limit = assertInteger('limit', options.limit, 1, MAX_LIMIT);
    const idleTtlMs = options.idleTtlMs === undefined ? undefined : assertDurationMs('idleTtlMs', options.idleTtlMs, MIN_LEASE_TTL_MS);
    const s = setup(client, name, options, limit);
    const reply = (await s.scripts.create.run(client, s.queue.keys, [limit, idleTtlMs ?? '', s.ks.channel])) as [number, number, string | number];
    return new Semaphore(s, idleOf(reply[2]));
  }

  /**
   * Joins a semaphore somebody else creates, without knowing its limit. Waits (woken by the
   * creator's message, not by polling) until it exists; rejects with `SemaphoreNotFoundError`
   * after `timeoutMs`, or with the signal's reason.
   *
   * @example
   * const pool = await Semaphore.attach(client, 'gpu-pool', { timeoutMs: 60_000 });
   */
  static async attach(client: RedisClientLike, name: string, options: SemaphoreAttachOptions = {}): Promise<Semaphore> {
    const timeoutMs = assertTimeoutMs(options.timeoutMs ?? 60_000);
    const signal = assertSignal(options.signal);
    const s = setup(client, name, options);
    const keys = s.queue.keys;
    const idle = await waitFor<number | null>({
      client,
      channel: s.ks.channel,
      target: `attach-${randomUUID()}`,
      timeoutMs,
      signal,
      timeoutError: () => new SemaphoreNotFoundError(name, `no creator within ${timeoutMs} ms`),
      attempt: async () => {
        const reply = (await s.scripts.attach.run(client, keys)) as [number, number?, (string | number)?];
        return reply[0] === 1 ? { done: idleOf(reply[2]) } : { retryInMs: ATTACH_RECHECK_MS };
      },
    });
    return new Semaphore(s, idle);
  }

  /**
   * Waits in FIFO order until `permits` are granted. Rejects with `SemaphoreTimeoutError` after
   * `timeoutMs`, with the signal's reason, or with `InvalidArgumentError` when `permits` exceeds
   * the limit (also when a `setLimit` shrinks it below `permits` while waiting); a grant that was
   * in flight when it gave up is handed on. Uncontended, it costs one round trip.
   *
   * @example
   * await using permit = await pool.acquire({ permits: 2, timeoutMs: 10_000 });
   */
  async acquire(options: SemaphoreAcquireOptions = {}): Promise<Permit> {
    const permits = assertInteger('permits', options.permits ?? 1, 1, MAX_LIMIT);
    const timeoutMs = assertTimeoutMs(options.timeoutMs ?? Infinity);
    const userSignal = assertSignal(options.signal);
    this.#assertOpen();
    userSignal?.throwIfAborted();
    const signal = userSignal ? AbortSignal.any([userSignal, this.#closing.signal]) : this.#closing.signal;
    // One round trip when permits are free (the queue attempts before it subscribes).
    const work = this.#queue.acquire({ permits, ttlMs: this.#leaseTtlMs, autoExtend: true }, { timeoutMs, signal });
    this.#pending.add(work);
    this.#watch();
    try {
      return this.#adopt(await work);
    } finally {
      this.#pending.delete(work);
    }
  }

  /**
   * Takes `permits` if they are free and nobody queues ahead; `null` otherwise. One round trip.
   *
   * @example
   * const permit = await pool.tryAcquire({ permits: 1 });
   * if (!permit) return 'busy';
   */
  async tryAcquire(options: SemaphoreTryAcquireOptions = {}): Promise<Permit | null> {
    const permits = assertInteger('permits', options.permits ?? 1, 1, MAX_LIMIT);
    this.#assertOpen();
    const grant = await this.#queue.tryAcquire({ permits, ttlMs: this.#leaseTtlMs, autoExtend: true });
    return grant ? this.#adopt(grant) : null;
  }

  /**
   * The limit in force. One round trip; `SemaphoreNotFoundError` when the semaphore is gone.
   *
   * @example
   * console.log(`${await pool.getLimit()} permits`);
   */
  async getLimit(): Promise<number> {
    const limit = Number(await this.#scripts.getLimit.run(this.#client, this.#queue.keys));
    this.#lastTouchAt = performance.now();
    return limit;
  }

  /**
   * Resizes the semaphore live and returns the previous limit. Growing hands the new permits to
   * the queue's head at once; shrinking never revokes a held permit, it only delays new grants
   * (waiters asking for more than the new limit are rejected with `InvalidArgumentError`).
   *
   * @example
   * const before = await pool.setLimit(10);
   */
  async setLimit(limit: number): Promise<number> {
    assertInteger('limit', limit, 1, MAX_LIMIT);
    const previous = Number(await this.#scripts.setLimit.run(this.#client, this.#queue.keys, [limit, this.#ks.channel]));
    this.#lastTouchAt = performance.now();
    return previous;
  }

  /**
   * Permits free right now: the limit minus the permits of live holders (0 while a shrink is
   * still being absorbed). One round trip.
   *
   * @example
   * if ((await pool.available()) === 0) console.log('saturated');
   */
  async available(): Promise<number> {
    const { limit, holders } = await this.#inspect();
    return Math.max(0, limit - holders.reduce((sum, h) => sum + h.permits, 0));
  }

  /**
   * The live holders: `{ token, permits, fence, expiresAt }`, oldest expiry first. One round trip.
   *
   * @example
   * for (const h of await pool.holders()) console.log(h.token, h.permits, h.fence);
   */
  async holders(): Promise<PermitHolder[]> {
    return (await this.#inspect()).holders;
  }

  /**
   * Releases the permits this instance holds, cancels its pending waits (they reject with
   * `SemaphoreClosedError`), stops renewals and unsubscribes. Idempotent; the semaphore itself
   * stays for the other processes.
   *
   * @example
   * process.once('SIGTERM', () => void pool.close());
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort(new SemaphoreClosedError(this.name));
    await Promise.allSettled([...this.#pending]);
    await Promise.allSettled([...this.#held].map((grant) => grant.release()));
    this.#held.clear();
    if (this.#watchdog) {
      this.#stopWatchdog();
      // The idle TTL counts from this last use.
      await this.#scripts.touch.run(this.#client, this.#queue.keys).catch(() => undefined);
    }
  }

  /**
   * Removes every key of this semaphore, for every process: holders lose their permits (their
   * `signal` aborts at their next renewal) and waiters reject with `SemaphoreNotFoundError`. This
   * instance is closed too. `create` makes it anew.
   *
   * @example
   * await pool.destroy();
   */
  async destroy(): Promise<void> {
    await this.#scripts.destroy.run(this.#client, this.#queue.keys, [this.#ks.channel]);
    this.#closed = true;
    this.#closing.abort(new SemaphoreClosedError(this.name));
    await Promise.allSettled([...this.#pending]);
    // Their release is refused (the keys are gone), which aborts their signals.
    await Promise.allSettled([...this.#held].map((grant) => grant.release()));
    this.#held.clear();
    this.#stopWatchdog();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #inspect(): Promise<{ limit: number; holders: GrantHolder[] }> {
    const state = await this.#queue.inspect();
    if (state.limit < 0) throw new SemaphoreNotFoundError(this.name, 'no limit is set');
    return state;
  }

  #assertOpen(): void {
    if (this.#closed) throw new SemaphoreClosedError(this.name);
  }

  #adopt(grant: Grant): Grant {
    if (this.#closed) {
      // Granted while closing: give it straight back.
      void grant.release().catch(() => undefined);
      throw new SemaphoreClosedError(this.name);
    }
    this.#held.add(grant);
    if (this.#held.size >= this.#pruneAt) {
      this.#prune();
      this.#pruneAt = Math.max(64, this.#held.size * 2);
    }
    this.#watch();
    return grant;
  }

  #prune(): void {
    for (const grant of this.#held) {
      try {
        grant.assertHeld();
      } catch {
        this.#held.delete(grant);
      }
    }
  }

  // Idle expiry: the grant queue's own scripts do not refresh the config's TTL, so while this
  // instance holds permits or waits, a watchdog touches the keys every third of the idle TTL.
  #watch(): void {
    if (this.#idleMs === null || this.#watchdog || this.#closed) return;
    const every = Math.max(1, Math.floor(this.#idleMs / 3));
    if (performance.now() - this.#lastTouchAt >= every) this.#touch();
    this.#watchdog = setInterval(() => {
      this.#prune();
      // One last touch when this instance stops using the semaphore: the idle TTL counts from there.
      if (this.#held.size === 0 && this.#pending.size === 0) this.#stopWatchdog();
      this.#touch();
    }, every);
    this.#watchdog.unref();
  }

  #touch(): void {
    this.#lastTouchAt = performance.now();
    this.#scripts.touch.run(this.#client, this.#queue.keys).catch(() => undefined);
  }

  #stopWatchdog(): void {
    if (this.#watchdog) clearInterval(this.#watchdog);
    this.#watchdog = undefined;
  }
}
