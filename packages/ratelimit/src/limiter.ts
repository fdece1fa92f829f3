import { randomUUID } from 'node:crypto';
import { InvalidArgumentError, assertClient, assertInteger, assertName, assertPrefix, assertSignal, assertTimeoutMs, keyspace, waitFor, type RedisClientLike } from '@x/redis-core';
import { DenyCache } from './deny-cache';
import { RateLimitTimeoutError } from './errors';
import { assertAlgorithm, assertLimits, limitSuffixes, smallestLimit } from './options';
import { limitScript, peekScript, refundScript, resetScript } from './scripts';
import { traced } from './tracing';
import type { RateLimit, RateLimitAlgorithm, RateLimitDecision, RateLimitPolicyState } from './types';

const SCRIPTS = { limit: limitScript, peek: peekScript, refund: refundScript };

/**
 * Options of a {@link RateLimiter}.
 *
 * @example
 * new RateLimiter(client, 'api', { limits: [{ limit: 10, windowMs: 1_000 }], algorithm: 'gcra', prefix: 'x' });
 */
export interface RateLimiterOptions {
  /** The limits every call must fit: all of them admit and are charged, or none is. */
  limits: readonly RateLimit[];
  /**
   * How the limits count; see {@link RateLimitAlgorithm}.
   * @default 'gcra'
   */
  algorithm?: RateLimitAlgorithm;
  /**
   * First part of every key: `<prefix>:ratelimit:<name>:{<key>}:…`.
   * @default 'x'
   */
  prefix?: string;
  /**
   * Remember refusals in this process: a key refused for a cost is refused again for that cost
   * or more with no round trip until the server's `retryAfterMs` has passed. `true` keeps up to
   * 10,000 keys; `{ maxKeys }` sets the bound. It only ever refuses, so it never admits more than
   * the server would; a `refund` or `reset` through this limiter clears the key's entry, one
   * made by another process does not (this process may refuse the key until the retry time).
   * `peek` and `waitFor` always ask the server.
   * @default false
   */
  denyCache?: boolean | { maxKeys?: number };
}

/**
 * Options of `limit` and `peek`.
 *
 * @example
 * await limiter.limit('user:42', { cost: 5 });
 */
export interface LimitOptions {
  /**
   * Units the call costs: an integer from 1 to the smallest limit.
   * @default 1
   */
  cost?: number;
}

/**
 * Options of `waitFor`.
 *
 * @example
 * await limiter.waitFor('user:42', { cost: 2, timeoutMs: 5_000, signal: AbortSignal.timeout(10_000) });
 */
export interface WaitForOptions extends LimitOptions {
  /**
   * How long to wait at most; then `RateLimitTimeoutError`. `0` tries once.
   * @default Infinity
   */
  timeoutMs?: number;
  /** Aborts the wait (it rejects with the signal's reason); nothing is charged. */
  signal?: AbortSignal;
}

/**
 * A decision as the script returned it, with the server time it was made at.
 * @internal
 */
export interface RawDecision {
  decision: RateLimitDecision;
  /** Server time of the decision, in microseconds. */
  serverTimeUs: number;
}

/**
 * Admits or refuses work per key against one or more rate limits, exactly, on the server's clock.
 * Every call is one round trip (one script); several limits are checked and charged atomically.
 *
 * @example
 * const limiter = new RateLimiter(client, 'api', {
 *   limits: [{ limit: 10, windowMs: 1_000 }, { limit: 1_000, windowMs: 3_600_000 }],
 * });
 * const d = await limiter.limit('user:42');
 * if (!d.allowed) console.log(`retry in ${d.retryAfterMs} ms`);
 */
export class RateLimiter {
  /** The limiter's name, as given. */
  readonly name: string;
  /** The limits, as validated (frozen). */
  readonly limits: readonly RateLimit[];
  readonly algorithm: RateLimitAlgorithm;
  readonly #client: RedisClientLike;
  readonly #prefix: string;
  readonly #primitive: string;
  readonly #suffixes: string[];
  readonly #maxCost: number;
  readonly #denied: DenyCache | undefined;

  constructor(client: RedisClientLike, name: string, options: RateLimiterOptions) {
    assertClient(client);
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options must be an object with limits');
    this.#client = client;
    this.name = assertName('name', name);
    this.#prefix = assertPrefix(options.prefix ?? 'x');
    this.limits = assertLimits(options.limits);
    this.algorithm = assertAlgorithm(options.algorithm ?? 'gcra');
    this.#primitive = `ratelimit:${escapeTag(name)}`;
    this.#suffixes = limitSuffixes(this.algorithm, this.limits);
    this.#maxCost = smallestLimit(this.limits);
    const deny = options.denyCache ?? false;
    if (deny === true) this.#denied = new DenyCache(10_000);
    else if (typeof deny === 'object' && deny !== null) this.#denied = new DenyCache(assertInteger('denyCache.maxKeys', deny.maxKeys ?? 10_000, 1));
    else if (deny !== false) throw new InvalidArgumentError('denyCache must be a boolean or { maxKeys }');
  }

  /**
   * Charges `cost` to every limit of `key` if all of them admit it; else charges nothing and says
   * when to retry.
   *
   * @example
   * const { allowed, remaining, retryAfterMs } = await limiter.limit('user:42', { cost: 1 });
   */
  async limit(key: string, options: LimitOptions = {}): Promise<RateLimitDecision> {
    return (await this.decide(key, options.cost ?? 1)).decision;
  }

  /**
   * Whether `cost` (default 1) would be admitted now, and the state of every limit; consumes
   * nothing and writes nothing.
   *
   * @example
   * const { remaining, resetAt } = await limiter.peek('user:42');
   */
  peek(key: string, options: LimitOptions = {}): Promise<RateLimitDecision> {
    return traced.peek.trace(key, async () => (await this.run('peek', key, options.cost ?? 1)).decision);
  }

  /**
   * Gives `cost` back to every limit of `key` (work that was admitted but not done), never above
   * full, and wakes `waitFor` callers on the key. Returns the state after the refund.
   *
   * @example
   * const d = await limiter.limit('user:42', { cost: 10 });
   * if (d.allowed) await limiter.refund('user:42', 10 - used);
   */
  refund(key: string, cost = 1): Promise<RateLimitDecision> {
    return traced.refund.trace(key, async () => {
      const { decision } = await this.run('refund', key, cost);
      this.#denied?.forget(key);
      return decision;
    });
  }

  /**
   * Forgets every limit's state of `key`: it is full again. Wakes `waitFor` callers on the key.
   *
   * @example
   * await limiter.reset('user:42');
   */
  reset(key: string): Promise<void> {
    return traced.reset.trace(key, async () => {
      const ks = this.#keyspace(key);
      await resetScript(this.algorithm, this.limits.length).run(this.#client, this.#suffixes.map((s) => ks.key(s)), this.#args(1, ks.channel));
      this.#denied?.forget(key);
    });
  }

  /**
   * Waits until `cost` is admitted on every limit of `key`, then charges it (like `limit`) and
   * returns the decision. No polling: it sleeps for the `retryAfterMs` the server computed, and
   * is woken at once by a `refund` or `reset` of the key from any process (a push on the key's
   * channel). Nothing is charged when it times out or is aborted.
   *
   * @example
   * await limiter.waitFor('user:42', { cost: 1, timeoutMs: 5_000 });
   * await callTheApi();
   */
  async waitFor(key: string, options: WaitForOptions = {}): Promise<RateLimitDecision> {
    const channel = this.channelOf(key);
    const cost = this.#cost(options.cost);
    const timeoutMs = assertTimeoutMs(options.timeoutMs ?? Infinity);
    const signal = assertSignal(options.signal);
    return traced.waitFor.trace(key, () =>
      waitFor<RateLimitDecision>({
        client: this.#client,
        channel,
        target: randomUUID(),
        timeoutMs,
        signal,
        attempt: async () => {
          const { decision } = await this.run('limit', key, cost);
          return decision.allowed ? { done: decision } : { retryInMs: decision.retryAfterMs };
        },
        timeoutError: () => new RateLimitTimeoutError(this.name, key, timeoutMs),
      }),
    );
  }

  /**
   * `limit`, with the server time (ms) of the decision, for the middleware's `t` parameters.
   * @internal
   */
  async decide(key: string, cost: unknown): Promise<{ decision: RateLimitDecision; serverTimeMs: number }> {
    let serverTimeMs = 0;
    const decision = await traced.limit.trace(key, async () => {
      const denied = this.#denied;
      if (denied) {
        const cached = denied.get(key, typeof cost === 'number' ? cost : 1);
        if (cached) {
          // Only a valid cost can have been refused: an invalid one still throws below.
          this.#cost(cost);
          serverTimeMs = cached.serverTimeMs;
          return cached.decision;
        }
      }
      const sentAt = performance.now();
      const raw = await this.run('limit', key, cost);
      serverTimeMs = raw.serverTimeUs / 1000;
      if (denied && !raw.decision.allowed) denied.refused(key, cost as number, sentAt, raw.decision, serverTimeMs);
      return raw.decision;
    });
    return { decision, serverTimeMs };
  }

  /**
   * Runs one of the deciding scripts for `key`: the decision and the server time it was made at.
   * @internal
   */
  async run(operation: 'limit' | 'peek' | 'refund', key: string, cost: unknown): Promise<RawDecision> {
    const ks = this.#keyspace(key);
    const checked = this.#cost(cost);
    const reply = (await SCRIPTS[operation](this.algorithm, this.limits.length).run(
      this.#client,
      this.#suffixes.map((s) => ks.key(s)),
      this.#args(checked, ks.channel),
    )) as unknown[];
    return { decision: this.#decision(reply), serverTimeUs: Number(reply[2]) };
  }

  /**
   * The wake-up channel of `key`.
   * @internal
   */
  channelOf(key: string): string {
    return this.#keyspace(key).channel;
  }

  #keyspace(key: string) {
    assertName('key', key);
    return keyspace(this.#prefix, this.#primitive, key);
  }

  #cost(cost: unknown): number {
    return assertInteger('cost', cost ?? 1, 1, this.#maxCost);
  }

  #args(cost: number, channel: string): (string | number)[] {
    const args: (string | number)[] = [this.algorithm, cost, channel, this.limits.length];
    for (const l of this.limits) args.push(l.limit, l.windowMs);
    return args;
  }

  #decision(reply: unknown[]): RateLimitDecision {
    const allowed = Number(reply[0]) === 1;
    const retryAfterMs = Number(reply[1]);
    const waits: number[] = [];
    const policies: RateLimitPolicyState[] = this.limits.map((l, i) => {
      waits.push(Number(reply[5 + 3 * i]));
      return { limit: l.limit, windowMs: l.windowMs, remaining: Number(reply[3 + 3 * i]), resetAt: Number(reply[4 + 3 * i]) };
    });
    const tightest = policies[tightestIndex(policies, allowed ? undefined : waits)]!;
    return { allowed, remaining: tightest.remaining, limit: tightest.limit, windowMs: tightest.windowMs, resetAt: tightest.resetAt, retryAfterMs, policies };
  }
}

/**
 * The limit a decision reports: when refused, the one with the longest wait; else (and on a tie)
 * the one with the fewest units left, then the latest reset.
 */
function tightestIndex(policies: RateLimitPolicyState[], waits?: number[]): number {
  let best = 0;
  for (let i = 1; i < policies.length; i++) {
    const p = policies[i]!;
    const b = policies[best]!;
    const dw = waits ? waits[i]! - waits[best]! : 0;
    if (dw > 0 || (dw === 0 && (p.remaining < b.remaining || (p.remaining === b.remaining && p.resetAt > b.resetAt)))) best = i;
  }
  return best;
}

function escapeTag(name: string): string {
  return name.replace(/[%{}]/g, (c) => (c === '%' ? '%25' : c === '{' ? '%7B' : '%7D'));
}
