import { randomUUID } from 'node:crypto';
import { assertDurationMs, assertInteger, assertName, assertPrefix, type RedisClientLike } from '@x/redis-core';
import { assertClient } from '@x/redis-core';
import { allocateScript, consumeChunkScript, getChunkScript, releaseScript, renewScript } from './chunks';
import { consumeScript, getStateScript, setAvailableScript, topUpScript } from './direct';
import { LocalConsumer, type LocalConsumerOptions } from './local-consumer';
import { cancelScript, commitScript, reserveScript } from './reservations';
import { resourceKeys, type ResourceKeys } from './resource';
import { traced } from './tracing';
import type { ChunkConsumeResult, ChunkLease, ChunkStatus, CommitResult, ConsumeResult, QuotaState, Reservation, TopUpResult } from './types';

/**
 * Options of a {@link Quota}.
 *
 * @example
 * new Quota(client, { prefix: 'billing', idempotencyTtlMs: 3_600_000 });
 */
export interface QuotaOptions {
  /**
   * First part of every key: `<prefix>:quota:{<resource>}:...`.
   * @default 'x'
   */
  prefix?: string;
  /**
   * How long an idempotency key (and a `consumeChunk` operation id) is remembered.
   * @default 86_400_000 (one day)
   */
  idempotencyTtlMs?: number;
  /**
   * How long the outcome of a finished reservation or lease (committed, cancelled, expired,
   * released) is remembered, so that replays and late calls get the right answer.
   * @default idempotencyTtlMs
   */
  receiptTtlMs?: number;
}

/**
 * Options of `tryConsume` and `topUp`.
 *
 * @example
 * await quota.tryConsume('wallet:123', 5, { idempotencyKey: 'req-001' });
 */
export interface IdempotencyOptions {
  /** Makes the call idempotent: a replay with the same key returns the first result. */
  idempotencyKey?: string;
}

/**
 * Options of `reserve`.
 *
 * @example
 * await quota.reserve('wallet:123', 10, { ttlMs: 30_000, reservationId: 'order-7' });
 */
export interface ReserveOptions {
  /**
   * How long the hold lives unless committed or cancelled.
   * @default 30_000
   */
  ttlMs?: number;
  /**
   * The hold's id, and its idempotency key: reserving again with the same id and amount returns
   * the same hold.
   * @default a random UUID
   */
  reservationId?: string;
}

/**
 * Options of `commit`.
 *
 * @example
 * await quota.commit('wallet:123', 'order-7', { amount: 8 });
 */
export interface CommitOptions {
  /**
   * Commit only this much of the hold (from 1 to the held amount) and give the rest back.
   * @default the whole hold
   */
  amount?: number;
}

/**
 * Options of `allocateChunk`.
 *
 * @example
 * await quota.allocateChunk('wallet:123', 100, { ownerId: 'worker-a', ttlMs: 30_000, leaseId: 'lease-1' });
 */
export interface AllocateChunkOptions {
  /** The lease's owner: every later call on the lease must name it. */
  ownerId: string;
  /**
   * How long the lease lives unless renewed.
   * @default 30_000
   */
  ttlMs?: number;
  /**
   * The lease's id, and its idempotency key: allocating again with the same id, owner and amount
   * returns the same lease.
   * @default a random UUID
   */
  leaseId?: string;
}

/**
 * Options of `consumeChunk`.
 *
 * @example
 * await quota.consumeChunk('wallet:123', 'lease-1', 5, { ownerId: 'worker-a', operationId: 'job-77' });
 */
export interface ConsumeChunkOptions {
  /** The lease's owner, as given to `allocateChunk`. */
  ownerId: string;
  /**
   * Makes the call idempotent: a replay with the same id returns the first result.
   * @default a random UUID (no replay)
   */
  operationId?: string;
}

/**
 * Options of `renewChunk`.
 *
 * @example
 * await quota.renewChunk('wallet:123', 'lease-1', { ownerId: 'worker-a', ttlMs: 30_000 });
 */
export interface RenewChunkOptions {
  /** The lease's owner, as given to `allocateChunk`. */
  ownerId: string;
  /**
   * The lease's new TTL, counted from now.
   * @default 30_000
   */
  ttlMs?: number;
}

/**
 * Options of `releaseChunk`.
 *
 * @example
 * await quota.releaseChunk('wallet:123', 'lease-1', { ownerId: 'worker-a' });
 */
export interface ReleaseChunkOptions {
  /** The lease's owner, as given to `allocateChunk`. */
  ownerId: string;
}

const DEFAULT_TTL_MS = 30_000;

/**
 * Exact, bounded consumption of shared quotas: many processes take from one budget and it never
 * goes below zero. Each call is one round trip (one script); expired holds and leases are
 * reclaimed by the next call on the resource.
 *
 * - Direct path: `tryConsume`, `topUp`, `setAvailable`, `reserve` / `commit` / `cancel`.
 * - Chunk path: `allocateChunk` takes units out for one owner, `consumeChunk` spends them,
 *   `renewChunk` / `releaseChunk` keep or give back the rest.
 * - Local path: `localConsumer` hands out units from memory, refilled by chunk leases.
 *
 * @example
 * const quota = new Quota(client);
 * await quota.topUp('wallet:123', 100, { idempotencyKey: 'deposit-9' });
 * const r = await quota.tryConsume('wallet:123', 5, { idempotencyKey: 'req-001' });
 * if (r.applied) console.log(`${r.remaining} left`);
 */
export class Quota {
  readonly #client: RedisClientLike;
  readonly #prefix: string;
  readonly #idempotencyTtlMs: number;
  readonly #receiptTtlMs: number;
  /** Keys by resource, so a hot resource's keys are built once. */
  readonly #keyCache = new Map<string, ResourceKeys>();

  constructor(client: RedisClientLike, options: QuotaOptions = {}) {
    assertClient(client);
    this.#client = client;
    this.#prefix = assertPrefix(options.prefix ?? 'x');
    this.#idempotencyTtlMs = assertInteger('idempotencyTtlMs', options.idempotencyTtlMs ?? 86_400_000, 1);
    this.#receiptTtlMs = assertInteger('receiptTtlMs', options.receiptTtlMs ?? this.#idempotencyTtlMs, 1);
  }

  /**
   * Takes `amount` from `available` if it is all there. Not enough is `applied: false` with the
   * current `remaining`, not an error.
   *
   * @example
   * const { applied, remaining } = await quota.tryConsume('wallet:123', 5, { idempotencyKey: 'req-001' });
   */
  async tryConsume(resource: string, amount: number, options: IdempotencyOptions = {}): Promise<ConsumeResult> {
    return traced.tryConsume.trace(resource, () => this.#tryConsume(resource, amount, options));
  }

  async #tryConsume(resource: string, amount: number, options: IdempotencyOptions = {}): Promise<ConsumeResult> {
    const keys = this.#keys(resource);
    assertAmount(amount);
    const key = optionalName('idempotencyKey', options.idempotencyKey);
    const operationId = randomUUID();
    const [applied, remaining, opId] = (await consumeScript.run(
      this.#client,
      key === undefined ? keys.withoutRecord : [...keys.common, keys.idempotency(key)],
      [this.#receiptTtlMs, amount, operationId, key === undefined ? 0 : this.#idempotencyTtlMs],
    )) as [number, string, string];
    return { applied: applied === 1, remaining: Number(remaining), operationId: opId };
  }

  /**
   * Adds `amount` to `available` (and to `supplied`). The total ever supplied is bounded by
   * 2^53 − 1.
   *
   * @example
   * await quota.topUp('wallet:123', 100, { idempotencyKey: 'deposit-9' });
   */
  async topUp(resource: string, amount: number, options: IdempotencyOptions = {}): Promise<TopUpResult> {
    return traced.topUp.trace(resource, () => this.#topUp(resource, amount, options));
  }

  async #topUp(resource: string, amount: number, options: IdempotencyOptions = {}): Promise<TopUpResult> {
    const keys = this.#keys(resource);
    assertAmount(amount);
    const key = optionalName('idempotencyKey', options.idempotencyKey);
    const [added, available, opId] = (await topUpScript.run(
      this.#client,
      key === undefined ? keys.withoutRecord : [...keys.common, keys.idempotency(key)],
      [this.#receiptTtlMs, amount, randomUUID(), key === undefined ? 0 : this.#idempotencyTtlMs],
    )) as [string, string, string];
    return { added: Number(added), available: Number(available), operationId: opId };
  }

  /**
   * Sets `available` to `available` atomically (0 allowed); `supplied` moves by the difference.
   * Pending holds and active leases stay as they are.
   *
   * @example
   * await quota.setAvailable('campaign:7', 10_000);
   */
  async setAvailable(resource: string, available: number): Promise<QuotaState> {
    return traced.setAvailable.trace(resource, () => this.#setAvailable(resource, available));
  }

  async #setAvailable(resource: string, available: number): Promise<QuotaState> {
    const keys = this.#keys(resource);
    assertInteger('available', available, 0);
    return toState(resource, await setAvailableScript.run(this.#client, keys.common, [this.#receiptTtlMs, available]));
  }

  /**
   * The resource's balances, after reclaiming what expired. An unknown resource reads as zero.
   *
   * @example
   * const { available, reserved, leased, consumed, supplied } = await quota.getState('wallet:123');
   */
  async getState(resource: string): Promise<QuotaState> {
    const keys = this.#keys(resource);
    return toState(resource, await getStateScript.run(this.#client, keys.common, [this.#receiptTtlMs]));
  }

  /**
   * Holds `amount` (moves it from `available` to `reserved`) until `commit`, `cancel` or expiry.
   * Throws `InsufficientQuotaError` when `available` cannot cover it.
   *
   * @example
   * const hold = await quota.reserve('wallet:123', 10, { ttlMs: 30_000 });
   */
  async reserve(resource: string, amount: number, options: ReserveOptions = {}): Promise<Reservation> {
    return traced.reserve.trace(resource, () => this.#reserve(resource, amount, options));
  }

  async #reserve(resource: string, amount: number, options: ReserveOptions = {}): Promise<Reservation> {
    const keys = this.#keys(resource);
    assertAmount(amount);
    const ttlMs = assertDurationMs('ttlMs', options.ttlMs ?? DEFAULT_TTL_MS);
    const reservationId = optionalName('reservationId', options.reservationId) ?? randomUUID();
    const [held, expiresAt] = (await reserveScript.run(this.#client, keys.common, [this.#receiptTtlMs, amount, ttlMs, reservationId])) as [
      string,
      string,
    ];
    return { reservationId, resource, amount: Number(held), expiresAtMs: Number(expiresAt), status: 'pending' };
  }

  /**
   * Consumes a pending hold: all of it, or `amount` of it (the rest goes back to `available`).
   * A replay returns the first commit's result.
   *
   * @example
   * await quota.commit('wallet:123', hold.reservationId);              // all of it
   * await quota.commit('wallet:123', other.reservationId, { amount: 3 }); // part of it
   */
  async commit(resource: string, reservationId: string, options: CommitOptions = {}): Promise<CommitResult> {
    return traced.commit.trace(resource, () => this.#commit(resource, reservationId, options));
  }

  async #commit(resource: string, reservationId: string, options: CommitOptions = {}): Promise<CommitResult> {
    const keys = this.#keys(resource);
    assertName('reservationId', reservationId);
    const amount = options.amount === undefined ? '' : assertAmount(options.amount);
    const [committed, remaining, operationId] = (await commitScript.run(this.#client, keys.common, [
      this.#receiptTtlMs,
      reservationId,
      randomUUID(),
      amount,
    ])) as [string, string, string];
    return { applied: true, amount: Number(committed), remaining: Number(remaining), operationId };
  }

  /**
   * Gives a pending hold back to `available`. True for a hold that was pending, already
   * cancelled or expired; false for an unknown or committed one.
   *
   * @example
   * await quota.cancel('wallet:123', hold.reservationId);
   */
  async cancel(resource: string, reservationId: string): Promise<boolean> {
    return traced.cancel.trace(resource, () => this.#cancel(resource, reservationId));
  }

  async #cancel(resource: string, reservationId: string): Promise<boolean> {
    const keys = this.#keys(resource);
    assertName('reservationId', reservationId);
    return (await cancelScript.run(this.#client, keys.common, [this.#receiptTtlMs, reservationId])) === 1;
  }

  /**
   * Leases `amount` units to `ownerId` (moves them from `available` to `leased`). Throws
   * `InsufficientQuotaError` when `available` cannot cover it.
   *
   * @example
   * const lease = await quota.allocateChunk('wallet:123', 100, { ownerId: 'worker-a', ttlMs: 30_000 });
   */
  async allocateChunk(resource: string, amount: number, options: AllocateChunkOptions): Promise<ChunkLease> {
    return traced.allocateChunk.trace(resource, () => this.#allocateChunk(resource, amount, options));
  }

  async #allocateChunk(resource: string, amount: number, options: AllocateChunkOptions): Promise<ChunkLease> {
    const keys = this.#keys(resource);
    assertAmount(amount);
    const ownerId = assertName('ownerId', options?.ownerId);
    const ttlMs = assertDurationMs('ttlMs', options.ttlMs ?? DEFAULT_TTL_MS);
    const leaseId = optionalName('leaseId', options.leaseId) ?? randomUUID();
    const reply = await allocateScript.run(this.#client, keys.common, [this.#receiptTtlMs, amount, ttlMs, ownerId, leaseId]);
    return toLease(resource, leaseId, reply);
  }

  /**
   * Spends `amount` of a lease. Not enough left in the lease is `applied: false`, not an error.
   *
   * @example
   * await quota.consumeChunk('wallet:123', lease.leaseId, 5, { ownerId: 'worker-a', operationId: 'job-77' });
   */
  async consumeChunk(resource: string, leaseId: string, amount: number, options: ConsumeChunkOptions): Promise<ChunkConsumeResult> {
    return traced.consumeChunk.trace(resource, () => this.#consumeChunk(resource, leaseId, amount, options));
  }

  async #consumeChunk(resource: string, leaseId: string, amount: number, options: ConsumeChunkOptions): Promise<ChunkConsumeResult> {
    const keys = this.#keys(resource);
    assertName('leaseId', leaseId);
    assertAmount(amount);
    const ownerId = assertName('ownerId', options?.ownerId);
    const operationId = optionalName('operationId', options.operationId);
    const [applied, remaining, expiresAt] = (await consumeChunkScript.run(
      this.#client,
      operationId === undefined ? keys.withoutRecord : [...keys.common, keys.operation(operationId)],
      [this.#receiptTtlMs, leaseId, ownerId, amount, operationId === undefined ? 0 : this.#idempotencyTtlMs],
    )) as [number, string, string];
    return { applied: applied === 1, leaseId, remaining: Number(remaining), expiresAtMs: Number(expiresAt) };
  }

  /**
   * Extends a live lease to `ttlMs` from now. An expired lease cannot be renewed.
   *
   * @example
   * await quota.renewChunk('wallet:123', lease.leaseId, { ownerId: 'worker-a', ttlMs: 30_000 });
   */
  async renewChunk(resource: string, leaseId: string, options: RenewChunkOptions): Promise<ChunkLease> {
    return traced.renewChunk.trace(resource, () => this.#renewChunk(resource, leaseId, options));
  }

  async #renewChunk(resource: string, leaseId: string, options: RenewChunkOptions): Promise<ChunkLease> {
    const keys = this.#keys(resource);
    assertName('leaseId', leaseId);
    const ownerId = assertName('ownerId', options?.ownerId);
    const ttlMs = assertDurationMs('ttlMs', options.ttlMs ?? DEFAULT_TTL_MS);
    return toLease(resource, leaseId, await renewScript.run(this.#client, keys.common, [this.#receiptTtlMs, leaseId, ownerId, ttlMs]));
  }

  /**
   * Ends a lease and gives its remaining units back to `available`. The result's `remaining` is
   * what was given back.
   *
   * @example
   * await quota.releaseChunk('wallet:123', lease.leaseId, { ownerId: 'worker-a' });
   */
  async releaseChunk(resource: string, leaseId: string, options: ReleaseChunkOptions): Promise<ChunkLease> {
    return traced.releaseChunk.trace(resource, () => this.#releaseChunk(resource, leaseId, options));
  }

  async #releaseChunk(resource: string, leaseId: string, options: ReleaseChunkOptions): Promise<ChunkLease> {
    const keys = this.#keys(resource);
    assertName('leaseId', leaseId);
    const ownerId = assertName('ownerId', options?.ownerId);
    return toLease(resource, leaseId, await releaseScript.run(this.#client, keys.common, [this.#receiptTtlMs, leaseId, ownerId]));
  }

  /**
   * A lease as it is now (`active`), or its final state (`released`, `expired`) while its
   * receipt is kept; null for an unknown lease.
   *
   * @example
   * const lease = await quota.getChunk('wallet:123', leaseId);
   */
  async getChunk(resource: string, leaseId: string): Promise<ChunkLease | null> {
    const keys = this.#keys(resource);
    assertName('leaseId', leaseId);
    const reply = await getChunkScript.run(this.#client, keys.common, [this.#receiptTtlMs, leaseId]);
    return reply === null || reply === undefined ? null : toLease(resource, leaseId, reply);
  }

  /**
   * An in-process consumer of `resource`: `tryConsume` answers synchronously from a leased chunk,
   * refilled in the background; `close()` gives back what is left.
   *
   * @example
   * await using consumer = quota.localConsumer('api-calls', { chunkSize: 1_000 });
   * if (consumer.tryConsume()) handle(request);
   */
  localConsumer(resource: string, options: LocalConsumerOptions): LocalConsumer {
    const keys = this.#keys(resource);
    const chunkSize = assertInteger('chunkSize', options?.chunkSize, 1);
    const ownerId = optionalName('ownerId', options.ownerId) ?? `local:${randomUUID()}`;
    const ttlMs = assertDurationMs('ttlMs', options.ttlMs ?? DEFAULT_TTL_MS, 10);
    const refillBelow = assertInteger('refillBelow', options.refillBelow ?? Math.ceil(chunkSize / 2), 0, chunkSize);
    const flushIntervalMs = assertDurationMs('flushIntervalMs', options.flushIntervalMs ?? 100);
    return new LocalConsumer(
      { client: this.#client, resource, keys, receiptTtlMs: this.#receiptTtlMs },
      { chunkSize, ownerId, ttlMs, refillBelow, flushIntervalMs },
    );
  }

  #keys(resource: string): ResourceKeys {
    let keys = this.#keyCache.get(resource);
    if (!keys) {
      keys = resourceKeys(this.#prefix, resource);
      if (this.#keyCache.size >= 1_000) this.#keyCache.clear();
      this.#keyCache.set(resource, keys);
    }
    return keys;
  }
}

function assertAmount(value: unknown): number {
  return assertInteger('amount', value, 1);
}

function optionalName(label: string, value: unknown): string | undefined {
  return value === undefined ? undefined : assertName(label, value);
}

function toState(resource: string, reply: unknown): QuotaState {
  const [available, reserved, leased, consumed, supplied, version] = (reply as string[]).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return { resource, available, reserved, leased, consumed, supplied, version };
}

function toLease(resource: string, leaseId: string, reply: unknown): ChunkLease {
  const [status, granted, remaining, expiresAt, ownerId] = reply as [ChunkStatus, string, string, string, string];
  return {
    leaseId,
    resource,
    ownerId,
    granted: Number(granted),
    remaining: Number(remaining),
    expiresAtMs: Number(expiresAt),
    status,
  };
}
