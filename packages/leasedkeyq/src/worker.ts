import { InvalidArgumentError, LeaseKeeper, assertInteger, assertSignal, type RedisClientLike } from '@x/redis-core';
import { InvalidLeaseError, QueueClosedError } from './errors';
import type { Lease } from './lease';
import type { LeasedItem, ReleaseOptions, ReleaseResult } from './queue';

/**
 * What a worker's handler receives: the leased item, and a `signal` that aborts if its lease is
 * lost (the renewal was refused or could not reach the server in time; another consumer may get
 * the item).
 *
 * @example
 * const handler: ProcessHandler<Task> = async ({ key, value, deliveries, signal }) => {
 *   await fetch(value.url, { signal });
 * };
 */
export interface WorkItem<T> extends LeasedItem<T> {
  /** Aborts when the lease is lost; stop the work then, since its ack will be refused. */
  signal: AbortSignal;
}

/**
 * The function a worker runs on each item: resolve to ack it, throw to release it for a retry.
 *
 * @example
 * const handler: ProcessHandler<{ to: string }> = async ({ value }) => sendMail(value.to);
 */
export type ProcessHandler<T> = (item: WorkItem<T>) => unknown;

/**
 * The retry policy of a worker: a failed item is released with a delay of
 * `min(maxDelayMs, initialDelayMs * 2^(deliveries - 1))`, jittered down by up to half.
 *
 * @example
 * q.process(handler, { backoff: { initialDelayMs: 500, maxDelayMs: 30_000 } });
 */
export interface BackoffOptions {
  /**
   * The delay after the first failure (before jitter); `0` retries at once.
   * @default 1_000
   */
  initialDelayMs?: number;
  /**
   * The longest delay.
   * @default 60_000
   */
  maxDelayMs?: number;
}

/**
 * Options of `process`.
 *
 * @example
 * q.process(handler, { concurrency: 8, signal: AbortSignal.timeout(60_000), onError: console.error });
 */
export interface ProcessOptions<T> {
  /**
   * How many items this worker handles at once (an integer from 1 to 10,000).
   * @default 1
   */
  concurrency?: number;
  /** Stops the worker, as `stop()` does, when it aborts. */
  signal?: AbortSignal;
  /**
   * Told of every error: a handler that threw (with its item; the item is released for a retry
   * or dead-lettered), a lease lost while its handler ran, and a failed call to Redis (the worker
   * goes on after a capped backoff). It must not throw. Without it, errors other than a
   * handler's are emitted as process warnings.
   */
  onError?: (error: unknown, item?: LeasedItem<T>) => void;
  /**
   * Lease length of each item; the lease is renewed at a third of it while the handler runs.
   * @default the queue's defaultLeaseTimeoutMs, or 30_000 when that is null
   */
  leaseTimeoutMs?: number;
  /** Delay before a failed item is delivered again. */
  backoff?: BackoffOptions;
}

/** An item a worker leased, and `performance.now()` when the script that granted it was sent. */
export interface Leased<T> {
  item: LeasedItem<T>;
  sentAt: number;
}

/** What a worker needs of its queue (its private parts, handed over by `process`). */
export interface WorkerBackend<T> {
  client: RedisClientLike;
  leaseMs: number;
  lease(signal: AbortSignal): Promise<Leased<T>>;
  renew(lease: Lease): Promise<number | null>;
  ack(lease: Lease): Promise<void>;
  /** Acks `lease` and leases the next item in the same round trip, if one can be leased now. */
  ackAndLease(lease: Lease): Promise<Leased<T> | undefined>;
  release(lease: Lease, options: ReleaseOptions): Promise<ReleaseResult>;
  forget(worker: QueueWorker<T>): void;
}

const DEFAULT_INITIAL_DELAY_MS = 1_000;
const DEFAULT_MAX_DELAY_MS = 60_000;
const FAILURE_BASE_MS = 100;
const FAILURE_MAX_MS = 5_000;

/**
 * A running `process` loop: `concurrency` consumers, each leasing the next item (waiting without
 * polling), running the handler while the lease is renewed, then acking or releasing it.
 *
 * @example
 * const worker = q.process(async ({ value }) => handle(value), { concurrency: 4 });
 * await worker.stop(); // waits for the items in progress; nothing is lost
 */
export class QueueWorker<T> {
  /** How many consumers run at most at once. */
  readonly concurrency: number;
  readonly #handler: ProcessHandler<T>;
  readonly #backend: WorkerBackend<T>;
  readonly #onError: ((error: unknown, item?: LeasedItem<T>) => void) | undefined;
  readonly #initialDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #stopping = new AbortController();
  readonly #done: Promise<void>;
  #active = 0;

  /** Built by `LeasedKeyQueue.process`: use that. */
  constructor(handler: ProcessHandler<T>, options: ProcessOptions<T>, backend: WorkerBackend<T>) {
    if (typeof handler !== 'function') throw new InvalidArgumentError('handler must be a function');
    if (options.onError !== undefined && typeof options.onError !== 'function') {
      throw new InvalidArgumentError('onError must be a function');
    }
    this.concurrency = assertInteger('concurrency', options.concurrency ?? 1, 1, 10_000);
    const signal = assertSignal(options.signal);
    const backoff = options.backoff ?? {};
    if (typeof backoff !== 'object' || backoff === null) throw new InvalidArgumentError('backoff must be an object');
    this.#initialDelayMs = assertInteger('backoff.initialDelayMs', backoff.initialDelayMs ?? DEFAULT_INITIAL_DELAY_MS, 0, 2 ** 31 - 1);
    this.#maxDelayMs = assertInteger('backoff.maxDelayMs', backoff.maxDelayMs ?? DEFAULT_MAX_DELAY_MS, 0, 2 ** 31 - 1);
    this.#handler = handler;
    this.#backend = backend;
    this.#onError = options.onError;
    if (signal?.aborted) this.#stopping.abort();
    signal?.addEventListener('abort', () => void this.stop(), { once: true });
    const consumers = Array.from({ length: this.concurrency }, () => this.#consume());
    this.#done = Promise.all(consumers).then(() => backend.forget(this));
  }

  /** How many handlers are running now. */
  get active(): number {
    return this.#active;
  }

  /** Whether `stop()` was called (or the `signal` aborted). */
  get stopping(): boolean {
    return this.#stopping.signal.aborted;
  }

  /**
   * Stops leasing; resolves once every handler in progress has finished and its item was acked
   * or released. Waits in progress take nothing. Calling it again returns the same promise.
   *
   * @example
   * process.on('SIGTERM', () => void worker.stop());
   */
  stop(): Promise<void> {
    if (!this.#stopping.signal.aborted) this.#stopping.abort(new QueueClosedError('the worker was stopped'));
    return this.#done;
  }

  /** `await using worker = q.process(...)` stops it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  async #consume(): Promise<void> {
    const stopping = this.#stopping.signal;
    let failures = 0;
    let next: Leased<T> | undefined;
    // An item leased as stop() was called is handled all the same: nothing is left stranded.
    while (next || !stopping.aborted) {
      let got = next;
      next = undefined;
      if (!got) {
        try {
          got = await this.#backend.lease(stopping);
          failures = 0;
        } catch (error) {
          if (stopping.aborted) return;
          // The queue was closed under the worker: nothing more can be leased.
          if ((error as { code?: unknown } | null)?.code === 'QUEUE_CLOSED') return;
          this.#report(error);
          failures += 1;
          await pause(jittered(Math.min(FAILURE_MAX_MS, FAILURE_BASE_MS * 2 ** Math.min(failures, 20))), stopping);
          continue;
        }
      }
      next = await this.#run(got.item, got.sentAt);
    }
  }

  /** Runs the handler on one item and settles it; returns the next item when the ack leased one. */
  async #run(item: LeasedItem<T>, sentAt: number): Promise<Leased<T> | undefined> {
    const { lease } = item;
    const lost = new AbortController();
    const kept = LeaseKeeper.for(this.#backend.client).keep({
      ttlMs: this.#backend.leaseMs,
      sentAt,
      renew: () => this.#backend.renew(lease),
      onLost: (why) => lost.abort(new InvalidLeaseError(`the lease of ${JSON.stringify(lease.key)} was lost (${why})`)),
    });
    this.#active += 1;
    let failure: { error: unknown } | undefined;
    try {
      await this.#handler({ ...item, signal: lost.signal });
    } catch (error) {
      failure = { error };
    } finally {
      this.#active -= 1;
      kept.stop();
    }
    if (lost.signal.aborted) {
      // The item may be with another consumer already: neither ack nor release it.
      this.#report(lost.signal.reason, item);
      if (failure) this.#report(failure.error, item);
      return undefined;
    }
    try {
      if (!failure) {
        // Ack and lease the next item in one round trip, unless the worker is stopping.
        if (!this.#stopping.signal.aborted) return await this.#backend.ackAndLease(lease);
        await this.#backend.ack(lease);
        return undefined;
      }
      this.#report(failure.error, item, true);
      await this.#backend.release(lease, { delayMs: this.#retryDelayMs(item.deliveries), error: failure.error });
    } catch (error) {
      this.#report(error, item);
    }
    return undefined;
  }

  #retryDelayMs(deliveries: number): number {
    if (this.#initialDelayMs === 0) return 0;
    const exponent = Math.min(Math.max(deliveries - 1, 0), 40);
    return Math.round(jittered(Math.min(this.#maxDelayMs, this.#initialDelayMs * 2 ** exponent)));
  }

  #report(error: unknown, item?: LeasedItem<T>, fromHandler = false): void {
    if (this.#onError) {
      try {
        this.#onError(error, item);
      } catch {
        // onError must not stop the worker.
      }
    } else if (!fromHandler) {
      process.emitWarning(error instanceof Error ? error : new Error(String(error)), 'LeasedKeyQueueWorker');
    }
  }
}

/** Somewhere between half of `ms` and `ms`: workers that failed together do not retry together. */
function jittered(ms: number): number {
  return ms / 2 + Math.random() * (ms / 2);
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
