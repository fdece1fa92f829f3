import { createHash, randomBytes } from 'node:crypto';
import {
  Backoff,
  InvalidArgumentError,
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
import { jsonCodec, type Codec } from './codec';
import { KeyAlreadyInFlightError, LeaseAlreadyAcknowledgedError, QueueClosedError, QueueTimeoutError } from './errors';
import { assertLease, type Lease } from './lease';
import {
  QUEUE_KEYS,
  ackScript,
  availableKeysScript,
  containsScript,
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
   * Put the item at the front of the queue (next to be served) rather than at the back.
   * @default false
   */
  requeueFront?: boolean;
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
const RETURN_BATCH = 1_000;

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
export class LeasedKeyQueue<T = unknown> {
  /** The queue's name. */
  readonly name: string;
  readonly #client: RedisClientLike;
  readonly #ks: Keyspace;
  readonly #keys: string[];
  readonly #codec: Codec<T>;
  readonly #defaultLeaseMs: number | null;
  readonly #ackHistory: string;
  /** Leases this instance granted and has not seen end: `close()` returns them. */
  readonly #held = new Map<string, Lease>();
  readonly #acked = new WeakSet<Lease>();
  readonly #pending = new Set<Promise<unknown>>();
  readonly #closing = new AbortController();
  #closed: Promise<void> | undefined;

  constructor(client: RedisClientLike, name: string, options: LeasedKeyQueueOptions<T> = {}) {
    if (typeof client !== 'object' || client === null || typeof client.evalSha !== 'function') {
      throw new InvalidArgumentError('client must be a connected node-redis client');
    }
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
    const result = (await putScript.run(this.#client, this.#keys, [this.#ks.channel, key, encoded, mode])) as PutResult | 'rejected';
    if (result === 'rejected') throw new KeyAlreadyInFlightError(key);
    return result;
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
    assertLease(lease);
    if (this.#acked.has(lease)) throw new LeaseAlreadyAcknowledgedError(`lease ${lease.token} was acknowledged already`);
    await this.#onLease(
      lease,
      () => ackScript.run(this.#client, this.#keys, [this.#ks.channel, lease.key, lease.token, String(lease.fence), this.#ackHistory]),
      'LEASE_ALREADY_ACKNOWLEDGED',
    );
    this.#acked.add(lease);
  }

  /**
   * Ends a lease and puts the item back: at the back, or at the front with `requeueFront`.
   *
   * @example
   * await q.release(lease, { requeueFront: true });
   */
  async release(lease: Lease, options: ReleaseOptions = {}): Promise<void> {
    this.#assertOpen();
    assertLease(lease);
    if (this.#acked.has(lease)) throw new LeaseAlreadyAcknowledgedError(`lease ${lease.token} was acknowledged already`);
    const front = options.requeueFront === true ? '1' : '0';
    await this.#onLease(
      lease,
      () => releaseScript.run(this.#client, this.#keys, [this.#ks.channel, lease.key, lease.token, String(lease.fence), front]),
      'INVALID_LEASE',
    );
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
      expiresAt = Number(
        await extendScript.run(this.#client, this.#keys, [this.#ks.channel, lease.key, lease.token, String(lease.fence), String(ms)]),
      );
    } catch (error) {
      if (isLeaseError(error)) this.#held.delete(lease.token);
      throw error;
    }
    const extended: Lease = Object.freeze({ key: lease.key, token: lease.token, fence: lease.fence, expiresAt });
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
    const encoded = this.#codec.encode(value);
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
    const promise = this.#wait(key, timeoutMs, leaseArg, signal);
    this.#pending.add(promise);
    const forget = (): void => void this.#pending.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  async #wait(key: string | undefined, timeoutMs: number, leaseArg: string, signal: AbortSignal | undefined): Promise<LeasedItem<T>> {
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
        ? getScript.run(this.#client, this.#keys, [channel, token, leaseArg, register ? target : '', resend ? '1' : ''])
        : takeScript.run(this.#client, this.#keys, [channel, token, leaseArg, register ? '1' : '0', key]);

    const once = async (register: boolean): Promise<Attempt<unknown[]>> => {
      let r: unknown[];
      try {
        r = (await attempt(register)) as unknown[];
      } catch (error) {
        if (isTransient(error, this.#client)) resend = true;
        throw error;
      }
      return r.length === 1 ? { retryInMs: Number(r[0]) } : { done: r };
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
    const [itemKey, raw, fence, expiresAt] = reply as [string, string, string, string];
    const lease: Lease = Object.freeze({
      key: itemKey,
      token,
      fence: Number(fence),
      expiresAt: expiresAt === '-' ? null : Number(expiresAt),
    });
    this.#remember(lease);
    // Granted while close() ran: close() returns it to the front.
    if (this.#closed) throw new QueueClosedError('the queue was closed while waiting');
    return { key: itemKey, value: this.#codec.decode(raw), lease };
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

function isLeaseError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'INVALID_LEASE' || code === 'LEASE_ALREADY_ACKNOWLEDGED';
}
