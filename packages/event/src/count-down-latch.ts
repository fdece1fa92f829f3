import { randomUUID } from 'node:crypto';
import {
  InvalidArgumentError,
  LUA_HELPERS,
  assertInteger,
  defineScript,
  waitFor,
  type Keyspace,
  type RedisClientLike,
} from '@x/redis-core';
import { assertClient } from '@x/redis-core';
import { EventTimeoutError } from './errors';
import { eventSetup, recheckMs, waitOptions, type EventOptions, type EventWaitOptions } from './options';
import { traced } from './tracing';

const COUNT_DOWN = { kind: 'latch', script: 'count-down-latch.countDown' };
const WAIT = { kind: 'latch', script: 'count-down-latch.get' };

/**
 * KEYS[1] state HASH: count. Every script starts the latch at ARGV[1] when it does not exist yet
 * (idempotent: an existing latch is never reset, whatever count the caller brings). Reaching zero
 * publishes "* zero" to every waiter of the channel.
 */
const LATCH_LUA =
  LUA_HELPERS +
  `
local function latch_count(init, ttl)
  local n = tonumber(init)
  if not n or n < 1 or n ~= math.floor(n) then return nil end
  local c = redis.call('HGET', KEYS[1], 'count')
  if not c then
    redis.call('HSET', KEYS[1], 'count', n)
    c = n
  end
  if ttl then keep_for(KEYS[1], ttl) end
  return tonumber(c)
end
`;

/** ARGV: count, n, ttlMs ('' for none), channel. Reply: the count after it. */
const COUNT_DOWN_LUA =
  LATCH_LUA +
  `
local by, ttl, channel = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
if not by or by < 1 or by ~= math.floor(by) then return redis.error_reply('INVALID_ARGUMENT n must be a positive integer') end
local c = latch_count(ARGV[1], ttl)
if not c then return redis.error_reply('INVALID_ARGUMENT count must be a positive integer') end
if c == 0 then return 0 end
local left = math.max(0, c - by)
redis.call('HSET', KEYS[1], 'count', left)
if left == 0 then wake(channel, '* zero') end
return left
`;

/** ARGV: count, ttlMs ('' for none). Reply: the count. */
const GET_LUA =
  LATCH_LUA +
  `
local c = latch_count(ARGV[1], tonumber(ARGV[2]))
if not c then return redis.error_reply('INVALID_ARGUMENT count must be a positive integer') end
return c
`;

const KEYS = ['state'] as const;
const errors = { INVALID_ARGUMENT: (detail: string) => new InvalidArgumentError(detail) };
const define = (name: string, source: string) => defineScript({ name: `count-down-latch.${name}`, keys: KEYS, source, errors });
const scripts = { countDown: define('countDown', COUNT_DOWN_LUA), get: define('get', GET_LUA) };

/** Options of a {@link CountDownLatch}. */
export interface CountDownLatchOptions extends EventOptions {
  /**
   * The count to start from (an integer from 1), used only if the latch does not exist yet: a
   * latch that exists is joined as it is, never reset.
   */
  count: number;
}

/**
 * A latch that opens once `countDown()` was called `count` times (in total, by any process): at
 * zero every waiter returns, and later waits return at once. Counting below zero stays at zero.
 * Creating it is idempotent; an instance created with another count joins the existing latch.
 * Waiters are woken by a message, never by polling, and share one subscriber connection per
 * process.
 *
 * @example
 * const latch = new CountDownLatch(client, 'shards', { count: 8 });
 * await latch.countDown();                  // at 0 every waiter wakes
 * await latch.wait({ timeoutMs: 30_000 });
 */
export class CountDownLatch {
  /** The latch's name. */
  readonly name: string;
  readonly #client: RedisClientLike;
  readonly #ks: Keyspace;
  readonly #keys: string[];
  readonly #count: number;
  readonly #ttlMs: number | null;
  readonly #ttlArg: string;

  constructor(client: RedisClientLike, name: string, options: CountDownLatchOptions) {
    assertClient(client);
    const { ks, ttlMs } = eventSetup('latch', name, options);
    this.#count = assertInteger('count', options.count, 1);
    this.name = name;
    this.#client = client;
    this.#ks = ks;
    this.#keys = [ks.key('state')];
    this.#ttlMs = ttlMs;
    this.#ttlArg = ttlMs === null ? '' : String(ttlMs);
  }

  /**
   * Counts down by `n` (default 1) and returns the count left; reaching zero wakes every waiter.
   * At zero it stays at zero. One round trip.
   *
   * @example
   * const left = await latch.countDown();
   */
  async countDown(n = 1): Promise<number> {
    assertInteger('n', n, 1);
    return traced.countDown.trace(
      this.name,
      async () => Number(await scripts.countDown.run(this.#client, this.#keys, [this.#count, n, this.#ttlArg, this.#ks.channel])),
      COUNT_DOWN,
    );
  }

  /**
   * The count left. One round trip.
   *
   * @example
   * console.log(`${await latch.getCount()} shards to go`);
   */
  async getCount(): Promise<number> {
    return Number(await scripts.get.run(this.#client, this.#keys, [this.#count, this.#ttlArg]));
  }

  /**
   * Returns once the count is zero. Rejects with `EventTimeoutError` after `timeoutMs`, or with
   * the signal's reason.
   *
   * @example
   * await latch.wait({ timeoutMs: 30_000 });
   */
  async wait(options: EventWaitOptions = {}): Promise<void> {
    return traced.wait.trace(this.name, () => this.#wait(options), WAIT);
  }

  async #wait(options: EventWaitOptions): Promise<void> {
    const { timeoutMs, signal } = waitOptions(options);
    await waitFor<true>({
      client: this.#client,
      channel: this.#ks.channel,
      target: randomUUID(),
      timeoutMs,
      signal,
      timeoutError: () => new EventTimeoutError(this.name, timeoutMs),
      attempt: async () => ((await this.getCount()) === 0 ? { done: true } : { retryInMs: recheckMs(this.#ttlMs) }),
      // A latch never counts up again: zero announced is zero for good.
      onWake: (payload) => (payload === 'zero' ? true : undefined),
    });
  }
}
