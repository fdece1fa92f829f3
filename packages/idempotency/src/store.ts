import { randomBytes } from 'node:crypto';
import {
  InvalidArgumentError,
  LeaseKeeper,
  assertDurationMs,
  assertInteger,
  assertName,
  assertPrefix,
  assertSignal,
  assertTimeoutMs,
  keyspace,
  waitFor,
  type KeptLease,
  type Keyspace,
  type RedisClientLike,
} from '@x/redis-core';
import { assertClient } from '@x/redis-core';
import { jsonCodec, type Codec } from './codec';
import { IdempotencyInProgressError, IdempotencyLeaseLostError } from './errors';
import { fingerprintOf } from './fingerprint';
import { ReplayedError, fromStoredError, toStoredError } from './replayed-error';
import { traced } from './tracing';
import { ABANDON } from './abandon';
import { beginScript, completeScript, failScript, getScript, inspectScript, renewScript, setScript } from './scripts';

// Claim tokens and waiter ids: a random per-process part and a counter, unique across processes
// and cheaper than a UUID per call (a token proves a claim; it guards against mistakes, not attackers
// who can reach Redis anyway).
const PROCESS_ID = randomBytes(12).toString('base64url');
let counter = 0;
function newToken(): string {
  counter = counter >= Number.MAX_SAFE_INTEGER ? 0 : counter + 1;
  return `${PROCESS_ID}.${counter.toString(36)}`;
}

/** Longest retention accepted: ten years. */
const MAX_TTL_MS = 315_360_000_000;
/** Largest stored value accepted: Redis's default `proto-max-bulk-len`. */
const MAX_VALUE_BYTES = 512 * 1024 * 1024;

/**
 * Decides whether a thrown error is stored and replayed (`true`) or frees the key (`false`).
 *
 * @example
 * const cacheErrors: CacheErrors = (error) => (error as { status?: number }).status === 402;
 */
export type CacheErrors = boolean | ((error: unknown) => boolean);

/**
 * Options of {@link IdempotencyStore}.
 *
 * @example
 * const options: IdempotencyStoreOptions = { ttlMs: 86_400_000, leaseMs: 30_000, cacheErrors: false };
 */
export interface IdempotencyStoreOptions {
  /**
   * How long a completed result (or a cached error) is kept and replayed, counted from when it
   * was stored. Up to ten years.
   * @default 86_400_000 (24 hours)
   */
  ttlMs?: number;
  /**
   * The lease of a running claim. `run` (and `begin`, unless `keepAlive: false`) renews it while
   * the operation runs; a worker that dies stops renewing, and its key can be claimed again at
   * most `leaseMs` later. At least 100.
   * @default 30_000
   */
  leaseMs?: number;
  /**
   * How long `run` waits for the result when a duplicate arrives while the first run of its key
   * is going; `0` throws `IdempotencyInProgressError` at once, `Infinity` waits as long as it takes.
   * @default 10_000
   */
  waitMs?: number;
  /**
   * Whether an error thrown by a `run` operation is stored and replayed to every retry (`true`, or
   * a predicate that says so per error), or frees the key so that a retry runs again (`false`).
   * @default false
   */
  cacheErrors?: CacheErrors;
  /**
   * How results are stored. The default is JSON in which `undefined`, `Date`, `bigint`, `Map`,
   * `Set` and byte arrays round-trip; nothing stored is ever executed on load.
   * @default jsonCodec
   */
  codec?: Codec;
  /**
   * Largest encoded result (or error) accepted, in bytes; a larger one is refused with an
   * `InvalidArgumentError` and nothing is written.
   * @default 4_194_304 (4 MiB)
   */
  maxValueBytes?: number;
  /**
   * First part of every key (`<prefix>:idempotency:{<key>}:record`); no `{` or `}`.
   * @default 'x'
   */
  prefix?: string;
}

/**
 * What `begin` found: the key is now yours, was done before, failed before, or is running.
 *
 * @example
 * const claim: Claim<Order> = await store.begin(key);
 * if (claim.status === 'completed') return claim.result;
 */
export type Claim<T = unknown> = Acquired | Completed<T> | Failed | InProgress;

/**
 * The key is now claimed by you: run the operation, then `complete` or `fail` with `token`.
 *
 * @example
 * if (claim.status === 'acquired') await store.complete(key, claim.token, await work({ signal: claim.signal }));
 */
export interface Acquired {
  status: 'acquired';
  /** Proves the claim to `complete` and `fail`. */
  token: string;
  /** When the lease ends unless renewed (server clock, epoch ms). */
  expiresAt: number;
  /** Aborts (with an `IdempotencyLeaseLostError`) when the claim is lost. */
  signal: AbortSignal;
}

/**
 * The key's operation completed before: `result` is its stored result.
 *
 * @example
 * if (claim.status === 'completed') return claim.result;
 */
export interface Completed<T = unknown> {
  status: 'completed';
  result: T;
}

/**
 * The key's operation failed before and its error was cached: `error` replays it.
 *
 * @example
 * if (claim.status === 'failed') throw claim.error;
 */
export interface Failed {
  status: 'failed';
  error: ReplayedError;
}

/**
 * The key's operation is running elsewhere; its lease ends in `retryAfterMs` at the latest.
 *
 * @example
 * if (claim.status === 'in_progress') res.setHeader('Retry-After', Math.ceil(claim.retryAfterMs / 1000));
 */
export interface InProgress {
  status: 'in_progress';
  retryAfterMs: number;
}

/**
 * Options of {@link IdempotencyStore.begin}.
 *
 * @example
 * await store.begin(key, { fingerprint: body, keepAlive: true });
 */
export interface BeginOptions {
  /** The request, any JSON-like value; hashed canonically (object key order does not matter). */
  fingerprint?: unknown;
  /**
   * Renew the lease until `complete` or `fail` (in this process). With `false` the claim lapses
   * after `leaseMs` unless settled before.
   * @default true
   */
  keepAlive?: boolean;
}

/**
 * What a `run` operation is given.
 *
 * @example
 * await store.run(key, ({ signal }) => fetch(url, { method: 'POST', body, signal }));
 */
export interface RunContext {
  /** Aborts when the claim is lost (lease not renewed in time, or taken over), or `run`'s own `signal` aborts. */
  signal: AbortSignal;
  /** The claim's token (for logs, or to settle it by hand in tests). */
  token: string;
}

/**
 * Options of {@link IdempotencyStore.run}.
 *
 * @example
 * await store.run(key, op, { fingerprint: body, waitMs: 5_000, cacheErrors: true, signal });
 */
export interface RunOptions {
  /** The request, any JSON-like value; hashed canonically (object key order does not matter). */
  fingerprint?: unknown;
  /** Overrides the store's `waitMs` for this run. */
  waitMs?: number;
  /** Overrides the store's `cacheErrors` for this run. */
  cacheErrors?: CacheErrors;
  /** Overrides the store's `ttlMs` for this run's stored result. */
  ttlMs?: number;
  /** Stops waiting for a duplicate's result, and is passed on to the operation. */
  signal?: AbortSignal;
}

/**
 * Options of {@link IdempotencyStore.fail}.
 *
 * @example
 * await store.fail(key, token, { retryable: false, error });
 */
export interface FailOptions {
  /**
   * `true` frees the key so that a retry runs the operation again; `false` stores `error` and
   * replays it to every retry.
   * @default true
   */
  retryable?: boolean;
  /** The error to cache when `retryable` is false (its name, message and data properties are kept). */
  error?: unknown;
  /** Overrides the store's `ttlMs` for the cached error. */
  ttlMs?: number;
}

/**
 * Options of {@link IdempotencyStore.set}.
 *
 * @example
 * await store.set(key, order, { fingerprint: body, ttlMs: 3_600_000 });
 */
export interface SetOptions {
  /** The request the value answers; later `run`s with another fingerprint are refused. */
  fingerprint?: unknown;
  /** Overrides the store's `ttlMs`. */
  ttlMs?: number;
}

/**
 * What {@link IdempotencyStore.inspect} found: a running claim (`retryAfterMs` left on its
 * lease), a completed result or a cached error (`expiresInMs` left of its retention), or nothing.
 *
 * @example
 * const state: Inspection<Order> = await store.inspect(key);
 * if (state.status === 'running') console.log(`running, lease ends in ${state.retryAfterMs} ms`);
 */
export type Inspection<T = unknown> =
  | { status: 'absent' }
  | { status: 'running'; retryAfterMs: number }
  | { status: 'completed'; result: T; expiresInMs: number }
  | { status: 'failed'; error: ReplayedError; expiresInMs: number };

/** What a wait ends with: anything but a running claim. */
type Settled<T> = Exclude<Claim<T>, InProgress>;

interface Held {
  kept: KeptLease;
  controller: AbortController;
}

/**
 * Runs an operation once per key and gives every retry the stored result. One round trip claims
 * the key (first caller wins) or replays what is stored; the claim is a lease renewed while the
 * operation runs, so a crashed worker's key can be claimed again after `leaseMs`; duplicates that
 * arrive mid-flight wait without polling and are woken with the result.
 *
 * @example
 * const store = new IdempotencyStore(client, { ttlMs: 86_400_000, leaseMs: 30_000 });
 * const order = await store.run(`create-order:${key}`, () => createOrder(cmd), { fingerprint: cmd });
 */
export class IdempotencyStore {
  readonly #client: RedisClientLike;
  readonly #ttlMs: number;
  readonly #leaseMs: number;
  readonly #waitMs: number;
  readonly #cacheErrors: CacheErrors;
  readonly #codec: Codec;
  readonly #maxValueBytes: number;
  readonly #prefix: string;
  readonly #held = new Map<string, Held>();

  constructor(client: RedisClientLike, options: IdempotencyStoreOptions = {}) {
    assertClient(client);
    this.#client = client;
    this.#ttlMs = assertInteger('ttlMs', options.ttlMs ?? 86_400_000, 1, MAX_TTL_MS);
    this.#leaseMs = assertDurationMs('leaseMs', options.leaseMs ?? 30_000, 100);
    this.#waitMs = assertTimeoutMs(options.waitMs ?? 10_000, 'waitMs');
    this.#cacheErrors = assertCacheErrors(options.cacheErrors ?? false);
    this.#codec = assertCodec(options.codec ?? jsonCodec);
    this.#maxValueBytes = assertInteger('maxValueBytes', options.maxValueBytes ?? 4_194_304, 1, MAX_VALUE_BYTES);
    this.#prefix = assertPrefix(options.prefix ?? 'x');
  }

  /**
   * Runs `operation` once for `key`: the first caller runs it and stores its result; every later
   * caller gets the stored result (or the cached error) without running it. A caller arriving
   * while the first one runs waits up to `waitMs` for its result, then throws
   * `IdempotencyInProgressError`. If the first run fails with an error that is not cached, the
   * key is freed, and a waiting caller claims it and runs `operation` itself.
   *
   * @example
   * const charge = await store.run(`charge:${key}`, ({ signal }) => psp.charge(body, { signal }), {
   *   fingerprint: body, waitMs: 10_000,
   * });
   */
  async run<T>(key: string, operation: (context: RunContext) => T | Promise<T>, options: RunOptions = {}): Promise<T> {
    const { result } = await traced.run.trace(key, () => this.#run(key, operation, options));
    return result;
  }

  async #run<T>(key: string, operation: (context: RunContext) => T | Promise<T>, options: RunOptions): Promise<{ result: T; replayed: boolean }> {
    if (typeof operation !== 'function') throw new InvalidArgumentError('operation must be a function');
    const ks = this.#keyspace(key);
    const fp = optionalFingerprint(options.fingerprint);
    const waitMs = options.waitMs === undefined ? this.#waitMs : assertTimeoutMs(options.waitMs, 'waitMs');
    const cacheErrors = options.cacheErrors === undefined ? this.#cacheErrors : assertCacheErrors(options.cacheErrors);
    const ttlMs = this.#ttl(options.ttlMs);
    const signal = assertSignal(options.signal);
    signal?.throwIfAborted();

    const first = await this.#begin<T>(key, ks, fp, true);
    const claim = first.status === 'in_progress' ? await this.#wait<T>(key, ks, fp, first.retryAfterMs, waitMs, signal) : first;
    if (claim.status === 'completed') return { result: claim.result as T, replayed: true };
    if (claim.status === 'failed') throw claim.error;
    return { result: await this.#execute(ks, claim, operation, { cacheErrors, ttlMs, signal }), replayed: false };
  }

  /**
   * Claims `key`, or reports what is stored, in one round trip: `acquired` (run the operation,
   * then `complete` or `fail` with the token; the lease is renewed meanwhile unless
   * `keepAlive: false`), `completed` (the stored result), `failed` (a cached error) or
   * `in_progress` (another claim is running; `retryAfterMs` is the time left on its lease).
   *
   * @example
   * const claim = await store.begin(key, { fingerprint: body });
   * if (claim.status === 'acquired') {
   *   try { await store.complete(key, claim.token, await work()); }
   *   catch (e) { await store.fail(key, claim.token, { retryable: true }); throw e; }
   * }
   */
  async begin<T = unknown>(key: string, options: BeginOptions = {}): Promise<Claim<T>> {
    const ks = this.#keyspace(key);
    const fp = optionalFingerprint(options.fingerprint);
    const keepAlive = options.keepAlive ?? true;
    if (typeof keepAlive !== 'boolean') throw new InvalidArgumentError('keepAlive must be a boolean');
    return traced.begin.trace(key, () => this.#begin<T>(key, ks, fp, keepAlive));
  }

  /**
   * Stores `result` for the claim `token` and hands it to every waiting duplicate. Throws
   * `IdempotencyLeaseLostError` when the claim is no longer the key's (its lease ran out and
   * another worker claimed the key): the other worker's result stands. A late `complete` whose
   * lease ran out while nobody else claimed the key is still accepted.
   *
   * @example
   * await store.complete(key, claim.token, { orderId: 42 });
   */
  async complete(key: string, token: string, result: unknown, options: { ttlMs?: number } = {}): Promise<void> {
    const ks = this.#keyspace(key);
    assertName('token', token);
    const ttlMs = this.#ttl(options.ttlMs);
    const value = this.#encode(result);
    await traced.complete.trace(key, () => this.#settle(token, () => completeScript.run(this.#client, [ks.key('record')], [token, value, ttlMs, ks.channel, this.#maxValueBytes])));
  }

  /**
   * Settles the claim `token` as failed: `retryable: true` (the default) frees the key for a
   * retry, `false` stores `error` and replays it to every retry. Waiting duplicates are woken
   * either way. Throws `IdempotencyLeaseLostError` when the claim is no longer the key's.
   *
   * @example
   * await store.fail(key, claim.token, { retryable: false, error: new Error('card declined') });
   */
  async fail(key: string, token: string, options: FailOptions = {}): Promise<void> {
    const ks = this.#keyspace(key);
    assertName('token', token);
    const retryable = options.retryable ?? true;
    if (typeof retryable !== 'boolean') throw new InvalidArgumentError('retryable must be a boolean');
    const ttlMs = this.#ttl(options.ttlMs);
    const value = retryable ? '' : this.#encodeError(options.error ?? new Error('operation failed'));
    await traced.fail.trace(key, () => this.#settle(token, () => this.#failScript(ks, token, retryable ? null : value, ttlMs)));
  }

  /**
   * The stored result of `key`, or `undefined` when nothing completed is stored (never run,
   * running, expired, or a cached error). A stored `undefined` also reads as `undefined`: use
   * `begin` to tell them apart.
   *
   * @example
   * const cached = await store.get<Order>(`create-order:${key}`);
   * if (cached !== undefined) return cached;
   */
  async get<T = unknown>(key: string): Promise<T | undefined> {
    const ks = this.#keyspace(key);
    const value = (await getScript.run(this.#client, [ks.key('record')])) as string | null;
    return value === null ? undefined : (this.#codec.decode(value) as T);
  }

  /**
   * Stores `value` as the completed result of `key`, the same record `run` replays, replacing
   * whatever was there (a running claim then finds its lease lost on `complete`). Waiting
   * duplicates are woken with it.
   *
   * @example
   * await store.set(`create-order:${key}`, order);
   */
  async set(key: string, value: unknown, options: SetOptions = {}): Promise<void> {
    const ks = this.#keyspace(key);
    const fp = optionalFingerprint(options.fingerprint);
    const ttlMs = this.#ttl(options.ttlMs);
    const encoded = this.#encode(value);
    await setScript.run(this.#client, [ks.key('record')], [encoded, fp, ttlMs, ks.channel, this.#maxValueBytes]);
  }

  /**
   * What `key` holds, read in one round trip that writes nothing (no claim, no renewal, no
   * retention change): `running`, `completed` (with the result), `failed` (a cached error) or
   * `absent` (never run, expired, freed for a retry, or a claim whose lease ran out). For
   * operators and tests; to act on a key, use `begin` or `run`, which decide atomically.
   *
   * @example
   * const state = await store.inspect(`create-order:${key}`);
   * if (state.status === 'completed') console.log(state.result, `kept ${state.expiresInMs} ms more`);
   */
  async inspect<T = unknown>(key: string): Promise<Inspection<T>> {
    const ks = this.#keyspace(key);
    const reply = (await inspectScript.run(this.#client, [ks.key('record')])) as [string, string?, number?];
    const [status, payload = '', pttl = -1] = reply;
    switch (status) {
      case 'absent':
        return { status };
      case 'running':
        return { status, retryAfterMs: Number(payload) };
      case 'completed':
        return { status, result: this.#codec.decode(payload) as T, expiresInMs: Number(pttl) };
      case 'failed':
        return { status, error: fromStoredError(this.#codec.decode(payload)), expiresInMs: Number(pttl) };
    }
    throw new TypeError(`idempotency: unexpected reply ${JSON.stringify(reply)}`);
  }

  /** Stops renewing the claim `token` without settling it: it lapses after `leaseMs`. */
  [ABANDON](token: string): void {
    this.#release(token);
  }

  #keyspace(key: string): Keyspace {
    assertName('key', key);
    return keyspace(this.#prefix, 'idempotency', key);
  }

  #ttl(ttlMs: number | undefined): number {
    return ttlMs === undefined ? this.#ttlMs : assertInteger('ttlMs', ttlMs, 1, MAX_TTL_MS);
  }

  #encode(value: unknown): string {
    const text = this.#codec.encode(value);
    if (typeof text !== 'string') throw new InvalidArgumentError('codec.encode must return a string');
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > this.#maxValueBytes) {
      throw new InvalidArgumentError(`value is ${bytes} bytes encoded, more than maxValueBytes ${this.#maxValueBytes}`);
    }
    return text;
  }

  #encodeError(error: unknown): string {
    const stored = toStoredError(error, (value) => {
      try {
        this.#codec.encode(value);
        return true;
      } catch {
        return false;
      }
    });
    return this.#encode(stored);
  }

  async #begin<T>(key: string, ks: Keyspace, fp: string, keepAlive: boolean): Promise<Claim<T>> {
    const token = newToken();
    const sentAt = performance.now();
    const reply = (await beginScript.run(this.#client, [ks.key('record')], [token, fp, this.#leaseMs, this.#ttlMs])) as [string, string];
    const [status, payload] = reply;
    switch (status) {
      case 'completed':
        return { status, result: this.#codec.decode(payload) as T };
      case 'failed':
        return { status, error: fromStoredError(this.#codec.decode(payload)) };
      case 'in_progress':
        return { status, retryAfterMs: Number(payload) };
      case 'acquired':
        return this.#hold(key, ks, token, Number(payload), sentAt, keepAlive);
    }
    throw new TypeError(`idempotency: unexpected reply ${JSON.stringify(reply)}`);
  }

  #hold(key: string, ks: Keyspace, token: string, expiresAt: number, sentAt: number, keepAlive: boolean): Acquired {
    const controller = new AbortController();
    const record = ks.key('record');
    const kept = LeaseKeeper.for(this.#client).keep({
      ttlMs: this.#leaseMs,
      sentAt,
      ...(keepAlive
        ? {
            renew: async () => {
              const at = (await renewScript.run(this.#client, [record], [token, this.#leaseMs])) as number;
              return at < 0 ? null : at;
            },
          }
        : {}),
      onLost: (why) => {
        this.#held.delete(token);
        const reason = why === 'refused' ? 'was claimed by another worker' : 'ran out before it could be renewed';
        traced.leaseLost.publish(key, { detail: reason });
        controller.abort(new IdempotencyLeaseLostError(`the claim on ${JSON.stringify(key)} ${reason}`));
      },
    });
    this.#held.set(token, { kept, controller });
    return { status: 'acquired', token, expiresAt, signal: controller.signal };
  }

  #release(token: string): void {
    const held = this.#held.get(token);
    if (!held) return;
    this.#held.delete(token);
    held.kept.stop();
  }

  /** Runs a settling script; the claim stops being renewed once the server has answered. */
  async #settle(token: string, call: () => Promise<unknown>): Promise<void> {
    try {
      await call();
    } catch (error) {
      // A connection error leaves the claim ours (the script may not have run): keep renewing
      // so that the caller can retry the settle.
      if (IdempotencyLeaseLostError.isInstance(error)) this.#release(token);
      throw error;
    }
    this.#release(token);
  }

  #failScript(ks: Keyspace, token: string, cached: string | null, ttlMs: number): Promise<unknown> {
    return failScript.run(this.#client, [ks.key('record')], [
      token,
      cached === null ? 'free' : 'cache',
      cached ?? '',
      ttlMs,
      ks.channel,
      this.#maxValueBytes,
    ]);
  }

  async #wait<T>(key: string, ks: Keyspace, fp: string, retryAfterMs: number, waitMs: number, signal: AbortSignal | undefined): Promise<Settled<T>> {
    let lastRetryAfterMs = retryAfterMs;
    const inProgress = () =>
      new IdempotencyInProgressError(`${JSON.stringify(key)} is still running after waiting ${waitMs} ms`, lastRetryAfterMs);
    if (waitMs === 0) throw inProgress();
    return waitFor<Settled<T>>({
      client: this.#client,
      channel: ks.channel,
      target: newToken(),
      timeoutMs: waitMs,
      signal,
      timeoutError: inProgress,
      attempt: async () => {
        const claim = await this.#begin<T>(key, ks, fp, true);
        if (claim.status !== 'in_progress') return { done: claim };
        lastRetryAfterMs = claim.retryAfterMs;
        // Re-check when the running claim's lease would end, in case a wake-up was lost.
        return { retryInMs: claim.retryAfterMs + 1 };
      },
      onWake: (payload) => this.#fromWake<T>(payload, fp),
    });
  }

  /** A result handed over in a wake-up, or undefined to re-check with a round trip. */
  #fromWake<T>(payload: string, fp: string): Settled<T> | undefined {
    const kind = payload[0];
    if ((kind !== 'c' && kind !== 'f') || payload[1] !== ' ') return undefined;
    const space = payload.indexOf(' ', 2);
    if (space < 0) return undefined;
    const storedFp = payload.slice(2, space);
    // A different request's result (the claim changed hands): re-check, which reports the mismatch.
    if (fp !== '' && storedFp !== '-' && storedFp !== fp) return undefined;
    try {
      const value = this.#codec.decode(payload.slice(space + 1));
      return kind === 'c' ? { status: 'completed', result: value as T } : { status: 'failed', error: fromStoredError(value) };
    } catch {
      return undefined;
    }
  }

  async #execute<T>(
    ks: Keyspace,
    claim: Acquired,
    operation: (context: RunContext) => T | Promise<T>,
    options: { cacheErrors: CacheErrors; ttlMs: number; signal: AbortSignal | undefined },
  ): Promise<T> {
    const { token } = claim;
    const signal = options.signal ? AbortSignal.any([claim.signal, options.signal]) : claim.signal;
    try {
      let result: T;
      try {
        result = await operation({ signal, token });
      } catch (error) {
        let cached: string | null = null;
        if (shouldCache(options.cacheErrors, error)) {
          try {
            cached = this.#encodeError(error);
          } catch {
            // An error too large to store frees the key instead.
          }
        }
        // The operation's own error matters more than a failure to settle.
        await this.#failScript(ks, token, cached, options.ttlMs).catch(() => undefined);
        throw error;
      }
      let value: string;
      try {
        value = this.#encode(result);
      } catch (error) {
        await this.#failScript(ks, token, null, options.ttlMs).catch(() => undefined);
        throw error;
      }
      await completeScript.run(this.#client, [ks.key('record')], [token, value, options.ttlMs, ks.channel, this.#maxValueBytes]);
      return result;
    } finally {
      this.#release(token);
    }
  }
}

function optionalFingerprint(value: unknown): string {
  return value === undefined ? '' : fingerprintOf(value);
}

function shouldCache(cacheErrors: CacheErrors, error: unknown): boolean {
  if (typeof cacheErrors === 'boolean') return cacheErrors;
  try {
    return cacheErrors(error) === true;
  } catch {
    return false;
  }
}

function assertCacheErrors(value: unknown): CacheErrors {
  if (typeof value === 'boolean' || typeof value === 'function') return value as CacheErrors;
  throw new InvalidArgumentError('cacheErrors must be a boolean or a function');
}

function assertCodec(value: unknown): Codec {
  const codec = value as Partial<Codec> | null;
  if (codec && typeof codec.encode === 'function' && typeof codec.decode === 'function') return codec as Codec;
  throw new InvalidArgumentError('codec must have encode and decode functions');
}
