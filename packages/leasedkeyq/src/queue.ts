import { createHash, randomBytes } from 'node:crypto';
import {
  Backoff,
  InvalidArgumentError,
  MAX_DURATION_MS,
  assertDurationMs,
  assertInteger,
  assertName,
  assertSignal,
  assertTimeoutMs,
  isTransient,
  keyspace,
  waitFor,
  type Attempt,
  type Keyspace,
  type RedisClientLike,
} from '@x/redis-core';
import { assertClient } from '@x/redis-core';
import { jsonCodec, type Codec } from './codec';
import { KeyAlreadyInFlightError, LeaseAlreadyAcknowledgedError, QueueClosedError, QueueTimeoutError } from './errors';
import { assertLease, type Lease } from './lease';
import {
  QUEUE_KEYS,
  ackGetScript,
  ackScript,
  availableKeysScript,
  containsScript,
  deadLettersScript,
  redriveScript,
  extendScript,
  getScript,
  inflightKeysScript,
  leaveScript,
  peekScript,
  putScript,
  releaseScript,
  returnAllScript,
  sizesScript,
  takeScript,
} from './scripts';
import { QueueWorker, type ProcessHandler, type ProcessOptions, type WorkerBackend } from './worker';
import { traced } from './tracing';

/**
 * What `put` does with a key that is leased to a consumer.
 *
 * @example
 * const policy: InFlightPolicy = 'buffer';
 * await q.put('k', v, { ifInFlight: policy });
 */
export type InFlightPolicy = 'update' | 'reject' | 'buffer';

/**
 * What `put` did: appended a new item, replaced an available item's value, or changed an in-flight key.
 *
 * @example
 * if ((await q.put('k', v)) === 'updated') console.log('k was being worked on; the change will follow');
 */
export type PutResult = 'added' | 'replaced' | 'updated' | 'buffered';

/**
 * Options of a queue.
 *
 * @example
 * const options: LeasedKeyQueueOptions<Task> = { prefix: 'app', defaultLeaseTimeoutMs: 60_000 };
 * const q = new LeasedKeyQueue<Task>(client, 'tasks', options);
 */
export interface LeasedKeyQueueOptions<T> {
  /**
   * Lease length when `get`/`take` do not say; `null` for leases that never expire (a crashed
   * consumer then strands its item until someone releases it).
   * @default 30_000
   */
  defaultLeaseTimeoutMs?: number | null;
  /**
   * First part of every Redis key of the queue (`<prefix>:leasedkeyq:{<name>}:...`).
   * @default 'x'
   */
  prefix?: string;
  /**
   * How values are stored.
   * @default JSON
   */
  codec?: Codec<T>;
  /**
   * How many recent acks the queue remembers, to answer a repeated `ack`/`release` with
   * `LeaseAlreadyAcknowledgedError` rather than `InvalidLeaseError`.
   * @default 10_000
   */
  ackHistory?: number;
  /**
   * How many times an item may be leased. An item leased that often and then released, or whose
   * last lease expired, goes to the queue's dead letters (`deadLetters()`, `redrive()`) instead
   * of being delivered again. An integer from 1.
   * @default 10
   */
  maxDeliveries?: number;
  /**
   * The most items in flight at once in the whole queue, across every process: `get` leases
   * nothing while that many leases live, and waits (woken when a lease ends). `take` is not held
   * back, but its leases count. `undefined`: no limit.
   * @default undefined
   */
  maxInFlight?: number;
}

/**
 * Options of `put`.
 *
 * @example
 * await q.put('k', v, { ifInFlight: 'reject' });
 */
export interface PutOptions {
  /**
   * When the key is in flight: `update` changes the leased value (the change becomes a new item
   * when the lease is acked, or the item's value when it is released or expires); `reject` throws
   * `KeyAlreadyInFlightError`; `buffer` keeps one next value (the latest wins) that becomes
   * available when the lease ends.
   * @default 'update'
   */
  ifInFlight?: InFlightPolicy;
}

/**
 * Options of `get` and `take`.
 *
 * @example
 * await q.get({ timeoutMs: 5_000, leaseTimeoutMs: 60_000, signal: AbortSignal.timeout(10_000) });
 */
export interface GetOptions {
  /**
   * Total time to wait for an item, across every wake-up; `0` tries once. On timeout a
   * `QueueTimeoutError` is thrown and nothing was taken.
   * @default Infinity
   */
  timeoutMs?: number;
  /**
   * Lease length for this item; `null` for a lease that never expires.
   * @default the queue's defaultLeaseTimeoutMs
   */
  leaseTimeoutMs?: number | null;
  /** Aborts the wait (rejecting with the signal's reason); nothing is taken. */
  signal?: AbortSignal;
}

/**
 * Options of `release`.
 *
 * @example
 * await q.release(lease, { requeueFront: true });
 */
export interface ReleaseOptions {
  /**
   * Put the item at the front of the queue (next to be served) rather than at the back; with
   * `delayMs`, when the delay is over.
   * @default false
   */
  requeueFront?: boolean;
  /**
   * Keep the item out of the queue for this long (server clock); it then joins the back (or the
   * front). Meanwhile it is neither available nor in flight: `put` replaces its value and keeps
   * the delay, `take` waits for it. `0`: available at once.
   * @default 0
   */
  delayMs?: number;
  /**
   * Why the item is released: kept as the item's last error (an `Error`'s `String(error)`, at
   * most 4,096 characters), and shown in its dead letter.
   */
  error?: unknown;
}

/**
 * What `release` did with the item: put it back, delayed it, or (leased `maxDeliveries` times)
 * moved it to the dead letters.
 *
 * @example
 * if ((await q.release(lease, { error })) === 'dead-lettered') alert(lease.key);
 */
export type ReleaseResult = 'released' | 'delayed' | 'dead-lettered';

/**
 * An item taken out of the queue after `maxDeliveries` leases, as `deadLetters()` lists it.
 *
 * @example
 * for (const d of await q.deadLetters()) console.log(d.key, d.deliveries, d.error);
 */
export interface DeadLetter<T> {
  key: string;
  /** The item's value when it was dead-lettered. */
  value: T;
  /** How many times it was leased. */
  deliveries: number;
  /** The last error it was released with, or `null`. */
  error: string | null;
  /** When it was dead-lettered, in server epoch milliseconds. */
  deadAt: number;
}

/**
 * Options of `deadLetters`.
 *
 * @example
 * await q.deadLetters({ limit: 10 });
 */
export interface DeadLettersOptions {
  /**
   * How many to return at most, oldest first (an integer from 1 to 10,000).
   * @default 1_000
   */
  limit?: number;
}

/**
 * Options of `redrive`.
 *
 * @example
 * await q.redrive({ keys: ['task-1'] });
 */
export interface RedriveOptions {
  /** Redrive only these keys' dead letters. Default: every dead letter. */
  keys?: string[];
}

/**
 * An item handed to a consumer.
 *
 * @example
 * const { key, value, lease }: LeasedItem<Task> = await q.get();
 */
export interface LeasedItem<T> {
  key: string;
  value: T;
  /** How many times the item has been leased, this lease included (`lease.deliveries`). */
  deliveries: number;
  /** Pass it to `ack`, `release` or `extend`. */
  lease: Lease;
}

// Lease tokens: a random id of this process and a counter, unique without a random draw per call.
const PROCESS_ID = randomBytes(8).toString('hex');
let counter = 0;
function newToken(): string {
  counter += 1;
  return PROCESS_ID + counter.toString(16).padStart(12, '0');
}

const DEFAULT_LEASE_MS = 30_000;

/** How long `ack` and `release` keep retrying a transient server fault. */
const END_RETRY_MS = 5_000;
const DEFAULT_ACK_HISTORY = 10_000;
const DEFAULT_MAX_DELIVERIES = 10;
const RETURN_BATCH = 1_000;
const REDRIVE_BATCH = 1_000;
const MAX_ERROR_CHARS = 4_096;

/**
 * A keyed FIFO queue with leases, shared by every process that opens it by the same name.
 *
 * Each key is absent, available or in flight. `get` leases the item at the front, `take` a given
 * key; both wait without polling. A lease ends with `ack` (the item is gone), `release` (the item
 * goes back, front or back) or its expiry on the server's clock (the item goes back to the front,
 * the earliest expired first). Every operation but a wait is one round trip, O(log n).
 *
 * @example
 * const q = new LeasedKeyQueue<{ action: string }>(client, 'tasks', { defaultLeaseTimeoutMs: 30_000 });
 * await q.put('task-1', { action: 'process' });
 * const { key, value, lease } = await q.get({ timeoutMs: 10_000 });
 * try { await work(key, value); await q.ack(lease); }
 * catch { await q.release(lease, { requeueFront: true }); }
 */
const GET = {};

export class LeasedKeyQueue<T = unknown> {
  /** The queue's name. */
  readonly name: string;
  readonly #client: RedisClientLike;
  readonly #ks: Keyspace;
  readonly #keys: string[];
  readonly #codec: Codec<T>;
  readonly #defaultLeaseMs: number | null;
  readonly #ackHistory: string;
  readonly #maxDeliveries: string;
  readonly #maxInFlight: string;
  readonly #workers = new Set<QueueWorker<T>>();
  /** Leases this instance granted and has not seen end: `close()` returns them. */
  readonly #held = new Map<string, Lease>();
  readonly #acked = new WeakSet<Lease>();
  readonly #pending = new Set<Promise<unknown>>();
  readonly #closing = new AbortController();
  #closed: Promise<void> | undefined;

  constructor(client: RedisClientLike, name: string, options: LeasedKeyQueueOptions<T> = {}) {
    assertClient(client);
    this.#ks = keyspace(options.prefix ?? 'x', 'leasedkeyq', name);
    this.name = name;
    this.#client = client;
    this.#keys = QUEUE_KEYS.map((k) => this.#ks.key(k));
    this.#codec = options.codec ?? (jsonCodec as Codec<T>);
    if (typeof this.#codec?.encode !== 'function' || typeof this.#codec.decode !== 'function') {
      throw new InvalidArgumentError('codec must have encode and decode functions');
    }
    const lease = options.defaultLeaseTimeoutMs === undefined ? DEFAULT_LEASE_MS : options.defaultLeaseTimeoutMs;
    this.#defaultLeaseMs = lease === null ? null : assertDurationMs('defaultLeaseTimeoutMs', lease);
    this.#ackHistory = String(assertInteger('ackHistory', options.ackHistory ?? DEFAULT_ACK_HISTORY, 0, 10_000_000));
    this.#maxDeliveries = String(assertInteger('maxDeliveries', options.maxDeliveries === undefined ? DEFAULT_MAX_DELIVERIES : options.maxDeliveries, 1));
    this.#maxInFlight = options.maxInFlight === undefined ? '' : String(assertInteger('maxInFlight', options.maxInFlight, 1));
  }

  /**
   * Adds `value` under `key`: appended when the key is absent; the value replaced (position kept)
   * when it is available; when it is in flight, per `ifInFlight`.
   *
   * @example
   * await q.put('task-1', { action: 'process' });
   * await q.put('task-1', { action: 'retry' }, { ifInFlight: 'buffer' });
   */
  async put(key: string, value: T, options: PutOptions = {}): Promise<PutResult> {
    this.#assertOpen();
    assertName('key', key);
    const mode = options.ifInFlight ?? 'update';
    if (mode !== 'update' && mode !== 'reject' && mode !== 'buffer') {
      throw new InvalidArgumentError(`ifInFlight must be 'update', 'reject' or 'buffer', got ${String(mode)}`);
    }
    const encoded = this.#encode(value);
    return traced.put.trace(this.name, async () => {
      const result = (await putScript.run(this.#client, this.#keys, [this.#ks.channel, key, encoded, mode])) as PutResult | 'rejected';
      if (result === 'rejected') throw new KeyAlreadyInFlightError(key);
      return result;
    }, { key });
  }

  /**
   * Leases the item at the front of the queue, waiting (without polling) while the queue is empty.
   *
   * @example
   * const { key, value, lease } = await q.get({ timeoutMs: 10_000, leaseTimeoutMs: 60_000 });
   */
  async get(options: GetOptions = {}): Promise<LeasedItem<T>> {
    return this.#acquire(undefined, options);
  }

  /**
   * Leases the item of `key`, waiting (without polling) while the key is absent or in flight.
   *
   * @example
   * const { value, lease } = await q.take('task-2', { timeoutMs: 10_000 });
   */
  async take(key: string, options: GetOptions = {}): Promise<LeasedItem<T>> {
    return this.#acquire(key, options);
  }

  /**
   * Ends a lease for good: the item leaves the queue. A value put while it was in flight
   * (`update` or `buffer`) becomes a new item at the back.
   *
   * @example
   * await q.ack(lease);
   */
  async ack(lease: Lease): Promise<void> {
    this.#assertOpen();
    return this.#ack(lease);
  }

  async #ack(lease: Lease): Promise<void> {
    assertLease(lease);
    if (this.#acked.has(lease)) throw new LeaseAlreadyAcknowledgedError(`lease ${lease.token} was acknowledged already`);
    await traced.ack.trace(this.name, () =>
      this.#onLease(
        lease,
        () => ackScript.run(this.#client, this.#keys, [this.#ks.channel, lease.key, lease.token, String(lease.fence), this.#ackHistory]),
        'LEASE_ALREADY_ACKNOWLEDGED',
      ),
      { key: lease.key, fence: lease.fence, deliveries: lease.deliveries },
    );
    this.#acked.add(lease);
  }

  /**
   * Ends a lease and puts the item back: at the back, or at the front with `requeueFront`; after
   * `delayMs`, if given. An item leased `maxDeliveries` times goes to the dead letters instead.
   *
   * @example
   * await q.release(lease, { requeueFront: true });
   * await q.release(lease, { delayMs: 5_000, error }); // retry in 5 s, remembering why
   */
  async release(lease: Lease, options: ReleaseOptions = {}): Promise<ReleaseResult> {
    this.#assertOpen();
    return this.#release(lease, options);
  }

  async #release(lease: Lease, options: ReleaseOptions): Promise<ReleaseResult> {
    assertLease(lease);
    const delayMs = assertInteger('delayMs', options.delayMs ?? 0, 0, MAX_DURATION_MS);
    const error = options.error === undefined || options.error === null ? '' : errorText(options.error);
    if (this.#acked.has(lease)) throw new LeaseAlreadyAcknowledgedError(`lease ${lease.token} was acknowledged already`);
    const front = options.requeueFront === true ? '1' : '0';
    let result: unknown;
    const release = () => this.#onLease(lease, async () => {
      result = await releaseScript.run(this.#client, this.#keys, [
        this.#ks.channel,
        lease.key,
        lease.token,
        String(lease.fence),
        front,
        String(delayMs),
        error,
        this.#maxDeliveries,
      ]);
    }, 'INVALID_LEASE');
    const fields = { key: lease.key, fence: lease.fence, deliveries: lease.deliveries };
    // A resend refused after a lost reply: the first send released it (how, its reply said).
    const status = await traced.release.trace(this.name, async () => (await release(), (result ?? 'released') as ReleaseResult), fields);
    if (status === 'dead-lettered') traced.deadLettered.publish(this.name, { key: lease.key, deliveries: lease.deliveries, error });
    return status;
  }

  /**
   * Makes a live lease expire `leaseTimeoutMs` from now (server time), and returns it with its new
   * `expiresAt`; the token and fence stay the same, so the old object still acks.
   *
   * @example
   * lease = await q.extend(lease, 30_000);
   */
  async extend(lease: Lease, leaseTimeoutMs: number): Promise<Lease> {
    this.#assertOpen();
    assertLease(lease);
    const ms = assertDurationMs('leaseTimeoutMs', leaseTimeoutMs);
    if (this.#acked.has(lease)) throw new LeaseAlreadyAcknowledgedError(`lease ${lease.token} was acknowledged already`);
    let expiresAt = 0;
    try {
      expiresAt = await traced.extend.trace(this.name, async () =>
        Number(await extendScript.run(this.#client, this.#keys, [this.#ks.channel, lease.key, lease.token, String(lease.fence), String(ms)])),
        { key: lease.key, fence: lease.fence },
      );
    } catch (error) {
      if (isLeaseError(error)) this.#held.delete(lease.token);
      throw error;
    }
    const extended: Lease = Object.freeze({ key: lease.key, token: lease.token, fence: lease.fence, expiresAt, deliveries: lease.deliveries });
    if (this.#held.has(lease.token)) this.#held.set(lease.token, extended);
    return extended;
  }

  /**
   * The value of `key` if it is available (as leasedkeyq: an in-flight or absent key gives `undefined`).
   *
   * @example
   * const value = await q.peek('task-1');
   */
  async peek(key: string): Promise<T | undefined> {
    this.#assertOpen();
    assertName('key', key);
    const reply = await peekScript.run(this.#client, this.#keys, [this.#ks.channel, key]);
    return typeof reply === 'string' ? this.#codec.decode(reply) : undefined;
  }

  /**
   * Whether `key` is available (as leasedkeyq: an in-flight key is not).
   *
   * @example
   * if (await q.contains('task-1')) console.log('still waiting for a consumer');
   */
  async contains(key: string): Promise<boolean> {
    this.#assertOpen();
    assertName('key', key);
    return (await containsScript.run(this.#client, this.#keys, [this.#ks.channel, key])) === 1;
  }

  /**
   * The available keys, front first (O(n): for inspection, not for the hot path).
   *
   * @example
   * console.log(await q.availableKeys()); // ['task-1', 'task-2']
   */
  async availableKeys(): Promise<string[]> {
    this.#assertOpen();
    return (await availableKeysScript.run(this.#client, this.#keys, [this.#ks.channel])) as string[];
  }

  /**
   * The in-flight keys, in the order they were leased (O(n): for inspection).
   *
   * @example
   * console.log(await q.inflightKeys()); // ['task-0']
   */
  async inflightKeys(): Promise<string[]> {
    this.#assertOpen();
    const flat = (await inflightKeysScript.run(this.#client, this.#keys, [this.#ks.channel])) as string[];
    const rows: Array<{ key: string; fence: number }> = [];
    for (let i = 0; i + 1 < flat.length; i += 2) rows.push({ key: flat[i]!, fence: Number(flat[i + 1]!.split(' ')[1]) });
    return rows.sort((a, b) => a.fence - b.fence).map((r) => r.key);
  }

  /**
   * The number of available items (in-flight ones not counted).
   *
   * @example
   * const waiting = await q.size();
   */
  async size(): Promise<number> {
    this.#assertOpen();
    return ((await sizesScript.run(this.#client, this.#keys, [this.#ks.channel])) as number[])[0]!;
  }

  /**
   * The number of items in flight (leased and neither acked, released nor expired).
   *
   * @example
   * const busy = await q.inflightSize();
   */
  async inflightSize(): Promise<number> {
    this.#assertOpen();
    return ((await sizesScript.run(this.#client, this.#keys, [this.#ks.channel])) as number[])[1]!;
  }

  /**
   * The number of items released with a delay that is not over yet.
   *
   * @example
   * const retrying = await q.delayedSize();
   */
  async delayedSize(): Promise<number> {
    this.#assertOpen();
    return ((await sizesScript.run(this.#client, this.#keys, [this.#ks.channel])) as number[])[2]!;
  }

  /**
   * The number of dead letters.
   *
   * @example
   * if ((await q.deadLetterSize()) > 0) alert('some items keep failing');
   */
  async deadLetterSize(): Promise<number> {
    this.#assertOpen();
    return ((await sizesScript.run(this.#client, this.#keys, [this.#ks.channel])) as number[])[3]!;
  }

  /**
   * The dead letters, oldest first: items leased `maxDeliveries` times, with the value, delivery
   * count and last error each had. A key dead-lettered twice is listed once, with its latest letter.
   *
   * @example
   * for (const { key, deliveries, error } of await q.deadLetters()) console.log(key, deliveries, error);
   */
  async deadLetters(options: DeadLettersOptions = {}): Promise<Array<DeadLetter<T>>> {
    this.#assertOpen();
    const limit = assertInteger('limit', options.limit ?? 1_000, 1, 10_000);
    const flat = (await deadLettersScript.run(this.#client, this.#keys, [this.#ks.channel, '0', String(limit)])) as string[];
    const letters: Array<DeadLetter<T>> = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const rec = JSON.parse(flat[i + 1]!) as { value: string; deliveries: number; error?: string; at: number };
      letters.push({ key: flat[i]!, value: this.#codec.decode(rec.value), deliveries: rec.deliveries, error: rec.error ?? null, deadAt: rec.at });
    }
    return letters;
  }

  /**
   * Puts dead letters back at the end of the queue (oldest first) with a fresh delivery count:
   * all of them, or those of `keys`. A letter whose key is in the queue again (put since) stays a
   * dead letter, since the queue holds a newer item of that key. Returns how many were redriven.
   *
   * @example
   * await fixTheBug();
   * console.log(`${await q.redrive()} items back in the queue`);
   */
  async redrive(options: RedriveOptions = {}): Promise<number> {
    this.#assertOpen();
    if (options.keys !== undefined) {
      if (!Array.isArray(options.keys)) throw new InvalidArgumentError('keys must be an array of keys');
      for (const key of options.keys) assertName('key', key);
      let redriven = 0;
      for (let i = 0; i < options.keys.length; i += REDRIVE_BATCH) {
        const batch = options.keys.slice(i, i + REDRIVE_BATCH);
        const reply = (await redriveScript.run(this.#client, this.#keys, [this.#ks.channel, '', '0', ...batch])) as number[];
        redriven += reply[0]!;
      }
      return redriven;
    }
    // Skipped letters stay at the front of the dead letters: the next batch starts after them.
    let redriven = 0;
    let offset = 0;
    for (;;) {
      const [moved, skipped, scanned] = (await redriveScript.run(this.#client, this.#keys, [
        this.#ks.channel,
        String(offset),
        String(REDRIVE_BATCH),
      ])) as [number, number, number];
      redriven += moved;
      offset += skipped;
      if (scanned < REDRIVE_BATCH) return redriven;
    }
  }

  /**
   * Runs `handler` on every item of the queue, `concurrency` at a time, until `stop()`: leases
   * with push wake-ups (no polling), renews each lease while its handler runs (one lease keeper
   * per process), acks when the handler resolves, and when it throws releases the item with a
   * capped, jittered backoff (`delayMs`) and the error, until `maxDeliveries` sends it to the
   * dead letters. Errors go to `onError`.
   *
   * @example
   * const worker = q.process(async ({ key, value, signal }) => { await work(key, value, { signal }); }, {
   *   concurrency: 16,
   *   onError: (error, item) => log.warn({ error, key: item?.key }),
   * });
   * process.on('SIGTERM', () => void worker.stop()); // in-flight items finish first
   */
  process(handler: ProcessHandler<T>, options: ProcessOptions<T> = {}): QueueWorker<T> {
    this.#assertOpen();
    const leaseMs = options.leaseTimeoutMs === undefined ? this.#defaultLeaseMs ?? DEFAULT_LEASE_MS : options.leaseTimeoutMs;
    const leaseArg = String(assertDurationMs('leaseTimeoutMs', leaseMs));
    const backend: WorkerBackend<T> = {
      client: this.#client,
      leaseMs: Number(leaseArg),
      lease: (signal) => {
        this.#assertOpen();
        return this.#track(this.#wait(undefined, Infinity, leaseArg, signal));
      },
      renew: async (lease) => {
        try {
          return Number(
            await extendScript.run(this.#client, this.#keys, [this.#ks.channel, lease.key, lease.token, String(lease.fence), leaseArg]),
          );
        } catch (error) {
          if (isLeaseError(error)) return null;
          throw error;
        }
      },
      // A closing queue stops its workers first: their last acks and releases still go through.
      ack: (lease) => this.#ack(lease),
      ackAndLease: async (lease) => {
        assertLease(lease);
        if (this.#acked.has(lease)) throw new LeaseAlreadyAcknowledgedError(`lease ${lease.token} was acknowledged already`);
        const token = newToken();
        const sentAt = performance.now();
        let reply: unknown[] = [];
        const fields = { key: lease.key, fence: lease.fence, deliveries: lease.deliveries, script: 'leasedkeyq.ack-get' };
        await traced.ack.trace(this.name, () => this.#onLease(lease, async () => {
          reply = (await ackGetScript.run(this.#client, this.#keys, [
            this.#ks.channel,
            lease.key,
            lease.token,
            String(lease.fence),
            this.#ackHistory,
            token,
            leaseArg,
            this.#maxDeliveries,
            this.#maxInFlight,
          ])) as unknown[];
          // A resend refused as acknowledged: the first send acked (its next lease, if any, runs out unclaimed).
        }, 'LEASE_ALREADY_ACKNOWLEDGED'), fields);
        this.#acked.add(lease);
        return reply.length > 1 ? { item: this.#leased(token, reply.slice(1)), sentAt } : undefined;
      },
      release: (lease, opts) => this.#release(lease, opts),
      forget: (worker) => void this.#workers.delete(worker),
    };
    const worker = new QueueWorker<T>(handler, options, backend);
    this.#workers.add(worker);
    return worker;
  }

  /**
   * Closes this instance: waits in progress reject with `QueueClosedError`, every lease this
   * instance granted that is still live goes back to the front of the queue (the earliest leased
   * first), and every later call throws `QueueClosedError`. The queue itself stays, for the other
   * instances and processes. Calling it again returns the same promise.
   *
   * @example
   * process.on('SIGTERM', () => void q.close());
   */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  /** `await using q = new LeasedKeyQueue(...)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    // Workers first: their items in progress finish (and are acked or released) before the rest.
    await Promise.allSettled([...this.#workers].map((w) => w.stop()));
    this.#closing.abort(new QueueClosedError('the queue was closed while waiting'));
    await Promise.allSettled([...this.#pending]);
    const leases = [...this.#held.values()].sort((a, b) => a.fence - b.fence);
    this.#held.clear();
    for (let i = 0; i < leases.length; i += RETURN_BATCH) {
      const args: string[] = [this.#ks.channel];
      for (const lease of leases.slice(i, i + RETURN_BATCH)) args.push(lease.key, lease.token, String(lease.fence));
      await returnAllScript.run(this.#client, this.#keys, args);
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new QueueClosedError();
  }

  #encode(value: T): string {
    let encoded: unknown;
    try {
      encoded = this.#codec.encode(value);
    } catch (error) {
      // A circular value or a BigInt under the JSON codec, or anything a codec refuses.
      throw new InvalidArgumentError(`value cannot be encoded: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    if (typeof encoded !== 'string') throw new InvalidArgumentError('codec.encode must return a string');
    return encoded;
  }

  /**
   * Ends a lease with `run` (ack or release). A transient fault is retried for a few seconds (the
   * scripts are keyed by token and fence, so a resend cannot end a later lease); when a resend
   * after a fault is refused with `doneCode`, the earlier send ran and only its reply was lost.
   * For a release that refusal cannot be told from the lease expiring meanwhile: either way it is
   * no longer held, and the item is back in the queue.
   */
  async #onLease(lease: Lease, run: () => Promise<unknown>, doneCode: string): Promise<void> {
    const giveUpAt = performance.now() + END_RETRY_MS;
    const backoff = new Backoff();
    let unsure = false;
    for (;;) {
      try {
        await run();
        break;
      } catch (error) {
        if (unsure && (error as { code?: unknown } | null)?.code === doneCode) break;
        if (isLeaseError(error)) this.#held.delete(lease.token);
        if (!isTransient(error, this.#client)) throw error;
        unsure = true;
        const delay = backoff.next();
        if (performance.now() + delay >= giveUpAt) throw error;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
    this.#held.delete(lease.token);
  }

  #acquire(key: string | undefined, options: GetOptions): Promise<LeasedItem<T>> {
    this.#assertOpen();
    if (key !== undefined) assertName('key', key);
    const timeoutMs = assertTimeoutMs(options.timeoutMs ?? Infinity);
    const leaseMs = options.leaseTimeoutMs === undefined ? this.#defaultLeaseMs : options.leaseTimeoutMs;
    const leaseArg = leaseMs === null ? '' : String(assertDurationMs('leaseTimeoutMs', leaseMs));
    const signal = assertSignal(options.signal);
    return traced.get.trace(this.name, () => this.#track(this.#wait(key, timeoutMs, leaseArg, signal)), key === undefined ? GET : { key }).then((r) => r.item);
  }

  #track<R>(promise: Promise<R>): Promise<R> {
    this.#pending.add(promise);
    const forget = (): void => void this.#pending.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  /** One lease, and `performance.now()` when the script that granted it was sent. */
  async #wait(
    key: string | undefined,
    timeoutMs: number,
    leaseArg: string,
    signal: AbortSignal | undefined,
  ): Promise<{ item: LeasedItem<T>; sentAt: number }> {
    signal?.throwIfAborted();
    const token = newToken();
    const channel = this.#ks.channel;
    const what = key === undefined ? 'get' : `take(${JSON.stringify(key)})`;
    const timeoutError = (): QueueTimeoutError => new QueueTimeoutError(what, timeoutMs);
    // Blocked getters register under an id of their own, so that a put wakes one of them; blocked
    // takers of a key all listen to one target derived from the key.
    const target = key === undefined ? `w${token}` : `t${createHash('sha1').update(key, 'utf8').digest('hex')}`;
    // After an attempt met a fault it may have run with its reply lost: the next one asks for the
    // lease this token may hold already (take always recognises its own lease).
    let resend = false;
    const attempt = (register: boolean): Promise<unknown> =>
      key === undefined
        ? getScript.run(this.#client, this.#keys, [channel, token, leaseArg, register ? target : '', this.#maxDeliveries, this.#maxInFlight, resend ? '1' : ''])
        : takeScript.run(this.#client, this.#keys, [channel, token, leaseArg, register ? '1' : '0', key, this.#maxDeliveries]);

    let sentAt = 0;
    const once = async (register: boolean): Promise<Attempt<unknown[]>> => {
      for (;;) {
        sentAt = performance.now();
        let r: unknown[];
        try {
          r = (await attempt(register)) as unknown[];
        } catch (error) {
          if (isTransient(error, this.#client)) resend = true;
          throw error;
        }
        // {0}: the attempt moved a batch of dead letters and more items wait: attempt again now.
        if (r.length === 1 && Number(r[0]) === 0) continue;
        return r.length === 1 ? { retryInMs: Number(r[0]) } : { done: r };
      }
    };
    let reply: unknown[];
    if (timeoutMs === 0) {
      const result = await once(false);
      if (!('done' in result)) throw timeoutError();
      reply = result.done;
    } else {
      // waitFor may attempt once before it subscribes (an item that is there costs one round trip
      // and no registration); attempts made while listening register this waiter.
      let registered = false;
      const closing = this.#closing.signal;
      reply = await waitFor<unknown[]>({
        client: this.#client,
        channel,
        target,
        timeoutMs,
        signal: signal ? AbortSignal.any([signal, closing]) : closing,
        attempt: (listening) => {
          registered ||= listening;
          return once(listening);
        },
        ...(key === undefined
          ? {
              cancel: async () => {
                if (registered) await leaveScript.run(this.#client, this.#keys, [channel, target]);
              },
            }
          : {}),
        timeoutError,
      });
    }
    const item = this.#leased(token, reply);
    // Granted while close() ran: close() returns it to the front.
    if (this.#closed) throw new QueueClosedError('the queue was closed while waiting');
    return { item, sentAt };
  }

  /** The item of a grant reply {key, value, fence, expiresAt | '-', deliveries}, remembered for close(). */
  #leased(token: string, reply: unknown[]): LeasedItem<T> {
    const [itemKey, raw, fence, expiresAt, deliveries] = reply as [string, string, string, string, string];
    const lease: Lease = Object.freeze({
      key: itemKey,
      token,
      fence: Number(fence),
      expiresAt: expiresAt === '-' ? null : Number(expiresAt),
      deliveries: Number(deliveries),
    });
    this.#remember(lease);
    return { key: itemKey, value: this.#codec.decode(raw), deliveries: lease.deliveries, lease };
  }

  #remember(lease: Lease): void {
    this.#held.set(lease.token, lease);
    // Leases that expired long ago (and were never acked here) need not be returned by close().
    if (this.#held.size % 1024 === 0) {
      const before = Date.now() - 60_000;
      for (const [token, held] of this.#held) if (held.expiresAt !== null && held.expiresAt < before) this.#held.delete(token);
    }
  }
}

function errorText(error: unknown): string {
  let text: string;
  try {
    text = String(error);
  } catch {
    text = Object.prototype.toString.call(error);
  }
  return text.length > MAX_ERROR_CHARS ? text.slice(0, MAX_ERROR_CHARS) : text;
}

function isLeaseError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'INVALID_LEASE' || code === 'LEASE_ALREADY_ACKNOWLEDGED';
}
