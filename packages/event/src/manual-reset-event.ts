import { randomUUID } from 'node:crypto';
import { InvalidArgumentError, LUA_HELPERS, defineScript, waitFor, type Keyspace, type RedisClientLike } from '@x/redis-core';
import { assertClient } from '@x/redis-core';
import { EventTimeoutError } from './errors';
import { eventSetup, recheckMs, waitOptions, type EventOptions, type EventWaitOptions } from './options';
import { traced } from './tracing';

const SET = { kind: 'manual-reset', script: 'manual-reset-event.set' };
const RESET = { kind: 'manual-reset', script: 'manual-reset-event.reset' };
const WAIT = { kind: 'manual-reset', script: 'manual-reset-event.read' };

/**
 * KEYS[1] state HASH: set (0|1), gen (the generation: bumped by each set() that found the event
 * unset, as next_fence does, so it never goes backwards even if the key was lost).
 * A set() that changes the state publishes "* <gen>" to every waiter of the channel.
 */
const SET_LUA =
  LUA_HELPERS +
  `
local ttl, channel = tonumber(ARGV[1]), ARGV[2]
local gen = redis.call('HGET', KEYS[1], 'gen') or '0'
if redis.call('HGET', KEYS[1], 'set') ~= '1' then
  gen = int(next_fence(KEYS[1], 'gen'))
  redis.call('HSET', KEYS[1], 'set', 1)
  wake(channel, '* ' .. gen)
end
if ttl then keep_for(KEYS[1], ttl) end
return gen
`;

/** ARGV: ttlMs ('' for none). Reply 1. */
const RESET_LUA =
  LUA_HELPERS +
  `
local ttl = tonumber(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'set', 0) end
if ttl then keep_for(KEYS[1], ttl) end
return 1
`;

/** ARGV: ttlMs ('' for none). Reply: {set (0|1), gen}. */
const READ_LUA =
  LUA_HELPERS +
  `
local ttl = tonumber(ARGV[1])
if ttl then keep_for(KEYS[1], ttl) end
local s = redis.call('HMGET', KEYS[1], 'set', 'gen')
return {tonumber(s[1] or '0'), s[2] or '0'}
`;

const KEYS = ['state'] as const;
const errors = { INVALID_ARGUMENT: (detail: string) => new InvalidArgumentError(detail) };
const define = (name: string, source: string) => defineScript({ name: `manual-reset-event.${name}`, keys: KEYS, source, errors });
const scripts = { set: define('set', SET_LUA), reset: define('reset', RESET_LUA), read: define('read', READ_LUA) };

/**
 * A broadcast event: `set()` wakes every waiter and lets later waits through at once until
 * `reset()`. It is a boolean (set twice and reset once, it is unset). A generation counter makes a
 * wait that began before a `set()`+`reset()` pair return as well, even when its process
 * reconnected in between and missed the message. Waiters are woken by a message, never by
 * polling, and share one subscriber connection per process.
 *
 * @example
 * const ready = new ManualResetEvent(client, 'cache-warm');
 * await ready.set();   // wakes every waiter; later waits return at once
 * await ready.wait({ timeoutMs: 30_000 });
 * await ready.reset();
 */
export class ManualResetEvent {
  /** The event's name. */
  readonly name: string;
  readonly #client: RedisClientLike;
  readonly #ks: Keyspace;
  readonly #keys: string[];
  readonly #ttlMs: number | null;
  readonly #ttlArg: string;

  constructor(client: RedisClientLike, name: string, options: EventOptions = {}) {
    assertClient(client);
    const { ks, ttlMs } = eventSetup('manual-event', name, options);
    this.name = name;
    this.#client = client;
    this.#ks = ks;
    this.#keys = [ks.key('state')];
    this.#ttlMs = ttlMs;
    this.#ttlArg = ttlMs === null ? '' : String(ttlMs);
  }

  /**
   * Sets the event and wakes every waiter. Setting a set event changes nothing. One round trip.
   *
   * @example
   * await ready.set();
   */
  async set(): Promise<void> {
    await traced.set.trace(this.name, () => scripts.set.run(this.#client, this.#keys, [this.#ttlArg, this.#ks.channel]), SET);
  }

  /**
   * Unsets the event: waits started from now on block until the next `set()`. One round trip.
   *
   * @example
   * await ready.reset();
   */
  async reset(): Promise<void> {
    await traced.reset.trace(this.name, () => scripts.reset.run(this.#client, this.#keys, [this.#ttlArg]), RESET);
  }

  /**
   * Whether the event is set. One round trip.
   *
   * @example
   * if (!(await ready.isSet())) console.log('still warming up');
   */
  async isSet(): Promise<boolean> {
    return (await this.#read()).set;
  }

  /**
   * Returns once the event is set, or was set at any moment since this wait began (even if it
   * was reset again). Rejects with `EventTimeoutError` after `timeoutMs`, or with the signal's
   * reason.
   *
   * @example
   * await ready.wait({ timeoutMs: 30_000 });
   */
  async wait(options: EventWaitOptions = {}): Promise<void> {
    return traced.wait.trace(this.name, () => this.#wait(options), WAIT);
  }

  async #wait(options: EventWaitOptions): Promise<void> {
    const { timeoutMs, signal } = waitOptions(options);
    let since: bigint | undefined;
    await waitFor<true>({
      client: this.#client,
      channel: this.#ks.channel,
      target: randomUUID(),
      timeoutMs,
      signal,
      timeoutError: () => new EventTimeoutError(this.name, timeoutMs),
      attempt: async () => {
        const { set, gen } = await this.#read();
        if (set || (since !== undefined && gen > since)) return { done: true };
        since ??= gen;
        return { retryInMs: recheckMs(this.#ttlMs) };
      },
      // A set announced to us happened after our first read: while we waited.
      onWake: (payload) => (/^\d+$/.test(payload) ? true : undefined),
    });
  }

  async #read(): Promise<{ set: boolean; gen: bigint }> {
    const [set, gen] = (await scripts.read.run(this.#client, this.#keys, [this.#ttlArg])) as [number, string];
    return { set: Number(set) === 1, gen: BigInt(gen) };
  }
}
