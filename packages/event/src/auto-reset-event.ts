import { randomUUID } from 'node:crypto';
import { InvalidArgumentError, LUA_HELPERS, defineScript, waitFor, type Keyspace, type RedisClientLike } from '@x/redis-core';
import { assertClient } from '@x/redis-core';
import { EventTimeoutError } from './errors';
import { eventSetup, waitOptions, type EventOptions, type EventWaitOptions } from './options';
import { traced } from './tracing';

const SET = { kind: 'auto-reset', script: 'auto-reset-event.set' };
const WAIT = { kind: 'auto-reset', script: 'auto-reset-event.wait' };

/**
 * KEYS (one hash tag):
 *   KEYS[1] signals  ZSET  signal id -> expiry (server ms, or +inf): signals nobody waited for
 *   KEYS[2] queue    LIST  waiting tokens, oldest first
 *   KEYS[3] waiters  HASH  token -> the waiter's own lease deadline (server ms)
 *   KEYS[4] handed   HASH  token -> "deadline|expiry": a signal handed to a waiter, not yet taken
 *   KEYS[5] meta     HASH  seq (last signal id)
 *
 * A signal goes to the head live waiter inside `set` and is announced as "<token> s"; the waiter
 * takes it with its next attempt. A signal handed to a waiter that died (its lease ran out) or gave
 * up goes to the next waiter or back to the kept signals, so each `set` is taken exactly once.
 */
const AUTO_LUA =
  LUA_HELPERS +
  `
local S, Q, W, D, M = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

local function ev_keep(ttl)
  if not ttl then return end
  keep_for(S, ttl)
  keep_for(D, ttl)
  keep_for(M, ttl)
end

-- One signal (expiring at sigexp, or 'inf') to the first live waiter; else it is kept.
local function ev_dispatch(sigexp, now, channel)
  while true do
    local head = redis.call('LPOP', Q)
    if not head then break end
    local deadline = tonumber(redis.call('HGET', W, head) or '')
    redis.call('HDEL', W, head)
    if deadline and deadline > now then
      redis.call('HSET', D, head, int(deadline) .. '|' .. sigexp)
      wake(channel, head .. ' s')
      return 1
    end
  end
  local id = next_fence(M, 'seq')
  if sigexp == 'inf' then redis.call('ZADD', S, '+inf', int(id)) else redis.call('ZADD', S, sigexp, int(id)) end
  return 0
end

-- Signals handed to waiters whose lease ran out go on; expired kept signals go away.
local function ev_reclaim(now, channel)
  local handed = redis.call('HGETALL', D)
  for i = 1, #handed, 2 do
    local deadline, sigexp = string.match(handed[i + 1], '^(%d+)|(.+)$')
    if tonumber(deadline) <= now then
      redis.call('HDEL', D, handed[i])
      if sigexp == 'inf' or tonumber(sigexp) > now then ev_dispatch(sigexp, now, channel) end
    end
  end
  redis.call('ZREMRANGEBYSCORE', S, '-inf', now)
end
`;

/** ARGV: ttlMs ('' for none), channel. Reply: 1 when a waiter was woken, 0 when the signal was kept. */
const SET_LUA =
  AUTO_LUA +
  `
local ttl, channel = tonumber(ARGV[1]), ARGV[2]
local now = now_ms()
ev_reclaim(now, channel)
local sigexp = 'inf'
if ttl then sigexp = int(now + ttl) end
local woke = ev_dispatch(sigexp, now, channel)
ev_keep(ttl)
return woke
`;

/**
 * Takes a signal, or queues for one. ARGV: token, waiterTtlMs, ttlMs ('' for none), channel.
 * Reply: {1} when a signal was taken, {0, retryInMs} when queued.
 */
const WAIT_LUA =
  AUTO_LUA +
  `
local token, wttl, ttl, channel = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local now = now_ms()
ev_reclaim(now, channel)
if redis.call('HDEL', D, token) == 1 then
  ev_keep(ttl)
  return {1}
end
local first = redis.call('ZRANGE', S, 0, 0)[1]
if first then
  redis.call('ZREM', S, first)
  if redis.call('HDEL', W, token) == 1 then redis.call('LREM', Q, 0, token) end
  ev_keep(ttl)
  return {1}
end
if redis.call('HEXISTS', W, token) == 0 then redis.call('RPUSH', Q, token) end
redis.call('HSET', W, token, int(now + wttl))
keep_for(Q, wttl * 2)
keep_for(W, wttl * 2)
ev_keep(ttl)
return {0, math.floor(wttl / 3)}
`;

/** A waiter gives up; a signal handed to it goes on. ARGV: token, ttlMs ('' for none), channel. Reply 1. */
const CANCEL_LUA =
  AUTO_LUA +
  `
local token, ttl, channel = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local now = now_ms()
redis.call('LREM', Q, 0, token)
redis.call('HDEL', W, token)
local h = redis.call('HGET', D, token)
if h then
  redis.call('HDEL', D, token)
  local sigexp = string.match(h, '|(.+)$')
  if sigexp == 'inf' or tonumber(sigexp) > now then ev_dispatch(sigexp, now, channel) end
end
ev_reclaim(now, channel)
ev_keep(ttl)
return 1
`;

/** ARGV: channel. Reply: signals kept. */
const PENDING_LUA =
  AUTO_LUA +
  `
ev_reclaim(now_ms(), ARGV[1])
return redis.call('ZCARD', S)
`;

/** ARGV: channel. Reply: signals removed. */
const CLEAR_LUA =
  AUTO_LUA +
  `
ev_reclaim(now_ms(), ARGV[1])
local n = redis.call('ZCARD', S)
redis.call('DEL', S)
return n
`;

/** No ARGV. Reply: waiters whose own lease is live. */
const WAITERS_LUA =
  AUTO_LUA +
  `
local now, n = now_ms(), 0
for _, d in ipairs(redis.call('HVALS', W)) do
  if tonumber(d) > now then n = n + 1 end
end
return n
`;

const KEYS = ['signals', 'queue', 'waiters', 'handed', 'meta'] as const;
const errors = { INVALID_ARGUMENT: (detail: string) => new InvalidArgumentError(detail) };
const define = (name: string, source: string) => defineScript({ name: `auto-reset-event.${name}`, keys: KEYS, source, errors });
const scripts = {
  set: define('set', SET_LUA),
  wait: define('wait', WAIT_LUA),
  cancel: define('cancel', CANCEL_LUA),
  pending: define('pending', PENDING_LUA),
  clear: define('clear', CLEAR_LUA),
  waiters: define('waiters', WAITERS_LUA),
};

/**
 * How long a waiter counts as alive without a re-check. A signal handed to a waiter that died is
 * passed on after at most this long.
 */
const WAITER_TTL_MS = 10_000;

/**
 * An event that lets one waiter through per `set()`: each signal is consumed by exactly one
 * `wait()`, waiters are served in FIFO order, and a signal set while nobody waits is kept (for
 * `ttlMs`, if given) until a waiter arrives. Waiters are woken by a message, never by polling, and
 * share one subscriber connection per process.
 *
 * @example
 * const done = new AutoResetEvent(client, 'task_done');
 * await done.set();                        // wakes exactly one waiter, or is kept for the next one
 * await done.wait({ timeoutMs: 60_000 });  // consumes one signal
 */
export class AutoResetEvent {
  /** The event's name. */
  readonly name: string;
  readonly #client: RedisClientLike;
  readonly #ks: Keyspace;
  readonly #keys: string[];
  readonly #ttlArg: string;

  constructor(client: RedisClientLike, name: string, options: EventOptions = {}) {
    assertClient(client);
    const { ks, ttlMs } = eventSetup('auto-event', name, options);
    this.name = name;
    this.#client = client;
    this.#ks = ks;
    this.#keys = KEYS.map((k) => ks.key(k));
    this.#ttlArg = ttlMs === null ? '' : String(ttlMs);
  }

  /**
   * Signals the event: the longest-waiting live waiter gets the signal; with nobody waiting, it
   * is kept for the next `wait()`. One round trip. Resolves `true` when a waiter was woken.
   *
   * @example
   * const wokeSomebody = await done.set();
   */
  async set(): Promise<boolean> {
    return traced.set.trace(this.name, async () => Number(await scripts.set.run(this.#client, this.#keys, [this.#ttlArg, this.#ks.channel])) === 1, SET);
  }

  /**
   * Waits until a signal is available and consumes it. Waiters are served in FIFO order. Rejects
   * with `EventTimeoutError` after `timeoutMs`, or with the signal's reason; a wait that gives up
   * consumes nothing.
   *
   * @example
   * await done.wait({ timeoutMs: 60_000, signal: AbortSignal.timeout(90_000) });
   */
  async wait(options: EventWaitOptions = {}): Promise<void> {
    return traced.wait.trace(this.name, () => this.#wait(options), WAIT);
  }

  async #wait(options: EventWaitOptions): Promise<void> {
    const { timeoutMs, signal } = waitOptions(options);
    const token = randomUUID();
    await waitFor<true>({
      client: this.#client,
      channel: this.#ks.channel,
      target: token,
      timeoutMs,
      signal,
      timeoutError: () => new EventTimeoutError(this.name, timeoutMs),
      attempt: async () => {
        const reply = (await scripts.wait.run(this.#client, this.#keys, [token, WAITER_TTL_MS, this.#ttlArg, this.#ks.channel])) as number[];
        return reply[0] === 1 ? { done: true } : { retryInMs: Number(reply[1]) };
      },
      cancel: async () => {
        await scripts.cancel.run(this.#client, this.#keys, [token, this.#ttlArg, this.#ks.channel]);
      },
    });
  }

  /**
   * Signals kept for later waiters right now. One round trip.
   *
   * @example
   * console.log(`${await done.pending()} signals nobody has taken yet`);
   */
  async pending(): Promise<number> {
    return Number(await scripts.pending.run(this.#client, this.#keys, [this.#ks.channel]));
  }

  /**
   * Waiters queued right now (in any process). One round trip.
   *
   * @example
   * if ((await done.waiters()) === 0) console.log('the next set() will be kept');
   */
  async waiters(): Promise<number> {
    return Number(await scripts.waiters.run(this.#client, this.#keys));
  }

  /**
   * Whether a signal is kept, so that the next `wait()` would return at once. One round trip.
   *
   * @example
   * if (await done.isSet()) console.log('a signal is waiting to be taken');
   */
  async isSet(): Promise<boolean> {
    return (await this.pending()) > 0;
  }

  /**
   * Drops every kept signal (a signal already handed to a waiter stays with it). Returns how many
   * were dropped. One round trip.
   *
   * @example
   * await done.clear();
   */
  async clear(): Promise<number> {
    return Number(await scripts.clear.run(this.#client, this.#keys, [this.#ks.channel]));
  }
}
