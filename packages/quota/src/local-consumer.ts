import { randomUUID } from 'node:crypto';
import { InvalidArgumentError, LeaseKeeper, type KeptLease, type RedisClientLike } from '@x/redis-core';
import { ConsumerClosedError } from './errors';
import { quotaScript } from './lua';
import type { ResourceKeys } from './resource';

/**
 * One round trip that keeps a local consumer's lease in step with what the process did:
 * reports the units used since the last sync (leased -> consumed), renews the lease, and tops it
 * up from `available` (as much as is there, up to `want`), or releases it.
 *
 * KEYS[8] the operation record (a lost reply is retried with the same operation id and replays).
 * ARGV[2] leaseId, ARGV[3] ownerId, ARGV[4] ttlMs, ARGV[5] used since last sync, ARGV[6] want,
 * ARGV[7] '1' when the lease may be created, ARGV[8] '1' to release, ARGV[9] record TTL.
 * Reply: { status, added, remaining, expiresAtMs }, status one of
 *   active   the lease is live with `remaining` units,
 *   none     nothing was available to create the lease with,
 *   released the lease was given back (`remaining` units went back to `available`),
 *   lost     the lease had expired: the units reported were taken from `available` (as far as
 *            it goes) so that they still count as consumed.
 */
const syncScript = quotaScript(
  'quota.localSync',
  ['record'],
  `
local id, owner = ARGV[2], ARGV[3]
if #owner == 0 or #id == 0 then return invalid('ownerId and leaseId must be non-empty strings') end
local ttl = num(ARGV[4], 1, 2147483647)
local used = num(ARGV[5], 0, MAX)
local want = num(ARGV[6], 0, MAX)
local op_ttl = num(ARGV[9], 1, MAX)
if not (ttl and used and want and op_ttl) then return invalid('local sync arguments must be integers') end
local create, release = ARGV[7] == '1', ARGV[8] == '1'
begin(true)
local prev = redis.call('GET', KEYS[8])
if prev then
  local st, added, r, e = string.match(prev, '^sync|(%a+)|(%d+)|(%d+)|(%d+)$')
  if not st then return redis.error_reply('IDEMPOTENCY_CONFLICT this operation id was used for another request') end
  return { st, added, r, e }
end
local function done(st, added, r, e)
  redis.call('SET', KEYS[8], 'sync|' .. st .. '|' .. int(added) .. '|' .. int(r) .. '|' .. int(e), 'PX', op_ttl)
  return { st, int(added), int(r), int(e) }
end
local rec = redis.call('HGET', K_LEASES, id)
if not rec then
  local changed = false
  if used > 0 then
    local take = math.min(used, S.available)
    S.available = S.available - take
    S.consumed = S.consumed + take
    changed = true
  end
  if create and not release and not receipt_status('l:' .. id) then
    local add = math.min(want, S.available)
    if add > 0 then
      S.available = S.available - add
      S.leased = S.leased + add
      local e = NOW + ttl
      redis.call('HSET', K_LEASES, id, lease_rec(add, add, e, owner))
      redis.call('ZADD', K_LEXP, int(e), id)
      due(e)
      save()
      return done('active', add, add, e)
    end
    if changed then save() end
    return done('none', 0, 0, 0)
  end
  if changed then save() end
  return done('lost', 0, 0, 0)
end
local g, r, _, o = parse_lease(rec, id)
if o ~= owner then return redis.error_reply('LEASE_OWNERSHIP_MISMATCH the lease belongs to another owner') end
if used > r then corrupt('a local consumer reported more than its lease holds') end
r = r - used
S.leased = S.leased - used
S.consumed = S.consumed + used
if release then
  S.available = S.available + r
  S.leased = S.leased - r
  redis.call('HDEL', K_LEASES, id)
  redis.call('ZREM', K_LEXP, id)
  put_receipts({ 'l:' .. id, 'released|' .. lease_rec(g, r, NOW, o) })
  save()
  return done('released', 0, r, NOW)
end
local add = math.min(want, S.available)
S.available = S.available - add
S.leased = S.leased + add
local e = NOW + ttl
redis.call('HSET', K_LEASES, id, lease_rec(g + add, r + add, e, o))
redis.call('ZADD', K_LEXP, int(e), id)
due(e)
if used > 0 or add > 0 then save() else save_next() end
return done('active', add, r + add, e)
`,
);

/**
 * Options of {@link Quota.localConsumer}.
 *
 * @example
 * quota.localConsumer('api-calls', { chunkSize: 1_000, ttlMs: 30_000, flushIntervalMs: 100 });
 */
export interface LocalConsumerOptions {
  /**
   * Units taken from the resource per refill: the most this process holds at once.
   */
  chunkSize: number;
  /**
   * The owner of the consumer's lease.
   * @default a random id
   */
  ownerId?: string;
  /**
   * TTL of the consumer's lease; it is renewed at a third of it while the consumer is open. A
   * crashed process's unspent units come back to `available` at most this long after the crash.
   * @default 30_000
   */
  ttlMs?: number;
  /**
   * A background refill starts when fewer than this many units are left in hand.
   * @default half of chunkSize (rounded up)
   */
  refillBelow?: number;
  /**
   * Units used locally are reported to Redis at most this long after use (batched into one round
   * trip). After a crash, the units used in the last `flushIntervalMs` were not reported, and go
   * back to `available` with the rest of the lease.
   * @default 100
   */
  flushIntervalMs?: number;
}

interface Op {
  opId: string;
  leaseId: string;
  used: number;
  want: number;
  create: boolean;
  release: boolean;
}

interface SyncOutcome {
  /** The resource could not give all that was asked for. */
  dry: boolean;
}

const TRUE = Promise.resolve(true);

/** The dependencies a local consumer gets from its `Quota`. */
export interface LocalConsumerContext {
  client: RedisClientLike;
  resource: string;
  keys: ResourceKeys;
  receiptTtlMs: number;
}

/**
 * Consumes a resource's quota from memory: a chunk is leased from Redis and handed out locally,
 * refilled in the background before it runs dry, and what was used is reported in batches.
 * `tryConsume` never waits (one comparison and a subtraction); `consume` waits for a refill when
 * the chunk in hand is short. The global quota never goes below zero: the process only hands out
 * units its lease holds, and stops before the lease could expire on the server.
 *
 * Create it with {@link Quota.localConsumer}.
 *
 * @example
 * const consumer = quota.localConsumer('api-calls', { chunkSize: 1_000 });
 * if (consumer.tryConsume(1)) serve(); else if (await consumer.consume(1)) serve(); else reject();
 * await consumer.close(); // reports the last use, gives back what is left
 */
export class LocalConsumer implements AsyncDisposable {
  /** The resource consumed from. */
  readonly resource: string;
  /** The owner of the consumer's leases. */
  readonly ownerId: string;
  readonly #ctx: LocalConsumerContext;
  readonly #chunkSize: number;
  readonly #ttlMs: number;
  readonly #refillBelow: number;
  readonly #flushIntervalMs: number;
  readonly #marginMs: number;
  /** Units in hand. */
  #local = 0;
  /** Units used locally and not yet acknowledged by Redis. */
  #unreported = 0;
  /** `performance.now()` after which units in hand must not be used (the lease may be gone). */
  #deadline = 0;
  #expiresAtMs = 0;
  #leaseId: string | undefined;
  #created = false;
  /** The operation sent and not yet acknowledged; resent as it is, so a replay is exact. */
  #pending: Op | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  #busy = 0;
  #quietUntil = 0;
  #flushTimer: NodeJS.Timeout | undefined;
  #kept: KeptLease | undefined;
  #state: 'open' | 'closing' | 'closed' = 'open';

  /** Built by {@link Quota.localConsumer}: use that. */
  constructor(ctx: LocalConsumerContext, options: Required<LocalConsumerOptions>) {
    this.#ctx = ctx;
    this.resource = ctx.resource;
    this.ownerId = options.ownerId;
    this.#chunkSize = options.chunkSize;
    this.#ttlMs = options.ttlMs;
    this.#refillBelow = options.refillBelow;
    this.#flushIntervalMs = options.flushIntervalMs;
    this.#marginMs = Math.min(options.ttlMs / 10, 500);
  }

  /** Units in hand right now (usable without a round trip while the lease is valid). */
  get available(): number {
    return performance.now() < this.#deadline ? this.#local : 0;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#state !== 'open';
  }

  /**
   * Takes `amount` units from the chunk in hand, synchronously: true when taken, false when the
   * chunk cannot cover it right now (a refill starts in the background). Throws
   * `ConsumerClosedError` after `close()`.
   */
  tryConsume(amount = 1): boolean {
    if (this.#state !== 'open') throw new ConsumerClosedError();
    if (!(Number.isSafeInteger(amount) && amount >= 1)) throw invalidAmount(amount);
    if (this.#local >= amount && performance.now() < this.#deadline) {
      this.#take(amount);
      return true;
    }
    this.#kick();
    return false;
  }

  /**
   * Takes `amount` units, waiting for a refill when the chunk in hand is short: true when taken,
   * false only when the resource's quota (what is available plus the chunk in hand) cannot cover
   * it. Rejects with `ConsumerClosedError` after `close()`, or with the Redis error when a refill
   * could not be made.
   */
  consume(amount = 1): Promise<boolean> {
    if (this.#state === 'open' && this.#local >= amount && amount >= 1 && Number.isSafeInteger(amount) && performance.now() < this.#deadline) {
      this.#take(amount);
      return TRUE;
    }
    return this.#consumeSlowly(amount);
  }

  /**
   * Reports the last units used and gives the rest of the lease back to `available`. Afterwards
   * `tryConsume` and `consume` throw. Calling it again after a failure retries.
   */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closing';
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    if (this.#created || this.#unreported > 0 || this.#pending) await this.#sync(0, true);
    this.#kept?.stop();
    this.#kept = undefined;
    this.#local = 0;
    this.#state = 'closed';
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #take(amount: number): void {
    this.#local -= amount;
    this.#unreported += amount;
    if (this.#local < this.#refillBelow) this.#kick();
    else if (this.#flushTimer === undefined) this.#scheduleFlush();
  }

  async #consumeSlowly(amount: number): Promise<boolean> {
    if (!(Number.isSafeInteger(amount) && amount >= 1)) throw invalidAmount(amount);
    for (;;) {
      if (this.#state !== 'open') throw new ConsumerClosedError();
      if (this.#local >= amount && performance.now() < this.#deadline) {
        this.#take(amount);
        return true;
      }
      const outcome = await this.#sync(amount, false);
      if (this.#state !== 'open') throw new ConsumerClosedError();
      if (this.#local >= amount && performance.now() < this.#deadline) {
        this.#take(amount);
        return true;
      }
      if (outcome.dry) return false;
    }
  }

  /** Starts a background sync unless one runs, or the resource was found dry a moment ago. */
  #kick(): void {
    if (this.#busy > 0 || this.#state !== 'open') return;
    if (performance.now() < this.#quietUntil) {
      this.#scheduleFlush();
      return;
    }
    this.#background();
  }

  #background(): void {
    this.#sync(0, false).then(
      (outcome) => {
        if (outcome.dry) this.#quietUntil = performance.now() + this.#flushIntervalMs;
        if (this.#unreported > 0) this.#scheduleFlush();
      },
      () => {
        // Redis unreachable: the units in hand stay usable until the deadline; try again later.
        this.#quietUntil = performance.now() + this.#flushIntervalMs;
        this.#scheduleFlush();
      },
    );
  }

  #scheduleFlush(): void {
    if (this.#flushTimer !== undefined || this.#state !== 'open') return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      if (this.#state !== 'open' || this.#busy > 0) return;
      if (this.#unreported > 0 || this.#pending || this.#local < this.#refillBelow) this.#background();
    }, this.#flushIntervalMs);
    this.#flushTimer.unref();
  }

  /** Runs one sync after those already queued (one at a time, so a retry replays exactly). */
  #sync(need: number, release: boolean, force = false): Promise<SyncOutcome> {
    this.#busy += 1;
    const run = this.#chain.then(() => this.#syncNow(need, release, force));
    this.#chain = run.catch(() => undefined);
    return run.finally(() => {
      this.#busy -= 1;
    });
  }

  async #syncNow(need: number, release: boolean, force: boolean): Promise<SyncOutcome> {
    if (this.#pending) await this.#send(this.#pending);
    // Once closing, only the release may run: anything else would lease units nobody uses.
    if (!release && this.#state !== 'open') return { dry: false };
    if (!release && !force && need > 0 && this.#local >= need && performance.now() < this.#deadline) return { dry: false };
    if (release && !this.#created && this.#unreported === 0) return { dry: false };
    if (!this.#leaseId) {
      this.#leaseId = randomUUID();
      this.#created = false;
    }
    let want = 0;
    if (!release && (need > 0 || this.#local < this.#refillBelow)) want = Math.max(this.#chunkSize, need) - this.#local;
    this.#pending = {
      opId: randomUUID(),
      leaseId: this.#leaseId,
      used: this.#unreported,
      want: Math.max(0, want),
      create: !this.#created,
      release,
    };
    return this.#send(this.#pending);
  }

  async #send(op: Op): Promise<SyncOutcome> {
    const { client, keys, receiptTtlMs } = this.#ctx;
    const sentAt = performance.now();
    const reply = (await syncScript.run(
      client,
      [...keys.common, keys.operation(op.opId)],
      [
        receiptTtlMs,
        op.leaseId,
        this.ownerId,
        this.#ttlMs,
        op.used,
        op.want,
        op.create ? 1 : 0,
        op.release ? 1 : 0,
        Math.max(2 * this.#ttlMs, 10_000),
      ],
    )) as [string, string, string, string];
    this.#pending = undefined;
    this.#unreported -= op.used;
    const [status, added, remaining, expiresAt] = reply;
    if (status === 'active') {
      this.#created = true;
      // Whatever the lease holds beyond what was used since the request left is ours to use.
      this.#local = Math.max(0, Number(remaining) - this.#unreported);
      this.#deadline = sentAt + this.#ttlMs - this.#marginMs;
      this.#expiresAtMs = Number(expiresAt);
      this.#keep(op.leaseId, sentAt);
      return { dry: Number(added) < op.want };
    }
    if (status === 'none') return { dry: op.want > 0 };
    // released or lost: the lease is over; a later sync starts a new one.
    if (op.leaseId === this.#leaseId) {
      this.#leaseId = undefined;
      this.#created = false;
      this.#local = 0;
      this.#deadline = 0;
      this.#kept?.stop();
      this.#kept = undefined;
    }
    return { dry: false };
  }

  #keep(leaseId: string, sentAt: number): void {
    if (this.#kept && !this.#kept.lost) {
      this.#kept.extended(sentAt, this.#ttlMs);
      return;
    }
    this.#kept = LeaseKeeper.for(this.#ctx.client).keep({
      ttlMs: this.#ttlMs,
      sentAt,
      renew: async () => {
        if (this.#leaseId !== leaseId || this.#state === 'closed') return null;
        await this.#sync(0, false, true);
        return this.#leaseId === leaseId && this.#created ? this.#expiresAtMs : null;
      },
      onLost: () => {
        // No renewal was confirmed in time: stop using the units in hand. The next sync reports
        // what was used and learns whether the lease survived.
        if (this.#leaseId === leaseId) {
          this.#local = 0;
          this.#deadline = 0;
        }
      },
    });
  }
}

function invalidAmount(value: unknown): InvalidArgumentError {
  return new InvalidArgumentError(`amount must be an integer from 1 to ${Number.MAX_SAFE_INTEGER}, got ${typeof value === 'number' ? value : typeof value}`);
}
